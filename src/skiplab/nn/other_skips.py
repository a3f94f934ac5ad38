"""The other skip connections of the explainer: highway, dense, fully connected residual.

- `HighwayLayer`, `HighwayConv`: y = T(x)·H(x) + (1 − T(x))·x, a learned gate
  between the transform and the carried input (Srivastava et al. 2015). The
  gate bias starts negative (default −2), so at initialisation the layer mostly
  carries x — the paper's recipe for training deep highway networks.
- `DenseLayer`, `Transition`: DenseNet-BC (Huang et al. 2017). Each layer
  concatenates its k new feature maps to everything before it, so the input
  width grows linearly with depth; transitions compress by 0.5 and halve the
  resolution.
- `MLPBlock`: the fully connected residual block used by the probes, in
  post-activation (act after the add) or pre-activation (norm, act, linear)
  form.
"""

from __future__ import annotations

from collections import OrderedDict

import torch
from torch import nn

from skiplab.nn.blocks import ResidualBlock, conv1x1, conv3x3
from skiplab.nn.layers import make_activation, make_norm
from skiplab.nn.shortcuts import make_linear_shortcut


class MLPBlock(ResidualBlock):
    """`layers` fully connected layers of constant width with a shortcut around them."""

    def __init__(
        self,
        width: int,
        layers: int = 2,
        shortcut: str = "identity",
        activation: str = "relu",
        norm: str = "batch",
        preact: bool = False,
    ) -> None:
        ops: list[tuple[str, nn.Module]] = []
        for i in range(1, layers + 1):
            if preact:
                ops += [(f"norm{i}", make_norm(norm, width, 1)), (f"act{i}", make_activation(activation))]
                ops += [(f"fc{i}", nn.Linear(width, width))]
            else:
                ops += [(f"fc{i}", nn.Linear(width, width)), (f"norm{i}", make_norm(norm, width, 1))]
                if i < layers:
                    ops += [(f"act{i}", make_activation(activation))]
        post = nn.Identity() if preact else make_activation(activation)
        super().__init__(nn.Sequential(OrderedDict(ops)), make_linear_shortcut(shortcut, width, width), post)
        self.preact = preact


GATE_BIAS = -2.0  # transform gates start mostly shut (sigmoid(-2) = 0.12): each layer first carries x


def reset_gate(gate: nn.Module, bias: float) -> None:
    """Set a highway gate's bias; called again after a whole-network initialisation zeroes every bias."""
    nn.init.constant_(gate.bias, bias)


class HighwayLayer(nn.Module):
    """y = T(x)·H(x) + (1 − T(x))·x with H = act(norm(W_H x + b_H)) and T = sigmoid(W_T x + b_T)."""

    def __init__(self, width: int, activation: str = "relu", norm: str = "none", gate_bias: float = GATE_BIAS) -> None:
        super().__init__()
        self.transform = nn.Sequential(
            OrderedDict(fc=nn.Linear(width, width), norm=make_norm(norm, width, 1), act=make_activation(activation))
        )
        self.gate = nn.Linear(width, width)
        self.gate_bias = gate_bias
        reset_gate(self.gate, gate_bias)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        t = torch.sigmoid(self.gate(x))
        return t * self.transform(x) + (1 - t) * x  # (1 − T)·x is the carry: the skip


class HighwayConv(nn.Module):
    """The convolutional highway layer: H and T are 3x3 convolutions of the same width."""

    def __init__(
        self, channels: int, activation: str = "relu", norm: str = "batch", gate_bias: float = GATE_BIAS
    ) -> None:
        super().__init__()
        self.transform = nn.Sequential(
            OrderedDict(
                conv=conv3x3(channels, channels), norm=make_norm(norm, channels, 2), act=make_activation(activation)
            )
        )
        self.gate = nn.Conv2d(channels, channels, 3, padding=1)
        self.gate_bias = gate_bias
        reset_gate(self.gate, gate_bias)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        t = torch.sigmoid(self.gate(x))
        return t * self.transform(x) + (1 - t) * x


class DenseLayer(nn.Module):
    """out = concat(x, H(x)): H is BN-ReLU-Conv1x1(4k)-BN-ReLU-Conv3x3(k), or without the 1x1 when not BC."""

    def __init__(
        self, cin: int, growth: int, bottleneck: bool = True, activation: str = "relu", norm: str = "batch"
    ) -> None:
        super().__init__()
        ops: list[tuple[str, nn.Module]] = []
        width = cin
        if bottleneck:
            ops += [("norm1", make_norm(norm, cin, 2)), ("act1", make_activation(activation))]
            ops += [("conv1", conv1x1(cin, 4 * growth))]
            width = 4 * growth
        ops += [("norm2", make_norm(norm, width, 2)), ("act2", make_activation(activation))]
        ops += [("conv2", conv3x3(width, growth))]
        self.residual = nn.Sequential(OrderedDict(ops))
        self.out_channels = cin + growth

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return torch.cat([x, self.residual(x)], 1)  # the dense skip: x is passed on whole


class Transition(nn.Sequential):
    """BN-ReLU-Conv1x1 compressing channels, then 2x2 average pooling."""

    def __init__(self, cin: int, cout: int) -> None:
        super().__init__(
            OrderedDict(norm=nn.BatchNorm2d(cin), act=nn.ReLU(), conv=conv1x1(cin, cout), pool=nn.AvgPool2d(2))
        )
