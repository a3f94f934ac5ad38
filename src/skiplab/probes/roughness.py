"""How rough a 2-D loss surface is: the share of the plane where it curves downward in some direction.

Li et al. 2018 (sec. 7, Fig. 7) map |λmin/λmax| of the full Hessian over
their planes and note that a 2-D slice's own curvature bounds it: the
Hessian of the slice f(α, β) = L(θ + αδ + βη) is Pᵀ H P with P = [δ η], so
wherever the slice curves downward (a negative eigenvalue), the full
Hessian H has a negative eigenvalue too. Counting those points needs no
more forward passes than the plane itself: the slice's 2×2 Hessian comes
from finite differences of the grid (central second differences, on any
spacing; the mixed term from the four diagonal neighbours).

A point counts as non-convex when its smallest eigenvalue is negative by
more than `RELATIVE_TOL` of its largest magnitude and by more than the
rounding noise of the differences (float32 losses: about `NOISE` of the
largest loss nearby, divided by the squared spacing). Edge points have no
neighbours on every side and are not judged; neither is a point next to a
non-finite loss.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import asdict, dataclass

RELATIVE_TOL = 0.01  # a negative curvature under 1% of the point's largest one is not counted
NOISE = 1e-5  # relative rounding error of a float32 mean loss over a batch, with a margin


@dataclass(frozen=True)
class Roughness:
    interior_points: int  # points with neighbours on every side (the judged ones)
    judged_points: int  # interior points whose 3x3 neighbourhood has finite losses
    non_convex_points: int
    non_convex_share: float | None  # non_convex_points / judged_points (None: nothing judged)
    max_ratio: float | None  # the largest |λmin/λmax| of the slice's 2x2 Hessian over judged points
    rule: str  # the criterion, in words

    def to_dict(self) -> dict:
        return asdict(self)


def _second(f_minus: float, f0: float, f_plus: float, h_minus: float, h_plus: float) -> float:
    """Second derivative from three points at spacings h_minus, h_plus (exact for a parabola)."""
    return 2.0 * ((f_plus - f0) / h_plus - (f0 - f_minus) / h_minus) / (h_plus + h_minus)


def curvature(
    xs: Sequence[float], ys: Sequence[float], f: Sequence[Sequence[float | None]], i: int, j: int
) -> tuple[float, float, float] | None:
    """(λmin, λmax, tolerance) of the slice's 2x2 Hessian at column i, row j (None: a neighbour is missing)."""
    block = [f[j + dj][i + di] for dj in (-1, 0, 1) for di in (-1, 0, 1)]
    if any(v is None or not math.isfinite(v) for v in block):
        return None
    hxm, hxp = xs[i] - xs[i - 1], xs[i + 1] - xs[i]
    hym, hyp = ys[j] - ys[j - 1], ys[j + 1] - ys[j]
    fxx = _second(f[j][i - 1], f[j][i], f[j][i + 1], hxm, hxp)
    fyy = _second(f[j - 1][i], f[j][i], f[j + 1][i], hym, hyp)
    fxy = (f[j + 1][i + 1] - f[j - 1][i + 1] - f[j + 1][i - 1] + f[j - 1][i - 1]) / ((hxm + hxp) * (hym + hyp))
    mid, radius = (fxx + fyy) / 2, math.hypot((fxx - fyy) / 2, fxy)
    low, high = mid - radius, mid + radius
    h = min(hxm, hxp, hym, hyp)
    noise = NOISE * max(abs(v) for v in block) / (h * h)
    return low, high, max(RELATIVE_TOL * max(abs(low), abs(high)), noise)


def roughness(xs: Sequence[float], ys: Sequence[float], loss: Sequence[Sequence[float | None]]) -> Roughness:
    """Count the interior points of a plane (rows along ys, columns along xs) where the slice is not convex."""
    rule = (
        "a grid point is non-convex where the 2x2 Hessian of the plotted slice (finite differences of the grid) "
        f"has an eigenvalue below -{RELATIVE_TOL:g} x its largest |eigenvalue| (and below the float32 rounding "
        "noise); then the full Hessian is not positive semi-definite there either (Li et al. 2018, sec. 7)"
    )
    increasing = all(b > a for a, b in zip(xs, xs[1:])) and all(b > a for a, b in zip(ys, ys[1:]))
    interior = max(0, len(xs) - 2) * max(0, len(ys) - 2)
    if not increasing or interior == 0:
        return Roughness(interior, 0, 0, None, None, rule)
    judged = bad = 0
    worst = None
    for j in range(1, len(ys) - 1):
        for i in range(1, len(xs) - 1):
            found = curvature(xs, ys, loss, i, j)
            if found is None:
                continue
            low, high, tol = found
            judged += 1
            bad += low < -tol
            if high > 0:
                ratio = max(0.0, -low) / high
                worst = ratio if worst is None else max(worst, ratio)
    return Roughness(interior, judged, bad, bad / judged if judged else None, worst, rule)
