"""Constant-width stacks with any skip type: the playground of the probes and the digits experiments.

`StackConfig` says what to build (depth, width, skip, activation, norm,
initialisation, block form, input shape); `build_stack` builds an `MLPStack`
for vector inputs and a `ConvStack` for images. `HighwayNet` is the fully
connected highway network of Srivastava et al. 2015.
"""

from __future__ import annotations

from collections import OrderedDict
from dataclasses import dataclass

import torch
from torch import nn

from skiplab.nn.blocks import ResidualBlock, SqueezeExcite, conv3x3
from skiplab.nn.layers import ACTIVATIONS, INITS, NORMS, choice, init_weights, make_activation, make_norm, positive
from skiplab.nn.models import SKIP_TYPES, SkipNet
from skiplab.nn.other_skips import DenseLayer, HighwayConv, HighwayLayer, MLPBlock, reset_gate
from skiplab.nn.shortcuts import make_shortcut


@dataclass(frozen=True, kw_only=True)
class StackConfig:
    """A constant-width stack: the playground of the probes and the digits experiments. Checked when made."""

    depth: int = 20  # weight layers in the body (one per block)
    width: int = 64  # features (MLP) or channels (conv) of every body layer
    skip: str = "identity"  # none | identity | projection | dense | highway | se
    activation: str = "relu"  # relu | tanh | sigmoid
    norm: str = "batch"  # none | batch
    init: str = "he"  # he (Kaiming) | xavier (Glorot) | default (PyTorch's)
    preact: bool = False  # norm-act-weight inside the branch, nothing after the add
    in_shape: tuple[int, ...] = (64,)  # (features,) builds an MLP; (channels, height, width) a conv stack
    num_classes: int = 10

    def __post_init__(self) -> None:
        self.validate()

    def validate(self) -> StackConfig:
        positive("depth", self.depth)
        positive("width", self.width)
        positive("num_classes", self.num_classes)
        choice("skip", self.skip, SKIP_TYPES)
        choice("activation", self.activation, tuple(ACTIVATIONS))
        choice("norm", self.norm, NORMS)
        choice("init", self.init, INITS)
        if len(self.in_shape) not in (1, 3) or any(not isinstance(d, int) or d < 1 for d in self.in_shape):
            raise ValueError(f"in_shape must be (features,) or (channels, height, width); got {self.in_shape!r}")
        if len(self.in_shape) == 1 and self.skip in ("dense", "se"):
            raise ValueError(f"skip {self.skip!r} needs a conv stack: give in_shape as (channels, height, width)")
        return self


class _Stack(SkipNet):
    """stem → constant-width blocks → (final norm) → pooled linear head; MLP and conv stacks differ in parts only."""

    def __init__(self, cfg: StackConfig, stem: nn.Module, blocks: list[nn.Module], final_norm: nn.Module, out: int):
        super().__init__()
        self.cfg = cfg
        self.stem = stem
        self.body = nn.Sequential(*blocks)
        self.final_norm = final_norm
        self.fc = nn.Linear(out, cfg.num_classes)
        init_weights(self, cfg.init, cfg.activation)
        for block in blocks:  # init_weights zeroed every bias, the highway gates' too
            if isinstance(block, (HighwayLayer, HighwayConv)):
                reset_gate(block.gate, block.gate_bias)

    def forward_stem(self, x: torch.Tensor) -> torch.Tensor:
        return self.stem(x)

    def forward_features(self, x: torch.Tensor) -> torch.Tensor:
        return self.body(self.stem(x))

    def forward_head(self, x: torch.Tensor) -> torch.Tensor:
        x = self.final_norm(x)
        return self.fc(x.mean((2, 3)) if x.dim() == 4 else x)

    def named_blocks(self) -> list[tuple[str, nn.Module]]:
        return [(f"body.{n}", m) for n, m in self.body.named_children()]


class MLPStack(_Stack):
    def __init__(self, cfg: StackConfig) -> None:
        w = cfg.width
        stem = nn.Sequential(nn.Flatten(), nn.Linear(cfg.in_shape[0], w), make_activation(cfg.activation))
        if cfg.skip == "highway":
            blocks: list[nn.Module] = [HighwayLayer(w, cfg.activation, cfg.norm) for _ in range(cfg.depth)]
        else:
            blocks = [MLPBlock(w, 1, cfg.skip, cfg.activation, cfg.norm, cfg.preact) for _ in range(cfg.depth)]
        final_norm = make_norm(cfg.norm, w, 1) if cfg.preact else nn.Identity()
        super().__init__(cfg, stem, blocks, final_norm, w)


class ConvStack(_Stack):
    def __init__(self, cfg: StackConfig) -> None:
        c = cfg.width
        stem = nn.Sequential(conv3x3(cfg.in_shape[0], c), make_norm(cfg.norm, c, 2), make_activation(cfg.activation))
        blocks: list[nn.Module] = []
        for _ in range(cfg.depth):
            if cfg.skip == "highway":
                blocks.append(HighwayConv(c, cfg.activation, cfg.norm))
            elif cfg.skip == "dense":
                # k = width new maps per layer, no bottleneck: the input grows by `width` every layer.
                layer = DenseLayer(c, cfg.width, bottleneck=False, activation=cfg.activation, norm=cfg.norm)
                blocks.append(layer)
                c = layer.out_channels
            else:
                blocks.append(_conv_block(cfg))
        final_norm = make_norm(cfg.norm, c, 2) if cfg.preact else nn.Identity()
        super().__init__(cfg, stem, blocks, final_norm, c)


def _conv_block(cfg: StackConfig) -> ResidualBlock:
    """One conv layer with its shortcut, as a residual block of a single 3x3 convolution."""
    c = cfg.width
    if cfg.preact:
        ops = [
            ("norm1", make_norm(cfg.norm, c, 2)),
            ("act1", make_activation(cfg.activation)),
            ("conv1", conv3x3(c, c)),
        ]
    else:
        ops = [("conv1", conv3x3(c, c)), ("norm1", make_norm(cfg.norm, c, 2))]
    if cfg.skip == "se":
        ops.append(("se", SqueezeExcite(c, reduction=4)))
    shortcut = make_shortcut("identity" if cfg.skip == "se" else cfg.skip, c, c)
    post = nn.Identity() if cfg.preact else make_activation(cfg.activation)
    return ResidualBlock(nn.Sequential(OrderedDict(ops)), shortcut, post)


def build_stack(cfg: StackConfig) -> SkipNet:
    """An `MLPStack` for vector inputs, a `ConvStack` for images."""
    return MLPStack(cfg) if len(cfg.in_shape) == 1 else ConvStack(cfg)


class HighwayNet(MLPStack):
    """A fully connected highway network of `depth` gated layers (Srivastava et al. 2015)."""

    def __init__(self, depth: int = 20, width: int = 64, in_features: int = 64, num_classes: int = 10) -> None:
        super().__init__(
            StackConfig(
                depth=depth, width=width, skip="highway", norm="none", in_shape=(in_features,), num_classes=num_classes
            )
        )
