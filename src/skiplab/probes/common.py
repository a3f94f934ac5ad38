"""Helpers every probe shares: option checks, model inputs and outputs of any kind, a freshly seeded stack,
thread and denormal settings.

The two runtime settings are process-wide in PyTorch. Probes leave them as
they are; a caller who wants others asks with `tuned(...)`, which restores
the previous values on the way out.
"""

from __future__ import annotations

import contextlib
import dataclasses
import math
import os
from collections.abc import Callable, Iterator, Mapping
from contextlib import contextmanager
from typing import Any

import torch

from skiplab.nn.layers import choice
from skiplab.nn.models import SkipNet
from skiplab.nn.stacks import StackConfig, build_stack
from skiplab.seeding import seeded

__all__ = [
    "Inputs",
    "OutputChoice",
    "batch_size",
    "call_model",
    "first_tensor",
    "check_inputs",
    "check_int",
    "map_tensors",
    "output_tensor",
    "slice_batch",
    "check_float",
    "choice",
    "threads",
    "auto_threads",
    "flush_denormals",
    "finite",
    "denormals_flushed",
    "seeded_stack",
    "tuned",
]


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


# ------------------------------------------------------------------ inputs and outputs of any model

# What a probe feeds a model: a tensor (model(x)), a tuple or list of positional arguments (model(*x)) or a
# dict of keyword arguments (model(**x), as Hugging Face models take input_ids and attention_mask). Every
# tensor among them has the batch on its first dimension.
Inputs = torch.Tensor | tuple | list | Mapping[str, Any]
# How to read the tensor a probe measures from what the model returns: None reads it (see `output_tensor`),
# a callable is given the model's output and returns the tensor.
OutputChoice = Callable[[Any], torch.Tensor] | None

OUTPUT_KEYS: tuple[str, ...] = ("logits", "last_hidden_state")  # read first from a dict-like output, in order


def _tensors(inputs: Inputs) -> list[torch.Tensor]:
    if isinstance(inputs, torch.Tensor):
        return [inputs]
    values = inputs.values() if isinstance(inputs, Mapping) else inputs
    return [v for v in values if isinstance(v, torch.Tensor)]


def check_inputs(inputs: Inputs, option: str = "x") -> Inputs:
    """`inputs` if it is a tensor, a tuple/list or a dict holding at least one tensor with a batch dimension."""
    if not isinstance(inputs, (torch.Tensor, tuple, list, Mapping)):
        raise ValueError(
            f"{option} must be a tensor, a tuple of positional arguments or a dict of keyword arguments; "
            f"got {type(inputs).__name__}"
        )
    tensors = _tensors(inputs)
    if not tensors or any(t.dim() == 0 for t in tensors):
        raise ValueError(f"{option} must hold at least one tensor, each with a batch dimension first")
    sizes = {len(t) for t in tensors}
    if len(sizes) != 1:
        raise ValueError(f"{option}: every tensor must have the same batch size (first dimension); got {sorted(sizes)}")
    return inputs


def first_tensor(inputs: Inputs) -> torch.Tensor:
    """The first tensor of `inputs` (itself, for a tensor)."""
    return _tensors(inputs)[0]


def batch_size(inputs: Inputs) -> int:
    """Examples in `inputs` (the first dimension of its tensors)."""
    return len(first_tensor(inputs))


def map_tensors(inputs: Inputs, fn: Callable[[torch.Tensor], torch.Tensor]) -> Inputs:
    """`inputs` with `fn` applied to every tensor in it (other values are passed as they are)."""
    if isinstance(inputs, torch.Tensor):
        return fn(inputs)
    if isinstance(inputs, Mapping):
        return {k: fn(v) if isinstance(v, torch.Tensor) else v for k, v in inputs.items()}
    return type(inputs)(fn(v) if isinstance(v, torch.Tensor) else v for v in inputs)


def slice_batch(inputs: Inputs, start: int, stop: int) -> Inputs:
    """Examples start..stop-1 of `inputs`."""
    return map_tensors(inputs, lambda t: t[start:stop])


def call_model(model: Callable, inputs: Inputs) -> Any:
    """model(x), model(*x) or model(**x) for a tensor, a tuple/list or a dict."""
    if isinstance(inputs, torch.Tensor):
        return model(inputs)
    if isinstance(inputs, Mapping):
        return model(**inputs)
    return model(*inputs)


def output_tensor(out: Any, output: OutputChoice = None) -> torch.Tensor:
    """The tensor a probe reads from a model's output.

    output: a callable picks it (given the raw output). None: a tensor is
    itself; a dict (Hugging Face's `ModelOutput` is an OrderedDict) or a
    dataclass gives its "logits", else its "last_hidden_state", else its first
    tensor; a tuple or list gives its first tensor.
    """
    if output is not None:
        if not callable(output):
            raise ValueError(f"output must be a callable that picks a tensor from the model's output; got {output!r}")
        picked = output(out)
        if not isinstance(picked, torch.Tensor):
            raise ValueError(f"output: the callable must return a tensor; it returned {type(picked).__name__}")
        return picked
    if isinstance(out, torch.Tensor):
        return out
    if isinstance(out, Mapping):
        items = list(out.items())
    elif dataclasses.is_dataclass(out) and not isinstance(out, type):
        items = [(f.name, getattr(out, f.name)) for f in dataclasses.fields(out)]
    elif isinstance(out, (tuple, list)):
        items = list(enumerate(out))
    else:
        items = []
    found = {k: v for k, v in items if isinstance(v, torch.Tensor)}
    for key in OUTPUT_KEYS:
        if key in found:
            return found[key]
    if found:
        return next(iter(found.values()))
    raise ValueError(
        f"the model returned {type(out).__name__}, which holds no tensor a probe can read; pass "
        "output=callable to pick one (for example output=lambda out: out['logits'])"
    )


@contextmanager
def seeded_stack(cfg: StackConfig, seed: int) -> Iterator[SkipNet]:
    """`build_stack(cfg)` in training mode under `seed`; random numbers drawn in the block continue that stream.

    Built anew every time: a stack of 1000 blocks takes about 0.3 s, and the
    web's answer cache serves a setting seen before.
    """
    with seeded(seed):
        yield build_stack(cfg).train()


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


@contextmanager
def tuned(num_threads: int | None = None, flush_denormal: bool = False) -> Iterator[None]:
    """The process-wide torch settings a caller asks for inside the block, restored after it.

    Probes change neither setting themselves: they run with the caller's
    threads and floating-point mode. What the explainer's server uses, and
    what `make bench` measures, is `tuned(1, flush_denormal=True)`: one
    thread for these small, dispatch-bound networks (a second thread stalls
    10-60x when another process holds a core), and subnormals flushed (see
    `flush_denormals`). `auto_threads(x)` picks a count by workload.
    """
    with threads(num_threads) if num_threads else contextlib.nullcontext(), flush_denormals(flush_denormal):
        yield


def usable_cores(limit: int = 8) -> int:
    """The cores this process may run on (its affinity, not the machine's count), at most `limit`."""
    count = len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else os.cpu_count() or 1
    return max(1, min(count, limit))


def auto_threads(x: torch.Tensor) -> int:
    """Intra-op threads for one probe, chosen by workload.

    Small tensors (an MLP of width 64: ~0.2 ms of dispatch overhead per
    layer) gain nothing from a second thread, and when another process holds
    a core a multi-thread call stalls 10-60x while a one-thread call stays
    within ~1.3x (bench/bench_probes.py, "under load"). So small work uses one
    thread, and image batches big enough to share use every core but one,
    leaving a core to whatever else runs (on 2 cores: still one thread;
    ResNet-110, batch 16: 0.9 s with one thread vs 3.3 s with two on a busy
    2-core machine).
    """
    big = x.dim() >= 4 and x.numel() >= 16 * 3 * 32 * 32
    # Count the cores this process may use, not torch's current setting (another probe may have lowered it).
    return max(1, len(os.sched_getaffinity(0)) - 1) if big else 1
