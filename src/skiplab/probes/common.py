"""Helpers every probe shares: option checks, a seeded scope, thread and denormal settings.

The two runtime settings are process-wide in PyTorch, so each is changed only
inside a `with` block and the previous value is restored on the way out.
"""

from __future__ import annotations

import math
from collections.abc import Iterator
from contextlib import contextmanager

import torch

from skiplab.nn.layers import choice

__all__ = ["check_int", "check_float", "choice", "seeded", "threads", "flush_denormals", "finite", "denormals_flushed"]


def check_int(option: str, value: int, low: int, high: int) -> int:
    """Return `value` if it is an integer in [low, high], else a ValueError naming the option and the range."""
    if isinstance(value, bool) or not isinstance(value, int) or not low <= value <= high:
        raise ValueError(f"{option} must be an integer from {low} to {high}; got {value!r}")
    return value


def check_float(option: str, value: float, low: float, high: float) -> float:
    if isinstance(value, bool) or not isinstance(value, (int, float)) or not low <= value <= high:
        raise ValueError(f"{option} must be a number from {low:g} to {high:g}; got {value!r}")
    return float(value)


def finite(value: float) -> float | None:
    """JSON has no inf or nan: a probe reports them as null."""
    return value if math.isfinite(value) else None


@contextmanager
def seeded(seed: int) -> Iterator[None]:
    """Run the block under torch.manual_seed(seed) without disturbing the caller's random state."""
    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(seed)
        yield


@contextmanager
def threads(n: int) -> Iterator[None]:
    """Use `n` intra-op threads inside the block, then restore the previous count.

    PyTorch's thread count is one setting for the whole process: probes that
    run at the same time in several threads (a web server's pool) share it,
    and the last to leave restores what it found on entry.
    """
    previous = torch.get_num_threads()
    if n != previous:
        torch.set_num_threads(n)
    try:
        yield
    finally:
        if n != previous:
            torch.set_num_threads(previous)


def denormals_flushed() -> bool:
    """Whether this thread currently flushes subnormal floats to zero (PyTorch offers no getter)."""
    tiny = torch.tensor([1e-39], dtype=torch.float32)  # subnormal in float32 (smallest normal is 1.2e-38)
    return bool((tiny * 1.0).item() == 0.0)


@contextmanager
def flush_denormals(enabled: bool = True) -> Iterator[None]:
    """Treat subnormal floats as zero inside the block (a no-op when `enabled` is False).

    A saturated sigmoid stack fills its saved derivatives and gradients with
    subnormal floats, where x86 arithmetic is 10-100x slower (bench_probes:
    a 100-layer plain sigmoid MLP, 13 ms flushed vs ~490 ms not). Flushing sets
    every element below float32's smallest normal number (1.2e-38) to 0. What
    a probe reports changes only where the gradient has already vanished: in
    that stack, the 11 layers whose gradient norm is 1e-16 or less (15 orders
    of magnitude below the top layer's) read lower or 0; every larger norm is
    the same. Pass False where those tiny norms matter.
    """
    if not enabled:
        yield
        return
    previous = denormals_flushed()
    torch.set_flush_denormal(True)
    try:
        yield
    finally:
        torch.set_flush_denormal(previous)
