"""Residual blocks: y = F(x) + shortcut(x).

- `BasicBlock`: two 3x3 convolutions (He et al. 2015, Fig. 2).
- `Bottleneck`: 1x1 reduce, 3x3, 1x1 expand by 4 (He et al. 2015, Fig. 5);
  the stride sits on the 3x3 as in torchvision ("ResNet v1.5").
- `PreActBasicBlock`, `PreActBottleneck`: BN and ReLU before each convolution,
  nothing after the addition, so the shortcut path is a pure identity
  (He et al. 2016, "Identity Mappings in Deep Residual Networks").
- `SEBasicBlock`: a basic block whose residual is recalibrated channel-wise by
  a squeeze-and-excitation gate (Hu et al. 2018).

Every block holds its residual branch as an ordered `nn.Sequential` called
`residual` (so probes can read the norm after every operation) and its
shortcut as an injected module called `shortcut`. `zero_init_last()` zeroes
the branch's last scale so that F(x) = 0 exactly and the block reduces to its
shortcut (Goyal et al. 2017; torchvision's `zero_init_residual`).
"""

from __future__ import annotations

from collections import OrderedDict

import torch
from torch import nn

from skiplab.nn.layers import make_activation
from skiplab.nn.shortcuts import stage_shortcut


def conv3x3(cin: int, cout: int, stride: int = 1) -> nn.Conv2d:
    return nn.Conv2d(cin, cout, 3, stride=stride, padding=1, bias=False)


def conv1x1(cin: int, cout: int, stride: int = 1) -> nn.Conv2d:
    return nn.Conv2d(cin, cout, 1, stride=stride, bias=False)


class ResidualBlock(nn.Module):
    """Base of all residual blocks: `out = self.residual(x) + self.shortcut(x)`, then `self.post`."""

    expansion = 1
    preact = False

    def __init__(self, residual: nn.Sequential, shortcut: nn.Module, post: nn.Module) -> None:
        super().__init__()
        self.residual = residual
        self.shortcut = shortcut
        self.post = post  # the activation after the addition (identity in pre-activation blocks)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        out = self.residual(x) + self.shortcut(x)
        return self.post(out)

    def last_scale(self) -> nn.Module:
        """The module whose weight, set to zero, makes the residual branch output exactly zero."""
        return [m for m in self.residual if isinstance(m, (nn.BatchNorm2d, nn.Conv2d, nn.BatchNorm1d, nn.Linear))][-1]

    @torch.no_grad()
    def zero_init_last(self) -> None:
        m = self.last_scale()
        m.weight.zero_()
        if getattr(m, "bias", None) is not None:
            m.bias.zero_()


class BasicBlock(ResidualBlock):
    def __init__(
        self, cin: int, cout: int, stride: int = 1, shortcut: str = "projection", activation: str = "relu"
    ) -> None:
        residual = nn.Sequential(
            OrderedDict(
                conv1=conv3x3(cin, cout, stride),
                bn1=nn.BatchNorm2d(cout),
                act1=make_activation(activation),
                conv2=conv3x3(cout, cout),
                bn2=nn.BatchNorm2d(cout),
            )
        )
        super().__init__(residual, stage_shortcut(shortcut, cin, cout, stride), make_activation(activation))


def bottleneck_branch(cin: int, width: int, cout: int, stride: int = 1, activation: str = "relu") -> nn.Sequential:
    """1x1 reduce, 3x3 (strided), 1x1 expand, each with BN: the residual branch of ResNet-50..152."""
    return nn.Sequential(
        OrderedDict(
            conv1=conv1x1(cin, width),
            bn1=nn.BatchNorm2d(width),
            act1=make_activation(activation),
            conv2=conv3x3(width, width, stride),
            bn2=nn.BatchNorm2d(width),
            act2=make_activation(activation),
            conv3=conv1x1(width, cout),
            bn3=nn.BatchNorm2d(cout),
        )
    )


class Bottleneck(ResidualBlock):
    expansion = 4

    def __init__(
        self, cin: int, width: int, stride: int = 1, shortcut: str = "projection", activation: str = "relu"
    ) -> None:
        cout = width * self.expansion
        residual = bottleneck_branch(cin, width, cout, stride, activation)
        super().__init__(residual, stage_shortcut(shortcut, cin, cout, stride), make_activation(activation))


class PreActBasicBlock(ResidualBlock):
    preact = True

    def __init__(
        self, cin: int, cout: int, stride: int = 1, shortcut: str = "projection", activation: str = "relu"
    ) -> None:
        residual = nn.Sequential(
            OrderedDict(
                bn1=nn.BatchNorm2d(cin),
                act1=make_activation(activation),
                conv1=conv3x3(cin, cout, stride),
                bn2=nn.BatchNorm2d(cout),
                act2=make_activation(activation),
                conv2=conv3x3(cout, cout),
            )
        )
        super().__init__(residual, stage_shortcut(shortcut, cin, cout, stride), nn.Identity())


class PreActBottleneck(ResidualBlock):
    expansion = 4
    preact = True

    def __init__(
        self, cin: int, width: int, stride: int = 1, shortcut: str = "projection", activation: str = "relu"
    ) -> None:
        cout = width * self.expansion
        residual = nn.Sequential(
            OrderedDict(
                bn1=nn.BatchNorm2d(cin),
                act1=make_activation(activation),
                conv1=conv1x1(cin, width),
                bn2=nn.BatchNorm2d(width),
                act2=make_activation(activation),
                conv2=conv3x3(width, width, stride),
                bn3=nn.BatchNorm2d(width),
                act3=make_activation(activation),
                conv3=conv1x1(width, cout),
            )
        )
        super().__init__(residual, stage_shortcut(shortcut, cin, cout, stride), nn.Identity())


class SqueezeExcite(nn.Module):
    """Channel gate s = sigmoid(W2 relu(W1 avgpool(x))), output x·s (Hu et al. 2018, reduction 16)."""

    def __init__(self, channels: int, reduction: int = 16) -> None:
        super().__init__()
        hidden = max(channels // reduction, 1)
        self.fc1 = nn.Conv2d(channels, hidden, 1)
        self.fc2 = nn.Conv2d(hidden, channels, 1)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        s = x.mean((2, 3), keepdim=True)
        s = torch.sigmoid(self.fc2(torch.relu(self.fc1(s))))
        return x * s


class SEBasicBlock(ResidualBlock):
    """A basic block whose residual is rescaled per channel before the addition."""

    def __init__(
        self,
        cin: int,
        cout: int,
        stride: int = 1,
        shortcut: str = "projection",
        activation: str = "relu",
        reduction: int = 16,
    ) -> None:
        residual = nn.Sequential(
            OrderedDict(
                conv1=conv3x3(cin, cout, stride),
                bn1=nn.BatchNorm2d(cout),
                act1=make_activation(activation),
                conv2=conv3x3(cout, cout),
                bn2=nn.BatchNorm2d(cout),
                se=SqueezeExcite(cout, reduction),
            )
        )
        super().__init__(residual, stage_shortcut(shortcut, cin, cout, stride), make_activation(activation))


class SEBottleneck(ResidualBlock):
    """SE-ResNet-50's block: a bottleneck with an SE gate on its expanded output."""

    expansion = 4

    def __init__(
        self,
        cin: int,
        width: int,
        stride: int = 1,
        shortcut: str = "projection",
        activation: str = "relu",
        reduction: int = 16,
    ) -> None:
        cout = width * self.expansion
        residual = bottleneck_branch(cin, width, cout, stride, activation)
        residual.add_module("se", SqueezeExcite(cout, reduction))
        super().__init__(residual, stage_shortcut(shortcut, cin, cout, stride), make_activation(activation))
