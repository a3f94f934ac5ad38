"""Points in weight space: the directions a loss landscape moves along, and a model evaluated at any point.

Shared by `skiplab.probes.landscape` (planes and lines) and
`skiplab.probes.hessian` (sharpness at the model's weights). See the
landscape module for the paper (Li et al. 2018) and the choices made.
"""

from __future__ import annotations

import copy
import math
import queue
from collections.abc import Mapping, Sequence
from concurrent.futures import ThreadPoolExecutor

import torch
from torch import nn
from torch.func import functional_call, replace_all_batch_norm_modules_, vmap

from skiplab.probes.bnfold import fold_batchnorm
from skiplab.probes.common import OutputChoice, call_model, denormals_flushed, output_tensor
from skiplab.probes.targets import LossChoice, compute_loss

# ------------------------------------------------------------------ directions


def trainable(model: nn.Module) -> dict[str, torch.Tensor]:
    """The parameters a landscape moves: every one that requires grad, by name, detached."""
    return {n: p.detach() for n, p in model.named_parameters() if p.requires_grad}


def filter_normalized_direction(
    weights: Mapping[str, torch.Tensor], generator: torch.Generator
) -> dict[str, torch.Tensor]:
    """A Gaussian direction with each filter scaled to the norm of the same filter of `weights` (Li et al., sec. 4).

    A filter is a slice along the first dimension (a conv output channel, a
    linear layer's row). 1-D parameters (biases, BatchNorm weights and
    biases) get a zero direction, as the paper does. Drawn on the CPU from
    `generator`, in the order of `weights`, so a seed gives the same
    direction on any machine.
    """
    out = {}
    for name, w in weights.items():
        if w.dim() <= 1:
            out[name] = torch.zeros_like(w)
            continue
        d = torch.randn(w.shape, generator=generator, dtype=torch.float32).to(w.dtype).to(w.device)
        w_norm = w.reshape(len(w), -1).norm(dim=1)
        d_norm = d.reshape(len(d), -1).norm(dim=1)
        scale = w_norm / d_norm.clamp_min(torch.finfo(d.dtype).tiny)
        out[name] = d * scale.view(-1, *([1] * (w.dim() - 1)))
    return out


def check_like(option: str, given: Mapping[str, torch.Tensor], weights: Mapping[str, torch.Tensor]) -> None:
    if not isinstance(given, Mapping) or set(given) != set(weights):
        missing, extra = sorted(set(weights) - set(given or {})), sorted(set(given or {}) - set(weights))
        raise ValueError(
            f"{option} must map every trainable parameter's name to a tensor of its shape "
            f"(missing {missing[:3]}, unknown {extra[:3]})"
        )
    bad = [n for n, w in weights.items() if not isinstance(given[n], torch.Tensor) or given[n].shape != w.shape]
    if bad:
        raise ValueError(f"{option}: {bad[0]} must be a tensor of shape {tuple(weights[bad[0]].shape)}")


# ------------------------------------------------------------------ evaluating points


def private_copy(model: nn.Module, bn: str) -> nn.Module:
    """A copy of `model` in eval mode that a landscape can run without touching the caller's model."""
    net = copy.deepcopy(model).eval()
    if bn == "batch":
        replace_all_batch_norm_modules_(net)  # running statistics dropped: BN uses the batch's own
    for p in net.parameters():
        p.requires_grad_(False)
    return net


def _wide(out: torch.Tensor) -> torch.Tensor:
    """Half-precision outputs are scored in float32 (float32 and float64 as they are)."""
    return out.float() if out.dtype in (torch.float16, torch.bfloat16) else out


class PointEvaluator:
    """The loss and accuracy of the model at base + Σ c_i · d_i, one point or `k` points per call."""

    def __init__(
        self, model, x, y, base, dirs, bn: str, loss: LossChoice, output: OutputChoice, fold: bool = True
    ) -> None:
        self.net = private_copy(model, bn)
        # Eval-mode BatchNorm folded into the convolutions before it (skiplab.probes.bnfold): the same function,
        # a third less time a forward on the 1-D ResNets. Batch statistics change with every point: not folded.
        self.folded = fold_batchnorm(self.net) if fold and bn == "running" else None
        self.module = self.folded.module if self.folded is not None else self.net
        self.buffers = dict(self.module.named_buffers())
        self.x, self.y, self.loss, self.output = x, y, loss, output
        self.base, self.dirs = base, dirs
        # Parameters whose directions are all zero stay the base tensor: vmap need not stack them.
        self.moving = [n for n in base if any(bool(d[n].any()) for d in dirs)]
        self.fixed = {n: base[n] for n in base if n not in self.moving}

    def _weights(self, c: Sequence[float]) -> dict[str, torch.Tensor]:
        out = dict(self.fixed)
        for n in self.moving:
            w = self.base[n].clone()
            for ci, d in zip(c, self.dirs):
                w.add_(d[n], alpha=ci)
            out[n] = w
        return out

    def _score(self, out: torch.Tensor) -> tuple[float | None, float | None]:
        value = compute_loss(out, self.y, self.loss).item()
        acc = None
        if out.dim() == 2 and self.y is not None and not self.y.is_floating_point():
            acc = (out.argmax(1) == self.y).float().mean().item()
        return (value if math.isfinite(value) else None), acc

    def one(self, c: Sequence[float]) -> tuple[float | None, float | None]:
        with torch.inference_mode():
            out = output_tensor(call_model(lambda *a, **k: self._call(self._weights(c), a, k), self.x), self.output)
            return self._score(_wide(out))

    @property
    def folded_layers(self) -> int:
        return len(self.folded.folds) if self.folded is not None else 0

    def _call(self, weights: dict, args: tuple, kwargs: dict):
        if self.folded is not None:
            weights = self.folded.weights(weights)
        return functional_call(self.module, (weights, self.buffers), args, kwargs)

    def many(self, cs: Sequence[Sequence[float]]) -> list[tuple[float | None, float | None]]:
        coeffs = torch.tensor(cs, dtype=torch.float32)
        stacked = {}
        for n in self.moving:
            w = self.base[n].unsqueeze(0).repeat(len(cs), *([1] * self.base[n].dim()))
            for i, d in enumerate(self.dirs):
                shape = (len(cs),) + (1,) * d[n].dim()
                w.add_(coeffs[:, i].to(w.dtype).view(shape) * d[n].unsqueeze(0))
            stacked[n] = w

        def forward(moving: dict) -> torch.Tensor:
            call = lambda *a, **k: self._call({**self.fixed, **moving}, a, k)  # noqa: E731
            return output_tensor(call_model(call, self.x), self.output)

        with torch.inference_mode():
            outs = vmap(forward)(stacked)
            return [self._score(_wide(o)) for o in outs]


class ParallelPoints:
    """Chunks of points scored by several `PointEvaluator`s at once, one per thread; a context manager.

    An evaluator runs its model through `functional_call`, which swaps the
    module's tensors while it runs, so no two threads may share one: each
    chunk borrows a free evaluator and gives it back. The threads flush
    subnormals as the caller's does (a per-thread setting), so the numbers
    equal those of one evaluator scoring every chunk in turn.
    """

    def __init__(self, evaluators: Sequence[PointEvaluator]) -> None:
        self.evaluators = list(evaluators)
        self.free: queue.SimpleQueue[PointEvaluator] = queue.SimpleQueue()
        for e in self.evaluators:
            self.free.put(e)
        self.executor: ThreadPoolExecutor | None = None

    def __enter__(self) -> ParallelPoints:
        if len(self.evaluators) > 1:
            flush = denormals_flushed()
            self.executor = ThreadPoolExecutor(
                len(self.evaluators), initializer=torch.set_flush_denormal, initargs=(flush,)
            )
        return self

    def __exit__(self, *exc) -> None:
        if self.executor is not None:
            self.executor.shutdown(cancel_futures=True)
            self.executor = None

    @property
    def folded_layers(self) -> int:
        return self.evaluators[0].folded_layers

    def _chunk(self, chunk: Sequence[Sequence[float]]) -> list[tuple[float | None, float | None]]:
        e = self.free.get()
        try:
            return [e.one(chunk[0])] if len(chunk) == 1 else e.many(chunk)
        finally:
            self.free.put(e)

    def score(self, chunks: Sequence[Sequence[Sequence[float]]]) -> list[tuple[float | None, float | None]]:
        """(loss, accuracy) of every point of `chunks`, in order; a chunk of several points is one vmap call."""
        done = self.executor.map(self._chunk, chunks) if self.executor is not None else map(self._chunk, chunks)
        return [s for scores in done for s in scores]
