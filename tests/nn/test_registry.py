"""Every registered model: forward, backward, output shape. Adding a model adds it here."""

import pytest
import torch

from skiplab.nn import SkipNet, UnknownModelError, create_model, get_spec, list_models

HEAVY = {"resnet1202", "preact_resnet1001", "resnet101", "resnet152", "se_resnet50"}
SPECS = list_models()


@pytest.mark.parametrize(
    "spec", [pytest.param(s, id=s.name, marks=[pytest.mark.slow] if s.name in HEAVY else []) for s in SPECS]
)
def test_forward_backward_shape(spec):
    model = spec.create()
    assert isinstance(model, SkipNet)
    shape = spec.test_shape or spec.input_shape
    x = torch.randn(2, *shape)
    out = model(x)
    assert out.shape == (2, spec.num_classes)
    out.square().mean().backward()
    grads = [p.grad for p in model.parameters()]
    assert all(g is not None and torch.isfinite(g).all() for g in grads)
    assert any(g.abs().sum() > 0 for g in grads)


@pytest.mark.parametrize("spec", [s for s in SPECS if s.name not in HEAVY], ids=lambda s: s.name)
def test_intermediates_are_the_forward(spec):
    model = spec.create().eval()
    x = torch.randn(2, *(spec.test_shape or spec.input_shape))
    logits, outs = model.forward_intermediates(x)
    assert len(outs) == len(model.named_blocks()) > 0
    torch.testing.assert_close(logits, model(x))
    names = [n for n, _ in model.named_blocks()]
    modules = dict(model.named_modules())
    assert all(modules[n] is b for n, b in model.named_blocks()), names[:3]


def test_registry_names_are_unique_and_listed():
    names = [s.name for s in SPECS]
    assert len(names) == len(set(names))
    for family in ("cifar-resnet", "cifar-plain", "cifar-preact", "imagenet-resnet", "densenet", "highway"):
        assert list_models(family), family


def test_unknown_model_names_the_choices():
    with pytest.raises(UnknownModelError, match="resnet20") as e:
        get_spec("resnet21")
    assert "Known models" in str(e.value)
    with pytest.raises(ValueError):
        create_model("nope")


def _params(model):
    return sum(p.numel() for p in model.parameters())


@pytest.mark.parametrize(
    "name", ["resnet20", "plain20", "preact_resnet110", "se_resnet20", "densenet_bc100", "resconv20"]
)
def test_image_models_take_num_classes_and_in_channels(name):
    spec = get_spec(name)
    default, changed = spec.create(), create_model(name, num_classes=7, in_channels=1)
    shape = spec.shape(in_channels=1)
    assert shape[0] == 1
    assert changed(torch.randn(2, *shape)).shape == (2, 7)
    # By hand: the stem's first convolution loses 2 input channels (3x3 kernels), the classifier has 7 rows.
    stem = next(m for m in default.modules() if isinstance(m, torch.nn.Conv2d))
    fc = [m for m in default.modules() if isinstance(m, torch.nn.Linear)][-1]
    expected = (
        _params(default)
        - (spec.input_shape[0] - 1) * stem.out_channels * 9
        + (7 - fc.out_features) * (fc.in_features + 1)
    )
    assert _params(changed) == expected


def test_imagenet_resnet_with_options_is_torchvisions_layout():
    from skiplab.nn import imagenet_resnet

    plain = create_model("resnet18")
    reference = imagenet_resnet(18)
    assert {k: v.shape for k, v in plain.state_dict().items()} == {
        k: v.shape for k, v in reference.state_dict().items()
    }
    gray = create_model("resnet18", in_channels=1, num_classes=5)
    assert gray.conv1.weight.shape == (64, 1, 7, 7) and gray(torch.randn(2, 1, 64, 64)).shape == (2, 5)


def test_vector_models_take_in_features():
    model = create_model("resmlp20", in_features=12, num_classes=3)
    assert model(torch.randn(2, 12)).shape == (2, 3)
    assert create_model("highway10", in_features=5)(torch.randn(2, 5)).shape == (2, 10)
    assert get_spec("resmlp20").shape(in_features=12) == (12,)


def test_unknown_or_bad_options_are_refused_by_name():
    with pytest.raises(ValueError, match="takes the options num_classes, in_channels; got depth"):
        create_model("resnet20", depth=3)
    with pytest.raises(ValueError, match="in_features"):
        create_model("resmlp20", in_channels=3)
    with pytest.raises(ValueError, match="num_classes must be a positive integer"):
        create_model("resnet20", num_classes=0)
