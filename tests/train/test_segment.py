"""The segmentation trainer: seeded, reports per-epoch held-out scores and masks, stops when asked."""

import pytest

from skiplab.train.segment import SegmentConfig, cosine_lr, encode_mask, train_segmenter

TINY = SegmentConfig(width=2, epochs=2, n=20, batch_size=8, examples=(0, 1))


def test_a_run_is_reproducible_and_keeps_its_masks():
    a, b = train_segmenter(TINY), train_segmenter(TINY)
    assert a.status == "completed" and len(a.epochs) == 2
    assert [e.to_dict() | {"seconds": 0} for e in a.epochs] == [e.to_dict() | {"seconds": 0} for e in b.epochs]
    assert a.predictions == b.predictions and len(a.predictions) == 2
    assert all(len(m) == 32 and all(len(row) == 32 and set(row) <= {"0", "1"} for row in m) for m in a.predictions)
    assert a.iou == a.epochs[-1].iou and 0 <= a.iou <= 1 and 0 <= a.boundary_f <= 1
    d = a.to_dict()
    assert d["config"]["examples"] == [0, 1] and "predictions" not in d["epochs"][0]
    assert d["machine"]["threads"] == 1
    other = train_segmenter(TINY.replace(seed=1))
    assert other.epochs[0].train_loss != a.epochs[0].train_loss


def test_stop_before_a_batch_ends_the_run_cleanly():
    calls = []

    def stop():
        calls.append(1)
        return len(calls) > 1  # after the first batch (an epoch here has two)

    run = train_segmenter(TINY, should_stop=stop)
    assert run.status == "stopped" and run.epochs == [] and run.iou is None


def test_the_schedule_is_a_cosine_to_zero():
    cfg = SegmentConfig(epochs=10, lr=0.01)
    assert cosine_lr(cfg, 0) == pytest.approx(0.01)
    assert cosine_lr(cfg, 5) == pytest.approx(0.005)
    assert cosine_lr(cfg, 10) == pytest.approx(0.0)


def test_encode_mask_is_rows_of_bits():
    import torch

    m = torch.tensor([[0, 1, 1], [1, 0, 0]], dtype=torch.uint8)
    assert encode_mask(m) == ["011", "100"]


@pytest.mark.parametrize(
    "changes, word",
    [({"width": 0}, "width"), ({"lr": 2.0}, "lr"), ({"size": 36}, "multiple of 8"), ({"examples": (-1,)}, "examples")],
)
def test_bad_settings_name_the_option(changes, word):
    with pytest.raises(ValueError, match=word):
        SegmentConfig(**changes)


def test_an_example_beyond_the_held_out_images_is_refused():
    with pytest.raises(ValueError, match="examples must be below 5"):
        train_segmenter(TINY.replace(examples=(5,)))
