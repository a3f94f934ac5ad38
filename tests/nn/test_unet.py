"""The U-Net: shapes, the long skips really carry the encoder's maps, and the stated parameter difference."""

import pytest
import torch

from skiplab.nn.unet import LongSkip, NoLongSkip, UNet, count_params, long_skip_param_difference


@pytest.mark.parametrize("long_skips", [True, False])
def test_forward_backward_shape(long_skips):
    model = UNet(width=4, levels=3, long_skips=long_skips)
    out = model(torch.randn(2, 1, 32, 32))
    assert out.shape == (2, 1, 32, 32)
    out.square().mean().backward()
    assert all(p.grad is not None and torch.isfinite(p.grad).all() for p in model.parameters())
    assert sum(isinstance(m, LongSkip if long_skips else NoLongSkip) for m in model.modules()) == 3


def test_the_decoder_reads_the_same_number_of_channels_either_way():
    with_, without = UNet(width=4, long_skips=True), UNet(width=4, long_skips=False)
    for a, b in zip(with_.decoder, without.decoder):
        assert a.conv1.weight.shape == b.conv1.weight.shape


def test_parameter_difference_is_the_wider_up_convolutions():
    w, levels = 8, 3
    diff = long_skip_param_difference(w, levels)
    # By hand: at a level of c channels the up-convolution (2x2) maps 2c to 2c instead of c: 2c*c*4 weights
    # and c biases more.
    assert diff == sum(2 * c * c * 4 + c for c in (8, 16, 32))
    assert count_params(UNet(width=w, long_skips=False)) - count_params(UNet(width=w)) == diff


@pytest.mark.parametrize("long_skips", [True, False])
def test_the_decoder_reads_the_encoder_map_only_through_a_long_skip(long_skips):
    """What the last decoder level reads: the full-resolution encoder map and the up-convolved coarse map
    (with long skips), or the up-convolved map alone (without)."""
    model = UNet(width=4, levels=3, long_skips=long_skips).eval()
    seen = {}
    model.encoder[0].register_forward_hook(lambda m, i, o: seen.__setitem__("encoded", o))
    model.up[-1].register_forward_hook(lambda m, i, o: seen.__setitem__("up", o))
    model.decoder[-1].register_forward_hook(lambda m, i, o: seen.__setitem__("read", i[0]))
    model(torch.randn(2, 1, 32, 32))
    expected = torch.cat([seen["encoded"], seen["up"]], 1) if long_skips else seen["up"]
    assert torch.equal(seen["read"], expected)


def test_sides_must_fit_the_levels():
    with pytest.raises(ValueError, match="multiples of 8"):
        UNet(width=2)(torch.randn(1, 1, 20, 20))
    with pytest.raises(ValueError, match="width"):
        UNet(width=0)
