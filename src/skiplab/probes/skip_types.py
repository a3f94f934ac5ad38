"""Skip types side by side: parameters, FLOPs, activation and peak memory, and gradient flow of each.

`compare_skip_types` puts the skip connections of the zoo side by side at
equal depth and width: identity and projection shortcuts (He et al. 2015),
dense connections (Huang et al. 2017), highway gates (Srivastava et al. 2015),
squeeze-and-excitation blocks (Hu et al. 2018) and none (a plain network),
each a real conv stack measured by `skiplab.probes.cost` on one training step.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass

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


@dataclass(frozen=True)
class SkipTypeComparison(Tabular):
    depth: int
    width: int
    input_shape: tuple[int, ...]
    batch: int
    rows: tuple[SkipTypeRow, ...]

    _plot_x = "skip"
    _plot_y = ("flops_per_example", "activation_bytes_per_example", "peak_bytes")
    _plot_kind = "bar"
    _plot_log = True

    def to_dict(self) -> dict:
        return asdict(self)


COMPARED_SKIPS: tuple[str, ...] = ("identity", "projection", "dense", "highway", "se", "none")
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
            )
        )
    return SkipTypeComparison(depth, width, (3, size, size), batch, tuple(rows))
