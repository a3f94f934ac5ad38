"""Price a request before running it: parameters, FLOPs and activation memory of a stack.

A server that builds networks on request must refuse the ones it cannot
afford before it allocates them. The price of a `StackConfig` at any depth and
batch is found from tiny builds (depths 1, 2 and 3, batches 2 and 3, real
tensors): the cost of a stack is an exact quadratic in its depth — linear for
stacks of identical blocks, quadratic for dense stacks, whose every layer is
wider than the one before — and activation memory is linear in the batch
(BatchNorm keeps a few per-channel statistics whatever the batch), so these
measurements fix it. Nothing of the requested size is ever allocated.
"""

from __future__ import annotations

import functools
from dataclasses import asdict, dataclass, replace

import torch

from skiplab.nn import StackConfig, build_stack
from skiplab.probes.cost import count_params, forward_flops, saved_activation_bytes

# Backward costs about twice the forward (a gradient for the input and one for the weights).
FORWARD_BACKWARD = 3


@dataclass(frozen=True)
class Price:
    params: int
    flops: int  # forward + backward for the whole batch
    activation_bytes: int  # kept for backward, whole batch
    weight_bytes: int  # float32 weights and their gradients

    def to_dict(self) -> dict:
        return asdict(self)


@dataclass(frozen=True)
class Budget:
    max_params: int = 20_000_000  # 80 MB of float32 weights
    max_flops: int = 20_000_000_000  # ~0.2 s of one core at 100 GFLOP/s
    max_activation_bytes: int = 512 * 2**20

    def to_dict(self) -> dict:
        return asdict(self)


class OverBudget(ValueError):
    """A request whose price exceeds the budget; the message says what to lower."""


def _quadratic(f1: int, f2: int, f3: int, d: int) -> int:
    """Value at d of the quadratic through (1, f1), (2, f2), (3, f3): Newton's forward differences."""
    d1, d2 = f2 - f1, f3 - 2 * f2 + f1
    return f1 + (d - 1) * d1 + (d - 1) * (d - 2) // 2 * d2


@functools.lru_cache(maxsize=256)
def _small_builds(cfg: StackConfig) -> tuple[list[int], list[int], list[int], list[int]]:
    """Params, FLOPs per example, and activation bytes at batches 2 and 3, of `cfg` at depths 1, 2 and 3.

    Remembered per configuration (depth aside): pricing the same stack at another depth or batch is free.
    """
    params, flops, act2, act3 = [], [], [], []
    for depth in (1, 2, 3):
        model = build_stack(replace(cfg, depth=depth))
        params.append(count_params(model))
        x2, x3 = torch.randn(2, *cfg.in_shape), torch.randn(3, *cfg.in_shape)
        flops.append(forward_flops(model.eval(), x2) // 2)
        model.train()
        act2.append(saved_activation_bytes(model, x2))
        act3.append(saved_activation_bytes(model, x3))
    return params, flops, act2, act3


def price_stack(cfg: StackConfig, batch: int) -> Price:
    """Parameters, FLOPs and activation bytes of `build_stack(cfg)` on a batch, without building it."""
    if batch < 1:
        raise ValueError(f"batch must be >= 1; got {batch}")
    params, flops, act2, act3 = _small_builds(replace(cfg, depth=1))
    n = cfg.depth
    per_example = _quadratic(*act3, n) - _quadratic(*act2, n)
    fixed = _quadratic(*act2, n) - 2 * per_example
    total_params = _quadratic(*params, n)
    return Price(
        params=total_params,
        flops=FORWARD_BACKWARD * batch * _quadratic(*flops, n),
        activation_bytes=fixed + batch * per_example,
        weight_bytes=2 * 4 * total_params,
    )


def _human(n: float, unit: str) -> str:
    for prefix, scale in (("G", 1e9), ("M", 1e6), ("k", 1e3)):
        if n >= scale:
            return f"{n / scale:.1f} {prefix}{unit}"
    return f"{n:.0f} {unit}"


def check_budget(price: Price, budget: Budget, lower: str = "depth, width or batch") -> Price:
    """Return `price` if it fits, else raise OverBudget naming what is over and what to lower."""
    over = []
    if price.params > budget.max_params:
        over.append(f"{_human(price.params, '')} parameters (budget {_human(budget.max_params, '')})")
    if price.flops > budget.max_flops:
        over.append(f"{_human(price.flops, 'FLOP')} (budget {_human(budget.max_flops, 'FLOP')})")
    if price.activation_bytes > budget.max_activation_bytes:
        over.append(
            f"{_human(price.activation_bytes, 'B')} of activations (budget {_human(budget.max_activation_bytes, 'B')})"
        )
    if over:
        raise OverBudget(f"request too large: {'; '.join(over)}. Lower {lower}.")
    return price
