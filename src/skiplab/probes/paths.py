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

import torch
import torch.nn.functional as F

from skiplab.nn.blocks import ResidualBlock
from skiplab.nn.models import SkipNet
from skiplab.nn.shortcuts import NoShortcut
from skiplab.nn.stacks import StackConfig
from skiplab.probes.common import check_int, seeded_stack
from skiplab.probes.results import Tabular


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


def _residual_blocks(model: SkipNet) -> list[ResidualBlock]:
    blocks = [b for _, b in model.named_blocks()]
    bad = [type(b).__name__ for b in blocks if not isinstance(b, ResidualBlock) or isinstance(b.shortcut, NoShortcut)]
    if bad:
        raise ValueError(f"model: every block must be a residual block with a shortcut; found {', '.join(set(bad))}")
    return blocks


def gradient_by_path_length(
    model: SkipNet | None = None,
    x: torch.Tensor | None = None,
    y: torch.Tensor | None = None,
    *,
    blocks: int = 10,
    samples: int = 4,
    seed: int = 0,
) -> PathGradients:
    """Gradient magnitude carried by paths of each length, measured as Veit et al. 2016 did.

    model: a `SkipNet` of residual blocks (None: a fresh pre-activation
    residual MLP of `blocks` blocks, width 64, on a synthetic batch of 64);
    x, y: its batch (needed with a model). samples: paths sampled per length
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
    if x is None or y is None:
        raise ValueError("x and y are required when a model is given")
    return _path_gradients(model, x, y, samples, seed)


def _path_gradients(model: SkipNet, x: torch.Tensor, y: torch.Tensor, samples: int, seed: int) -> PathGradients:
    if not isinstance(model, SkipNet):
        raise ValueError(f"model must be a SkipNet (with named_blocks); got {type(model).__name__}")
    chain = _residual_blocks(model)
    n = len(chain)
    # A forward in training mode moves BatchNorm's running statistics: put every buffer back.
    buffers = list(model.buffers())
    saved = [b.clone() for b in buffers]
    try:
        per_length = _sample_paths(model, chain, x, y, samples, seed)
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


def _sample_paths(
    model: SkipNet, chain: list[ResidualBlock], x: torch.Tensor, y: torch.Tensor, samples: int, seed: int
) -> list[float]:
    """Mean input-gradient norm of `samples` random paths of every length 0..n (as lists by length)."""
    with torch.enable_grad():
        # 1. One forward through the whole network, keeping each block's pieces as separate graph ends.
        h = model.forward_stem(x).detach()
        pieces = []  # per block: (input leaf, F(x), shortcut(x), pre-activation sum, block output)
        for block in chain:
            inp = h.requires_grad_()
            f, s = block.residual(inp), block.shortcut(inp)
            pre = (f + s).detach().requires_grad_()
            out = block.post(pre)
            pieces.append((inp, f, s, pre, out))
            h = out.detach()
        h.requires_grad_()
        loss = F.cross_entropy(model.forward_head(h), y)
        top = torch.autograd.grad(loss, h)[0]
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


def _path_norms(pieces: list, top: torch.Tensor, on_path: torch.Tensor) -> torch.Tensor:
    """|dL/dx| along each path (a row of `on_path`: True where it passes a block's branch), top to bottom."""
    grad = top.expand(on_path.shape[0], *top.shape)
    for i in reversed(range(len(pieces))):
        inp, f, s, pre, out = pieces[i]
        if out is not pre:
            grad = torch.autograd.grad(out, pre, grad, retain_graph=True, is_grads_batched=True)[0]
        branch = on_path[:, i]
        if bool(branch.all()):
            grad = _through(f, inp, grad)
        elif not bool(branch.any()):
            grad = _through(s, inp, grad)
        else:
            new = grad.clone() if s is inp else grad.new_empty((grad.shape[0], *inp.shape))
            new[branch] = _through(f, inp, grad[branch])
            if s is not inp:
                new[~branch] = _through(s, inp, grad[~branch])
            grad = new
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
