"""Skip types side by side: parameters, FLOPs, activation and peak memory, and gradient flow of each.

`compare_skip_types` puts the skip connections of the zoo side by side at
equal depth and width: identity and projection shortcuts (He et al. 2015),
dense connections (Huang et al. 2017), highway gates (Srivastava et al. 2015),
squeeze-and-excitation blocks (Hu et al. 2018) and none (a plain network),
each a real conv stack measured by `skiplab.probes.cost` on one training step.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass, replace

from skiplab.nn.models import SKIP_TYPES
from skiplab.nn.stacks import StackConfig
from skiplab.probes.common import check_int, choice, seeded_stack
from skiplab.probes.cost import _STEP_COSTS, OpMeter, _SavedBytes, count_params, forward_flops
from skiplab.probes.gradflow import _probe_training_step, synthetic_batch
from skiplab.probes.results import Tabular


@dataclass(frozen=True)
class SkipTypeRow:
    skip: str  # identity | projection | dense | highway | se | none
    params: int
    flops_per_example: int  # forward, 2 per multiply-add
    activation_bytes_per_example: int  # saved for backward
    peak_bytes: int  # one forward+backward of the batch
    grad_norms: tuple[float, ...]  # |dL/d(block input)| per block, input to output
    grad_summary: dict  # FlowSummary.to_dict() of grad_norms
    ratings: dict[str, str]  # params, memory, gradient: in words, by RATING_RULE from the numbers above


@dataclass(frozen=True)
class SkipTypeComparison(Tabular):
    depth: int
    width: int
    input_shape: tuple[int, ...]
    batch: int
    rows: tuple[SkipTypeRow, ...]
    baseline: str  # the row params and memory are rated against
    rating_rule: str

    _plot_x = "skip"
    _plot_y = ("flops_per_example", "activation_bytes_per_example", "peak_bytes")
    _plot_kind = "bar"
    _plot_log = True

    def to_dict(self) -> dict:
        return asdict(self)


COMPARED_SKIPS: tuple[str, ...] = ("identity", "projection", "dense", "highway", "se", "none")

# Cost ratios against the baseline at which the words change, and the first/last gradient ratio beyond which
# the gradient is said to change on its way down (within STEADY either way it is "steady").
COST_WORDS: tuple[tuple[float, str], ...] = ((1.0, "none extra"), (1.25, "a little more"), (2.0, "more"))
COST_MANY = "much more"
STEADY, EXTREME = 3.0, 100.0
RATING_RULE = (
    "Parameters and activation memory are rated by their ratio to the {baseline} stack's: equal is 'none extra', "
    "up to 1.25x 'a little more', up to 2x 'more', beyond that 'much more'. The gradient is rated by the ratio "
    "of its norm at the first block to the last (first / last): within 3x either way 'steady'; up to 100x "
    "'grows towards the input' or 'fades towards the input'; beyond 100x 'explodes' or 'vanishes'."
)


def rate_cost(value: float, base: float) -> str:
    ratio = value / base if base else float("inf")
    if ratio < 1.0:
        return "less"
    for bound, word in COST_WORDS:
        if ratio <= bound:
            return word
    return COST_MANY


def rate_gradient(first_last: float | None) -> str:
    """first_last: gradient norm at the first block's input over the last block's (None: not finite)."""
    if first_last is None or not first_last > 0:
        return "not finite"
    if 1 / STEADY <= first_last <= STEADY:
        return "steady"
    if first_last > EXTREME:
        return "explodes towards the input"
    if first_last < 1 / EXTREME:
        return "vanishes towards the input"
    return "grows towards the input" if first_last > 1 else "fades towards the input"


def _rated(rows: list[SkipTypeRow]) -> tuple[str, list[SkipTypeRow]]:
    """The rows with their ratings, and the baseline they were rated against (the plain stack if measured)."""
    base = next((r for r in rows if r.skip == "none"), rows[0])
    out = []
    for r in rows:
        ratings = {
            "params": rate_cost(r.params, base.params),
            "memory": rate_cost(r.activation_bytes_per_example, base.activation_bytes_per_example),
            "gradient": rate_gradient(r.grad_summary.get("first_last_ratio")),
        }
        out.append(replace(r, ratings=ratings))
    return base.skip, out
SKIP_TYPES_SIZE = 8  # height and width of the synthetic images compare_skip_types measures on
SKIP_TYPES_BATCH = 8


def skip_type_stacks(
    depth: int = 8,
    width: int = 16,
    size: int = SKIP_TYPES_SIZE,
    activation: str = "relu",
    norm: str = "batch",
    skips: tuple[str, ...] = COMPARED_SKIPS,
) -> list[StackConfig]:
    """The stacks `compare_skip_types` builds for these settings, in order (what a caller prices it by)."""
    return [
        StackConfig(depth=depth, width=width, skip=skip, activation=activation, norm=norm, in_shape=(3, size, size))
        for skip in skips
    ]


def compare_skip_types(
    depth: int = 8,
    width: int = 16,
    size: int = SKIP_TYPES_SIZE,
    batch: int = SKIP_TYPES_BATCH,
    activation: str = "relu",
    norm: str = "batch",
    skips: tuple[str, ...] = COMPARED_SKIPS,
    seed: int = 0,
) -> SkipTypeComparison:
    """Parameters, FLOPs, activation and peak memory, and gradient flow of every skip type.

    Each is a conv stack (`StackConfig(depth=depth, width=width, skip=skip, in_shape=(3, size, size))`)
    at the same depth and width, initialised from the same seed and measured
    on the same synthetic batch. depth 1..200, width 1..256, size 1..64,
    batch 2..256. A dense stack's input grows by `width` channels per layer,
    which is where its cost comes from.
    """
    check_int("depth", depth, 1, 200)
    check_int("width", width, 1, 256)
    check_int("size", size, 1, 64)
    check_int("batch", batch, 2, 256)
    check_int("seed", seed, 0, 2**31 - 1)
    if isinstance(skips, str) or not skips:
        raise ValueError(f"skips must be a non-empty tuple of {', '.join(SKIP_TYPES)}; got {skips!r}")
    for s in skips:
        choice("skip", s, SKIP_TYPES)
    rows = []
    for cfg in skip_type_stacks(depth, width, size, activation, norm, skips):
        skip = cfg.skip
        x, y = synthetic_batch(cfg, batch, seed)
        with seeded_stack(cfg, seed) as model:
            costs = _STEP_COSTS.get((cfg, batch))
            if costs is None:
                # One metered training step (gradients of the parameters only, as in training) gives saved
                # activations, peak memory and, from hooks that keep only norms, the gradient flow. The FLOPs
                # are counted on a forward of their own (BatchNorm statistics restored after it).
                flops = forward_flops(model, x)
                with OpMeter() as meter, _SavedBytes(model) as saved:
                    flow = _probe_training_step(model, x, y)
                costs = (count_params(model), flops // batch, saved.bytes // batch, meter.peak_bytes)
                _STEP_COSTS.put((cfg, batch), costs)
            else:
                flow = _probe_training_step(model, x, y)
        params, flops, act, peak = costs
        rows.append(
            SkipTypeRow(
                skip=skip,
                params=params,
                flops_per_example=flops,
                activation_bytes_per_example=act,
                peak_bytes=peak,
                grad_norms=tuple(la.input_grad_norm for la in flow.layers),
                grad_summary=flow.summary.to_dict(),
                ratings={},
            )
        )
    baseline, rows = _rated(rows)
    rule = RATING_RULE.format(baseline="plain (none)" if baseline == "none" else baseline)
    return SkipTypeComparison(depth, width, (3, size, size), batch, tuple(rows), baseline, rule)
