"""The thin-shapes segmentation set: shapes, determinism, and thin parts actually present."""

import pytest
import torch

from skiplab.data.segmentation import SHAPES, draw_shape, segmentation


def thin_share(masks: torch.Tensor) -> float:
    """Share of mask pixels one pixel across: background on both sides, left-right or up-down."""
    m = torch.nn.functional.pad(masks.bool(), (1, 1, 1, 1))
    core = m[:, 1:-1, 1:-1]
    across = (~m[:, 1:-1, :-2] & ~m[:, 1:-1, 2:]) | (~m[:, :-2, 1:-1] & ~m[:, 2:, 1:-1])
    return float((core & across).sum() / core.sum())


def thick_share(masks: torch.Tensor) -> float:
    """Share of mask pixels whose whole 3x3 neighbourhood is on the mask (the inside of a stroke 3+ px wide)."""
    m = masks.bool()
    full = torch.nn.functional.max_pool2d((~m).float().unsqueeze(1), 3, stride=1, padding=1)[:, 0] == 0
    return float((full & m).sum() / m.sum())


def test_shapes_and_split():
    d = segmentation(n=40, size=32, seed=3, held_out=0.25)
    assert d.x_train.shape == (30, 1, 32, 32) and d.x_test.shape == (10, 1, 32, 32)
    assert d.y_train.shape == (30, 32, 32) and d.y_train.dtype == torch.uint8
    assert set(torch.unique(d.y_train).tolist()) == {0, 1}
    assert d.input_shape == (1, 32, 32) and d.num_classes == 2
    # prepare() normalises by the training split's statistics
    x = d.prepare(d.x_train)
    assert abs(float(x.mean())) < 1e-4 and abs(float(x.std()) - 1) < 1e-3
    assert segmentation(n=8, size=48).x_train.shape[-2:] == (48, 48)


def test_same_seed_same_images_other_seed_other_images():
    a, b, c = segmentation(n=20, seed=1), segmentation(n=20, seed=1), segmentation(n=20, seed=2)
    assert torch.equal(a.x_train, b.x_train) and torch.equal(a.y_test, b.y_test)
    assert not torch.equal(a.x_train, c.x_train)


def test_masks_are_mostly_thin_strokes_and_every_kind_is_drawn():
    d = segmentation(n=100, seed=0)
    masks = torch.cat([d.y_train, d.y_test])
    assert 0.03 < float(masks.float().mean()) < 0.2  # the shapes are a small share of the pixels
    assert thin_share(masks) > 0.15  # a good share of the shapes is one pixel across
    assert thick_share(masks) < 0.05  # and almost nothing is three or more (only where strokes cross)
    g = torch.Generator().manual_seed(0)
    for kind in SHAPES:
        m = draw_shape(kind, g, 32, width=1.0).unsqueeze(0)
        assert m.sum() >= 8, kind
        assert thin_share(m) > 0.6, kind  # a one-pixel stroke is thin almost everywhere


def test_a_shape_shows_in_the_image_above_its_background():
    d = segmentation(n=100, seed=0)
    x, y = d.x_train[:, 0], d.y_train.bool()
    assert float(x[y].mean() - x[~y].mean()) > 0.7  # the shapes' contrast, 0.8..1.2, on noise
    assert float(x[~y].std()) > 0.3  # and the background is textured, not flat


@pytest.mark.parametrize(
    "kwargs, word", [({"n": 2}, "n must"), ({"size": 8}, "size must"), ({"held_out": 1.5}, "held_out")]
)
def test_bad_arguments_name_the_option(kwargs, word):
    with pytest.raises(ValueError, match=word):
        segmentation(**kwargs)
