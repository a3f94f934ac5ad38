"""The network a run trains: a registered model, or a family name with any depth fitted to the data.

Names the trainer understands besides the registry's:

- `resconv{d}` / `plainconv{d}`: a BN conv stack of d layers (16 channels by
  default), residual or plain, shaped to the data's images;
- `{skip}conv{d}` for any skip type (`identityconv`, `projectionconv`,
  `denseconv`, `highwayconv`, `seconv`, `noneconv`): the skip-types zoo at
  equal depth and width;
- `resmlp{d}` / `plainmlp{d}`: the same as MLPs on flattened inputs;
- `resnet{d}` / `plain{d}`: He et al.'s CIFAR nets of depth 6n+2 (or their
  plain twins), with the data's channels and classes.
"""

from __future__ import annotations

import math
import re

from torch import nn

from skiplab.nn import SKIP_TYPES, StackConfig, build_stack, cifar_resnet, get_spec

_STACK = re.compile(r"^(res|plain|none|identity|projection|dense|highway|se)(conv|mlp)(\d+)$")
_CIFAR = re.compile(r"^(resnet|plain)(\d+)$")


def build_model(name: str, input_shape: tuple[int, ...], num_classes: int, width: int | None = None) -> nn.Module:
    """The model called `name` for inputs of `input_shape` and `num_classes` classes."""
    m = _STACK.match(name)
    if m:
        skip = {"res": "identity", "plain": "none"}.get(m.group(1), m.group(1))
        depth = int(m.group(3))
        if m.group(2) == "mlp":
            shape: tuple[int, ...] = (math.prod(input_shape),)
            w = width or 64
        else:
            if len(input_shape) != 3:
                raise ValueError(f"model {name!r} is a conv net and needs image data; this data has {input_shape}")
            shape, w = tuple(input_shape), width or 16
        return build_stack(StackConfig(depth=depth, width=w, skip=skip, in_shape=shape, num_classes=num_classes))
    m = _CIFAR.match(name)
    if m and len(input_shape) == 3:
        return cifar_resnet(
            int(m.group(2)),
            width or 16,
            in_channels=input_shape[0],
            num_classes=num_classes,
            plain=m.group(1) == "plain",
        )
    spec = get_spec(name)  # raises a ValueError naming the known models
    if tuple(spec.input_shape) != tuple(input_shape) or spec.num_classes != num_classes:
        raise ValueError(
            f"model {name!r} takes {spec.input_shape} inputs and {spec.num_classes} classes; the data has "
            f"{tuple(input_shape)} and {num_classes}. Use a family name sized to the data, e.g. resconv20, "
            f"plainconv56, resnet20, plain56, resmlp20 (skip types: {', '.join(SKIP_TYPES)})"
        )
    if width is not None:
        raise ValueError(f"width applies to family names (resconv20, resnet56, ...), not to registered {name!r}")
    return spec.create()
