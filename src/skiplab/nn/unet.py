"""A small U-Net (Ronneberger, Fischer and Brox 2015), with its long skips on or cut.

The encoder halves the resolution `levels` times (two 3x3 convolutions with
BatchNorm and ReLU, then 2x2 max-pooling), doubling the channels each time;
the decoder doubles it back with 2x2 up-convolutions. At every level the
decoder's two convolutions read the concatenation of the encoder's feature
map of that resolution — the long skip — and the up-convolved coarser map.
That concatenation is what carries fine spatial detail past the bottleneck,
where a 32x32 image is 4x4.

`long_skips=False` cuts every long skip: the decoder sees only what came up
through the bottleneck. So that the cut net is not smaller where it matters,
its up-convolutions produce the channels the skip would have filled, and the
decoder's convolutions are identical in both nets; the cut net then has a few
more parameters (`long_skip_param_difference` counts them), which favours it.
"""

from __future__ import annotations

from collections import OrderedDict

import torch
from torch import nn

from skiplab.nn.layers import positive


def double_conv(cin: int, cout: int) -> nn.Sequential:
    """Two 3x3 convolutions, each followed by BatchNorm and ReLU (the U-Net's unit at every level)."""
    return nn.Sequential(
        OrderedDict(
            conv1=nn.Conv2d(cin, cout, 3, padding=1, bias=False),
            bn1=nn.BatchNorm2d(cout),
            relu1=nn.ReLU(),
            conv2=nn.Conv2d(cout, cout, 3, padding=1, bias=False),
            bn2=nn.BatchNorm2d(cout),
            relu2=nn.ReLU(),
        )
    )


class LongSkip(nn.Module):
    """The encoder's feature map, passed across to the decoder as it is."""

    def forward(self, encoded: torch.Tensor) -> torch.Tensor:
        return encoded


class NoLongSkip(nn.Module):
    """A cut long skip: no channels reach the decoder from the encoder."""

    def forward(self, encoded: torch.Tensor) -> torch.Tensor:
        return encoded[:, :0]


def make_long_skip(on: bool) -> nn.Module:
    return LongSkip() if on else NoLongSkip()


class UNet(nn.Module):
    """Encoder, bottleneck and decoder of `levels` levels; widths width, 2·width, ...; one logit per pixel."""

    def __init__(
        self, in_channels: int = 1, out_channels: int = 1, width: int = 16, levels: int = 3, long_skips: bool = True
    ) -> None:
        super().__init__()
        positive("width", width)
        positive("levels", levels)
        positive("in_channels", in_channels)
        positive("out_channels", out_channels)
        self.long_skips = bool(long_skips)
        self.levels = levels
        widths = [width * 2**i for i in range(levels)]
        self.encoder = nn.ModuleList()
        cin = in_channels
        for w in widths:
            self.encoder.append(double_conv(cin, w))
            cin = w
        self.pool = nn.MaxPool2d(2)
        self.bottleneck = double_conv(cin, 2 * cin)
        self.up = nn.ModuleList()
        self.skip = nn.ModuleList()
        self.decoder = nn.ModuleList()
        for w in reversed(widths):
            # Without the skip, the up-convolution fills the skip's w channels itself: the decoder reads 2w either way.
            self.up.append(nn.ConvTranspose2d(2 * w, w if long_skips else 2 * w, 2, stride=2))
            self.skip.append(make_long_skip(long_skips))
            self.decoder.append(double_conv(2 * w, w))
        self.head = nn.Conv2d(width, out_channels, 1)
        for m in self.modules():  # Kaiming normal (fan-out) convolutions, unit BN, as the ResNets here
            if isinstance(m, (nn.Conv2d, nn.ConvTranspose2d)):
                nn.init.kaiming_normal_(m.weight, mode="fan_out", nonlinearity="relu")

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        if x.shape[-1] % 2**self.levels or x.shape[-2] % 2**self.levels:
            raise ValueError(f"image sides must be multiples of {2**self.levels} for {self.levels} levels")
        encoded = []
        for encode in self.encoder:
            x = encode(x)
            encoded.append(x)
            x = self.pool(x)
        x = self.bottleneck(x)
        for up, long_skip, decode, e in zip(self.up, self.skip, self.decoder, reversed(encoded)):
            x = decode(torch.cat([long_skip(e), up(x)], dim=1))
        return self.head(x)


def count_params(model: nn.Module) -> int:
    return sum(p.numel() for p in model.parameters())


def long_skip_param_difference(width: int = 16, levels: int = 3) -> int:
    """Parameters the U-Net without long skips has beyond the one with them (its wider up-convolutions)."""
    return count_params(UNet(width=width, levels=levels, long_skips=False)) - count_params(
        UNet(width=width, levels=levels, long_skips=True)
    )
