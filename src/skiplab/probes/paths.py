"""Residual networks as ensembles of paths (Veit, Wilber & Belongie 2016).

Unrolled, n residual blocks y = x + F(x) form 2^n paths from input to
output: each block is either passed through its residual branch or skipped
by its shortcut. The number of paths through exactly k branches is C(n, k),
so path lengths follow a binomial distribution (mean n/2).

Veit et al. measured how much gradient each path length carries: forward the
whole network once, then in the backward pass send the gradient through the
residual branch of k randomly chosen blocks and through the shortcut of all
others. The norm of the resulting input gradient is that of one path of length
k; times C(n, k) it is the gradient all paths of length k carry together. In a
110-layer ResNet almost all of it comes from short paths (5-17 blocks of 54).
`gradient_by_path_length` repeats the measurement on a real network here.
"""

from __future__ import annotations

import math
from dataclasses import asdict, dataclass
from typing import Any

import torch
from torch import nn

from skiplab.nn.models import SkipNet
from skiplab.nn.shortcuts import NoShortcut
from skiplab.nn.stacks import StackConfig
from skiplab.probes.common import Inputs, call_model, check_inputs, check_int, output_tensor, seeded_stack
from skiplab.probes.results import Tabular
from skiplab.probes.targets import LossChoice, compute_loss, first_tensor_argument


@dataclass(frozen=True)
class PathDistribution(Tabular):
    n: int  # residual blocks
    counts: tuple[int, ...]  # counts[k] = C(n, k) paths through exactly k residual branches
    total: int  # 2^n
    fractions: tuple[float, ...]  # counts / total
    mean: float  # n/2
    std: float  # sqrt(n)/2

    _plot_x = "length"
    _plot_y = ("fraction",)

    def _table(self) -> tuple[str, list[dict]]:
        rows = [{"length": k, "paths": c, "fraction": f} for k, (c, f) in enumerate(zip(self.counts, self.fractions))]
        return "lengths", rows

    def to_dict(self) -> dict:
        d = asdict(self)
        # Counts beyond 2^53 lose precision in JSON numbers (JavaScript): send them as strings too.
        d["counts_str"] = [str(c) for c in self.counts]
        d["total_str"] = str(self.total)
        return d


def path_length_distribution(n: int) -> PathDistribution:
    """The exact number of paths of each length through n residual blocks (1..1000)."""
    check_int("n", n, 1, 1000)
    counts = tuple(math.comb(n, k) for k in range(n + 1))
    total = 2**n
    return PathDistribution(n, counts, total, tuple(c / total for c in counts), n / 2, math.sqrt(n) / 2)


@dataclass(frozen=True)
class PathGradient:
    length: int  # k: residual branches on the path
    per_path: float  # mean |dL/dx| carried by one path of length k (over the sampled paths)
    paths: int  # C(n, k)
    total: float  # per_path · C(n, k): all paths of this length together
    share: float  # total / the sum over all lengths


@dataclass(frozen=True)
class PathGradients(Tabular):
    blocks: int
    samples: int  # paths sampled per length
    lengths: tuple[PathGradient, ...]
    effective_range: tuple[int, int]  # the narrowest range of lengths carrying 90% of the total gradient
    mean_length: float  # gradient-weighted mean path length

    _plot_x = "length"
    _plot_y = ("share",)

    def to_dict(self) -> dict:
        return asdict(self)


def gradient_by_path_length(
    model: nn.Module | None = None,
    x: Inputs | None = None,
    y: torch.Tensor | None = None,
    *,
    blocks: int = 10,
    samples: int = 4,
    seed: int = 0,
    loss: LossChoice = "auto",
) -> PathGradients:
    """Gradient magnitude carried by paths of each length, measured as Veit et al. 2016 did.

    model: any module whose blocks declare the residual form (`residual_blocks`;
    None: a fresh pre-activation residual MLP of `blocks` blocks, width 64, on
    a synthetic batch of 64); x: its input (a tensor, tuple or dict), y: its
    targets, loss: a name or a callable, as for `gradient_flow`. samples: paths sampled per length
    (1..1000). All sampled paths go back through the network together, as
    batched vector-Jacobian products in chunks of bounded memory, each path
    through its branch or its shortcut only: 1,000 paths (samples=18) of the
    54-block default take about 1.6 s on one CPU thread. The model is run in
    its current mode; nothing in it changes (its BatchNorm statistics and
    other buffers are restored, no `.grad` is written).
    """
    check_int("samples", samples, 1, 1000)
    check_int("seed", seed, 0, 2**31 - 1)
    if model is None:
        check_int("blocks", blocks, 1, 200)
        cfg = StackConfig(depth=blocks, skip="identity", preact=True, norm="batch")
        g = torch.Generator().manual_seed(seed)
        x = torch.randn(64, *cfg.in_shape, generator=g)
        y = torch.randint(0, cfg.num_classes, (64,), generator=g)
        with seeded_stack(cfg, seed) as fresh:
            return _path_gradients(fresh, x, y, samples, seed)
    if x is None or (y is None and not callable(loss)):
        raise ValueError("x and y are required when a model is given (y may be None with a callable loss)")
    return _path_gradients(model, x, y, samples, seed, loss)


def residual_blocks(model: nn.Module) -> list[tuple[str, nn.Module]]:
    """The blocks of `model` that declare the form y = post(F(x) + shortcut(x)), in registration order.

    A block declares it with a `residual` module (F) and a `shortcut` module
    (an `nn.Identity` for an identity shortcut), and optionally `post` (what
    follows the addition; the identity if absent): the zoo's `ResidualBlock`,
    or any user block built the same way. A SkipNet's blocks are its
    `named_blocks()`; elsewhere the outermost modules that declare the form.
    The probe checks that each block's own output equals that form.
    """
    if isinstance(model, SkipNet):
        found = model.named_blocks()
    else:
        found = []
        for name, m in model.named_modules():
            declares = isinstance(getattr(m, "residual", None), nn.Module) and isinstance(
                getattr(m, "shortcut", None), nn.Module
            )
            if declares and not any(name.startswith(f"{outer}.") for outer, _ in found):
                found.append((name, m))
    if not found:
        raise ValueError(
            f"model: no residual blocks found in {type(model).__name__}; a block declares its form with "
            "`residual` and `shortcut` submodules (and optionally `post`), as skiplab.nn.ResidualBlock does"
        )
    bad = [name or type(b).__name__ for name, b in found if not _declares(b) or isinstance(b.shortcut, NoShortcut)]
    if bad:
        raise ValueError(f"model: every block must be a residual block with a shortcut; not {', '.join(bad)}")
    return found


def _declares(block: nn.Module) -> bool:
    return isinstance(getattr(block, "residual", None), nn.Module) and isinstance(
        getattr(block, "shortcut", None), nn.Module
    )


def _path_gradients(
    model: nn.Module, x: Inputs, y: torch.Tensor | None, samples: int, seed: int, loss: LossChoice = "auto"
) -> PathGradients:
    chain = residual_blocks(model)
    n = len(chain)
    # A forward in training mode moves BatchNorm's running statistics: put every buffer back.
    buffers = list(model.buffers())
    saved = [b.clone() for b in buffers]
    try:
        per_length = _sample_paths(model, chain, check_inputs(x), y, samples, seed, loss)
    finally:
        with torch.no_grad():
            for b, s in zip(buffers, saved):
                b.copy_(s)
    totals = [per_length[k] * math.comb(n, k) for k in range(n + 1)]
    grand = sum(totals)
    lengths = tuple(
        PathGradient(k, per_length[k], math.comb(n, k), totals[k], totals[k] / grand if grand else 0.0)
        for k in range(n + 1)
    )
    return PathGradients(n, samples, lengths, _effective_range(totals), _weighted_mean(totals))


PATH_CHUNK_ELEMENTS = 2**24  # gradient elements carried at once (64 MiB of float32): paths go through in chunks


@dataclass
class _Piece:
    """One block of the unrolled forward, each part a separate end of the graph.

    `link` is the block's input as the network computed it from the previous block's output `prev`
    (through whatever lies between blocks); `inp` a leaf copy of it that the block's branches start from.
    """

    name: str
    link: torch.Tensor
    prev: torch.Tensor | None
    inp: torch.Tensor
    f: torch.Tensor
    s: torch.Tensor
    pre: torch.Tensor
    out: torch.Tensor
    leaf: torch.Tensor


def _unrolled_forward(model: nn.Module, chain: list[tuple[str, nn.Module]], x: Inputs) -> tuple[Any, list[_Piece]]:
    """The model's forward with every block cut into F(x), shortcut(x) and what follows their sum.

    Hooks on each block swap its input for a leaf copy and its output for a leaf copy of
    post(F(x) + shortcut(x)), after checking that this equals what the block computed itself.
    """
    pieces: list[_Piece] = []
    names = {id(b): name for name, b in chain}

    def before(block, args, kwargs):
        where = first_tensor_argument(args, kwargs)
        link = args[where] if isinstance(where, int) else kwargs[where]
        inp = link.detach().requires_grad_()
        pieces.append(_Piece(names[id(block)], link, pieces[-1].leaf if pieces else None, inp, *[inp] * 5))
        if isinstance(where, int):
            return (*args[:where], inp, *args[where + 1 :]), kwargs
        return args, {**kwargs, where: inp}

    def after(block, args, kwargs, output):
        piece = pieces[-1]
        piece.f, piece.s = block.residual(piece.inp), block.shortcut(piece.inp)
        piece.pre = (piece.f + piece.s).detach().requires_grad_()
        post = getattr(block, "post", None)
        piece.out = post(piece.pre) if post is not None else piece.pre
        if not isinstance(output, torch.Tensor) or not torch.allclose(output, piece.out, rtol=1e-4, atol=1e-6):
            raise ValueError(
                f"model: block {piece.name or type(block).__name__} does not compute post(residual(x) + shortcut(x)) "
                "(in train mode, dropout and the like differ from call to call: probe it in eval mode)"
            )
        piece.leaf = piece.out.detach().requires_grad_()
        return piece.leaf

    handles = []
    for _, block in chain:
        handles.append(block.register_forward_pre_hook(before, with_kwargs=True))
        handles.append(block.register_forward_hook(after, with_kwargs=True))
    try:
        out = call_model(model, x)
    finally:
        for h in handles:
            h.remove()
    if [p.name for p in pieces] != [name for name, _ in chain]:
        raise ValueError("model: every residual block must run exactly once per forward, one after another")
    return out, pieces


def _sample_paths(
    model: nn.Module,
    chain: list[tuple[str, nn.Module]],
    x: Inputs,
    y: torch.Tensor | None,
    samples: int,
    seed: int,
    loss: LossChoice,
) -> list[float]:
    """Mean input-gradient norm of `samples` random paths of every length 0..n (as lists by length)."""
    with torch.enable_grad():
        # 1. One forward through the whole network, keeping each block's pieces as separate graph ends.
        out, pieces = _unrolled_forward(model, chain, x)
        top = torch.autograd.grad(compute_loss(output_tensor(out), y, loss), pieces[-1].leaf)[0]
        # 2. The sampled paths: which blocks' branches each one passes through.
        n = len(chain)
        g = torch.Generator().manual_seed(seed)
        on_path = torch.zeros(n + 1, samples, n, dtype=torch.bool)  # [length k, sample, block]
        for k in range(1, n + 1):
            for j in range(samples):
                on_path[k, j, torch.randperm(n, generator=g)[:k]] = True
        on_path = on_path.reshape((n + 1) * samples, n)
        # 3. Many paths at once: batched vector-Jacobian products per block, each path through its branch or
        # its shortcut only (an identity shortcut costs nothing), in chunks that bound the memory.
        chunk = max(1, PATH_CHUNK_ELEMENTS // top.numel())
        norms = torch.cat(
            [_path_norms(pieces, top, on_path[i : i + chunk]) for i in range(0, on_path.shape[0], chunk)]
        )
    return norms.view(n + 1, samples).mean(1).tolist()


def _path_norms(pieces: list[_Piece], top: torch.Tensor, on_path: torch.Tensor) -> torch.Tensor:
    """|dL/dx| at the first block's input along each path (a row of `on_path`: True where it takes a branch)."""
    grad = top.expand(on_path.shape[0], *top.shape)
    for i in reversed(range(len(pieces))):
        p = pieces[i]
        if p.out is not p.pre:
            grad = torch.autograd.grad(p.out, p.pre, grad, retain_graph=True, is_grads_batched=True)[0]
        branch = on_path[:, i]
        if bool(branch.all()):
            grad = _through(p.f, p.inp, grad)
        elif not bool(branch.any()):
            grad = _through(p.s, p.inp, grad)
        else:
            new = grad.clone() if p.s is p.inp else grad.new_empty((grad.shape[0], *p.inp.shape))
            new[branch] = _through(p.f, p.inp, grad[branch])
            if p.s is not p.inp:
                new[~branch] = _through(p.s, p.inp, grad[~branch])
            grad = new
        if i > 0 and p.link is not p.prev:  # what lies between two blocks is on every path
            grad = _through(p.link, p.prev, grad)
    return grad.flatten(1).norm(dim=1)


def _through(branch: torch.Tensor, inp: torch.Tensor, grad: torch.Tensor) -> torch.Tensor:
    """Batched vector-Jacobian products through one branch (an identity shortcut passes the gradient as is)."""
    if branch is inp:
        return grad
    out = torch.autograd.grad(branch, inp, grad, retain_graph=True, allow_unused=True, is_grads_batched=True)[0]
    return torch.zeros_like(grad) if out is None else out


def _effective_range(totals: list[float]) -> tuple[int, int]:
    """The narrowest window of lengths whose totals add up to at least 90% of the sum."""
    grand = sum(totals)
    if grand <= 0:
        return (0, len(totals) - 1)
    best = (0, len(totals) - 1)
    for lo in range(len(totals)):
        acc = 0.0
        for hi in range(lo, len(totals)):
            acc += totals[hi]
            if acc >= 0.9 * grand:
                if hi - lo < best[1] - best[0]:
                    best = (lo, hi)
                break
    return best


def _weighted_mean(totals: list[float]) -> float:
    grand = sum(totals)
    return sum(k * t for k, t in enumerate(totals)) / grand if grand else 0.0
