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
