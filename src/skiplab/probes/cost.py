"""What a network costs: parameters, FLOPs and the activation memory kept for backward.

FLOPs come from `torch.utils.flop_counter.FlopCounterMode`, which counts the
multiply-adds of matmuls and convolutions as 2 FLOPs each (elementwise ops are
not counted). Activation memory is measured, not estimated: every tensor that
autograd saves for the backward pass during one training-mode forward is seen
through `torch.autograd.graph.saved_tensors_hooks` and its storage counted
once. Parameters (which autograd also saves) are excluded.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass

import torch
from torch import nn
from torch.utils.flop_counter import FlopCounterMode


@dataclass(frozen=True)
class Cost:
    params: int
    flops_per_example: int  # forward pass, 2 per multiply-add
    activation_bytes_per_example: int  # saved for backward, training mode, float32
    input_shape: tuple[int, ...]

    def to_dict(self) -> dict:
        return asdict(self)


def count_params(model: nn.Module) -> int:
    return sum(p.numel() for p in model.parameters())


def _storage_key(t: torch.Tensor) -> tuple[int, int]:
    s = t.untyped_storage()
    return s.data_ptr(), s.nbytes()


def saved_activation_bytes(model: nn.Module, x: torch.Tensor) -> int:
    """Bytes of the distinct tensors autograd saves for backward in one forward of `x` (parameters excluded)."""
    params = {_storage_key(p) for p in model.parameters()}
    seen: dict[tuple[int, int], int] = {}

    def pack(t: torch.Tensor) -> torch.Tensor:
        key = _storage_key(t)
        if key not in params and key[0] != 0:
            seen[key] = key[1]
        return t

    with torch.autograd.graph.saved_tensors_hooks(pack, lambda t: t):
        model(x)
    return sum(seen.values())


def forward_flops(model: nn.Module, x: torch.Tensor) -> int:
    with torch.no_grad(), FlopCounterMode(display=False) as counter:
        model(x)
    return counter.get_total_flops()


def measure_cost(model: nn.Module, input_shape: tuple[int, ...], batch: int = 2) -> Cost:
    """Cost of one example, measured on a batch of `batch` (BatchNorm needs more than one in training mode)."""
    was_training = model.training
    x = torch.randn(batch, *input_shape)
    try:
        model.eval()
        flops = forward_flops(model, x)
        model.train()
        act = saved_activation_bytes(model, x.requires_grad_(False))
    finally:
        model.train(was_training)
    return Cost(count_params(model), flops // batch, act // batch, tuple(input_shape))
