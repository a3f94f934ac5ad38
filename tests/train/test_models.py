import pytest
import torch

from skiplab.nn import SKIP_TYPES
from skiplab.train import build_model


@pytest.mark.parametrize("skip", SKIP_TYPES)
def test_every_skip_type_builds_for_digits(skip):
    model = build_model(f"{skip}conv3", (1, 8, 8), 10, width=4)
    assert model(torch.randn(2, 1, 8, 8)).shape == (2, 10)


def test_family_names_fit_the_data():
    assert build_model("resnet20", (1, 8, 8), 10)(torch.randn(2, 1, 8, 8)).shape == (2, 10)
    assert build_model("plainmlp5", (2,), 3)(torch.randn(4, 2)).shape == (4, 3)
    plain = build_model("plainconv5", (1, 8, 8), 10)
    assert all(type(b.shortcut).__name__ == "NoShortcut" for _, b in plain.named_blocks())


def test_registered_model_must_fit_the_data():
    with pytest.raises(ValueError, match="takes \\(3, 32, 32\\) inputs"):
        build_model("densenet_bc100", (1, 8, 8), 10)
    with pytest.raises(ValueError, match="unknown model 'resnett20'"):
        build_model("resnett20", (1, 8, 8), 10)
    with pytest.raises(ValueError, match="needs image data"):
        build_model("resconv4", (2,), 2)
