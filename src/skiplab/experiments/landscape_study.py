"""Loss landscapes of the shipped subjects: planes, init-to-trained lines, sharpness, and the study that compares them.

What the explainer computes live (`subject_plane`, `subject_line`,
`subject_sharpness`, each priced first by `price_landscape`) and what
`skiplab experiment landscape` records for every shipped seed
(`landscape_study`): Li et al. 2018's claim, checked on these nets. Their
finding (sec. 5, 7): around the trained weights the residual net's surface
is smooth and nearly convex and the plain net's chaotic, the more so the
deeper. The study measures two things per net on the same batch: the share
of a filter-normalised plane where the surface curves downward
(`skiplab.probes.roughness`) and the Hessian's extreme eigenvalues
(`skiplab.probes.hessian`), and compares plain with residual seed by seed.
"""

from __future__ import annotations

import functools
import json
import shlex
import time
from collections.abc import Iterator
from dataclasses import asdict, dataclass, field
from pathlib import Path

import torch

from skiplab.experiments.landscape import (
    DEPTHS,
    EXAMPLES,
    KINDS,
    SPLITS,
    Subject,
    initial_model,
    load_subject,
    read_index,
    subject_batch,
    subjects_dir,
)
from skiplab.probes.budget import Price
from skiplab.probes.common import check_float, check_int
from skiplab.probes.cost import count_params, forward_flops, saved_activation_bytes
from skiplab.probes.hessian import HessianSpectrum, hessian_spectrum
from skiplab.probes.landscape import Landscape, LandscapeRow, landscape_stream, loss_landscape, trainable
from skiplab.provenance import git_revision, machine, versions
from skiplab.train.checkpoint import write_atomic
from skiplab.train.models import build_model

MAX_GRID = 51


def plane_positions(grid: int, span: float) -> tuple[float, ...]:
    """`grid` evenly spaced coordinates from -span to span; `grid` odd, so the trained weights are a grid point."""
    check_int("grid", grid, 3, MAX_GRID)
    if grid % 2 == 0:
        raise ValueError(f"grid must be odd (the centre, the trained weights, is then a grid point); got {grid}")
    check_float("span", span, 0.01, 10.0)
    return tuple(span * (2 * i / (grid - 1) - 1) for i in range(grid))


def line_positions(points: int) -> tuple[float, ...]:
    """`points` positions t along start → end with t = 0 and t = 1 on the grid and about 10% more on each side."""
    check_int("points", points, 5, 201)
    m = (points - 1) // 10
    return tuple((i - m) / (points - 1 - 2 * m) for i in range(points))


@functools.lru_cache(maxsize=16)
def _cost(kind: str, depth: int, examples: int) -> tuple[int, int, int]:
    """(parameters, FLOPs of one forward of `examples` signals, activation bytes) of a subject's net."""
    name = f"{'plain1d' if kind == 'plain' else 'resnet1d'}{depth}"
    model = build_model(name, (1, 40), 10)
    x = torch.zeros(examples, 1, 40)
    return count_params(model), forward_flops(model.eval(), x), saved_activation_bytes(model.train(), x)


def price_landscape(kind: str, depth: int, points: int, examples: int = EXAMPLES, passes: int = 1) -> Price:
    """What evaluating `points` weight vectors of a subject's net costs (passes: forwards per point, 3 for a
    Hessian-vector product's double backward), without loading it."""
    if kind not in KINDS or depth not in DEPTHS:
        raise ValueError(f"kind must be one of {', '.join(KINDS)} and depth one of {DEPTHS}; got {kind!r}, {depth!r}")
    params, flops, activations = _cost(kind, depth, examples)
    return Price(params, points * passes * flops, activations * passes, 4 * params * 3)


def plane_of(
    subject: Subject,
    *,
    grid: int = 11,
    span: float = 1.0,
    direction_seed: int = 0,
    split: str = "train",
    examples: int = EXAMPLES,
    threads: int = 1,
) -> Iterator[LandscapeRow | Landscape]:
    """A subject's loss plane, row by row then the whole `Landscape` (running BatchNorm statistics, as the paper).

    threads: points evaluated at once (`skiplab.probes.landscape.loss_landscape`)."""
    xs = plane_positions(grid, span)
    batch = subject_batch(subject.data, split, examples)
    yield from landscape_stream(subject.model, batch, xs=xs, ys=xs, seed=direction_seed, bn="running", threads=threads)


def line_of(
    subject: Subject, *, points: int = 51, split: str = "train", examples: int = EXAMPLES, threads: int = 1
) -> Landscape:
    """The loss along the straight line from the run's initial weights (t = 0) to its trained ones (t = 1).

    The initial weights are rebuilt from the run's seed (`initial_model`). BatchNorm normalises with each
    point's batch statistics: the initial net has no running statistics of its own, and the trained net's
    would misjudge every point but the end.
    """
    start = trainable(initial_model(subject.config, subject.data))
    batch = subject_batch(subject.data, split, examples)
    xs = line_positions(points)
    end = trainable(subject.model)
    return loss_landscape(subject.model, batch, xs=xs, start=start, end=end, bn="batch", threads=threads)


def sharpness_of(
    subject: Subject, *, split: str = "train", examples: int = EXAMPLES, iters: int = 100, tol: float = 1e-2
) -> HessianSpectrum:
    """λmax, λmin and |λmin/λmax| of a subject's loss Hessian at its trained weights (running statistics)."""
    batch = subject_batch(subject.data, split, examples)
    return hessian_spectrum(subject.model, batch, top=1, iters=iters, tol=tol, bn="running")


# ------------------------------------------------------------------ the study


@dataclass(frozen=True, kw_only=True)
class StudyConfig:
    seeds: tuple[int, ...] = ()  # empty: every shipped seed
    grid: int = 21  # points per axis of the plane (Li et al. draw 51; 21 keeps a 56-layer plane near a minute)
    span: float = 1.0  # the plane covers [-span, span]² in filter-normalised units, as the paper's figures
    direction_seed: int = 0
    split: str = "train"  # the paper plots the training loss
    examples: int = EXAMPLES
    line_points: int = 51
    hessian_iters: int = 100  # Hessian-vector products per eigenvalue at most
    hessian_tol: float = 1e-2  # |λmin/λmax| known to about this (the residual bound)

    def validate(self) -> StudyConfig:
        plane_positions(self.grid, self.span)
        line_positions(self.line_points)
        if self.split not in SPLITS:
            raise ValueError(f"split must be one of {', '.join(SPLITS)}; got {self.split!r}")
        return self

    def to_dict(self) -> dict:
        return {**asdict(self), "seeds": list(self.seeds)}


@dataclass(frozen=True)
class SubjectMeasure:
    name: str
    kind: str
    depth: int
    seed: int
    loss: float | None  # at the trained weights, on the study's batch (running statistics)
    accuracy: float | None
    non_convex_share: float | None  # of the plane (skiplab.probes.roughness)
    max_ratio: float | None  # the plane's largest |λmin/λmax| of the 2-D slice
    lambda_max: float
    lambda_min: float
    ratio: float | None  # |λmin/λmax| of the full Hessian at the trained weights
    hessian_converged: bool
    line_init_loss: float | None  # the loss at the initial weights (batch statistics)
    line_monotone: bool  # the loss falls (or stays) at every step from t = 0 to t = 1
    seconds: float

    def to_dict(self) -> dict:
        return asdict(self)


@dataclass(frozen=True)
class PairComparison:
    depth: int
    measure: str  # non_convex_share | lambda_max | ratio
    seeds: list[int]
    plain: list[float | None]
    res: list[float | None]
    plain_higher: int  # seeds where the plain net's value is the higher
    every_seed: bool  # plain higher on every seed

    def to_dict(self) -> dict:
        return asdict(self)


@dataclass(frozen=True)
class DepthGrowth:
    """Whether the plain net's excess roughness grows with depth (Li et al.: alike at 20 layers, apart at 56)."""

    measure: str  # non_convex_share (excess: plain − residual) | lambda_max (excess: plain ÷ residual)
    seeds: list[int]
    shallow: list[float | None]  # the excess at the shallower depth, per seed
    deep: list[float | None]
    grows_on: int  # seeds where the excess is larger at the deeper depth
    every_seed: bool

    def to_dict(self) -> dict:
        return asdict(self)


@dataclass(frozen=True)
class LandscapeStudy:
    config: StudyConfig
    measures: tuple[SubjectMeasure, ...]
    comparisons: tuple[PairComparison, ...]
    growth: tuple[DepthGrowth, ...]
    finding: str  # what the comparisons show, in words, from their fields
    rule: str
    wall_seconds: float = field(default=0.0)

    def to_dict(self) -> dict:
        return {
            "config": self.config.to_dict(),
            "measures": [m.to_dict() for m in self.measures],
            "comparisons": [c.to_dict() for c in self.comparisons],
            "growth": [g.to_dict() for g in self.growth],
            "finding": self.finding,
            "rule": self.rule,
            "wall_seconds": self.wall_seconds,
        }


RULE = (
    "for each depth and measure, plain and residual nets of the same seed are compared; the claim 'the plain net is "
    "rougher' holds on a measure when the plain net's value is higher on every seed; the excess grows with depth on "
    "a seed when plain minus residual (non-convex share), or plain over residual (λmax), is larger at 56 layers"
)


def measure_subject(cfg: StudyConfig, kind: str, depth: int, seed: int) -> SubjectMeasure:
    t0 = time.perf_counter()
    subject = load_subject(kind, depth, seed)
    *_, plane = plane_of(
        subject, grid=cfg.grid, span=cfg.span, direction_seed=cfg.direction_seed, split=cfg.split,
        examples=cfg.examples,
    )  # fmt: skip
    assert isinstance(plane, Landscape) and plane.roughness is not None
    line = line_of(subject, points=cfg.line_points, split=cfg.split, examples=cfg.examples)
    inside = [v for t, v in zip(line.xs, line.rows[0].loss) if 0 <= t <= 1]
    monotone = all(b is not None and a is not None and b <= a for a, b in zip(inside, inside[1:]))
    h = sharpness_of(subject, split=cfg.split, examples=cfg.examples, iters=cfg.hessian_iters, tol=cfg.hessian_tol)
    return SubjectMeasure(
        f"{kind}{depth}-s{seed}", kind, depth, seed, plane.base_loss, plane.base_accuracy,
        plane.roughness.non_convex_share, plane.roughness.max_ratio, h.lambda_max, h.lambda_min, h.ratio,
        all(e.converged for e in h.eigenvalues), line.base_loss, monotone, time.perf_counter() - t0,
    )  # fmt: skip


def compare(measures: list[SubjectMeasure], seeds: list[int]) -> list[PairComparison]:
    out = []
    by = {(m.kind, m.depth, m.seed): m for m in measures}
    for depth in DEPTHS:
        for name in ("non_convex_share", "lambda_max", "ratio"):
            plain = [getattr(by[("plain", depth, s)], name) for s in seeds]
            res = [getattr(by[("res", depth, s)], name) for s in seeds]
            higher = sum(p is not None and r is not None and p > r for p, r in zip(plain, res))
            out.append(PairComparison(depth, name, seeds, plain, res, higher, higher == len(seeds)))
    return out


def growth(measures: list[SubjectMeasure], seeds: list[int]) -> list[DepthGrowth]:
    """Per seed, the plain net's excess over the residual net at the shallow and the deep depth."""
    by = {(m.kind, m.depth, m.seed): m for m in measures}
    excess = {
        "non_convex_share": lambda p, r: None if p is None or r is None else p - r,
        "lambda_max": lambda p, r: p / r if r > 0 else None,
    }
    out = []
    for name, of in excess.items():
        shallow, deep = (
            [of(getattr(by[("plain", d, s)], name), getattr(by[("res", d, s)], name)) for s in seeds] for d in DEPTHS
        )
        grows = sum(a is not None and b is not None and b > a for a, b in zip(shallow, deep))
        out.append(DepthGrowth(name, seeds, shallow, deep, grows, grows == len(seeds)))
    return out


WORDS = {
    "non_convex_share": "a larger non-convex share of its plane",
    "lambda_max": "a sharper minimum (larger λmax)",
    "ratio": "a larger |λmin/λmax|",
}


def _listed(items: list[str]) -> str:
    return items[0] if len(items) == 1 else f"{', '.join(items[:-1])} and {items[-1]}"


def finding(comparisons: list[PairComparison], grown: list[DepthGrowth] = ()) -> str:
    """One sentence per depth: on which measures the plain net is rougher on every seed, and where not; then
    whether that excess grows with depth."""
    parts = []
    for depth in DEPTHS:
        mine = [c for c in comparisons if c.depth == depth]
        n = len(mine[0].seeds)
        held = [WORDS[c.measure] for c in mine if c.every_seed]
        not_held = [f"{WORDS[c.measure]} on {c.plain_higher} of {n}" for c in mine if not c.every_seed]
        if held:
            text = f"At {depth} layers the plain net has {_listed(held)} than the residual net"
            text += f" on every seed ({n} of {n})"
            text += f", but {_listed(not_held)} seeds" if not_held else ""
        else:
            text = f"At {depth} layers the plain net has {_listed(not_held)} seeds"
        parts.append(text + ".")
    if grown:
        n = len(grown[0].seeds)
        said = {
            "non_convex_share": "its excess non-convex share",
            "lambda_max": "its λmax as a multiple of the residual's",
        }
        grew = [f"{said[g.measure]} on {g.grows_on} of {n} seeds" for g in grown]
        parts.append(f"From {DEPTHS[0]} to {DEPTHS[-1]} layers the plain net's excess grows: {_listed(grew)}.")
    return " ".join(parts)


def landscape_study(cfg: StudyConfig | None = None, on_subject=None) -> LandscapeStudy:
    """Measure every shipped subject (plane roughness, init-to-trained line, Hessian); compare plain with residual."""
    cfg = (cfg or StudyConfig()).validate()
    seeds = list(cfg.seeds or read_index().seeds)
    t0 = time.perf_counter()
    measures = []
    for seed in seeds:
        for depth in DEPTHS:
            for kind in KINDS:
                m = measure_subject(cfg, kind, depth, seed)
                measures.append(m)
                if on_subject is not None:
                    on_subject(m)
    comparisons, grown = compare(measures, seeds), growth(measures, seeds)
    return LandscapeStudy(cfg, tuple(measures), tuple(comparisons), tuple(grown), finding(comparisons, grown), RULE,
                          round(time.perf_counter() - t0, 1))  # fmt: skip


STUDY_FORMAT = "skiplab-landscape-study-1"
STUDY_FILE = "study.json"


def write_study(study: LandscapeStudy, argv: list[str], folder: str | Path | None = None) -> Path:
    """Keep the study beside the subjects it measured, with the command that reproduces it."""
    index = read_index(str(folder) if folder else None)
    payload = {
        "format": STUDY_FORMAT,
        "command": shlex.join(["skiplab", *argv]),
        "created": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime()),
        "git_revision": git_revision(),
        "versions": versions(),
        "machine": machine(),
        "subjects_sha256": {s.name: s.sha256 for s in index.subjects},
        **study.to_dict(),
    }
    path = (Path(folder) if folder else subjects_dir()) / STUDY_FILE
    write_atomic(path, (json.dumps(payload, indent=1) + "\n").encode())
    return path


def load_study(folder: str | Path | None = None) -> dict:
    """The shipped study (a dict as written), or a ValueError saying how to make one."""
    path = (Path(folder) if folder else subjects_dir()) / STUDY_FILE
    if not path.is_file():
        raise ValueError(f"no landscape study at {path}: run `skiplab experiment landscape --write-results`")
    data = json.loads(path.read_text())
    if data.get("format") != STUDY_FORMAT:
        raise ValueError(f"{path} is not a landscape study (format {data.get('format')!r})")
    return data
