"""Gradient flow: how large the loss gradient is at every layer of a real network.

One forward and one backward pass of a batch give, for each probed layer (a
block of a `SkipNet`, or any modules chosen by type or name pattern), the norm
of dL/d(layer input) and the norm of dL/d(layer weights), in forward order.
This is the measurement behind the vanishing/exploding-gradient story (Bengio
et al. 1994; Glorot & Bengio 2010) and behind the claim of He et al. 2016
("Identity Mappings in Deep Residual Networks", eq. 5) that an identity
shortcut carries the gradient straight back: dL/dx_l = dL/dx_L · (1 + d/dx_l Σ F).

Measured at initialisation, the story is not the folk one: a plain BatchNorm
MLP's gradient grows toward the input (it does not vanish), a plain sigmoid
stack's gradient does vanish, and the pre-activation residual stack keeps it
near constant. `stack_gradient_flow` shows this on the zoo's stacks.

Norms are Frobenius norms over the whole batch. Gradients are taken with
`torch.autograd.grad` from one backward pass; no `.grad` is written and the
model's BatchNorm statistics are restored, so probing leaves the model as it
was.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, fields

import torch
from torch import nn

from skiplab.nn.models import SkipNet
from skiplab.nn.stacks import StackConfig
from skiplab.probes.common import (
    Inputs,
    OutputChoice,
    call_model,
    check_inputs,
    check_int,
    choice,
    finite,
    map_tensors,
    output_tensor,
    seeded_stack,
    tuned,
)
from skiplab.probes.results import Tabular
from skiplab.probes.targets import (
    LOSSES,
    LossChoice,
    ModuleChoice,
    choose_modules,
    compute_loss,
    first_tensor_argument,
    never_called,
    select_modules,
)

MAX_DEPTH = 1000  # the zoo stacks a probe builds: 1..1000 layers
MAX_WIDTH = 1024
MAX_BATCH = 1024



@dataclass(frozen=True)
class LayerGradient:
    name: str  # qualified module name, as in model.named_modules()
    input_grad_norm: float  # |dL/d(input of the layer)|, Frobenius norm over the batch
    weight_grad_norm: float | None  # |dL/d(trainable parameters of the layer)| together (None if it has none: frozen)
    params: int  # trainable parameters of the layer


@dataclass(frozen=True)
class FlowSummary(Tabular):
    """Statistics of one list of gradient norms, listed from input to output."""

    count: int
    min: float
    max: float
    variance: float  # of the norms themselves
    log10_variance: float  # of log10(norm): scale-free spread, 0 when every layer sees the same norm
    first_last_ratio: float  # first layer's norm / last layer's: >1 grows toward the input, <1 vanishes
    growth_per_layer: float  # (first/last)^(1/(count-1)): the factor each layer multiplies the gradient by, backward
    # Norms float32 could not hold: inf or nan (the gradient overflowed), and exactly 0 (it underflowed).
    # Such a norm has no place on a log scale and reads as "no number"; these counts say why.
    overflowed: int = 0
    underflowed: int = 0

    def to_dict(self) -> dict:
        return _flat_dict(self)


@dataclass(frozen=True)
class GradientFlow(Tabular):
    layers: tuple[LayerGradient, ...]  # in forward order
    summary: FlowSummary  # of the input-gradient norms
    weight_summary: FlowSummary  # of the weight-gradient norms (layers with trainable parameters)
    loss: float
    selected: str = ""  # how the probed modules were chosen

    _plot_x = "name"
    _plot_y = ("input_grad_norm", "weight_grad_norm")
    _plot_log = True

    def to_dict(self) -> dict:
        return {
            "layers": [_flat_dict(la) for la in self.layers],
            "summary": self.summary.to_dict(),
            "weight_summary": self.weight_summary.to_dict(),
            "loss": finite(self.loss),
            "selected": self.selected,
        }


def _json(v):
    return finite(v) if isinstance(v, float) else v


def _flat_dict(obj) -> dict:
    """A flat dataclass as JSON-safe values (dataclasses.asdict deep-copies every field: slow over 1000 layers)."""
    return {f.name: _json(getattr(obj, f.name)) for f in fields(obj)}


def summarize(norms: list[float]) -> FlowSummary:
    """min, max, variance, variance of log10, first/last ratio and per-layer growth of `norms` (input→output)."""
    n = len(norms)
    if n == 0:
        nan = float("nan")
        return FlowSummary(0, nan, nan, nan, nan, nan, nan)
    mean = sum(norms) / n
    variance = sum((v - mean) ** 2 for v in norms) / n
    logs = [math.log10(v) for v in norms if v > 0]
    log_mean = sum(logs) / len(logs) if logs else float("nan")
    log_var = sum((v - log_mean) ** 2 for v in logs) / len(logs) if logs else float("nan")
    first, last = norms[0], norms[-1]
    ratio = first / last if last > 0 else (float("inf") if first > 0 else float("nan"))
    # Geometric mean of the layer-to-layer ratios (equal to (first/last)^(1/(n-1)) when no norm is 0).
    # Pairs where float32 underflowed to 0 or overflowed to inf are left out, so a vanishing or exploding
    # stack still reports its rate.
    steps = [math.log(a) - math.log(b) for a, b in zip(norms, norms[1:]) if 0 < a < math.inf and 0 < b < math.inf]
    growth = math.exp(sum(steps) / len(steps)) if steps else (1.0 if n == 1 else float("nan"))
    overflowed = sum(1 for v in norms if not math.isfinite(v))
    underflowed = sum(1 for v in norms if v == 0)
    return FlowSummary(n, min(norms), max(norms), variance, log_var, ratio, growth, overflowed, underflowed)


# ------------------------------------------------------------------ the probe


def _walks(model: nn.Module, x: Inputs, modules: ModuleChoice) -> bool:
    """Whether the probe walks a SkipNet's stem, blocks and head itself (no hooks)."""
    return (
        modules is None
        and isinstance(model, SkipNet)
        and type(model).forward is SkipNet.forward
        and isinstance(x, torch.Tensor)
    )


def _forward_with_inputs(
    model: nn.Module, x: Inputs, targets: list[tuple[str, nn.Module]], modules: ModuleChoice
) -> tuple[object, list[torch.Tensor | None]]:
    """Run the model once and keep the input tensor of every target module (first call).

    A target whose input does not depend on anything that requires grad (an
    input computed under no_grad, or from a frozen stem) gets a fresh leaf in
    its place, so its gradient is still measured. The raw inputs of the model
    are made leaves that require grad before the forward (`_probe`): a module
    fed the raw input then sees it itself, and its gradient counts every path
    the input takes (a skip around the module included).
    """
    if _walks(model, x, modules):
        # A SkipNet's forward is stem → blocks → head: walk it in the open, no hooks needed.
        h = model.forward_stem(x)
        inputs: list[torch.Tensor | None] = []
        for _, block in targets:
            if not h.requires_grad:
                h = h.detach().requires_grad_()
            inputs.append(h)
            h = block(h)
        return model.forward_head(h), inputs
    index = {id(m): i for i, (_, m) in enumerate(targets)}
    inputs = [None] * len(targets)
    called = [False] * len(targets)

    def keep_input(module: nn.Module, args: tuple, kwargs: dict) -> tuple | None:
        i = index[id(module)]
        if called[i]:
            return None
        called[i] = True
        where = first_tensor_argument(args, kwargs)
        if where is None:
            return None
        first = args[where] if isinstance(where, int) else kwargs[where]
        if not first.requires_grad and first.is_floating_point():
            leaf = first.detach().requires_grad_()
            inputs[i] = leaf
            if isinstance(where, int):
                return (*args[:where], leaf, *args[where + 1 :]), kwargs
            return args, {**kwargs, where: leaf}
        inputs[i] = first
        return None

    handles = [m.register_forward_pre_hook(keep_input, with_kwargs=True) for _, m in targets]
    try:
        out = call_model(model, x)
    finally:
        for h in handles:
            h.remove()
    missing = [name for (name, _), c in zip(targets, called) if not c]
    if missing:
        raise never_called(missing)
    return out, inputs


def _as_leaves(x: Inputs) -> Inputs:
    """Every floating-point tensor of `x` as a new leaf that requires grad (integer token ids as they are)."""
    return map_tensors(x, lambda t: t.detach().requires_grad_() if t.is_floating_point() else t)


def _probe(
    model: nn.Module,
    x: Inputs,
    y: torch.Tensor | None,
    modules: ModuleChoice,
    loss: LossChoice,
    restore_buffers: bool,
    output: OutputChoice = None,
) -> GradientFlow:
    """One probed forward and backward of `model` on (x, y)."""
    targets, selected = choose_modules(model, modules)
    buffers = [b for b in model.buffers()] if restore_buffers and model.training else []
    saved = [b.clone() for b in buffers]
    try:
        with torch.enable_grad():
            x = x if _walks(model, x, modules) else _as_leaves(x)
            out, inputs = _forward_with_inputs(model, x, targets, modules)
            value = compute_loss(output_tensor(out, output), y, loss)
            per_layer = _parameters_by_target(model, targets)
            params = [p for ps in per_layer for p in ps]
            seen = [t for t in inputs if t is not None and t.requires_grad]
            grads = torch.autograd.grad(value, seen + params, allow_unused=True)
            value = value.detach()
    finally:
        with torch.no_grad():
            for b, s in zip(buffers, saved):
                b.copy_(s)
    norms = _norms(grads)
    flow = _assemble(targets, inputs, per_layer, norms[: len(seen)], norms[len(seen) :], value.item())
    return GradientFlow(flow.layers, flow.summary, flow.weight_summary, flow.loss, selected)


def _probe_training_step(model: SkipNet, x: torch.Tensor, y: torch.Tensor) -> GradientFlow:
    """The gradient flow of a SkipNet from one plain training step: gradients of the parameters only.

    Each block input's gradient is seen by a tensor hook that keeps only its
    norm, so the step holds no more memory than training does (the memory
    probe of `compare_skip_types` runs around it). A block whose input gradient
    is not needed for any parameter reports nan.
    """
    targets = select_modules(model)
    per_layer = _parameters_by_target(model, targets)
    with torch.enable_grad():
        out, inputs = _forward_with_inputs(model, x, targets, None)
        value = compute_loss(out, y, "cross_entropy")
        norms: list[torch.Tensor | None] = [None] * len(inputs)
        for i, t in enumerate(inputs):
            if t is not None and t.requires_grad:
                t.register_hook(lambda g, i=i: norms.__setitem__(i, torch.linalg.vector_norm(g)))
        # Every parameter, stem and head included, as a training step would: this also takes the
        # backward down to the first block's input.
        params = [p for p in model.parameters() if p.requires_grad]
        by_id = dict(zip(map(id, params), torch.autograd.grad(value, params, allow_unused=True)))
        grads = tuple(by_id[id(p)] for ps in per_layer for p in ps)
    seen = [n for n in norms if n is not None]
    values = iter(torch.stack(seen).tolist() if seen else [])
    input_norms = [next(values) for n in norms if n is not None]
    present = [t if n is not None else None for t, n in zip(inputs, norms)]
    return _assemble(targets, present, per_layer, input_norms, _norms(grads), value.detach().item())


def _assemble(
    targets: list[tuple[str, nn.Module]],
    inputs: list[torch.Tensor | None],
    per_layer: list[list[nn.Parameter]],
    input_norms: list[float],
    param_norms: list[float],
    loss: float,
) -> GradientFlow:
    """LayerGradients and summaries from the norms (inputs that got no gradient report nan)."""
    in_iter, p_iter = iter(input_norms), iter(param_norms)
    layers = []
    for (name, _), t, ps in zip(targets, inputs, per_layer):
        in_norm = next(in_iter) if t is not None and t.requires_grad else float("nan")
        w_norm = math.sqrt(sum(next(p_iter) ** 2 for _ in ps)) if ps else None
        layers.append(LayerGradient(name, in_norm, w_norm, sum(p.numel() for p in ps)))
    input_norms_list = [la.input_grad_norm for la in layers if not math.isnan(la.input_grad_norm)]
    weight_norms = [la.weight_grad_norm for la in layers if la.weight_grad_norm is not None]
    return GradientFlow(tuple(layers), summarize(input_norms_list), summarize(weight_norms), loss)


def _parameters_by_target(model: nn.Module, targets: list[tuple[str, nn.Module]]) -> list[list[nn.Parameter]]:
    """Each target's trainable parameters (its submodules' included)."""
    return [[p for p in m.parameters() if p.requires_grad] for _, m in targets]


def _norms(grads: tuple[torch.Tensor | None, ...]) -> list[float]:
    """Every norm in one vectorised call and one copy to Python (not one `.item()` per layer)."""
    present = [g for g in grads if g is not None]
    values = iter(torch.stack(torch._foreach_norm(present)).tolist() if present else [])
    return [next(values) if g is not None else 0.0 for g in grads]


def gradient_flow(
    model: nn.Module,
    x: Inputs,
    y: torch.Tensor | None = None,
    *,
    modules: ModuleChoice = None,
    loss: LossChoice = "auto",
    output: OutputChoice = None,
    num_threads: int | None = None,
    flush_denormal: bool = False,
) -> GradientFlow:
    """Per-layer gradient norms of one real forward+backward pass of `model` on (x, y).

    x: a tensor, a tuple of positional arguments or a dict of keyword
    arguments (batch first; integer token ids welcome). modules: None probes a
    `SkipNet`'s blocks, else the repeated blocks of the model (torchvision's
    `layer1.0`, Hugging Face's `layer.0` or `h.0`; see `find_blocks`), else its
    direct children; a type or tuple of types, or a regular expression matched
    against qualified names, probes those submodules of any `nn.Module` (a
    torchvision ResNet: `modules=BasicBlock` or `modules=r"layer\\d\\.\\d+"`).
    `GradientFlow.selected` says what was chosen; a selected module the
    forward never calls is an error. loss: auto (cross-entropy for integer
    labels, MSE for float targets), cross_entropy, mse, or a callable
    loss(out, y) returning a scalar (y may then be None). output: how to read
    the tensor from the model's output (a dict, tuple or `ModelOutput` is read
    by `common.output_tensor`; a callable picks it). The model is used in its
    current train/eval mode; BatchNorm running statistics are restored
    afterwards and no `.grad` is written. num_threads: intra-op threads for
    this call (None: leave torch's setting; `auto_threads(x)` picks one by
    workload). flush_denormal: treat subnormal floats as 0 for speed (see
    `common.flush_denormals` for what it changes).
    """
    if not isinstance(model, nn.Module):
        raise ValueError(f"model must be a torch.nn.Module; got {type(model).__name__}")
    check_inputs(x, "x")
    if y is not None and not isinstance(y, torch.Tensor):
        raise ValueError(f"y must be a tensor; got {type(y).__name__}")
    if not callable(loss):
        choice("loss", loss, LOSSES)
        if y is None:
            raise ValueError(f"y is required with loss={loss!r} (a callable loss may do without)")
    if num_threads is not None:
        check_int("num_threads", num_threads, 1, 256)
    with tuned(num_threads, flush_denormal):
        return _probe(model, x, y, modules, loss, restore_buffers=True, output=output)


def synthetic_batch(cfg: StackConfig, batch: int, seed: int) -> tuple[torch.Tensor, torch.Tensor]:
    """Standard-normal inputs of the stack's input shape and uniform random labels (probes never load data)."""
    g = torch.Generator().manual_seed(seed)
    x = torch.randn(batch, *cfg.in_shape, generator=g)
    y = torch.randint(0, cfg.num_classes, (batch,), generator=g)
    return x, y


def check_stack(cfg: StackConfig) -> StackConfig:
    """A zoo stack a probe may build: the config's own checks plus the probes' size limits."""
    if not isinstance(cfg, StackConfig):
        raise ValueError(f"cfg must be a StackConfig; got {type(cfg).__name__}")
    check_int("depth", cfg.depth, 1, MAX_DEPTH)
    check_int("width", cfg.width, 1, MAX_WIDTH)
    return cfg


def stack_gradient_flow(
    cfg: StackConfig, batch: int = 64, seed: int = 0, *, num_threads: int | None = None, flush_denormal: bool = False
) -> GradientFlow:
    """Gradient flow of a freshly initialised zoo stack (`build_stack(cfg)` under `seed`) in training mode.

    The network and a synthetic batch are both drawn from `seed`, so a result
    is reproducible and the caller's random state is untouched. depth 1..1000,
    width 1..1024, batch 2..1024 (BatchNorm needs two examples).
    """
    check_stack(cfg)
    check_int("batch", batch, 2, MAX_BATCH)
    check_int("seed", seed, 0, 2**31 - 1)
    x, y = synthetic_batch(cfg, batch, seed)
    with tuned(num_threads, flush_denormal), seeded_stack(cfg, seed) as model:
        # The stack is thrown away afterwards: no need to restore its BatchNorm statistics.
        return _probe(model, x, y, None, "cross_entropy", restore_buffers=False)
