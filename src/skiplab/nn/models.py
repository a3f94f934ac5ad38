"""Network builders. Depth is data: a family is a block type plus blocks per stage.

- `ResNet`: CIFAR nets of depth 6n+2 (He et al. 2015, sec. 4.2: three stages
  of 16/32/64 channels, n basic blocks each, option A shortcuts), the plain
  nets of the same depth, pre-activation ResNets (He et al. 2016) and the
  ImageNet ResNet-18..152 in torchvision's layout (its checkpoints load).
- `DenseNet`: DenseNet-BC for CIFAR (Huang et al. 2017).
- `HighwayNet`: a fully connected highway network (Srivastava et al. 2015).
- `MLPStack`, `ConvStack`: constant-width stacks with any skip type,
  activation, normalisation, initialisation and block form, for the probes and
  the digits experiments.

Every model is a `SkipNet`: `named_blocks()` lists its blocks in forward
order, and `forward_intermediates(x)` returns the logits and the output of
every block, so probes read them without monkeypatching.
"""

from __future__ import annotations

import re
from collections import OrderedDict
from dataclasses import dataclass

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
    SqueezeExcite,
    conv3x3,
)
from skiplab.nn.layers import ACTIVATIONS, INITS, NORMS, choice, init_weights, make_activation, make_norm, positive
from skiplab.nn.other_skips import DenseLayer, HighwayConv, HighwayLayer, MLPBlock, Transition, reset_gate
from skiplab.nn.shortcuts import make_shortcut

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
        "cifar",
        in_channels,
        num_classes,
        "none" if plain else shortcut,
        activation,
        zero_init,
    )


def preact_resnet(depth: int = 110, in_channels: int = 3, num_classes: int = 10) -> ResNet:
    """He et al. 2016's pre-activation CIFAR ResNets: basic blocks for 110, bottlenecks for 164 and 1001."""
    if depth in (164, 1001):
        n = cifar_blocks_per_stage(depth, per_block=3)
        return ResNet(PreActBottleneck, [n] * 3, [16, 32, 64], "cifar", in_channels, num_classes, "projection")
    n = cifar_blocks_per_stage(depth)
    return ResNet(PreActBasicBlock, [n] * 3, [16, 32, 64], "cifar", in_channels, num_classes, "projection")


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
    return ResNet(block, layers, [64, 128, 256, 512], "imagenet", 3, num_classes, "projection", "relu", zero_init)


def se_cifar_resnet(depth: int = 20, num_classes: int = 10, in_channels: int = 3) -> ResNet:
    """A CIFAR ResNet whose basic blocks carry a squeeze-and-excitation gate (reduction 16)."""
    n = cifar_blocks_per_stage(depth)
    return ResNet(SEBasicBlock, [n] * 3, [16, 32, 64], "cifar", in_channels, num_classes, "zeropad")


# ---------------------------------------------------------------- DenseNet


class DenseNet(SkipNet):
    """DenseNet-BC for CIFAR: three dense blocks of bottleneck layers, compression 0.5."""

    def __init__(self, depth: int = 100, growth: int = 12, in_channels: int = 3, num_classes: int = 10) -> None:
        super().__init__()
        if (depth - 4) % 6 or depth < 10:
            raise ValueError(f"depth must be 6n+4 for DenseNet-BC (40, 100, 190, ...); got {depth!r}")
        n = (depth - 4) // 6
        cin = 2 * growth
        self.conv1 = conv3x3(in_channels, cin)
        body: list[nn.Module] = []
        for stage in range(3):
            for _ in range(n):
                layer = DenseLayer(cin, growth)
                body.append(layer)
                cin = layer.out_channels
            if stage < 2:
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


# ---------------------------------------------------------------- stacks


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
