"""skiplab.nn: shortcuts, blocks, model builders and the registry (imports torch only)."""

from skiplab.nn.blocks import (
    BasicBlock,
    Bottleneck,
    PreActBasicBlock,
    PreActBottleneck,
    ResidualBlock,
    SEBasicBlock,
    SEBottleneck,
    SqueezeExcite,
)
from skiplab.nn.conv1d import SHORTCUT_VARIANTS, BasicBlock1d, ResNet1d, ZeroPad1d, plain1d, resnet1d, variant1d
from skiplab.nn.models import (
    SKIP_TYPES,
    DenseNet,
    ResNet,
    SkipNet,
    cifar_resnet,
    imagenet_resnet,
    preact_resnet,
    se_cifar_resnet,
)
from skiplab.nn.other_skips import DenseLayer, HighwayConv, HighwayLayer, MLPBlock, Transition
from skiplab.nn.registry import ModelSpec, UnknownModelError, create_model, get_spec, list_models
from skiplab.nn.shortcuts import (
    SHORTCUT_KINDS,
    Identity,
    NoShortcut,
    Projection,
    ShapeMismatchError,
    ZeroPad,
    make_linear_shortcut,
    make_shortcut,
)
from skiplab.nn.stacks import ConvStack, HighwayNet, MLPStack, StackConfig, build_stack

__all__ = [name for name in dir() if not name.startswith("_")]
