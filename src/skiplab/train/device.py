"""Where and in what precision a run trains: the device, channels-last, bfloat16 autocast."""

from __future__ import annotations

import contextlib
from collections.abc import Callable

import torch

from skiplab.train.config import TrainConfig


def resolve_device(name: str) -> torch.device:
    if name == "cuda" and not torch.cuda.is_available():
        raise ValueError("device cuda was asked for, but torch sees no CUDA device; use --device cpu or auto")
    if name == "auto":
        return torch.device("cuda" if torch.cuda.is_available() else "cpu")
    return torch.device(name)


def use_channels_last(cfg: TrainConfig, device: torch.device, input_shape: tuple[int, ...]) -> bool:
    """NHWC for conv nets on CUDA, and on the CPU for images of 16x16 and up.

    Measured on the 2-core development CPU (bench/bench_train.py): channels-last trains CIFAR ResNet-20/56
    faster than NCHW, but slowed the 8x8 digits conv stacks (resconv8: 45 ms vs 31 ms a step).
    """
    if not cfg.channels_last or len(input_shape) != 3:
        return False
    return device.type == "cuda" or min(input_shape[1:]) >= 16


def cpu_has_native_bf16() -> bool:
    """Whether this CPU computes bfloat16 natively (AVX512-BF16 or AMX), as oneDNN reports it."""
    return bool(torch.backends.mkldnn.is_available() and torch.ops.mkldnn._is_mkldnn_bf16_supported())


def autocast_for(cfg: TrainConfig, device: torch.device) -> Callable[[], contextlib.AbstractContextManager]:
    """The mixed-precision context of a training step: bfloat16 on CUDA (amp) or on the CPU (cpu_bf16), or none.

    bfloat16 keeps float32's range, so no loss scaling is needed; weights,
    optimizer state and BatchNorm statistics stay float32. On a CPU without
    native bfloat16 the conversions would make it slower than float32, so
    cpu_bf16 is refused there.
    """
    if device.type == "cuda" and cfg.amp:
        return lambda: torch.autocast("cuda", dtype=torch.bfloat16)
    if device.type == "cpu" and cfg.cpu_bf16:
        if not cpu_has_native_bf16():
            raise ValueError("cpu_bf16: this CPU has no native bfloat16 (AVX512-BF16 or AMX); train in float32")
        return lambda: torch.autocast("cpu", dtype=torch.bfloat16)
    return contextlib.nullcontext
