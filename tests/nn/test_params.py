"""Parameter counts against the published numbers (He et al. 2015; torchvision; Huang et al. 2017)."""

import pytest

from skiplab.nn import cifar_resnet, create_model
from skiplab.probes import count_params

PUBLISHED = {
    "resnet20": 269_722,
    "resnet32": 464_154,
    "resnet44": 658_586,
    "resnet56": 853_018,
    "resnet110": 1_727_962,
    "resnet18": 11_689_512,
    "resnet34": 21_797_672,
    "resnet50": 25_557_032,
    "resnet101": 44_549_160,
    "resnet152": 60_192_808,
    "se_resnet50": 28_088_024,  # timm's seresnet50
    "densenet121": 7_978_856,  # torchvision's densenet121
    "resnet20_pool": 269_722,  # pooling on the skip path adds no parameters
}


@pytest.mark.parametrize("name,count", PUBLISHED.items())
def test_published_parameter_counts(name, count):
    assert count_params(create_model(name)) == count


def test_densenet_bc_100_is_about_0_8m():
    assert 760_000 < count_params(create_model("densenet_bc100")) < 780_000  # paper: 0.8M


def test_plain_twin_has_the_same_parameters():
    assert count_params(create_model("plain56")) == count_params(create_model("resnet56"))


def test_projection_shortcuts_add_parameters():
    a = count_params(cifar_resnet(20, shortcut="zeropad"))
    b = count_params(cifar_resnet(20, shortcut="projection"))
    # two 1x1 convolutions with BN: 16→32 and 32→64
    assert b - a == (16 * 32 + 2 * 32) + (32 * 64 + 2 * 64)


def test_pooling_shortcut_averages_each_window_and_zero_pads_the_new_channels():
    import torch

    from skiplab.nn import make_shortcut

    x = torch.randn(2, 16, 7, 7)
    y = make_shortcut("pool", 16, 32, 2)(x)
    assert y.shape == torch.nn.Conv2d(16, 32, 3, 2, 1)(x).shape  # matches the strided residual branch
    assert torch.allclose(y[:, 8:24, 0, 0], x[:, :, :2, :2].mean((2, 3)))
    assert torch.allclose(y[:, 8:24, 3, 3], x[:, :, 6, 6])  # the edge window holds one pixel (ceil mode)
    assert y[:, :8].abs().sum() == 0 and y[:, 24:].abs().sum() == 0
    assert make_shortcut("pool", 16, 16, 1)(x) is x or torch.equal(make_shortcut("pool", 16, 16, 1)(x), x)
