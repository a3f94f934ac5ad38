import pytest
import torch
from torch import nn

from skiplab.nn import (
    SHORTCUT_KINDS,
    BasicBlock,
    Bottleneck,
    MLPBlock,
    NoShortcut,
    PreActBasicBlock,
    PreActBottleneck,
    SEBasicBlock,
    SEBottleneck,
    ShapeMismatchError,
    StackConfig,
    build_stack,
    cifar_resnet,
    make_linear_shortcut,
    make_shortcut,
)

CONV_BLOCKS = [
    (BasicBlock, 16, 16, 1),
    (BasicBlock, 16, 32, 2),
    (Bottleneck, 64, 16, 1),
    (Bottleneck, 64, 32, 2),
    (PreActBasicBlock, 16, 32, 2),
    (PreActBottleneck, 64, 16, 1),
    (SEBasicBlock, 32, 32, 1),
    (SEBottleneck, 64, 32, 2),
]


@pytest.mark.parametrize("cls,cin,width,stride", CONV_BLOCKS, ids=lambda v: getattr(v, "__name__", str(v)))
def test_zero_init_block_is_its_shortcut(cls, cin, width, stride):
    block = cls(cin, width, stride, "projection")
    block.zero_init_last()
    x = torch.randn(4, cin, 8, 8)
    assert torch.count_nonzero(block.residual(x)) == 0
    expected = block.post(block.shortcut(x))  # the shortcut, then the final activation (post-activation blocks)
    assert torch.equal(block(x), expected)


@pytest.mark.parametrize("preact", [False, True])
@pytest.mark.parametrize("norm", ["none", "batch"])
def test_zero_init_mlp_block_is_its_shortcut(preact, norm):
    block = MLPBlock(8, layers=2, norm=norm, preact=preact)
    block.zero_init_last()
    x = torch.randn(5, 8)
    assert torch.equal(block(x), block.post(x))


def test_identity_across_shape_change_says_use_a_projection():
    with pytest.raises(ShapeMismatchError, match="projection"):
        make_shortcut("identity", 16, 32, 2)
    with pytest.raises(ShapeMismatchError, match="projection"):
        make_linear_shortcut("identity", 8, 16)
    assert isinstance(make_shortcut("identity", 16, 16, 1), nn.Identity)


def test_unknown_shortcut_names_the_choices():
    with pytest.raises(ValueError, match="identity, zeropad, projection, none"):
        make_shortcut("skip", 4, 4)


def test_option_a_subsamples_and_pads_with_zeros():
    sc = make_shortcut("zeropad", 16, 32, 2)
    x = torch.randn(2, 16, 8, 8)
    y = sc(x)
    assert y.shape == (2, 32, 4, 4)
    assert sum(p.numel() for p in sc.parameters()) == 0
    torch.testing.assert_close(y[:, 8:24], x[:, :, ::2, ::2])
    assert torch.count_nonzero(y[:, :8]) == 0 and torch.count_nonzero(y[:, 24:]) == 0


def test_option_b_is_a_1x1_projection():
    sc = make_shortcut("projection", 16, 32, 2)
    assert [type(m) for m in sc] == [nn.Conv2d, nn.BatchNorm2d]
    assert sc[0].kernel_size == (1, 1) and sc[0].stride == (2, 2)


def test_plain_block_has_no_shortcut():
    net = cifar_resnet(20, plain=True)
    blocks = [b for _, b in net.named_blocks()]
    assert all(isinstance(b.shortcut, NoShortcut) for b in blocks)
    assert set(SHORTCUT_KINDS) == {"identity", "zeropad", "projection", "none", "pool"}


def test_highway_gate_starts_closed():
    net = build_stack(StackConfig(depth=3, width=8, skip="highway", in_shape=(8,)))
    for _, layer in net.named_blocks():
        assert torch.all(layer.gate.bias == -2.0)


def test_dense_stack_grows_its_channels():
    net = build_stack(StackConfig(depth=4, width=8, skip="dense", in_shape=(1, 8, 8)))
    assert net.fc.in_features == 8 * 5  # stem width + 4 layers of 8 new maps
    assert net(torch.randn(2, 1, 8, 8)).shape == (2, 10)


@pytest.mark.parametrize(
    "bad,match",
    [
        (dict(depth=0), "depth"),
        (dict(width=0), "width"),
        (dict(skip="wormhole"), "skip must be one of"),
        (dict(activation="gelu"), "activation must be one of relu, tanh, sigmoid"),
        (dict(norm="layer"), "norm"),
        (dict(init="orthogonal"), "init"),
        (dict(skip="se"), "conv stack"),
    ],
)
def test_bad_stack_options_name_the_option(bad, match):
    with pytest.raises(ValueError, match=match):
        build_stack(StackConfig(**bad))


@pytest.mark.parametrize("depth", [21, 0, 5, 57])
def test_cifar_depth_must_be_6n_plus_2(depth):
    with pytest.raises(ValueError, match=r"6n\+2"):
        cifar_resnet(depth)
