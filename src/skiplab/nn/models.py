"""Network builders. Depth is data: a family is a block type plus blocks per stage.

- `ResNet`: CIFAR nets of depth 6n+2 (He et al. 2015, sec. 4.2: three stages
  of 16/32/64 channels, n basic blocks each, option A shortcuts), the plain
  nets of the same depth, pre-activation ResNets (He et al. 2016) and the
  ImageNet ResNet-18..152 in torchvision's layout (its checkpoints load).
- `DenseNet`: DenseNet-BC for CIFAR (Huang et al. 2017).

The constant-width stacks of the probes and the highway network are in
`skiplab.nn.stacks`.

Every model is a `SkipNet`: `named_blocks()` lists its blocks in forward
order, and `forward_intermediates(x)` returns the logits and the output of
every block, so probes read them without monkeypatching.
"""

from __future__ import annotations

import re

import torch
from torch import nn

from skiplab.nn.blocks import (
    BasicBlock,
    Bottleneck,
    PreActBasicBlock,
    PreActBottleneck,
    ResidualBlock,
    SEBasicBlock,
    SEBottleneck,
    conv3x3,
)
from skiplab.nn.layers import choice, make_activation, positive
from skiplab.nn.other_skips import DenseLayer, Transition

SKIP_TYPES: tuple[str, ...] = ("none", "identity", "projection", "dense", "highway", "se")


class SkipNet(nn.Module):
    """A network seen as stem → blocks → head."""

    def forward_stem(self, x: torch.Tensor) -> torch.Tensor:
        raise NotImplementedError

    def forward_head(self, x: torch.Tensor) -> torch.Tensor:
        raise NotImplementedError

    def named_blocks(self) -> list[tuple[str, nn.Module]]:
        """(qualified name, block) for every block, in forward order."""
        raise NotImplementedError

    def forward_features(self, x: torch.Tensor) -> torch.Tensor:
        x = self.forward_stem(x)
        for _, block in self.named_blocks():
            x = block(x)
        return x

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.forward_head(self.forward_features(x))

    def forward_intermediates(self, x: torch.Tensor) -> tuple[torch.Tensor, list[torch.Tensor]]:
        """The logits and the output of every block, in forward order."""
        x = self.forward_stem(x)
        outs = []
        for _, block in self.named_blocks():
            x = block(x)
            outs.append(x)
        return self.forward_head(x), outs

    def zero_init_residuals(self) -> None:
        """Make every residual branch output zero at init, so each block starts as its shortcut."""
        for _, block in self.named_blocks():
            if isinstance(block, ResidualBlock):
                block.zero_init_last()


# ---------------------------------------------------------------- ResNet

_TORCHVISION_FROM = (re.compile(r"(layer\d+\.\d+)\.residual\."), re.compile(r"(layer\d+\.\d+)\.shortcut\."))
_TORCHVISION_TO = (
    re.compile(r"(layer\d+\.\d+)\.downsample\."),
    re.compile(r"(layer\d+\.\d+)\.(?!residual\.|shortcut\.)"),
)


def to_torchvision_key(key: str) -> str:
    """layer1.0.residual.conv1.weight → layer1.0.conv1.weight; .shortcut. → .downsample."""
    key = _TORCHVISION_FROM[0].sub(r"\1.", key)
    return _TORCHVISION_FROM[1].sub(r"\1.downsample.", key)


def from_torchvision_key(key: str) -> str:
    key = _TORCHVISION_TO[0].sub(r"\1.shortcut.", key)
    return _TORCHVISION_TO[1].sub(r"\1.residual.", key)


def _save_torchvision_layout(module, state_dict, prefix, local_metadata) -> None:
    for key in [k for k in state_dict if k.startswith(prefix)]:
        state_dict[prefix + to_torchvision_key(key[len(prefix) :])] = state_dict.pop(key)


def _load_torchvision_layout(module, state_dict, prefix, *args) -> None:
    for key in [k for k in state_dict if k.startswith(prefix)]:
        state_dict[prefix + from_torchvision_key(key[len(prefix) :])] = state_dict.pop(key)


class ResNet(SkipNet):
    """Stages of residual (or plain) blocks between a stem and a pooled linear head.

    Attribute names follow torchvision (conv1, bn1, layer1.., fc) and the
    state dict is written and read in torchvision's key layout (block
    `residual.` dropped, `shortcut.` called `downsample.`), so a torchvision
    ResNet checkpoint loads with `load_state_dict(strict=True)`.
    """

    def __init__(
        self,
        block: type[ResidualBlock],
        layers: list[int],
        widths: list[int],
        *,
        stem: str = "cifar",
        in_channels: int = 3,
        num_classes: int = 10,
        shortcut: str = "zeropad",
        activation: str = "relu",
        zero_init: bool = False,
    ) -> None:
        super().__init__()
        choice("stem", stem, ("cifar", "imagenet"))
        if len(layers) != len(widths):
            raise ValueError("layers and widths must have one entry per stage")
        stem_width = widths[0] if stem == "cifar" else 64
        if stem == "cifar":
            self.conv1 = conv3x3(in_channels, stem_width)
            self.maxpool = nn.Identity()
        else:
            self.conv1 = nn.Conv2d(in_channels, stem_width, 7, stride=2, padding=3, bias=False)
            self.maxpool = nn.MaxPool2d(3, stride=2, padding=1)
        # A pre-activation net normalises inside its first block, so its stem is the convolution alone.
        self.bn1 = nn.Identity() if block.preact else nn.BatchNorm2d(stem_width)
        self.relu = nn.Identity() if block.preact else make_activation(activation)
        cin = stem_width
        self.stages: list[str] = []
        for i, (n, width) in enumerate(zip(layers, widths)):
            blocks = []
            for j in range(n):
                stride = 2 if (i > 0 and j == 0) else 1
                blocks.append(block(cin, width, stride, shortcut, activation))
                cin = width * block.expansion
            self.add_module(f"layer{i + 1}", nn.Sequential(*blocks))
            self.stages.append(f"layer{i + 1}")
        # Pre-activation nets end with the BN-ReLU their last block left out (He et al. 2016).
        self.final_norm = (
            nn.Sequential(nn.BatchNorm2d(cin), make_activation(activation)) if block.preact else nn.Identity()
        )
        self.avgpool = nn.AdaptiveAvgPool2d(1)
        self.fc = nn.Linear(cin, num_classes)
        self.num_features = cin
        self._init(zero_init)
        self.register_state_dict_post_hook(_save_torchvision_layout)
        self.register_load_state_dict_pre_hook(_load_torchvision_layout)

    def _init(self, zero_init: bool) -> None:
        # torchvision's initialisation: Kaiming normal (fan-out) convolutions, unit BN.
        for m in self.modules():
            if isinstance(m, nn.Conv2d):
                nn.init.kaiming_normal_(m.weight, mode="fan_out", nonlinearity="relu")
            elif isinstance(m, nn.BatchNorm2d):
                nn.init.ones_(m.weight)
                nn.init.zeros_(m.bias)
        if zero_init:
            self.zero_init_residuals()

    def forward_stem(self, x: torch.Tensor) -> torch.Tensor:
        return self.maxpool(self.relu(self.bn1(self.conv1(x))))

    def forward_features(self, x: torch.Tensor) -> torch.Tensor:
        x = self.forward_stem(x)
        for name in self.stages:
            x = getattr(self, name)(x)
        return x

    def forward_head(self, x: torch.Tensor) -> torch.Tensor:
        return self.fc(torch.flatten(self.avgpool(self.final_norm(x)), 1))

    def named_blocks(self) -> list[tuple[str, nn.Module]]:
        return [(f"{s}.{j}", b) for s in self.stages for j, b in enumerate(getattr(self, s))]


def cifar_blocks_per_stage(depth: int, per_block: int = 2) -> int:
    """n for a CIFAR net of depth 6n+2 (basic blocks) or 9n+2 (bottlenecks)."""
    step = 3 * per_block
    if not isinstance(depth, int) or depth < step + 2 or (depth - 2) % step:
        allowed = ", ".join(str(step * n + 2) for n in range(1, 6))
        raise ValueError(f"depth must be {step}n+2 for a CIFAR net ({allowed}, ...); got {depth!r}")
    return (depth - 2) // step


def cifar_resnet(
    depth: int = 20,
    width: int = 16,
    in_channels: int = 3,
    num_classes: int = 10,
    shortcut: str = "zeropad",
    plain: bool = False,
    activation: str = "relu",
    zero_init: bool = False,
) -> ResNet:
    """He et al. 2015's CIFAR ResNet (or its plain twin): 6n+2 layers, stages of width, 2·width, 4·width."""
    positive("width", width)
    n = cifar_blocks_per_stage(depth)
    return ResNet(
        BasicBlock,
        [n] * 3,
        [width, 2 * width, 4 * width],
        in_channels=in_channels,
        num_classes=num_classes,
        shortcut="none" if plain else shortcut,
        activation=activation,
        zero_init=zero_init,
    )


def preact_resnet(depth: int = 110, in_channels: int = 3, num_classes: int = 10) -> ResNet:
    """He et al. 2016's pre-activation CIFAR ResNets: basic blocks for 110, bottlenecks for 164 and 1001."""
    if depth in (164, 1001):
        n, block = cifar_blocks_per_stage(depth, per_block=3), PreActBottleneck
    else:
        n, block = cifar_blocks_per_stage(depth), PreActBasicBlock
    widths = [16, 32, 64]
    return ResNet(block, [n] * 3, widths, in_channels=in_channels, num_classes=num_classes, shortcut="projection")


IMAGENET_LAYERS: dict[int, tuple[type[ResidualBlock], list[int]]] = {
    18: (BasicBlock, [2, 2, 2, 2]),
    34: (BasicBlock, [3, 4, 6, 3]),
    50: (Bottleneck, [3, 4, 6, 3]),
    101: (Bottleneck, [3, 4, 23, 3]),
    152: (Bottleneck, [3, 8, 36, 3]),
}


def imagenet_resnet(depth: int = 50, num_classes: int = 1000, se: bool = False, zero_init: bool = False) -> ResNet:
    """ResNet-18..152 exactly as torchvision builds them (projection shortcuts, stride on the 3x3)."""
    if depth not in IMAGENET_LAYERS:
        raise ValueError(f"depth must be one of {', '.join(map(str, IMAGENET_LAYERS))}; got {depth!r}")
    block, layers = IMAGENET_LAYERS[depth]
    if se:
        block = SEBottleneck if block is Bottleneck else SEBasicBlock
    return ResNet(
        block, layers, [64, 128, 256, 512], stem="imagenet", num_classes=num_classes, shortcut="projection",
        zero_init=zero_init,
    )  # fmt: skip


def se_cifar_resnet(depth: int = 20, num_classes: int = 10, in_channels: int = 3) -> ResNet:
    """A CIFAR ResNet whose basic blocks carry a squeeze-and-excitation gate (reduction 16)."""
    n = cifar_blocks_per_stage(depth)
    return ResNet(SEBasicBlock, [n] * 3, [16, 32, 64], in_channels=in_channels, num_classes=num_classes)


# ---------------------------------------------------------------- DenseNet


class DenseNet(SkipNet):
    """DenseNet-BC: dense blocks of bottleneck layers with compression-0.5 transitions between them.

    `DenseNet(depth, growth)` is the CIFAR network (three blocks of (depth-4)/6 layers, a 3x3 stem of
    2·growth channels); `blocks=(6, 12, 24, 16), stem="imagenet", growth=32` is DenseNet-121 (a 7x7 stride-2
    stem of 64 channels and a max pool, as torchvision builds it).
    """

    def __init__(
        self,
        depth: int = 100,
        growth: int = 12,
        in_channels: int = 3,
        num_classes: int = 10,
        *,
        blocks: tuple[int, ...] | None = None,
        stem: str = "cifar",
    ) -> None:
        super().__init__()
        choice("stem", stem, ("cifar", "imagenet"))
        if blocks is None:
            if (depth - 4) % 6 or depth < 10:
                raise ValueError(f"depth must be 6n+4 for DenseNet-BC (40, 100, 190, ...); got {depth!r}")
            blocks = (((depth - 4) // 6),) * 3
        cin = 2 * growth
        if stem == "cifar":
            self.conv1: nn.Module = conv3x3(in_channels, cin)
        else:
            self.conv1 = nn.Sequential(
                nn.Conv2d(in_channels, cin, 7, stride=2, padding=3, bias=False),
                nn.BatchNorm2d(cin),
                nn.ReLU(),
                nn.MaxPool2d(3, stride=2, padding=1),
            )
        body: list[nn.Module] = []
        for stage, n in enumerate(blocks):
            for _ in range(n):
                layer = DenseLayer(cin, growth)
                body.append(layer)
                cin = layer.out_channels
            if stage < len(blocks) - 1:
                body.append(Transition(cin, cin // 2))
                cin //= 2
        self.body = nn.Sequential(*body)
        self.final_norm = nn.Sequential(nn.BatchNorm2d(cin), nn.ReLU())
        self.fc = nn.Linear(cin, num_classes)

    def forward_stem(self, x: torch.Tensor) -> torch.Tensor:
        return self.conv1(x)

    def forward_features(self, x: torch.Tensor) -> torch.Tensor:
        return self.body(self.conv1(x))

    def forward_head(self, x: torch.Tensor) -> torch.Tensor:
        return self.fc(self.final_norm(x).mean((2, 3)))

    def named_blocks(self) -> list[tuple[str, nn.Module]]:
        return [(f"body.{n}", m) for n, m in self.body.named_children()]
