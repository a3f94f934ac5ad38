"""The experiments behind the explainer: the degradation problem, lesions, and the skip-types zoo.

- `degradation`: plain and residual BN nets at two or more depths, several
  seeds, every run stored. He et al. 2015 (sec. 4.1, Fig. 1 and 6) report
  that the deeper plain net has *higher training* error than the shallower
  one, so the problem is optimisation, not overfitting, and that the residual
  nets go on improving with depth. What these runs show is decided by
  `skiplab.experiments.verdict` (each pair of depths, seed by seed, against
  the seed-to-seed spread), and the results file states that rule next to the
  numbers; `skiplab.experiments.search` records every setting tried.
- `lesion`: train a residual and a plain net, then delete each block in turn
  and measure held-out accuracy (Veit et al. 2016: residual nets behave like
  ensembles of shallower paths and survive the loss of one block; plain nets
  do not).
- `skip_types`: a short training of every skip type (none, identity,
  projection, dense, highway, squeeze-excitation) at equal depth and width.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import asdict, dataclass, field
from pathlib import Path

from skiplab.data import load_dataset
from skiplab.experiments.pool import run_many
from skiplab.experiments.verdict import KINDS, Comparison, judge
from skiplab.nn import SKIP_TYPES
from skiplab.probes.lesion import lesion_study
from skiplab.store import RunStore
from skiplab.train.config import TrainConfig
from skiplab.train.loop import train

FAMILIES: tuple[str, ...] = ("mlp", "conv", "conv1d")
CONV1D_DEPTHS: tuple[int, ...] = (20, 56)
CONV1D_WIDTHS: tuple[int, ...] = (16, 32)  # registered widths of the 1-D CIFAR nets (resnet1d20, resnet1d56w32)


def recipe(cfg: DegradationConfig | SkipTypesConfig | LesionConfig, model: str, seed: int) -> TrainConfig:
    """The training recipe every experiment shares (SGD, cosine schedule with warm-up), for one model and seed."""
    return TrainConfig(
        model=model,
        data=cfg.data,
        width=cfg.width,
        epochs=cfg.epochs,
        batch_size=cfg.batch_size,
        lr=cfg.lr,
        schedule="cosine",
        warmup_epochs=cfg.warmup_epochs,
        seed=seed,
        threads=cfg.threads,
    )


@dataclass(frozen=True, kw_only=True)
class DegradationConfig:
    # Why these defaults: BN MLPs of width 64 on the digits, 10 epochs at lr 0.02, are the smallest setting in
    # which the plain degradation shows on every seed (plain-56 ends near chance, plain-20 far below it) while
    # all 12 runs take well under a minute on 2 cores. BN conv nets (family="conv") cost about 10x more per
    # epoch on a CPU, and after 5 epochs residual-56 had not yet caught up with residual-20.
    depths: tuple[int, ...] = (20, 56)  # layers in the body of each net
    seeds: tuple[int, ...] = (0, 1, 2)
    family: str = "mlp"  # mlp (BN MLP on the 64 pixels) | conv (BN conv stack on the 8x8 images) | conv1d (1-D
    # CIFAR ResNet / plain twin of depth 6n+2 on MNIST-1D: resnet1d20, plain1d56, ...)
    epochs: int = 10
    lr: float = 0.02  # per batch of batch_size; 0.05 made residual-56 spike (loss 3-20 in mid-run) on 2 of 3 seeds
    warmup_epochs: float = 1.0  # linear ramp from lr/10: the deep residual net starts with a loss of 6-9
    batch_size: int = 128
    width: int = 64  # features (mlp) or channels (conv) of every layer
    data: str = "digits"
    alpha: float = 0.05  # level of the paired two-sided t-test the verdict uses (`rule_text`)
    workers: int = 2  # processes training at once
    threads: int = 1  # torch threads per process

    def __post_init__(self) -> None:
        self.validate()

    def validate(self) -> DegradationConfig:
        if len(self.depths) < 2 or len(set(self.depths)) != len(self.depths):
            raise ValueError(f"depths must name two or more different depths; got {self.depths!r}")
        if any(not isinstance(d, int) or d < 1 for d in self.depths):
            raise ValueError(f"depths must be positive integers; got {self.depths!r}")
        if not self.seeds or len(set(self.seeds)) != len(self.seeds):
            raise ValueError(f"seeds must be one or more different integers; got {self.seeds!r}")
        if self.family not in FAMILIES:
            raise ValueError(f"family must be one of {', '.join(FAMILIES)}; got {self.family!r}")
        if self.family == "conv1d":
            if self.data != "mnist1d":
                raise ValueError(f"family conv1d trains on data mnist1d; got data {self.data!r}")
            if any(d not in CONV1D_DEPTHS for d in self.depths):
                raise ValueError(f"family conv1d has depths {', '.join(map(str, CONV1D_DEPTHS))}; got {self.depths!r}")
            if self.width not in CONV1D_WIDTHS:
                raise ValueError(f"family conv1d has widths {', '.join(map(str, CONV1D_WIDTHS))}; got {self.width!r}")
        elif self.data == "mnist1d":
            raise ValueError(f"data mnist1d is trained with family conv1d; got family {self.family!r}")
        if isinstance(self.alpha, bool) or not isinstance(self.alpha, (int, float)) or not 0 < self.alpha < 1:
            raise ValueError(f"alpha must be a number between 0 and 1 (exclusive); got {self.alpha!r}")
        for seed in self.seeds:
            self.train_config("plain", min(self.depths), seed)  # validates the training fields
        return self

    @classmethod
    def from_dict(cls, d: dict) -> DegradationConfig:
        """The config a results file records (lists for tuples; fields this version does not know are ignored)."""
        known = {k: v for k, v in d.items() if k in cls.__dataclass_fields__}
        return cls(**{k: tuple(v) if isinstance(v, list) else v for k, v in known.items()})

    def live_config(self, kind: str, depth: int, seed: int, epochs: int) -> TrainConfig:
        """One net of this setting trained for `epochs` (the warm-up shrinks in proportion), on the CPU with one
        thread: what a live run beside the stored runs trains. The schedule spans `epochs`, so the live curve
        is the stored recipe compressed, not the first epochs of a stored run."""
        if self.family == "conv1d" and depth not in CONV1D_DEPTHS:
            raise ValueError(f"depth must be one of {', '.join(map(str, CONV1D_DEPTHS))} for {self.family} nets")
        cfg = self.train_config(kind, depth, seed)
        warmup = self.warmup_epochs * epochs / self.epochs
        return cfg.replace(epochs=epochs, warmup_epochs=warmup, device="cpu", threads=1)

    def train_config(self, kind: str, depth: int, seed: int) -> TrainConfig:
        if self.family == "conv1d":
            suffix = "" if self.width == 16 else f"w{self.width}"
            name = f"{'resnet1d' if kind == 'res' else 'plain1d'}{depth}{suffix}"
            return recipe(self, name, seed).replace(width=None)  # a registered net: its width is in its name
        return recipe(self, f"{kind}{self.family}{depth}", seed)

    def to_dict(self) -> dict:
        return {**asdict(self), "depths": list(self.depths), "seeds": list(self.seeds)}


@dataclass(frozen=True)
class DegradationRow:
    kind: str
    depth: int
    best_train_loss: list[float]  # per seed, in config.seeds order
    final_train_error: list[float]
    final_test_error: list[float]
    run_ids: list[str]

    def to_dict(self) -> dict:
        return asdict(self)


@dataclass(frozen=True)
class DegradationResult:
    config: DegradationConfig
    rows: list[DegradationRow]
    comparisons: list[Comparison]  # on best training loss: the verdict
    error_comparisons: list[Comparison]  # on final training error, by the same rule
    verdict: str
    rule: str
    runs: dict[str, dict] = field(repr=False)  # "plain56-s0" → RunResult.to_dict() (curves included)
    wall_seconds: float = 0.0

    def to_dict(self) -> dict:
        return {
            "config": self.config.to_dict(),
            "rows": [r.to_dict() for r in self.rows],
            "comparisons": [c.to_dict() for c in self.comparisons],
            "error_comparisons": [c.to_dict() for c in self.error_comparisons],
            "verdict": self.verdict,
            "rule": self.rule,
            "wall_seconds": self.wall_seconds,
            "runs": self.runs,
        }


def degradation(
    cfg: DegradationConfig = DegradationConfig(),
    *,
    store: RunStore | None = None,
    on_run: Callable[[str, dict], None] | None = None,
    run_root: str | Path | None = None,
) -> DegradationResult:
    """Train plain and residual nets at every depth and seed (in parallel), compare best training losses.

    run_root: keep every run's checkpoint folder there (run_root/<kind><depth>-s<seed>); a second call
    with the same folder continues each run from its last checkpoint instead of starting over.
    """
    # Deepest first: the longest runs start at once, so the pool does not end waiting on one of them.
    jobs = [
        (f"{kind}{depth}-s{seed}", cfg.train_config(kind, depth, seed))
        for depth in sorted(cfg.depths, reverse=True)
        for seed in cfg.seeds
        for kind in KINDS
    ]
    t0 = time.perf_counter()
    runs = run_many(jobs, workers=cfg.workers, store=store, on_run=on_run, run_root=run_root)
    wall = time.perf_counter() - t0
    rows = []
    for kind in KINDS:
        for depth in sorted(cfg.depths):
            rs = [runs[f"{kind}{depth}-s{s}"] for s in cfg.seeds]
            rows.append(
                DegradationRow(
                    kind,
                    depth,
                    [r["best_train_loss"] if r["best_train_loss"] is not None else float("inf") for r in rs],
                    [r["epochs"][-1]["train_error"] if r["epochs"] else 1.0 for r in rs],
                    [r["epochs"][-1]["test_error"] if r["epochs"] else 1.0 for r in rs],
                    [r["run_id"] for r in rs],
                )
            )
    j = judge([r.to_dict() for r in rows], cfg.alpha)
    return DegradationResult(
        cfg, rows, j["comparisons"], j["error_comparisons"], j["verdict"], j["rule"], runs, round(wall, 2)
    )


# ---------------------------------------------------------------- skip types


@dataclass(frozen=True, kw_only=True)
class SkipTypesConfig:
    skips: tuple[str, ...] = SKIP_TYPES  # none identity projection dense highway se
    depth: int = 12  # conv layers (dense: layers of `width` new maps each)
    width: int = 16  # channels (dense: new maps per layer, so its input grows to width·(depth+1))
    epochs: int = 8
    lr: float = 0.02
    warmup_epochs: float = 1.0
    batch_size: int = 128
    seed: int = 0
    data: str = "digits"
    workers: int = 2
    threads: int = 1

    def __post_init__(self) -> None:
        self.validate()

    def validate(self) -> SkipTypesConfig:
        if not self.skips:
            raise ValueError("skips must name at least one skip type")
        for s in self.skips:
            if s not in SKIP_TYPES:
                raise ValueError(f"skip must be one of {', '.join(SKIP_TYPES)}; got {s!r}")
        self.train_config(self.skips[0])
        return self

    def train_config(self, skip: str) -> TrainConfig:
        return recipe(self, f"{skip}conv{self.depth}", self.seed)

    def to_dict(self) -> dict:
        return {**asdict(self), "skips": list(self.skips)}


@dataclass(frozen=True)
class TableResult:
    """An experiment's runs and the table of rows drawn from them."""

    config: SkipTypesConfig | LesionConfig
    rows: list[dict]
    runs: dict[str, dict] = field(repr=False)
    wall_seconds: float = 0.0

    def to_dict(self) -> dict:
        return {
            "config": self.config.to_dict(),
            "rows": self.rows,
            "wall_seconds": self.wall_seconds,
            "runs": self.runs,
        }


class SkipTypesResult(TableResult):
    """rows: skip, params, best_train_loss, final_train_error, final_test_error, seconds, run_id."""


def skip_types(
    cfg: SkipTypesConfig = SkipTypesConfig(),
    *,
    store: RunStore | None = None,
    on_run: Callable[[str, dict], None] | None = None,
) -> SkipTypesResult:
    """A short training of each skip type at equal depth and width; compare training loss and cost."""
    jobs = [(skip, cfg.train_config(skip)) for skip in cfg.skips]
    t0 = time.perf_counter()
    runs = run_many(jobs, workers=cfg.workers, store=store, on_run=on_run)
    rows = [
        {
            "skip": skip,
            "model": r["config"]["model"],
            "params": r["params"],
            "status": r["status"],
            "best_train_loss": r["best_train_loss"],
            "final_train_error": r["epochs"][-1]["train_error"] if r["epochs"] else None,
            "final_test_error": r["epochs"][-1]["test_error"] if r["epochs"] else None,
            "seconds": r["seconds"],
            "run_id": r["run_id"],
        }
        for skip, r in runs.items()
    ]
    return SkipTypesResult(cfg, rows, runs, round(time.perf_counter() - t0, 2))


# ---------------------------------------------------------------- lesion


@dataclass(frozen=True, kw_only=True)
class LesionConfig:
    # The degradation experiment's recipe at one depth: both nets train well at depth 20, so a difference after
    # deleting a block comes from the architecture, not from a net that never learned.
    depth: int = 20
    family: str = "mlp"  # mlp | conv
    width: int = 64
    epochs: int = 10
    lr: float = 0.02
    warmup_epochs: float = 1.0
    batch_size: int = 128
    seeds: tuple[int, ...] = (0,)
    data: str = "digits"
    workers: int = 2
    threads: int = 1

    def __post_init__(self) -> None:
        self.validate()

    def validate(self) -> LesionConfig:
        if self.family not in FAMILIES:
            raise ValueError(f"family must be one of {', '.join(FAMILIES)}; got {self.family!r}")
        if not self.seeds or len(set(self.seeds)) != len(self.seeds):
            raise ValueError(f"seeds must be one or more different integers; got {self.seeds!r}")
        self.train_config("res", self.seeds[0])
        return self

    def train_config(self, kind: str, seed: int) -> TrainConfig:
        return recipe(self, f"{kind}{self.family}{self.depth}", seed)

    def to_dict(self) -> dict:
        return {**asdict(self), "seeds": list(self.seeds)}


def lesion_job(cfg: dict, store_path: str | None, name: str) -> dict:
    """Train one net, then delete each of its blocks in turn on the held-out split (runs in a worker process)."""
    config = TrainConfig.from_dict(cfg)
    result = train(config, store=RunStore(store_path) if store_path else None, name=name)
    data = load_dataset(config.data, seed=config.seed, held_out=config.held_out)
    study = lesion_study(result.model, data.prepare(data.x_test), data.y_test)
    return {**result.to_dict(), "lesion": study.to_dict()}


class LesionExperiment(TableResult):
    """rows: kind, seed, intact_accuracy, mean_accuracy, worst_accuracy, run_id; each run dict carries its
    "lesion" (per-block accuracies)."""


def lesion(
    cfg: LesionConfig = LesionConfig(),
    *,
    store: RunStore | None = None,
    on_run: Callable[[str, dict], None] | None = None,
) -> LesionExperiment:
    """Train a residual and a plain net, then measure held-out accuracy with each single block deleted."""
    jobs = [(f"{kind}{cfg.depth}-s{seed}", cfg.train_config(kind, seed)) for seed in cfg.seeds for kind in KINDS]
    t0 = time.perf_counter()
    runs = run_many(jobs, workers=cfg.workers, store=store, on_run=on_run, job=lesion_job)
    rows = []
    for name, r in runs.items():
        accs = [b["accuracy"] for b in r["lesion"]["blocks"] if b["accuracy"] is not None]
        rows.append(
            {
                "net": name,
                "kind": "residual" if name.startswith("res") else "plain",
                "seed": r["config"]["seed"],
                "intact_accuracy": r["lesion"]["intact_accuracy"],
                "mean_accuracy": r["lesion"]["mean_accuracy"],
                "worst_accuracy": min(accs) if accs else None,
                "best_accuracy": max(accs) if accs else None,
                "run_id": r["run_id"],
            }
        )
    return LesionExperiment(cfg, rows, runs, round(time.perf_counter() - t0, 2))
