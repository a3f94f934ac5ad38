"""Block anatomy: what happens to a real input inside one residual block.

A residual block computes y = post(F(x) + shortcut(x)) (He et al. 2015,
"Deep Residual Learning for Image Recognition", eq. 1). The probe runs one
basic, bottleneck or pre-activation block (He et al. 2016) on a real batch,
one operation at a time through the block's public `residual` and `shortcut`
modules, and reports the norm after every operation, then |x|, |F(x)|,
|F(x)+x| and the block output. Scaling the residual branch by s (y = s·F(x) +
x, the knob of the residual block explorer) shows how much of the output the
branch contributes; s = 0 is the shortcut alone. The FLOPs and parameters of
a basic and a bottleneck block at the same input/output width show why deep
ResNets use bottlenecks (He et al. 2015, sec. 4.1).

Norms are Frobenius norms over the whole batch. BatchNorm uses the batch's
statistics (training mode), as at the first step of training.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass

import torch
from torch import nn

from skiplab.nn.blocks import BasicBlock, Bottleneck, PreActBasicBlock, ResidualBlock
from skiplab.probes.common import check_float, check_int, choice
from skiplab.probes.cost import count_params, forward_flops
from skiplab.probes.results import Tabular
from skiplab.seeding import seeded

FORMS: tuple[str, ...] = ("basic", "bottleneck", "preact")
SWEEP: tuple[float, ...] = tuple(round(0.1 * i, 1) for i in range(1, 21))  # residual scales 0.1x..2.0x


@dataclass(frozen=True)
class OpNorm:
    name: str  # the operation's name inside the block (conv1, bn1, act1, ...; "input" for x)
    op: str  # its module type (Conv2d, BatchNorm2d, ReLU, Identity, ...)
    norm: float  # |tensor after this operation|
    shape: tuple[int, ...]  # of one example


@dataclass(frozen=True)
class ScalePoint:
    scale: float  # s in y = s·F(x) + shortcut(x)
    residual_norm: float  # |s·F(x)|
    sum_norm: float  # |s·F(x) + shortcut(x)|
    out_norm: float  # |post(s·F(x) + shortcut(x))|: the block's output
    residual_share: float  # |s·F(x)| / (|s·F(x)| + |shortcut(x)|): how much of the sum comes from the branch


@dataclass(frozen=True)
class BlockCost:
    form: str
    params: int
    flops: int  # forward, per example, 2 per multiply-add


@dataclass(frozen=True)
class BlockAnatomy(Tabular):
    form: str
    width: int  # channels into and out of the block
    scale: float  # the residual scale the norms below are measured at
    zero_init: bool  # the branch's last scale was zeroed: F(x) = 0
    x_norm: float  # |x|
    residual_norm: float  # |s·F(x)|
    shortcut_norm: float  # |shortcut(x)|
    sum_norm: float  # |s·F(x) + shortcut(x)|, the addition itself
    out_norm: float  # |post(...)|, after the post-activation (identity for pre-activation blocks)
    branch: tuple[OpNorm, ...]  # norm after every operation of the residual branch, from x on
    shortcut: tuple[OpNorm, ...]  # the same along the shortcut
    sweep: tuple[ScalePoint, ...]  # the scales 0.1x..2.0x
    costs: tuple[BlockCost, ...]  # basic vs bottleneck at this width
    residual_share: float  # |s·F(x)| / (|s·F(x)| + |shortcut(x)|) at this scale
    explanation: str  # the measurement in one sentence: who dominates the sum, and what the output keeps
    cost_comparison: str  # the measured costs in one sentence: how a bottleneck compares with a basic block

    _rows_field = "sweep"
    _plot_x = "scale"
    _plot_y = ("residual_norm", "sum_norm", "out_norm")

    def to_dict(self) -> dict:
        return asdict(self)


def explain(scale: float, residual: float, shortcut: float, total: float, share: float) -> str:
    """One sentence reading the measured norms: a small correction (share < 0.3), a balance (< 0.6), or not."""
    nums = f"|s·F(x)| = {residual:.3g} against |x| = {shortcut:.3g}, so the sum |s·F(x) + x| is {total:.3g}"
    if share < 0.3:
        return f"At {scale:g}× the branch is a small correction: {nums} — the block is close to its shortcut."
    if share < 0.6:
        return (
            f"At {scale:g}× branch and shortcut are of similar size: {nums}, larger than either "
            "because the two are nearly uncorrelated at initialisation."
        )
    return f"At {scale:g}× the branch dominates: {nums} — the block behaves more like a plain layer."


def compare_costs(costs: tuple[BlockCost, ...], width: int, size: int) -> str:
    """One sentence reading the measured costs of a basic and a bottleneck block of the same width.

    The verdict follows the FLOPs ratio bottleneck/basic: "far cheaper" below 0.5x, "cheaper" below 0.8x,
    "about as cheap" up to 1.25x, "costlier" above; the ratio itself is said too.
    """
    by = {c.form: c for c in costs}
    basic, bottleneck = by["basic"], by["bottleneck"]
    ratio = bottleneck.flops / basic.flops
    if ratio < 0.5:
        verdict = "far cheaper"
    elif ratio < 0.8:
        verdict = "cheaper"
    elif ratio <= 1.25:
        verdict = "about as cheap"
    else:
        verdict = "costlier"
    return (
        f"At {width} channels in and out, a bottleneck block ({width} → {width // 4} → {width}) has "
        f"{bottleneck.params:,} parameters and {bottleneck.flops:,} FLOPs per {size}×{size} example, a basic block "
        f"{basic.params:,} and {basic.flops:,}: the bottleneck is {verdict}, {ratio:.2g}× the basic block's FLOPs."
    )


def make_block(form: str, width: int, activation: str = "relu") -> ResidualBlock:
    """A block with `width` channels in and out: basic, bottleneck (inner width/4, as He et al.) or preact."""
    choice("form", form, FORMS)
    if form == "bottleneck":
        return Bottleneck(width, width // 4, 1, "identity", activation)
    if form == "preact":
        return PreActBasicBlock(width, width, 1, "identity", activation)
    return BasicBlock(width, width, 1, "identity", activation)


def _walk(ops: nn.Module, x: torch.Tensor) -> list[tuple[str, nn.Module, torch.Tensor]]:
    """Apply a Sequential one child at a time (any other module whole), keeping every intermediate tensor."""
    children = list(ops.named_children()) if isinstance(ops, nn.Sequential) else [(type(ops).__name__.lower(), ops)]
    steps, h = [], x
    for name, op in children:
        h = op(h)
        steps.append((name, op, h))
    return steps


def block_costs(width: int, size: int) -> tuple[BlockCost, ...]:
    """Parameters and forward FLOPs of a basic and a bottleneck block with `width` channels in and out."""
    out = []
    x = torch.zeros(1, width, size, size)
    for form in ("basic", "bottleneck"):
        block = make_block(form, width).eval()
        out.append(BlockCost(form, count_params(block), forward_flops(block, x)))
    return tuple(out)


def block_anatomy(
    form: str = "basic",
    width: int = 16,
    size: int = 8,
    batch: int = 8,
    scale: float = 1.0,
    zero_init: bool = False,
    activation: str = "relu",
    seed: int = 0,
) -> BlockAnatomy:
    """Norms inside one freshly initialised residual block on a standard-normal batch.

    form: basic | bottleneck | preact; width 4..512 channels (a multiple of 4,
    the bottleneck's inner width is width/4); size 1..64 pixels; batch 2..256;
    scale 0..2 (the residual scale s); zero_init zeroes the branch's last
    scale so that F(x) = 0 and the block is exactly its shortcut.
    """
    choice("form", form, FORMS)
    check_int("width", width, 4, 512)
    if width % 4:
        raise ValueError(f"width must be a multiple of 4 (a bottleneck's inner width is width/4); got {width}")
    check_int("size", size, 1, 64)
    check_int("batch", batch, 2, 256)
    scale = check_float("scale", scale, 0.0, 2.0)
    check_int("seed", seed, 0, 2**31 - 1)
    return _anatomy(form, width, size, batch, scale, zero_init, activation, seed)


def _anatomy(
    form: str, width: int, size: int, batch: int, scale: float, zero_init: bool, activation: str, seed: int
) -> BlockAnatomy:
    with seeded(seed):
        block = make_block(form, width, activation)
        x = torch.randn(batch, width, size, size)
    if zero_init:
        block.zero_init_last()
    with torch.no_grad():
        block.train()
        branch = _walk(block.residual, x)
        shortcut = _walk(block.shortcut, x)
        f, s = branch[-1][2], shortcut[-1][2]
        scales = sorted({*SWEEP, scale})
        sums = [k * f + s for k in scales]
        outs = [block.post(t) for t in sums]
        # Every norm in one vectorised call and one copy to Python.
        tensors = [x, f, s] + [t for *_, t in branch + shortcut] + sums + outs
        norms = torch.stack(torch._foreach_norm(tensors)).double().tolist()
    x_n, f_n, s_n = norms[:3]
    op_norms = iter(norms[3 : 3 + len(branch) + len(shortcut)])
    sum_norms = norms[3 + len(branch) + len(shortcut) :]
    sweep_norms = sum_norms  # sums, then outputs
    shape = tuple(x.shape[1:])
    branch_norms = [OpNorm("input", "Tensor", x_n, shape)]
    branch_norms += [OpNorm(n, type(op).__name__, next(op_norms), tuple(t.shape[1:])) for n, op, t in branch]
    shortcut_norms = [OpNorm("input", "Tensor", x_n, shape)]
    shortcut_norms += [OpNorm(n, type(op).__name__, next(op_norms), tuple(t.shape[1:])) for n, op, t in shortcut]
    points = []
    for i, k in enumerate(scales):
        r = k * f_n
        points.append(ScalePoint(k, r, sweep_norms[i], sweep_norms[len(scales) + i], r / (r + s_n) if r + s_n else 0.0))
    at = points[scales.index(scale)]
    costs = block_costs(width, size)
    return BlockAnatomy(
        form=form,
        width=width,
        scale=scale,
        zero_init=zero_init,
        x_norm=x_n,
        residual_norm=at.residual_norm,
        shortcut_norm=s_n,
        sum_norm=at.sum_norm,
        out_norm=at.out_norm,
        branch=tuple(branch_norms),
        shortcut=tuple(shortcut_norms),
        sweep=tuple(p for p in points if p.scale in SWEEP),
        costs=costs,
        residual_share=at.residual_share,
        explanation=explain(scale, at.residual_norm, s_n, at.sum_norm, at.residual_share),
        cost_comparison=compare_costs(costs, width, size),
    )
