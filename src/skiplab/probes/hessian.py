"""Sharpness: the extreme eigenvalues of the loss's Hessian, from Hessian-vector products.

Beside its loss surfaces, Li et al. 2018 (sec. 7, Fig. 7) report the
Hessian's eigenvalues: λmax (the sharpest curvature) and the ratio
|λmin/λmax|, near 0 where the loss is locally convex and large where it
curves down as strongly as up. Neither needs the Hessian itself, which has
(parameters)² entries: `Hv` costs one double backward (Pearlmutter 1994),
and power iteration on it finds the eigenvalues of largest magnitude (each
later one deflated against those found, as PyHessian does).

The smallest (most negative) eigenvalue is found as Li et al.'s code finds
it: Lanczos (ARPACK's `eigsh`, through scipy) on the shifted operator
H − 0.51·λmax·I, whose largest-magnitude eigenvalue is then λmin's image.
Power iteration is no good there: at a trained minimum most eigenvalues
crowd near zero, the iteration creeps, and a random start's Rayleigh
quotient (the bulk's mean) already has a small residual, so it looks
converged at once (measured on a trained ResNet-20 here: +0.004 after one
step, where Lanczos finds −0.80). A Lanczos Ritz value is still an upper
bound of λmin: the true λmin is at most the value reported.

The Hessian is with respect to every trainable parameter (BatchNorm's
included) at the model's own weights, on one batch, with the BatchNorm
statistics stated as for the landscapes (`skiplab.probes.landscape`).
"""

from __future__ import annotations

import time
from collections.abc import Callable, Sequence
from dataclasses import asdict, dataclass

import numpy as np
import torch
from scipy.sparse.linalg import ArpackNoConvergence, LinearOperator, eigsh
from torch import nn
from torch.func import functional_call

from skiplab.probes.common import Inputs, OutputChoice, batch_size, call_model, check_int, output_tensor
from skiplab.probes.landscape import bn_statistics, checked_data
from skiplab.probes.results import Tabular
from skiplab.probes.targets import LossChoice, compute_loss
from skiplab.probes.weightspace import private_copy, trainable

__all__ = ["Eigen", "HessianSpectrum", "hessian_spectrum"]

Vector = list[torch.Tensor]


@dataclass(frozen=True)
class Eigen:
    which: str  # top-1, top-2, ... (largest magnitude) | smallest
    value: float
    iterations: int  # Hessian-vector products spent on it
    residual: float  # ‖Hv − λv‖ at the end: some eigenvalue of H lies within this of `value`
    converged: bool  # top: residual ≤ tol·|λ|; smallest: ARPACK converged; both before the cap

    def to_dict(self) -> dict:
        return asdict(self)


@dataclass(frozen=True)
class HessianSpectrum(Tabular):
    eigenvalues: tuple[Eigen, ...]  # the top ones, then the smallest
    lambda_max: float
    lambda_min: float
    ratio: float | None  # |λmin / λmax| (None when λmax is 0)
    loss: float  # at the model's weights, on the batch
    parameters: int
    examples: int
    bn: str
    bn_statistics: str
    hessian_vector_products: int
    seconds: float

    def to_dict(self) -> dict:
        return asdict(self)


def _dot(a: Vector, b: Vector) -> torch.Tensor:
    return sum((x * y).sum() for x, y in zip(a, b))


def _normalised(v: Vector) -> Vector:
    norm = torch.sqrt(_dot(v, v)).clamp_min(torch.finfo(v[0].dtype).tiny)
    return [x / norm for x in v]


def _hvp_operator(model, x, y, bn: str, loss: LossChoice, output: OutputChoice) -> tuple[Callable, float, Vector]:
    """(v ↦ Hv, the loss, the parameters): one forward and backward kept for every product."""
    net = private_copy(model, bn)
    buffers = dict(net.named_buffers())
    params = {n: w.clone().requires_grad_(True) for n, w in trainable(model).items()}
    leaves = list(params.values())
    with torch.enable_grad():
        out = output_tensor(call_model(lambda *a, **k: functional_call(net, (params, buffers), a, k), x), output)
        value = compute_loss(out, y, loss)
        grads = torch.autograd.grad(value, leaves, create_graph=True, allow_unused=True)
    live = [i for i, g in enumerate(grads) if g is not None and g.requires_grad]

    def hvp(v: Vector) -> Vector:
        if not live:
            return [torch.zeros_like(p) for p in leaves]
        with torch.enable_grad():
            found = torch.autograd.grad(
                [grads[i] for i in live],
                leaves,
                grad_outputs=[v[i] for i in live],
                retain_graph=True,
                allow_unused=True,
            )
        return [torch.zeros_like(p) if h is None else h.detach() for p, h in zip(leaves, found)]

    return hvp, value.item(), [p.detach() for p in leaves]


def _power(
    apply: Callable[[Vector], Vector], start: Vector, iters: int, tol: float, scale: Callable[[float], float]
) -> tuple[float, Vector, int, float]:
    """Dominant eigenvalue of `apply` from `start`: (λ, v, iterations, residual ‖Av − λv‖).

    Stops once the residual is at most tol · scale(λ): for a symmetric operator some eigenvalue then lies
    within the residual of λ (a bound, unlike a small change of λ between steps, which a slowly turning
    vector also shows).
    """
    v = _normalised(start)
    value, residual = 0.0, float("inf")
    for it in range(1, iters + 1):
        w = apply(v)
        value = _dot(w, v).item()
        residual = torch.sqrt(_dot(*([[a - value * b for a, b in zip(w, v)]] * 2))).item()
        if residual <= tol * scale(value):
            return value, v, it, residual
        v = _normalised(w)
    return value, v, iters, residual


def _deflated(hvp: Callable[[Vector], Vector], found: Sequence[tuple[float, Vector]]) -> Callable[[Vector], Vector]:
    """v ↦ (H − Σ λ u uᵀ) v: the eigenpairs already found no longer dominate."""

    def apply(v: Vector) -> Vector:
        w = hvp(v)
        for lam, u in found:
            c = lam * _dot(u, v)
            w = [a - c * b for a, b in zip(w, u)]
        return w

    return apply


LANCZOS_VECTORS = 20  # ARPACK's basis size (its default for one eigenvalue)
SHIFT = 0.51  # of λmax: after the shift, any λmin ≤ 0 is the eigenvalue of largest magnitude (Li et al.'s code)


def _smallest(hvp: Callable[[Vector], Vector], params: Vector, lam_max: float, iters: int, tol: float, seed: int):
    """λmin by Lanczos on H − SHIFT·λmax·I: an `Eigen` with the products spent and ‖Hv − λv‖ of its vector."""
    shapes, sizes = [p.shape for p in params], [p.numel() for p in params]
    dtype = params[0].dtype
    shift = SHIFT * lam_max
    count = [0]

    def split(v) -> Vector:
        flat = torch.as_tensor(np.asarray(v, dtype=np.float64).ravel()).to(dtype)
        return [c.view(shape) for c, shape in zip(torch.split(flat, sizes), shapes)]

    def flat(v: Vector) -> np.ndarray:
        return torch.cat([t.flatten() for t in v]).double().numpy()

    def matvec(v) -> np.ndarray:
        count[0] += 1
        return flat(hvp(split(v))) - shift * np.asarray(v, dtype=np.float64).ravel()

    n = sum(sizes)
    op = LinearOperator((n, n), matvec=matvec, dtype=np.float64)
    start = np.random.default_rng(seed).standard_normal(n)
    restarts = max(1, iters // LANCZOS_VECTORS)
    try:
        values, vectors = eigsh(op, k=1, which="LM", tol=tol, maxiter=restarts, v0=start, ncv=min(n, LANCZOS_VECTORS))
        converged = True
    except ArpackNoConvergence as e:
        values, vectors, converged = e.eigenvalues, e.eigenvectors, False
    if len(values) == 0:
        return Eigen("smallest", float("nan"), count[0], float("inf"), False)
    value = float(values[0]) + shift
    v = split(vectors[:, 0])
    residual = float(np.linalg.norm(flat(hvp(v)) - value * flat(v)))
    # Above the shift it is the top end that dominated: λmax was underestimated, and this is not λmin.
    return Eigen("smallest", value, count[0] + 1, residual, converged and value <= shift)


def hessian_spectrum(
    model: nn.Module,
    data: tuple[Inputs, torch.Tensor | None],
    *,
    top: int = 1,
    iters: int = 100,
    tol: float = 1e-3,
    seed: int = 0,
    bn: str = "running",
    loss: LossChoice = "auto",
    output: OutputChoice = None,
) -> HessianSpectrum:
    """The `top` largest-magnitude Hessian eigenvalues of the loss on `data` = (x, y), the smallest one, their ratio.

    iters: at most about this many Hessian-vector products per eigenvalue; tol:
    the top ones stop when the residual ‖Hv − λv‖ is below tol·|λ|; the smallest is ARPACK's own
    relative tolerance. seed: of the start vectors. bn: "running" (eval mode, the model's statistics; the
    default) or "batch". The model is not changed.
    """
    x, y = checked_data(model, data, bn)
    check_int("top", top, 1, 20)
    check_int("iters", iters, 1, 10_000)
    check_int("seed", seed, 0, 2**63 - 1)
    if isinstance(tol, bool) or not isinstance(tol, (int, float)) or not 0 < tol < 1:
        raise ValueError(f"tol must be a number between 0 and 1 (exclusive); got {tol!r}")
    t0 = time.perf_counter()
    hvp, value, params = _hvp_operator(model, x, y, bn, loss, output)
    if not params:
        raise ValueError("model has no trainable parameters: its Hessian is empty")
    g = torch.Generator().manual_seed(seed)

    def draw() -> Vector:
        return [torch.randn(p.shape, generator=g, dtype=torch.float32).to(p) for p in params]

    found: list[tuple[float, Vector]] = []
    eigen: list[Eigen] = []
    for k in range(top):
        lam, v, its, res = _power(_deflated(hvp, found), draw(), iters, tol, abs)
        found.append((lam, v))
        eigen.append(Eigen(f"top-{k + 1}", lam, its, res, res <= tol * abs(lam)))
    lam_max = max(lam for lam, _ in found)
    low = _smallest(hvp, params, lam_max, iters, tol, seed)
    lam_min = min(low.value, min(lam for lam, _ in found))
    eigen.append(Eigen("smallest", lam_min, low.iterations, low.residual, low.converged))
    products = sum(e.iterations for e in eigen)
    return HessianSpectrum(
        eigenvalues=tuple(eigen),
        lambda_max=lam_max,
        lambda_min=lam_min,
        ratio=abs(lam_min / lam_max) if lam_max != 0 else None,
        loss=value,
        parameters=sum(p.numel() for p in params),
        examples=batch_size(x),
        bn=bn,
        bn_statistics=bn_statistics(bn),
        hessian_vector_products=products,
        seconds=time.perf_counter() - t0,
    )
