"""The model registry: every named model, so the CLI, the web and the tests list the same ones.

`create_model(name, **options)` builds one; the options are its family's
(`ModelSpec.options`): `num_classes` for all, `in_channels` for image models,
`in_features` for vector models.
"""

from __future__ import annotations

import difflib
from collections.abc import Callable
from dataclasses import dataclass, field, replace
from functools import partial

from torch import nn

from skiplab.nn.blocks import Bottleneck, SEBasicBlock, SEBottleneck
from skiplab.nn.conv1d import SHORTCUT_VARIANTS, plain1d, resnet1d, variant1d
from skiplab.nn.models import (
    IMAGENET_LAYERS,
    DenseNet,
    ResNet,
    cifar_resnet,
    preact_resnet,
    se_cifar_resnet,
)
from skiplab.nn.stacks import HighwayNet, StackConfig, build_stack

IMAGE_OPTIONS: tuple[str, ...] = ("num_classes", "in_channels")
VECTOR_OPTIONS: tuple[str, ...] = ("num_classes", "in_features")


@dataclass(frozen=True)
class ModelSpec:
    name: str
    family: str
    depth: int  # weight layers on the longest path, as the papers count them
    input_shape: tuple[int, ...]  # one example, without the batch dimension
    num_classes: int
    description: str
    build: Callable[..., nn.Module] = field(repr=False, compare=False)  # takes `options` as keywords
    test_shape: tuple[int, ...] | None = None  # a smaller input that exercises the same code (fully convolutional nets)
    options: tuple[str, ...] = IMAGE_OPTIONS  # what `create` accepts

    def create(self, **options: int) -> nn.Module:
        """The model, with `options` (num_classes, in_channels or in_features: positive integers) changed."""
        unknown = sorted(set(options) - set(self.options))
        if unknown:
            raise ValueError(
                f"model {self.name!r} takes the options {', '.join(self.options)}; got {', '.join(unknown)}"
            )
        for key, value in options.items():
            if isinstance(value, bool) or not isinstance(value, int) or value < 1:
                raise ValueError(f"{key} must be a positive integer; got {value!r}")
        return self.build(**options)

    def shape(self, **options: int) -> tuple[int, ...]:
        """One example's input shape for the model `create(**options)` builds."""
        shape = self.test_shape or self.input_shape
        if "in_channels" in options:
            return (options["in_channels"], *shape[1:])
        if "in_features" in options:
            return (options["in_features"],)
        return shape


class UnknownModelError(ValueError):
    pass


_REGISTRY: dict[str, ModelSpec] = {}


def register(spec: ModelSpec) -> ModelSpec:
    if spec.name in _REGISTRY:
        raise ValueError(f"model {spec.name!r} is registered twice")
    _REGISTRY[spec.name] = spec
    return spec


def list_models(family: str | None = None) -> list[ModelSpec]:
    return [s for s in _REGISTRY.values() if family is None or s.family == family]


def get_spec(name: str) -> ModelSpec:
    try:
        return _REGISTRY[name]
    except KeyError:
        close = difflib.get_close_matches(name, _REGISTRY, n=3)
        hint = f" Did you mean {', '.join(close)}?" if close else ""
        raise UnknownModelError(f"unknown model {name!r}.{hint} Known models: {', '.join(_REGISTRY)}") from None


def create_model(name: str, **options: int) -> nn.Module:
    """The registered model `name`, built with its family's options (`get_spec(name).options`).

    create_model("resnet20", num_classes=100, in_channels=1) is a CIFAR
    ResNet-20 for 100 classes of one-channel images.
    """
    return get_spec(name).create(**options)


def _imagenet(depth: int, se: bool = False, num_classes: int = 1000, in_channels: int = 3) -> ResNet:
    """`imagenet_resnet(depth, num_classes, se)`, with `in_channels` channels into the stem."""
    block, layers = IMAGENET_LAYERS[depth]
    if se:
        block = SEBottleneck if block is Bottleneck else SEBasicBlock
    return ResNet(
        block, layers, [64, 128, 256, 512], stem="imagenet", in_channels=in_channels, num_classes=num_classes,
        shortcut="projection",
    )  # fmt: skip


def _stack(cfg: StackConfig, num_classes: int | None = None, in_features: int | None = None, in_channels=None):
    changes: dict = {}
    if num_classes is not None:
        changes["num_classes"] = num_classes
    if in_features is not None:
        changes["in_shape"] = (in_features,)
    if in_channels is not None:
        changes["in_shape"] = (in_channels, *cfg.in_shape[1:])
    return build_stack(replace(cfg, **changes))


CIFAR = (3, 32, 32)
DIGITS = (1, 8, 8)
MNIST1D = (1, 40)

for d in (20, 32, 44, 56, 110, 1202):
    register(
        ModelSpec(
            f"resnet{d}",
            "cifar-resnet",
            d,
            CIFAR,
            10,
            f"CIFAR ResNet-{d} (He et al. 2015), option A shortcuts",
            partial(cifar_resnet, d),
        )
    )
for d in (20, 56):
    register(
        ModelSpec(
            f"resnet{d}_pool",
            "cifar-resnet",
            d,
            CIFAR,
            10,
            f"CIFAR ResNet-{d} with pooling on the skip path where shapes change (2x2 average, zero-padded channels)",
            partial(cifar_resnet, d, shortcut="pool"),
        )
    )
for d in (20, 32, 44, 56, 110):
    register(
        ModelSpec(
            f"plain{d}",
            "cifar-plain",
            d,
            CIFAR,
            10,
            f"the plain twin of ResNet-{d}: same layers, no shortcuts",
            partial(cifar_resnet, d, plain=True),
        )
    )
for d in (110, 164, 1001):
    register(
        ModelSpec(
            f"preact_resnet{d}",
            "cifar-preact",
            d,
            CIFAR,
            10,
            f"pre-activation ResNet-{d} (He et al. 2016)",
            partial(preact_resnet, d),
        )
    )
for d in (18, 34, 50, 101, 152):
    register(
        ModelSpec(
            f"resnet{d}",
            "imagenet-resnet",
            d,
            (3, 224, 224),
            1000,
            f"ImageNet ResNet-{d} in torchvision's layout",
            partial(_imagenet, d),
            (3, 64, 64),
        )
    )
register(
    ModelSpec(
        "se_resnet50",
        "imagenet-se",
        50,
        (3, 224, 224),
        1000,
        "SE-ResNet-50 (Hu et al. 2018)",
        partial(_imagenet, 50, se=True),
        (3, 64, 64),
    )
)
for d in (20, 56):
    register(
        ModelSpec(
            f"se_resnet{d}",
            "cifar-se",
            d,
            CIFAR,
            10,
            f"CIFAR ResNet-{d} with squeeze-and-excitation blocks",
            partial(se_cifar_resnet, d),
        )
    )
register(
    ModelSpec(
        "densenet121",
        "densenet",
        121,
        (3, 224, 224),
        1000,
        "DenseNet-121, k=32 (Huang et al. 2017), the ImageNet network: dense blocks of 6, 12, 24, 16 layers",
        partial(DenseNet, 121, 32, num_classes=1000, blocks=(6, 12, 24, 16), stem="imagenet"),
    )
)
register(
    ModelSpec(
        "densenet_bc100",
        "densenet",
        100,
        CIFAR,
        10,
        "DenseNet-BC, L=100, k=12 (Huang et al. 2017)",
        partial(DenseNet, 100, 12),
    )
)
for d in (10, 50):
    register(
        ModelSpec(
            f"highway{d}",
            "highway",
            d + 2,
            (64,),
            10,
            f"fully connected highway net, {d} gated layers of width 64 (Srivastava et al. 2015)",
            partial(HighwayNet, d),
            options=VECTOR_OPTIONS,
        )
    )
for skip, tag in (("identity", "res"), ("none", "plain")):
    for d in (20, 56):
        register(
            ModelSpec(
                f"{tag}mlp{d}",
                "mlp-stack",
                d + 2,
                (64,),
                10,
                f"{'residual' if tag == 'res' else 'plain'} BN MLP, {d} layers of width 64, on digits",
                partial(_stack, StackConfig(depth=d, skip=skip)),
                options=VECTOR_OPTIONS,
            )
        )
        register(
            ModelSpec(
                f"{tag}conv{d}",
                "conv-stack",
                d + 2,
                DIGITS,
                10,
                f"{'residual' if tag == 'res' else 'plain'} BN conv stack, {d} layers of 16 channels, on digits",
                partial(_stack, StackConfig(depth=d, width=16, skip=skip, in_shape=DIGITS)),
            )
        )
for d in (20, 56):
    for width in (16, 32):
        suffix = "" if width == 16 else f"w{width}"
        register(
            ModelSpec(
                f"resnet1d{d}{suffix}",
                "mnist1d-resnet",
                d,
                MNIST1D,
                10,
                f"1-D CIFAR ResNet-{d} (kernel-3 convolutions, option A shortcuts, BN), width {width}, on MNIST-1D",
                partial(resnet1d, d, width),
            )
        )
        register(
            ModelSpec(
                f"plain1d{d}{suffix}",
                "mnist1d-plain",
                d,
                MNIST1D,
                10,
                f"the plain twin of the 1-D ResNet-{d}, width {width}: same layers, no shortcuts",
                partial(plain1d, d, width),
            )
        )
for d in (20, 56):
    for variant in SHORTCUT_VARIANTS[1:]:
        register(
            ModelSpec(
                f"resnet1d{d}_{variant}",
                "mnist1d-shortcut-variant",
                d,
                MNIST1D,
                10,
                f"1-D ResNet-{d}, width 16, with He et al. 2016's '{variant}' shortcut on every shape-keeping block",
                partial(variant1d, variant, d, 16),
            )
        )
