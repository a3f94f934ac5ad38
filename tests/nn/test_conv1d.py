"""The 1-D CIFAR ResNets on MNIST-1D: the paper's design with kernel-3 1-D convolutions."""

import pytest
import torch
from torch import nn

from skiplab.nn import BasicBlock1d, ResNet1d, ZeroPad1d, create_model, get_spec
from skiplab.nn.conv1d import plain1d, resnet1d


def weight_layers(model: nn.Module) -> int:
    return sum(isinstance(m, (nn.Conv1d, nn.Linear)) for m in model.modules())


@pytest.mark.parametrize("depth", [20, 56])
def test_depth_counts_weight_layers_and_blocks(depth):
    for model in (resnet1d(depth), plain1d(depth)):
        assert weight_layers(model) == depth == get_spec(f"resnet1d{depth}").depth
        assert len(model.named_blocks()) == 3 * (depth - 2) // 6


def test_plain_twin_has_the_same_parameters_and_no_shortcut():
    res, plain = resnet1d(20), plain1d(20)
    assert sum(p.numel() for p in res.parameters()) == sum(p.numel() for p in plain.parameters())
    # option A shortcuts add no parameters: every parameter sits in a convolution, a BN or the head
    assert not any(isinstance(m, nn.Conv1d) and m.kernel_size == (1,) for m in res.modules())
    assert {type(b.shortcut).__name__ for _, b in plain.named_blocks()} == {"NoShortcut"}
    assert {type(b.shortcut).__name__ for _, b in res.named_blocks()} == {"Identity", "ZeroPad1d"}


def test_zero_pad_shortcut_subsamples_and_pads_channels():
    x = torch.arange(2 * 4 * 6, dtype=torch.float32).view(2, 4, 6)
    y = ZeroPad1d(4, 8, 2)(x)
    assert y.shape == (2, 8, 3)
    torch.testing.assert_close(y[:, 2:6], x[:, :, ::2])
    assert y[:, :2].abs().sum() == 0 and y[:, 6:].abs().sum() == 0
    with pytest.raises(ValueError, match="only add channels"):
        ZeroPad1d(8, 4, 2)


def test_a_block_with_a_zeroed_branch_is_its_shortcut():
    block = BasicBlock1d(16, 32, stride=2).eval()
    block.zero_init_last()
    x = torch.randn(3, 16, 10).relu()
    torch.testing.assert_close(block(x), ZeroPad1d(16, 32, 2)(x))


def test_registered_widths_and_options():
    assert isinstance(create_model("resnet1d56w32"), ResNet1d)
    assert create_model("plain1d20w32").fc.in_features == 4 * 32
    m = create_model("resnet1d20", num_classes=3, in_channels=2)
    assert m(torch.randn(2, 2, 40)).shape == (2, 3)
    with pytest.raises(ValueError, match="6n\\+2"):
        resnet1d(21)
