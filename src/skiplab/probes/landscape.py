"""Loss landscapes around a network's weights (Li et al. 2018, "Visualizing the Loss Landscape of Neural Nets").

Li, Xu, Taylor, Studer & Goldstein (NeurIPS 2018) plot the loss on a plane
through a trained network's weights θ*, spanned by two random directions δ
and η: f(α, β) = L(θ* + αδ + βη). A random direction is drawn from a
Gaussian and normalised *filter-wise*: each filter of δ (a convolution's
output channel, a linear layer's output row) is scaled to the norm of the
same filter of θ*, so that the plot's scale follows the weights' own scale
(ReLU nets are invariant to rescaling a filter, and a raw direction would
mean little in a layer of small weights). Directions of BatchNorm weights
and biases, and of every other bias (1-D parameters), are zero, as in the
paper's code (`ignore='biasbn'`). Around ResNet-56 the paper finds a
smooth, nearly convex bowl; around its plain twin a chaotic surface, more so
with depth (sec. 5, Fig. 5).

`loss_landscape(model, (x, y), xs=..., ys=...)` evaluates that plane on a
grid the caller chooses; with `end=` (and optionally `start=`) it evaluates
the 1-D line start + t·(end − start) instead (Goodfellow et al. 2015's
interpolation, e.g. from the initial to the trained weights).
`landscape_stream` yields the same result row by row, so a page can draw
it while it is computed.

BatchNorm statistics (the `bn` option, stated in every result):
- "running" (default): eval mode, every point normalises with the running
  statistics of `model` (the trained net's), as the paper's code evaluates
  (`net.eval()`); the centre of a plane is then exactly the model's
  eval-mode loss.
- "batch": every BatchNorm layer normalises with the statistics of the batch
  being evaluated (training-mode normalisation, nothing read from or written
  to the running statistics): the choice for a line between two weight
  vectors, where only one end has running statistics of its own.

The caller's model is never changed: points are evaluated on a private copy
through `torch.func.functional_call`. Evaluating one point at a time is the
default: a plane is compute-bound (one full forward a point), and on a CPU
`torch.func.vmap` over stacked weights measured slower (it turns every
convolution into a grouped one: 85 against 35 ms a point for the 56-layer
1-D net, bench/bench_landscape.py); `points_per_call` > 1 takes the vmap path
(for accelerators, where one call per point is launch-bound). With running
statistics, each BatchNorm that follows a convolution is folded into it
(`skiplab.probes.bnfold`): the same function with a fifth less work.
Points are independent, so `threads` > 1 evaluates several at once, each in
a thread of its own on its own copy of the model: on two cores two such
threads nearly halve a plane, where two intra-op threads inside each forward
made it slower (bench/bench_landscape.py), and when another process holds a
core they share what is left instead of stalling on each other.
Sharpness (Hessian eigenvalues) is in `skiplab.probes.hessian`.
"""

from __future__ import annotations

import math
import time
from collections.abc import Callable, Iterator, Mapping, Sequence
from dataclasses import asdict, dataclass

import torch
from torch import nn

from skiplab.probes.common import (
    Inputs,
    OutputChoice,
    batch_size,
    check_inputs,
    check_int,
    choice,
)
from skiplab.probes.results import Tabular
from skiplab.probes.roughness import Roughness, roughness
from skiplab.probes.targets import LossChoice
from skiplab.probes.weightspace import (
    ParallelPoints,
    PointEvaluator,
    check_like,
    filter_normalized_direction,
    trainable,
)

__all__ = [
    "BN_MODES",
    "Landscape",
    "LandscapeRow",
    "Roughness",
    "bn_statistics",
    "filter_normalized_direction",
    "landscape_stream",
    "loss_landscape",
    "trainable",
]

BN_MODES: tuple[str, ...] = ("running", "batch")
MAX_POINTS_PER_AXIS = 201


def bn_statistics(bn: str) -> str:
    """What `bn` means, in words, for the result that used it."""
    return {
        "running": "eval mode: every point normalises with the BatchNorm running statistics of the given model "
        "(the trained net's), as Li et al.'s code evaluates (net.eval())",
        "batch": "every BatchNorm layer normalises with the statistics of the evaluated batch itself "
        "(training-mode normalisation; no running statistics read or updated)",
    }[choice("bn", bn, BN_MODES)]


@dataclass(frozen=True)
class LandscapeRow:
    index: int  # 0-based row number (along ys; 0 for a line)
    y: float | None  # the row's coordinate along the second direction (None for a line or a 1-D slice)
    loss: tuple[float | None, ...]  # one per x; None where the loss is not finite
    accuracy: tuple[float | None, ...]  # share of correct argmax predictions (None: the output is not class scores)

    def to_dict(self) -> dict:
        return asdict(self)


@dataclass(frozen=True)
class Landscape(Tabular):
    kind: str  # plane | line | slice (one random direction)
    xs: tuple[float, ...]  # coordinates along the first direction (a line: t, 0 = start, 1 = end)
    ys: tuple[float, ...]  # along the second direction (empty unless a plane)
    rows: tuple[LandscapeRow, ...]
    base_loss: float | None  # the loss at the origin: the model's own weights (a line: its start)
    base_accuracy: float | None
    directions: str  # how the directions were made, in words
    seed: int | None  # of the random directions (None: given, or a line)
    bn: str  # running | batch
    bn_statistics: str  # what `bn` means, in words
    examples: int
    parameters: int  # trainable parameters the directions span
    points: int
    points_per_call: int  # 1: one forward per point; more: vmap over that many stacked weight vectors
    threads: int  # points evaluated at once, each thread on its own copy of the model
    folded_bn: int  # BatchNorm layers folded into the convolution before them (eval mode only; same function)
    seconds: float  # evaluating every point
    first_row_seconds: float  # until the first row was ready
    roughness: Roughness | None  # a plane's curvature summary (see skiplab.probes.roughness)

    _rows_field = "rows"

    def loss_grid(self) -> list[list[float | None]]:
        return [list(r.loss) for r in self.rows]

    def to_dict(self) -> dict:
        return asdict(self)


# ------------------------------------------------------------------ the landscape


def _grid(option: str, values: Sequence[float] | None) -> tuple[float, ...]:
    if values is None:
        return ()
    if isinstance(values, torch.Tensor):
        values = values.tolist()
    try:
        out = tuple(float(v) for v in values)
    except (TypeError, ValueError):
        raise ValueError(f"{option} must be a sequence of numbers; got {values!r}") from None
    if not 1 <= len(out) <= MAX_POINTS_PER_AXIS or not all(math.isfinite(v) for v in out):
        raise ValueError(f"{option} must hold 1 to {MAX_POINTS_PER_AXIS} finite numbers; got {len(out)}")
    return out


@dataclass(frozen=True)
class _Plan:
    kind: str
    xs: tuple[float, ...]
    ys: tuple[float, ...]
    base: dict
    dirs: list
    directions: str
    seed: int | None


def _plan(model, xs, ys, start, end, seed, directions) -> _Plan:
    """What to evaluate: the grid, the base weights and the directions, checked."""
    weights = trainable(model)
    if not weights:
        raise ValueError("model has no trainable parameters: there is no landscape to move along")
    gx, gy = _grid("xs", xs), _grid("ys", ys)
    if not gx:
        raise ValueError("xs must hold 1 to 201 finite numbers; got none")
    if end is not None:
        if gy or directions is not None:
            raise ValueError("end draws a line: give xs (the positions t) and neither ys nor directions")
        check_like("end", end, weights)
        base = weights if start is None else start
        if start is not None:
            check_like("start", start, weights)
        base = {n: base[n].detach().to(weights[n]) for n in weights}
        line = {n: end[n].detach().to(weights[n]) - base[n] for n in weights}
        return _Plan("line", gx, (), base, [line], "the straight line start + t·(end − start)", None)
    if start is not None:
        raise ValueError("start is the beginning of a line: give end too")
    count = 2 if gy else 1
    if directions is not None:
        if len(directions) != count:
            raise ValueError(f"directions: give {count} (one per axis); got {len(directions)}")
        for i, d in enumerate(directions):
            check_like(f"directions[{i}]", d, weights)
        dirs = [{n: d[n].detach().to(weights[n]) for n in weights} for d in directions]
        return _Plan("plane" if gy else "slice", gx, gy, weights, dirs, "given by the caller", None)
    check_int("seed", seed, 0, 2**63 - 1)
    g = torch.Generator().manual_seed(seed)
    dirs = [filter_normalized_direction(weights, g) for _ in range(count)]
    text = "random Gaussian, filter-normalised to the weights' filter norms; BatchNorm and bias directions zero"
    return _Plan("plane" if gy else "slice", gx, gy, weights, dirs, text, seed)


def checked_data(
    model: nn.Module, data: tuple[Inputs, torch.Tensor | None], bn: str
) -> tuple[Inputs, torch.Tensor | None]:
    """(x, y) of `data` after checking the model, the pair and the BatchNorm mode (a ValueError naming the fault)."""
    if not isinstance(model, nn.Module):
        raise ValueError(f"model must be a torch.nn.Module; got {type(model).__name__}")
    if not isinstance(data, (tuple, list)) or len(data) != 2:
        raise ValueError("data must be a pair (x, y): the inputs, batch first, and their labels or targets")
    x, y = check_inputs(data[0], "x"), data[1]
    if y is not None and (not isinstance(y, torch.Tensor) or len(y) != batch_size(x)):
        raise ValueError("y must be a tensor with one label (or target) per example of x")
    choice("bn", bn, BN_MODES)
    return x, y


def landscape_stream(
    model: nn.Module,
    data: tuple[Inputs, torch.Tensor | None],
    *,
    xs: Sequence[float],
    ys: Sequence[float] | None = None,
    start: Mapping[str, torch.Tensor] | None = None,
    end: Mapping[str, torch.Tensor] | None = None,
    seed: int = 0,
    directions: Sequence[Mapping[str, torch.Tensor]] | None = None,
    bn: str = "running",
    loss: LossChoice = "auto",
    output: OutputChoice = None,
    points_per_call: int = 1,
    fold_bn: bool = True,
    threads: int = 1,
) -> Iterator[LandscapeRow | Landscape]:
    """`loss_landscape`, row by row: yields each `LandscapeRow` as soon as it is computed, then the `Landscape`."""
    x, y = checked_data(model, data, bn)
    check_int("points_per_call", points_per_call, 1, 1024)
    plan = _plan(model, xs, ys, start, end, seed, directions)
    t0 = time.perf_counter()
    check_int("threads", threads, 1, 64)
    points = ParallelPoints(
        [PointEvaluator(model, x, y, plan.base, plan.dirs, bn, loss, output, fold=fold_bn) for _ in range(threads)]
    )
    rows, first, base = [], None, None
    with points:
        for i, b in enumerate(plan.ys or (None,)):
            coords = [(a,) if b is None else (a, b) for a in plan.xs]
            chunks = [coords[k : k + points_per_call] for k in range(0, len(coords), points_per_call)]
            scores = points.score(chunks)
            row = LandscapeRow(i, b, tuple(s[0] for s in scores), tuple(s[1] for s in scores))
            rows.append(row)
            # The origin on the grid is the same computation as the base point: kept, not evaluated twice.
            on_grid = b in (None, 0.0) and 0.0 in plan.xs and points_per_call == 1
            base = scores[plan.xs.index(0.0)] if on_grid else base
            first = first if first is not None else time.perf_counter() - t0
            yield row
        base_loss, base_acc = base if base is not None else points.score([[(0.0,) * len(plan.dirs)]])[0]
    yield Landscape(
        kind=plan.kind,
        xs=plan.xs,
        ys=plan.ys,
        rows=tuple(rows),
        base_loss=base_loss,
        base_accuracy=base_acc,
        directions=plan.directions,
        seed=plan.seed,
        bn=bn,
        bn_statistics=bn_statistics(bn),
        examples=batch_size(x),
        parameters=sum(w.numel() for w in plan.base.values()),
        points=len(plan.xs) * max(1, len(plan.ys)),
        points_per_call=points_per_call,
        folded_bn=points.folded_layers,
        threads=threads,
        seconds=time.perf_counter() - t0,
        first_row_seconds=first or 0.0,
        roughness=roughness(plan.xs, plan.ys, [r.loss for r in rows]) if plan.ys else None,
    )


def loss_landscape(
    model: nn.Module,
    data: tuple[Inputs, torch.Tensor | None],
    *,
    on_row: Callable[[LandscapeRow], None] | None = None,
    **options,
) -> Landscape:
    """The loss (and accuracy) of `model` on `data` = (x, y) over a plane, a random slice or a line of weights.

    - plane: xs and ys given: L(θ + x·δ + y·η) with δ, η filter-normalised
      random directions drawn from `seed` (or `directions`, two dicts of
      tensors named like the parameters);
    - slice: xs only: one such direction;
    - line: `end` (and optionally `start`, default the model's weights):
      L(start + t·(end − start)) for t in xs.

    bn: "running" (eval mode, the model's running statistics; the default)
    or "batch" (each point normalises with the batch's own statistics); the
    result says which. loss: "auto" (cross-entropy for integer labels, MSE for
    float targets) or a callable loss(out, y). output: how to read the
    model's output (see `skiplab.probes.common.output_tensor`).
    points_per_call: 1 (one forward per point) or more (vmap over stacked
    weights). fold_bn: with bn="running", fold each BatchNorm that follows a
    convolution into it (`skiplab.probes.bnfold`; the same function, faster).
    threads: points evaluated at once, each in a thread of its own on its own
    copy of the model (the same numbers as one at a time). torch's intra-op
    thread count is one setting for the whole process and every such thread
    uses it: with threads > 1, run inside `tuned(1)` (as the CLI and the
    server do), or threads × torch threads will outnumber the cores.
    on_row(row) runs as each row is done. The model is not changed.
    """
    result = None
    for item in landscape_stream(model, data, **options):
        if isinstance(item, LandscapeRow):
            if on_row is not None:
                on_row(item)
        else:
            result = item
    assert result is not None  # the stream always ends with its Landscape
    return result
