"""Shortcut modules: the `x` in y = F(x) + x.

He et al. 2015 ("Deep Residual Learning for Image Recognition", sec. 3.3)
compare three ways to carry x across a block whose output shape differs from
its input: (A) an identity that subsamples and zero-pads new channels, adding
no parameters; (B) a projection Ws·x (1x1 convolution + BN) where shapes
change; (C) projections everywhere. Pooling on the skip path is a fourth,
parameter-free fix: average each stride x stride window instead of keeping
one pixel of it, then zero-pad the new channels. A plain network is the same
block with no shortcut at all. Each is a module chosen by `make_shortcut`, so a block's
`forward` is always `residual(x) + shortcut(x)` with no branching.
"""

from __future__ import annotations

from typing import Literal

import torch
import torch.nn.functional as F
from torch import nn

ShortcutKind = Literal["identity", "zeropad", "projection", "none", "pool"]
SHORTCUT_KINDS: tuple[str, ...] = ("identity", "zeropad", "projection", "none", "pool")


class ShapeMismatchError(ValueError):
    """An identity shortcut was asked to cross a change of shape."""


class Identity(nn.Identity):
    """y = F(x) + x: the shortcut carries x unchanged (no parameters)."""


class NoShortcut(nn.Module):
    """A plain network: the shortcut carries nothing, y = F(x) + 0."""

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return torch.zeros((), dtype=x.dtype, device=x.device)


class ZeroPad(nn.Module):
    """Option A: subsample by `stride` and zero-pad the new channels.

    Parameter-free, as used for the CIFAR-10 networks of He et al. 2015.
    """

    kind = "zeropad"

    def __init__(self, in_channels: int, out_channels: int, stride: int) -> None:
        super().__init__()
        if out_channels < in_channels:
            raise ValueError(
                f"{self.kind} shortcut can only add channels ({in_channels} -> {out_channels}); "
                "use a projection shortcut"
            )
        self.stride = stride
        self.extra = out_channels - in_channels

    def subsample(self, x: torch.Tensor) -> torch.Tensor:
        return x[:, :, :: self.stride, :: self.stride]

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x = self.subsample(x)
        front = self.extra // 2
        return F.pad(x, (0, 0, 0, 0, front, self.extra - front))


class PoolPad(ZeroPad):
    """Pooling on the skip path: average each stride x stride window, then zero-pad the new channels.

    Parameter-free like option A, but every input pixel reaches the output (option A keeps one in stride²).
    The window is ceil-sized, so the output matches a stride-`stride` 3x3 convolution with padding 1.
    """

    kind = "pool"

    def subsample(self, x: torch.Tensor) -> torch.Tensor:
        if self.stride == 1:
            return x
        return F.avg_pool2d(x, self.stride, self.stride, ceil_mode=True, count_include_pad=False)


class Projection(nn.Sequential):
    """Option B: Ws·x, a strided 1x1 convolution followed by BatchNorm.

    Indexed 0 (conv) and 1 (bn), the layout torchvision calls `downsample`.
    """

    def __init__(self, in_channels: int, out_channels: int, stride: int) -> None:
        super().__init__(
            nn.Conv2d(in_channels, out_channels, 1, stride=stride, bias=False),
            nn.BatchNorm2d(out_channels),
        )


class LinearProjection(nn.Linear):
    """Ws·x for vectors: a bias-free linear map between widths."""

    def __init__(self, in_features: int, out_features: int) -> None:
        super().__init__(in_features, out_features, bias=False)


def _check_identity(in_size: int, out_size: int, stride: int) -> None:
    if in_size != out_size or stride != 1:
        change = f"{in_size} -> {out_size} channels" + (f", stride {stride}" if stride != 1 else "")
        raise ShapeMismatchError(
            f"an identity shortcut cannot cross a change of shape ({change}): "
            "F(x) and x must have the same shape to be added. Use a projection "
            "shortcut (shortcut='projection', y = F(x) + Ws·x) or, for convolutions, "
            "a zero-padding one (shortcut='zeropad') or pooling on the skip path (shortcut='pool')."
        )


def make_shortcut(kind: str, in_channels: int, out_channels: int, stride: int = 1) -> nn.Module:
    """The shortcut of a convolutional block, by kind.

    `identity` is only allowed where the shape is preserved; `zeropad` is the
    identity there; `projection` is always a 1x1 convolution (option C when the
    shape is preserved). Network builders use `stage_shortcut` for options A/B.
    """
    if kind not in SHORTCUT_KINDS:
        raise ValueError(f"unknown shortcut {kind!r}; choose one of {', '.join(SHORTCUT_KINDS)}")
    if kind == "none":
        return NoShortcut()
    same = in_channels == out_channels and stride == 1
    if kind == "identity":
        _check_identity(in_channels, out_channels, stride)
        return Identity()
    if kind == "zeropad":
        return Identity() if same else ZeroPad(in_channels, out_channels, stride)
    if kind == "pool":
        return Identity() if same else PoolPad(in_channels, out_channels, stride)
    return Projection(in_channels, out_channels, stride)


def stage_shortcut(kind: str, in_channels: int, out_channels: int, stride: int = 1) -> nn.Module:
    """He et al.'s options A and B: identity where the shape is kept, `kind` where it changes."""
    same = in_channels == out_channels and stride == 1
    return make_shortcut("identity" if same and kind != "none" else kind, in_channels, out_channels, stride)


def make_linear_shortcut(kind: str, in_features: int, out_features: int) -> nn.Module:
    """The shortcut of a fully connected block, by kind ('zeropad' is not defined here)."""
    allowed = ("identity", "projection", "none")
    if kind not in allowed:
        raise ValueError(f"unknown linear shortcut {kind!r}; choose one of {', '.join(allowed)}")
    if kind == "none":
        return NoShortcut()
    if kind == "identity":
        _check_identity(in_features, out_features, 1)
        return Identity()
    return LinearProjection(in_features, out_features)
