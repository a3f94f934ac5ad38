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
