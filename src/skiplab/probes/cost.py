"""What a network costs: parameters, FLOPs, activation memory and peak memory of a training step.

- FLOPs: the multiply-adds of matmuls, convolutions and attention, 2 FLOPs
  each (elementwise ops are not counted), counted over one real forward
  with the formulas of PyTorch's `torch.utils.flop_counter` (those
  `FlopCounterMode` applies; tests compare the two). The
  forward runs with gradients enabled, as in training: in inference PyTorch
  takes fused fast paths (a `TransformerEncoder` in eval mode runs one
  `_transformer_encoder_layer_fwd` per layer) that no formula counts. Ops
  that still have no formula but do heavy compute (fused attention,
  transformer and RNN kernels) are named in `Cost.uncounted_ops`: a FLOP count
  is never silently low.
- Activation memory: every tensor that autograd saves for the backward pass
  during one training-mode forward, seen through
  `torch.autograd.graph.saved_tensors_hooks`, each storage counted once;
  parameters (which autograd also saves) are excluded.
- Peak memory: the most bytes of tensors alive at once during one
  forward+backward (activations, gradients, temporaries; the parameters and
  the input, which exist before the step, are not counted). Every tensor an op
  creates is seen by a dispatch mode and followed until it is freed, so the
  number is measured on any device, CPU included.

A model is measured on a random batch of `input_shape` (in the dtype of its
parameters), or on an `example` of any kind: a tensor, a tuple of positional
arguments or a dict of keyword arguments (token ids and an attention mask).

`skiplab.probes.skip_types` puts every skip type side by side with these measurements.
"""

from __future__ import annotations

import re
import threading
import weakref
from collections import OrderedDict
from dataclasses import asdict, dataclass

import torch
from torch import nn
from torch.utils._python_dispatch import TorchDispatchMode
from torch.utils.flop_counter import flop_registry, sdpa_flop_count, shape_wrapper

from skiplab.nn.stacks import StackConfig
from skiplab.probes.common import (
    Inputs,
    OutputChoice,
    batch_size,
    call_model,
    check_inputs,
    check_int,
    first_tensor,
    map_tensors,
    output_tensor,
    seeded_stack,
)
from skiplab.probes.results import Tabular


@dataclass(frozen=True)
class Cost(Tabular):
    params: int
    flops_per_example: int  # forward pass, 2 per multiply-add
    activation_bytes_per_example: int  # saved for backward, training mode, in the model's dtype
    input_shape: tuple[int, ...]  # one example (of the first input tensor)
    batch: int = 2  # examples the measurement ran on
    peak_bytes: int | None = None  # most bytes alive at once in a forward+backward of `batch` examples; None: not asked
    uncounted_ops: tuple[str, ...] = ()  # compute-heavy ops the forward ran that no FLOP formula counts

    def to_dict(self) -> dict:
        return asdict(self)


def count_params(model: nn.Module) -> int:
    return sum(p.numel() for p in model.parameters())


def _storage_key(t: torch.Tensor) -> tuple[int, int]:
    s = t.untyped_storage()
    return s.data_ptr(), s.nbytes()


class _SavedBytes:
    """Inside `with`, adds up the distinct storages autograd saves for backward (parameters excluded)."""

    def __init__(self, model: nn.Module) -> None:
        self._params = {_storage_key(p) for p in model.parameters()}
        self._seen: dict[tuple[int, int], int] = {}
        self._hooks = torch.autograd.graph.saved_tensors_hooks(self._pack, lambda t: t)

    def _pack(self, t: torch.Tensor) -> torch.Tensor:
        key = _storage_key(t)
        if key not in self._params and key[0] != 0:
            self._seen[key] = key[1]
        return t

    @property
    def bytes(self) -> int:
        return sum(self._seen.values())

    def __enter__(self) -> _SavedBytes:
        self._hooks.__enter__()
        return self

    def __exit__(self, *exc) -> None:
        self._hooks.__exit__(*exc)


def saved_activation_bytes(model: nn.Module, x: Inputs) -> int:
    """Bytes of the distinct tensors autograd saves for backward in one forward of `x` (parameters excluded)."""
    with torch.enable_grad(), _SavedBytes(model) as saved:
        call_model(model, x)
    return saved.bytes


class OpMeter(TorchDispatchMode):
    """Sees every aten op and follows the memory of the tensors it creates.

    A storage is counted from the op that creates it until the last tensor on
    it is freed (a weak reference per tensor; views share their storage's
    count), so `peak_bytes` is the high-water mark of live tensor memory.
    Views of, and in-place writes to, memory that existed before (weights,
    the input) add nothing; an in-place op returns its argument, which is
    followed already.
    """

    def __init__(self) -> None:
        super().__init__()
        self.live_bytes = 0
        self.peak_bytes = 0
        self._refs: dict[int, list[int]] = {}  # storage address -> [tensors alive on it, its bytes]
        # The weak references themselves must stay alive. Keyed by id: a weak reference to a tensor compares
        # by the tensors' ==, which is elementwise (a set of them raised on the second reference to one tensor).
        self._watch: dict[int, weakref.ref] = {}
        self._followed: set[int] = set()  # ids of the tensors followed now

    def _released(self, ref: weakref.ref, key: int, tid: int) -> None:
        self._watch.pop(id(ref), None)
        self._followed.discard(tid)
        entry = self._refs[key]
        entry[0] -= 1
        if entry[0] == 0:
            del self._refs[key]
            self.live_bytes -= entry[1]

    def __torch_dispatch__(self, func, types, args=(), kwargs=None):
        kwargs = kwargs or {}
        out = func(*args, **kwargs)
        # aten ops return a tensor or one flat tuple/list of them (some entries None).
        arg_storages: set[int] | None = None  # the arguments' storages, found once per op and only when needed
        for t in out if isinstance(out, (tuple, list)) else (out,):
            if not isinstance(t, torch.Tensor) or id(t) in self._followed:
                continue  # not a tensor, or an in-place op's argument, followed since the op that made it
            key = t.untyped_storage().data_ptr()
            if key == 0:
                continue
            entry = self._refs.get(key)
            if entry is None:
                if arg_storages is None:
                    arg_storages = _argument_storages(args)
                if key in arg_storages:
                    continue  # a view of, or an in-place write to, memory that existed before (a weight, the input)
                nbytes = t.untyped_storage().nbytes()
                self._refs[key] = [1, nbytes]
                self.live_bytes += nbytes
            else:
                entry[0] += 1
            tid = id(t)
            ref = weakref.ref(t, lambda ref, key=key, tid=tid: self._released(ref, key, tid))
            self._watch[id(ref)] = ref
            self._followed.add(tid)
        self.peak_bytes = max(self.peak_bytes, self.live_bytes)
        return out


def _argument_storages(args: tuple) -> set[int]:
    """The storages of an op's tensor arguments (nested at most one list deep).

    One set per op rather than a scan of the arguments per output: ops over
    lists (`_foreach_norm` of every gradient, `stack`) return as many tensors
    as they take, and a scan per output made them quadratic.
    """
    keys: set[int] = set()
    for a in args:
        if isinstance(a, torch.Tensor):
            keys.add(a.untyped_storage().data_ptr())
        elif isinstance(a, (list, tuple)):
            keys.update(b.untyped_storage().data_ptr() for b in a if isinstance(b, torch.Tensor))
    return keys


def _cpu_attention_flops(query_shape, key_shape, value_shape, *args, out_shape=None, **kwargs) -> int:
    """CPU's fused attention kernel does the two matmuls of every other attention kernel (torch's formula)."""
    return sdpa_flop_count(query_shape, key_shape, value_shape)


# Ops FlopCounterMode has no formula for, counted with torch's own formula for the same computation
# (the CPU kernel behind F.scaled_dot_product_attention and nn.MultiheadAttention, where this build has it).
EXTRA_FLOP_FORMULAS = {
    getattr(torch.ops.aten, name): _cpu_attention_flops
    for name in ("_scaled_dot_product_flash_attention_for_cpu",)
    if hasattr(torch.ops.aten, name)
}
# torch.utils.flop_counter's formulas, as FlopCounterMode applies them, keyed by op.
FLOP_FORMULAS = {**flop_registry, **{op: shape_wrapper(f) for op, f in EXTRA_FLOP_FORMULAS.items()}}
# An op without a formula whose name says it multiplies matrices is reported, never counted as 0.
HEAVY_OP = re.compile(r"mm|matmul|conv|linear|einsum|attention|transformer|lstm|gru|rnn|_fwd")


class _ForwardFlops(TorchDispatchMode):
    """Adds up the FLOPs of every op torch.utils.flop_counter has a formula for; names heavy ops it has none for.

    The same formulas as `FlopCounterMode`, without its per-module tracking (process-wide module hooks that
    made metering a 200-block stack 5-10x slower and that only its per-module breakdown, unused here, needs).
    """

    def __init__(self) -> None:
        super().__init__()
        self.flops = 0
        self.uncounted: set[str] = set()

    def __torch_dispatch__(self, func, types, args=(), kwargs=None):
        kwargs = kwargs or {}
        out = func(*args, **kwargs)
        packet = func._overloadpacket
        formula = FLOP_FORMULAS.get(packet)
        if formula is not None:
            self.flops += int(formula(*args, **kwargs, out_val=out))
        elif HEAVY_OP.search(packet.__name__):
            self.uncounted.add(f"aten.{packet.__name__}")
        return out


def count_forward_flops(model: nn.Module, x: Inputs) -> tuple[int, tuple[str, ...]]:
    """FLOPs of one forward of `x` (the whole batch), 2 per multiply-add, and the heavy ops no formula counts.

    The forward runs in the model's current mode with gradients enabled, the
    floating-point inputs and (for the call) every frozen parameter requiring
    grad, so PyTorch's inference fast paths are not taken; `requires_grad` and
    BatchNorm statistics are as before afterwards.
    """
    leaves = map_tensors(x, lambda t: t.detach().requires_grad_() if t.is_floating_point() else t)
    frozen = [p for p in model.parameters() if p.is_floating_point() and not p.requires_grad]
    buffers = list(model.buffers())
    saved = [b.clone() for b in buffers] if model.training else []
    try:
        for p in frozen:
            p.requires_grad_(True)
        with torch.enable_grad(), _ForwardFlops() as meter:
            call_model(model, leaves)
    finally:
        for p in frozen:
            p.requires_grad_(False)
        with torch.no_grad():
            for b, s in zip(buffers, saved):
                b.copy_(s)
    return meter.flops, tuple(sorted(meter.uncounted))


def forward_flops(model: nn.Module, x: Inputs) -> int:
    """FLOPs of one forward of `x` (the whole batch), 2 per multiply-add (see `count_forward_flops`)."""
    return count_forward_flops(model, x)[0]


def peak_step_bytes(model: nn.Module, x: Inputs, output: OutputChoice = None) -> int:
    """Peak bytes of tensors alive during one forward+backward of `x` (loss: the sum of the output tensor).

    The model is used in its current mode; BatchNorm statistics and `.grad`
    are left as they were (gradients are taken with `torch.autograd.grad`).
    output: how to read the tensor from the model's output (see `common.output_tensor`).
    """
    params = [p for p in model.parameters() if p.requires_grad]
    buffers = list(model.buffers())
    saved = [b.clone() for b in buffers]
    try:
        with torch.enable_grad(), OpMeter() as meter:
            out = output_tensor(call_model(model, x), output)
            loss = out.sum() if out.is_floating_point() else out.float().sum()
            grads = torch.autograd.grad(loss, params, allow_unused=True) if params and loss.requires_grad else ()
            del out, loss, grads
    finally:
        with torch.no_grad():
            for b, s in zip(buffers, saved):
                b.copy_(s)
    return meter.peak_bytes


def _random_batch(model: nn.Module, input_shape: tuple[int, ...], batch: int) -> torch.Tensor:
    """Standard-normal inputs in the dtype and on the device of the model's first floating-point parameter."""
    first = next((p for p in model.parameters() if p.is_floating_point()), None)
    dtype, device = (first.dtype, first.device) if first is not None else (torch.get_default_dtype(), None)
    return torch.randn(batch, *input_shape, dtype=dtype, device=device)


def measure_cost(
    model: nn.Module,
    input_shape: tuple[int, ...] | None = None,
    batch: int = 2,
    *,
    example: Inputs | None = None,
    peak: bool = False,
    output: OutputChoice = None,
) -> Cost:
    """Cost of one example, measured on a batch (BatchNorm needs more than one example in training mode).

    input_shape: one example's shape; the model runs on `batch` standard-normal
    examples in its parameters' dtype. example: instead, the inputs themselves
    (a tensor, a tuple of positional arguments or a dict of keyword
    arguments, batch first; integer token ids welcome); their batch is the
    batch. peak: also run a forward+backward and report its peak memory
    (`Cost.peak_bytes`, for the whole batch; the loss is the sum of the output
    tensor, read from a dict, tuple or `ModelOutput` as `common.output_tensor`
    says, or by `output`).
    """
    if (input_shape is None) == (example is None):
        raise ValueError("measure_cost needs an input_shape or an example (one of the two)")
    if example is None:
        check_int("batch", batch, 2, 4096)
        x: Inputs = _random_batch(model, tuple(input_shape), batch)
    else:
        x = check_inputs(example, "example")
        batch = batch_size(x)
        input_shape = tuple(first_tensor(x).shape[1:])
    was_training = model.training
    buffers = list(model.buffers())
    saved = [b.clone() for b in buffers]  # training-mode forwards move BatchNorm statistics: put them back
    try:
        model.eval()
        flops, uncounted = count_forward_flops(model, x)
        model.train()
        act = saved_activation_bytes(model, x)
        peak_bytes = peak_step_bytes(model, x, output) if peak else None
    finally:
        model.train(was_training)
        with torch.no_grad():
            for b, s in zip(buffers, saved):
                b.copy_(s)
    return Cost(count_params(model), flops // batch, act // batch, tuple(input_shape), batch, peak_bytes, uncounted)


class _Memo:
    """A small thread-safe LRU of measurements that depend on a stack's shapes only, never on its values.

    Parameters, FLOPs, saved activations and peak memory of a zoo stack are
    fixed by its configuration and batch (no op of a zoo stack allocates by
    value), so each is measured once per process: metering every op in Python
    costs several times the step itself.
    """

    def __init__(self, size: int = 512) -> None:
        self._items: OrderedDict = OrderedDict()
        self._size = size
        self._lock = threading.Lock()

    def get(self, key):
        with self._lock:
            if key in self._items:
                self._items.move_to_end(key)
                return self._items[key]
            return None

    def clear(self) -> None:
        with self._lock:
            self._items.clear()

    def put(self, key, value) -> None:
        with self._lock:
            self._items[key] = value
            if len(self._items) > self._size:
                self._items.popitem(last=False)


_STEP_COSTS = _Memo()  # (StackConfig, batch) -> params, FLOPs/example, saved bytes/example, peak bytes
_STACK_COSTS = _Memo()  # (StackConfig, batch, peak) -> Cost


def forget_built() -> None:
    """Drop every remembered cost: the next probe meters from scratch (a cold run)."""
    _STEP_COSTS.clear()
    _STACK_COSTS.clear()


def stack_cost(cfg: StackConfig, batch: int = 2, *, peak: bool = False) -> Cost:
    """`measure_cost` of the zoo stack `build_stack(cfg)`, measured once per configuration and batch."""
    key = (cfg, batch, peak)
    cost = _STACK_COSTS.get(key)
    if cost is None:
        with seeded_stack(cfg, 0) as model:
            cost = measure_cost(model, cfg.in_shape, batch, peak=peak)
        _STACK_COSTS.put(key, cost)
    return cost
