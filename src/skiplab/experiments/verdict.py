"""Deeper is worse, better, or no measurable difference: the degradation verdict, compared like a scientist would.

For each pair of depths, the paired per-seed log-ratios of the deeper net's
best training loss to the shallower one's are set against their spread: a
difference is called only when every seed points the same way and the mean
passes a two-sided paired t-test (`rule_text` states the rule; fewer than
`MIN_SEEDS` seeds never call one). Training error is judged by the same rule.
"""

from __future__ import annotations

import math
from dataclasses import asdict, dataclass

KINDS: tuple[str, ...] = ("plain", "res")  # the plain net and its residual twin
LOSS_FLOOR = 1e-8  # best training losses are clipped to [LOSS_FLOOR, 1 / LOSS_FLOOR] before their logarithm
ERROR_FLOOR = 1e-4  # training errors likewise (1e-4 is below one example in 4,000)
MIN_SEEDS = 3  # fewer seeds never call a difference
SUMMARIES: tuple[str, ...] = ("deeper is worse", "deeper is better", "no measurable difference")


def rule_text(alpha: float = 0.05) -> str:
    """The comparison rule in words, as the results file and the page state it."""
    return (
        f"Deeper vs shallower net, paired by seed, on the logarithm of the best training loss (clipped to "
        f"[{LOSS_FLOOR:g}, {1 / LOSS_FLOOR:g}]): 'deeper is worse' if the log-ratio is above 0 on every seed and its "
        f"mean is more than t standard errors above 0, where t is Student's two-sided {1 - alpha:.0%} quantile with "
        f"n-1 degrees of freedom (4.30 for 3 seeds); 'deeper is better' if below 0 on every seed and more than t "
        f"standard errors below; otherwise 'no measurable difference'. At least {MIN_SEEDS} seeds are needed to call "
        f"a difference. Training error is compared by the same rule (errors clipped at {ERROR_FLOOR:g})."
    )


def t_critical(n: int, alpha: float = 0.05) -> float:
    """Student's t quantile 1 - alpha/2 with n-1 degrees of freedom (a two-sided paired test at level alpha)."""
    from scipy.stats import t

    return float(t.ppf(1 - alpha / 2, n - 1))


@dataclass(frozen=True)
class Comparison:
    """A shallower and a deeper net of one kind, compared seed by seed on a log scale (see `rule_text`)."""

    kind: str  # plain | res
    shallow: int
    deep: int
    outcomes: list[str]  # per seed: worse | same | better (the deeper net's value, against the shallower's)
    deltas: list[float]  # per seed: deep − shallow (raw)
    log_ratios: list[float]  # per seed: ln(deep / shallow), values clipped to [floor, 1 / floor]
    mean_log_ratio: float
    std_error: float | None  # of the mean log-ratio; None below 2 seeds
    t_stat: float | None  # mean / std_error; None when std_error is None or 0
    t_critical: float | None  # the threshold t must pass; None below MIN_SEEDS seeds
    ratio: float  # exp(mean log-ratio): the deeper net's value as a multiple of the shallower's (geometric mean)
    summary: str  # deeper is worse | deeper is better | no measurable difference

    def to_dict(self) -> dict:
        return asdict(self)


def compare(
    kind: str,
    shallow: int,
    deep: int,
    shallow_values: list[float],
    deep_values: list[float],
    alpha: float = 0.05,
    floor: float = LOSS_FLOOR,
) -> Comparison:
    """Decide worse / better / no measurable difference from the paired per-seed log-ratios (`rule_text`)."""
    if len(shallow_values) != len(deep_values) or not shallow_values:
        raise ValueError("compare needs one value per seed for both nets")

    def clip(v: float) -> float:
        return min(max(v, floor), 1 / floor) if math.isfinite(v) else 1 / floor

    deltas = [d - s for s, d in zip(shallow_values, deep_values)]
    logs = [math.log(clip(d)) - math.log(clip(s)) for s, d in zip(shallow_values, deep_values)]
    outcomes = ["worse" if x > 0 else "better" if x < 0 else "same" for x in logs]
    n = len(logs)
    mean = sum(logs) / n
    se = math.sqrt(sum((x - mean) ** 2 for x in logs) / (n - 1) / n) if n >= 2 else None
    t_stat = mean / se if se else None
    crit = t_critical(n, alpha) if n >= MIN_SEEDS else None
    # |t| beyond the threshold; with a spread of exactly 0 any nonzero mean passes
    passes = crit is not None and (abs(t_stat) > crit if t_stat is not None else mean != 0)
    if passes and all(o == "worse" for o in outcomes):
        summary = "deeper is worse"
    elif passes and all(o == "better" for o in outcomes):
        summary = "deeper is better"
    else:
        summary = "no measurable difference"
    return Comparison(kind, shallow, deep, outcomes, deltas, logs, mean, se, t_stat, crit, math.exp(mean), summary)


def _fmt(x: float | None) -> str:
    return "n/a" if x is None else f"{x:.3g}"


def _verdict(comparisons: list[Comparison], error_comparisons: list[Comparison]) -> str:
    """One sentence per kind, e.g. "plain: deeper is worse (56 vs 20: best training loss x 5.1, ...)"."""
    parts = []
    for kind, label in (("plain", "plain"), ("res", "residual")):
        pairs = [c for c in comparisons if c.kind == kind]
        errors = {(c.shallow, c.deep): c for c in error_comparisons if c.kind == kind}
        summary = pairs[0].summary if len({c.summary for c in pairs}) == 1 else "mixed across depths"
        details = []
        for c in pairs:
            n = len(c.outcomes)
            e = errors.get((c.shallow, c.deep))
            details.append(
                f"{c.deep} vs {c.shallow}: best training loss x {c.ratio:.3g} (geometric mean over {n} seeds), "
                f"higher on {c.outcomes.count('worse')}/{n} seeds, lower on {c.outcomes.count('better')}/{n}, "
                f"t = {_fmt(c.t_stat)} against {_fmt(c.t_critical)}"
                + (f"; training error: {e.summary}" if e is not None else "")
            )
        parts.append(f"{label}: {summary} ({'; '.join(details)})")
    return "; ".join(parts) + "."


def judge(rows: list[dict], alpha: float = 0.05) -> dict:
    """The comparisons, verdict and rule that a results file's rows (DegradationRow dicts) support."""
    depths = sorted({r["depth"] for r in rows})
    by = {(r["kind"], r["depth"]): r for r in rows}
    pairs = [(kind, a, b) for kind in KINDS for a, b in zip(depths, depths[1:])]
    loss = [
        compare(k, a, b, by[k, a]["best_train_loss"], by[k, b]["best_train_loss"], alpha, LOSS_FLOOR)
        for k, a, b in pairs
    ]
    error = [
        compare(k, a, b, by[k, a]["final_train_error"], by[k, b]["final_train_error"], alpha, ERROR_FLOOR)
        for k, a, b in pairs
    ]
    return {"comparisons": loss, "error_comparisons": error, "verdict": _verdict(loss, error), "rule": rule_text(alpha)}
