"""Built stacks kept for the next probe: each configuration is built once and re-initialised in place.

Building a stack is mostly Python: torch's module constructors cost about
0.4 ms per block, more than a forward and backward pass through the block.
The probes and the explainer ask for the same few configurations again and
again (a reader flipping a setting back and forth), so `StackPool` keeps
built stacks and, for a configuration it has seen, replays the
initialisation that its construction ran: the same in-place ops (`uniform_`,
`normal_`, `fill_`, `zero_`, ...) on the same tensors in the same order, under
the same seed. The stack's parameters and buffers are then bit for bit those
of a fresh `build_stack(cfg)` under that seed (tests/nn/test_pool.py checks
every kind of stack), so a pooled probe reports exactly what a fresh one would.

A stack whose construction drew random numbers other than in place (a
`torch.randn` kept as a parameter) cannot be replayed this way; it is rebuilt
every time. The pool holds at most `max_bytes` of parameters and buffers,
dropping the least recently used stacks, and hands each stack to one caller
at a time, so it may be shared by threads (and `seeded` serialises the use
of the process's CPU generator). A caller must leave the stack as it found it
apart from values, gradients, frozen parameters and train/eval mode, which
the pool resets: no hooks, replaced parameters, dtype or hyperparameter
changes.
"""

from __future__ import annotations

import math
import threading
from collections import OrderedDict
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field

import torch
from torch.utils._python_dispatch import TorchDispatchMode

from skiplab.nn.models import SkipNet, StackConfig, build_stack

Replay = list[tuple[object, tuple, dict]]  # (aten op, args, kwargs) of every in-place op, in order


# The CPU generator is one per process: whoever seeds it and draws from it holds this lock, so a probe in
# one thread and a training run starting in another cannot interleave their draws.
RNG_LOCK = threading.RLock()


@contextmanager
def seeded(seed: int) -> Iterator[None]:
    """Run the block with the CPU generator seeded by `seed`, then give the caller's random state back.

    Only the CPU generator: every network here is initialised on the CPU,
    and `torch.manual_seed` also queues a seeding of every accelerator backend,
    formatting a stack trace each time (1.4 ms, more than re-initialising a
    small stack). Holds `RNG_LOCK` throughout.
    """
    with RNG_LOCK:
        generator = torch.default_generator
        state = generator.get_state()
        generator.manual_seed(seed)
        try:
            yield
        finally:
            generator.set_state(state)


class _InitRecorder(TorchDispatchMode):
    """Records every in-place op of a construction; notes any random draw that is not one."""

    def __init__(self) -> None:
        super().__init__()
        self.ops: Replay = []
        self.replayable = True

    def __torch_dispatch__(self, func, types, args=(), kwargs=None):
        kwargs = kwargs or {}
        if func._schema.is_mutable:
            self.ops.append((func, args, kwargs))
        elif torch.Tag.nondeterministic_seeded in func.tags:
            self.replayable = False  # e.g. torch.randn: a fresh tensor the replay could not write again
        return func(*args, **kwargs)


_CONSTANT = {torch.ops.aten.zero_.default, torch.ops.aten.fill_.Scalar}
_OVERWRITE = _CONSTANT | {torch.ops.aten.uniform_.default, torch.ops.aten.normal_.default}


def _key(t: torch.Tensor) -> tuple:
    return t.untyped_storage().data_ptr(), t.storage_offset(), tuple(t.shape), t.stride()


def _plain_write(func, args: tuple, kwargs: dict) -> bool:
    """An initialising write this module knows: a draw or a constant into a whole tensor, reading nothing else."""
    if func not in _OVERWRITE or kwargs or not args or not isinstance(args[0], torch.Tensor):
        return False
    t = args[0]
    whole = t.storage_offset() == 0 and t.numel() * t.element_size() == t.untyped_storage().nbytes()
    return whole and not any(isinstance(a, torch.Tensor) for a in args[1:])


def _batch_constant_writes(ops: Replay) -> tuple[Replay, list[tuple[float, list[torch.Tensor]]]]:
    """Split a replay into the ops that must run in order and the constants that may be written last, batched.

    A construction writes zeros and ones into hundreds of tensors (biases,
    BatchNorm weights and statistics), one op each. A constant written into a
    tensor that no later op touches is the tensor's final value whatever runs
    in between, so those are set at the end with one `_foreach` call per
    constant; a constant overwritten later by an op that does not read the
    tensor is dropped. The random draws keep their order, so every value is the
    same as the ops in order give (tests/nn/test_pool.py compares bit for bit).

    Only a construction made of nothing but such writes, each to a whole
    tensor of its own (no views, no op reading another tensor), is batched;
    any other replays every op in order.
    """
    if not all(_plain_write(func, args, kwargs) for func, args, kwargs in ops):
        return ops, []
    later_writer: dict[tuple, object] = {}  # tensor -> the op that writes it next, scanning backwards
    keep: list[bool] = []
    final: list[tuple[float, torch.Tensor]] = []
    for func, args, kwargs in reversed(ops):
        target = args[0] if args and isinstance(args[0], torch.Tensor) else None
        key = _key(target) if target is not None else None
        constant = target is not None and (
            func is torch.ops.aten.zero_.default or (func in _CONSTANT and target.is_floating_point())
        )
        if constant and not kwargs:
            nxt = later_writer.get(key)
            value = 0.0 if func is torch.ops.aten.zero_.default else float(args[1])
            if nxt is None and not (value == 0 and math.copysign(1.0, value) < 0):  # -0.0 + 0 would be +0.0
                final.append((value, target))  # the last write to this tensor: set it at the end
                keep.append(False)
            elif nxt is None:
                keep.append(True)
            else:  # overwritten later: drop it if the later op does not read it
                keep.append(nxt not in _OVERWRITE)
        else:
            keep.append(True)
        if key is not None:
            later_writer[key] = func
    keep.reverse()
    ordered = [op for op, k in zip(ops, keep) if k]
    batches: dict[float, list[torch.Tensor]] = {}
    for value, t in reversed(final):
        batches.setdefault(value, []).append(t)
    return ordered, list(batches.items())


def _run_replay(ordered: Replay, settings: list[tuple[float, list[torch.Tensor]]]) -> None:
    """Run what `_batch_constant_writes` returned: the ordered ops, then the batched constants."""
    with torch.no_grad():
        for func, args, kwargs in ordered:
            func(*args, **kwargs)
        for value, tensors in settings:
            torch._foreach_zero_(tensors)
            if value != 0:
                torch._foreach_add_(tensors, value)


@dataclass
class _Built:
    """A pooled stack with what its reuse needs, found once: walking a deep module tree costs milliseconds."""

    model: SkipNet
    replay: Replay
    settings: list[tuple[float, list[torch.Tensor]]] = field(init=False)  # constants written last, in batches
    modules: list[torch.nn.Module] = field(init=False)
    params: list[torch.nn.Parameter] = field(init=False)
    nbytes: int = field(init=False)

    def __post_init__(self) -> None:
        self.replay, self.settings = _batch_constant_writes(self.replay)
        self.modules = list(self.model.modules())
        self.params = list(self.model.parameters())
        tensors = (*self.params, *self.model.buffers())
        self.nbytes = sum(t.numel() * t.element_size() for t in tensors)

    def reinitialise(self) -> None:
        _run_replay(self.replay, self.settings)

    def reset_use(self) -> None:
        """Undo what a caller may have left besides values: gradients, frozen parameters and eval mode."""
        for p in self.params:
            p.grad = None
            p.requires_grad_(True)
        if not all(m.training for m in self.modules):
            self.model.train()


class StackPool:
    def __init__(self, max_bytes: int = 128 * 2**20) -> None:
        self.max_bytes = max_bytes
        self._idle: OrderedDict[tuple[StackConfig, torch.dtype], list[_Built]] = OrderedDict()
        self._bytes = 0
        self._lock = threading.Lock()
        self.builds = 0  # stacks built (a miss)
        self.replays = 0  # stacks re-initialised in place (a hit)

    @contextmanager
    def stack(self, cfg: StackConfig, seed: int) -> Iterator[SkipNet]:
        """`with seeded(seed): model = build_stack(cfg)`, then the block: same stack, same random state after it.

        The stack is in training mode and goes back to the pool after the
        block: use it inside, keep only numbers, and leave on it no hooks and
        no replaced parameters. Random numbers drawn in the block continue the
        seeded stream, as they would after a fresh build.
        """
        key = (cfg.validate(), torch.get_default_dtype())  # a fresh build would follow the default dtype
        built = self._take(key)
        with seeded(seed):
            if built is None:
                recorder = _InitRecorder()
                with recorder:
                    model = build_stack(cfg).train()
                built = _Built(model, recorder.ops) if recorder.replayable else None
                self.builds += 1
            else:
                built.reinitialise()
                model = built.model
                self.replays += 1
            try:
                yield model
            finally:
                if built is not None:
                    built.reset_use()
                    self._give(key, built)

    def clear(self) -> None:
        with self._lock:
            self._idle.clear()
            self._bytes = 0

    def _take(self, key: tuple[StackConfig, torch.dtype]) -> _Built | None:
        with self._lock:
            idle = self._idle.get(key)
            if not idle:
                return None
            built = idle.pop()
            if not idle:
                del self._idle[key]
            self._bytes -= built.nbytes
            return built

    def _give(self, key: tuple[StackConfig, torch.dtype], built: _Built) -> None:
        if built.nbytes > self.max_bytes:
            return
        with self._lock:
            while self._idle and self._bytes + built.nbytes > self.max_bytes:
                _, dropped = self._idle.popitem(last=False)
                self._bytes -= sum(b.nbytes for b in dropped)
            self._idle.setdefault(key, []).append(built)
            self._idle.move_to_end(key)
            self._bytes += built.nbytes


STACKS = StackPool()


def pooled_stack(cfg: StackConfig, seed: int):
    """`STACKS.stack(cfg, seed)`: the process's pool, shared by every probe."""
    return STACKS.stack(cfg, seed)
