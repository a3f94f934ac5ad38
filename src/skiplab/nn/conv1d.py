"""1-D versions of He et al. 2015's CIFAR ResNets and their plain twins, for signals such as MNIST-1D.

The same design as `cifar_resnet`, with every 3x3 convolution a kernel-3
1-D convolution: a stem convolution, three stages of n basic blocks of width
w, 2w, 4w (depth 6n+2), the first block of stages 2 and 3 halving the
length, option A shortcuts (subsample and zero-pad the new channels, no
parameters), BatchNorm after every convolution, global average pooling and
a linear head. The plain twin has the same layers and no shortcuts.

`variant` changes how the blocks that keep their shape combine x and F(x),
as in He et al. 2016 ("Identity Mappings in Deep Residual Networks",
Table 1, ResNet-110 on CIFAR-10): "identity" (y = F(x) + x), "scale"
(y = 0.5 F(x) + 0.5 x), "exclusive_gate" (y = g F(x) + (1 - g) x with
g = sigmoid(conv1x1(x) + b), b starting at -6), "shortcut_gate"
(y = F(x) + (1 - g) x), "conv1x1" (y = F(x) + conv1x1(x)) and "dropout"
(y = F(x) + dropout_0.5(x)). Blocks that change shape keep option A.
"""

from __future__ import annotations

from collections import OrderedDict

import torch
import torch.nn.functional as F
from torch import nn

from skiplab.nn.blocks import ResidualBlock
from skiplab.nn.layers import choice, positive
from skiplab.nn.models import SkipNet, cifar_blocks_per_stage
from skiplab.nn.shortcuts import Identity, NoShortcut


def conv3(cin: int, cout: int, stride: int = 1) -> nn.Conv1d:
    return nn.Conv1d(cin, cout, 3, stride=stride, padding=1, bias=False)


class ZeroPad1d(nn.Module):
    """Option A for signals: keep every `stride`-th position and zero-pad the new channels."""

    def __init__(self, in_channels: int, out_channels: int, stride: int) -> None:
        super().__init__()
        if out_channels < in_channels:
            raise ValueError(f"zeropad shortcut can only add channels ({in_channels} -> {out_channels})")
        self.stride = stride
        self.extra = out_channels - in_channels

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x = x[:, :, :: self.stride]
        front = self.extra // 2
        return F.pad(x, (0, 0, front, self.extra - front))


def shortcut1d(plain: bool, cin: int, cout: int, stride: int) -> nn.Module:
    if plain:
        return NoShortcut()
    return Identity() if cin == cout and stride == 1 else ZeroPad1d(cin, cout, stride)


class BasicBlock1d(ResidualBlock):
    """Two kernel-3 convolutions with BN, ReLU between and after the addition (He et al. 2015, Fig. 2)."""

    def __init__(self, cin: int, cout: int, stride: int = 1, plain: bool = False) -> None:
        residual = nn.Sequential(
            OrderedDict(
                conv1=conv3(cin, cout, stride),
                bn1=nn.BatchNorm1d(cout),
                act1=nn.ReLU(),
                conv2=conv3(cout, cout),
                bn2=nn.BatchNorm1d(cout),
            )
        )
        super().__init__(residual, shortcut1d(plain, cin, cout, stride), nn.ReLU())


SHORTCUT_VARIANTS: tuple[str, ...] = ("identity", "scale", "exclusive_gate", "shortcut_gate", "conv1x1", "dropout")
GATE_BIAS = -6.0  # He et al. 2016's best initial gate bias for both gated variants: the gate starts nearly shut


class VariantBlock1d(BasicBlock1d):
    """A shape-keeping basic block whose x and F(x) are combined as `variant` says (see the module's doc)."""

    def __init__(self, width: int, variant: str) -> None:
        choice("variant", variant, SHORTCUT_VARIANTS)
        super().__init__(width, width)
        self.variant = variant
        if variant in ("exclusive_gate", "shortcut_gate"):
            self.gate = nn.Conv1d(width, width, 1)
        elif variant == "conv1x1":
            self.shortcut = nn.Conv1d(width, width, 1, bias=False)
        elif variant == "dropout":
            self.shortcut = nn.Dropout(0.5)

    def reset_gate(self) -> None:
        if hasattr(self, "gate"):
            nn.init.constant_(self.gate.bias, GATE_BIAS)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        f, s = self.residual(x), self.shortcut(x)
        if self.variant == "scale":
            return self.post(0.5 * f + 0.5 * s)
        if self.variant == "exclusive_gate":
            g = torch.sigmoid(self.gate(x))
            return self.post(g * f + (1 - g) * s)
        if self.variant == "shortcut_gate":
            return self.post(f + (1 - torch.sigmoid(self.gate(x))) * s)
        return self.post(f + s)


class ResNet1d(SkipNet):
    """The CIFAR ResNet of depth 6n+2 (or its plain twin) on (channels, length) signals."""

    def __init__(
        self,
        depth: int = 20,
        width: int = 16,
        in_channels: int = 1,
        num_classes: int = 10,
        plain: bool = False,
        variant: str = "identity",
    ) -> None:
        super().__init__()
        positive("width", width)
        choice("variant", variant, SHORTCUT_VARIANTS)
        n = cifar_blocks_per_stage(depth)
        self.conv1 = conv3(in_channels, width)
        self.bn1 = nn.BatchNorm1d(width)
        self.relu = nn.ReLU()
        cin = width
        self.stages: list[str] = []
        for i, w in enumerate((width, 2 * width, 4 * width)):
            blocks = []
            for j in range(n):
                stride = 2 if (i > 0 and j == 0) else 1
                if variant != "identity" and not plain and cin == w and stride == 1:
                    blocks.append(VariantBlock1d(w, variant))
                else:
                    blocks.append(BasicBlock1d(cin, w, stride, plain))
                cin = w
            self.add_module(f"layer{i + 1}", nn.Sequential(*blocks))
            self.stages.append(f"layer{i + 1}")
        self.fc = nn.Linear(cin, num_classes)
        self.num_features = cin
        for m in self.modules():  # as `ResNet`: Kaiming normal (fan-out) convolutions, unit BN
            if isinstance(m, nn.Conv1d):
                nn.init.kaiming_normal_(m.weight, mode="fan_out", nonlinearity="relu")
            elif isinstance(m, nn.BatchNorm1d):
                nn.init.ones_(m.weight)
                nn.init.zeros_(m.bias)
            elif isinstance(m, VariantBlock1d):
                m.reset_gate()

    def forward_stem(self, x: torch.Tensor) -> torch.Tensor:
        return self.relu(self.bn1(self.conv1(x)))

    def forward_head(self, x: torch.Tensor) -> torch.Tensor:
        return self.fc(x.mean(2))

    def named_blocks(self) -> list[tuple[str, nn.Module]]:
        return [(f"{s}.{j}", b) for s in self.stages for j, b in enumerate(getattr(self, s))]


def resnet1d(depth: int = 20, width: int = 16, in_channels: int = 1, num_classes: int = 10) -> ResNet1d:
    return ResNet1d(depth, width, in_channels, num_classes)


def variant1d(
    variant: str, depth: int = 20, width: int = 16, in_channels: int = 1, num_classes: int = 10
) -> ResNet1d:
    """The 1-D ResNet with He et al. 2016's shortcut `variant` on every block that keeps its shape."""
    return ResNet1d(depth, width, in_channels, num_classes, variant=variant)


def plain1d(depth: int = 20, width: int = 16, in_channels: int = 1, num_classes: int = 10) -> ResNet1d:
    return ResNet1d(depth, width, in_channels, num_classes, plain=True)
