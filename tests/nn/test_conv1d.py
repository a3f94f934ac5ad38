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


def test_shortcut_variants_combine_x_and_fx_as_he_et_al_2016_table_1():
    import torch

    from skiplab.nn.conv1d import GATE_BIAS, VariantBlock1d

    torch.manual_seed(0)
    x = torch.randn(4, 8, 12)
    variants = ("scale", "exclusive_gate", "shortcut_gate", "conv1x1", "dropout")
    blocks = {v: VariantBlock1d(8, v).eval() for v in variants}
    for b in blocks.values():
        b.reset_gate()
    f = {v: b.residual(x) for v, b in blocks.items()}
    relu = torch.relu
    assert torch.allclose(blocks["scale"](x), relu(0.5 * f["scale"] + 0.5 * x))
    g = torch.sigmoid(blocks["exclusive_gate"].gate(x))
    assert torch.allclose(blocks["exclusive_gate"](x), relu(g * f["exclusive_gate"] + (1 - g) * x))
    assert blocks["exclusive_gate"].gate.bias.eq(GATE_BIAS).all() and g.mean() < 0.05  # starts nearly shut
    g = torch.sigmoid(blocks["shortcut_gate"].gate(x))
    assert torch.allclose(blocks["shortcut_gate"](x), relu(f["shortcut_gate"] + (1 - g) * x))
    conv = blocks["conv1x1"].shortcut
    assert torch.allclose(blocks["conv1x1"](x), relu(f["conv1x1"] + conv(x)))
    assert torch.allclose(blocks["dropout"](x), relu(f["dropout"] + x))  # eval: dropout passes x
    blocks["dropout"].train()
    torch.manual_seed(1)
    kept = blocks["dropout"].shortcut(x)
    assert 0.3 < (kept == 0).float().mean() < 0.7  # training: about half the shortcut is dropped


def test_the_identity_variant_is_the_plain_resnet1d_and_the_others_change_only_shape_keeping_blocks():
    import torch

    from skiplab.nn import create_model
    from skiplab.nn.conv1d import VariantBlock1d

    torch.manual_seed(0)
    a = create_model("resnet1d20")
    torch.manual_seed(0)
    b = create_model("resnet1d20_scale")
    assert all(torch.equal(p, q) for p, q in zip(a.state_dict().values(), b.state_dict().values()))
    blocks = [blk for _, blk in create_model("resnet1d56_shortcut_gate").named_blocks()]
    assert sum(isinstance(blk, VariantBlock1d) for blk in blocks) == 27 - 2  # all but the two downsampling blocks
