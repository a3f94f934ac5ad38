"""The experiments behind the explainer: the degradation problem, lesions, and the skip-types zoo.

- `degradation`: plain and residual BN conv nets at two or more depths on the
  digits, several seeds, every run stored. He et al. 2015 (sec. 4.1, Fig. 1
  and 6): the deeper plain net has *higher training* error than the shallower
  one, so the problem is optimisation, not overfitting; the residual nets do
  not degrade; the residual nets go on improving with depth. The verdict
  compares each pair of depths seed by seed against the seed-to-seed spread
  (`rule_text`: a paired t-test on log losses plus a sign rule over all
  seeds), and the results file states that rule next to the numbers.
- `lesion`: train a residual and a plain net, then delete each block in turn
  and measure held-out accuracy (Veit et al. 2016: residual nets behave like
  ensembles of shallower paths and survive the loss of one block; plain nets
  do not).
- `skip_types`: a short training of every skip type (none, identity,
  projection, dense, highway, squeeze-excitation) at equal depth and width.
"""

from __future__ import annotations

import math
import time
from collections.abc import Callable
from dataclasses import asdict, dataclass, field

from skiplab.data import load_dataset
from skiplab.experiments.pool import run_many
from skiplab.nn import SKIP_TYPES
from skiplab.probes.lesion import lesion_study
from skiplab.store import RunStore
from skiplab.train.config import TrainConfig
from skiplab.train.loop import train

KINDS: tuple[str, ...] = ("plain", "res")
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

    def train_config(self, kind: str, depth: int, seed: int) -> TrainConfig:
        if self.family == "conv1d":
            suffix = "" if self.width == 16 else f"w{self.width}"
            name = f"{'resnet1d' if kind == 'res' else 'plain1d'}{depth}{suffix}"
            return recipe(self, name, seed).replace(width=None)  # a registered net: its width is in its name
        return recipe(self, f"{kind}{self.family}{depth}", seed)

    def to_dict(self) -> dict:
        return {**asdict(self), "depths": list(self.depths), "seeds": list(self.seeds)}


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


def degradation(
    cfg: DegradationConfig = DegradationConfig(),
    *,
    store: RunStore | None = None,
    on_run: Callable[[str, dict], None] | None = None,
) -> DegradationResult:
    """Train plain and residual nets at every depth and seed (in parallel), compare best training losses."""
    # Deepest first: the longest runs start at once, so the pool does not end waiting on one of them.
    jobs = [
        (f"{kind}{depth}-s{seed}", cfg.train_config(kind, depth, seed))
        for depth in sorted(cfg.depths, reverse=True)
        for seed in cfg.seeds
        for kind in KINDS
    ]
    t0 = time.perf_counter()
    runs = run_many(jobs, workers=cfg.workers, store=store, on_run=on_run)
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


# ---------------------------------------------------------------- degradation search


def both_halves(comparisons: list[dict]) -> bool:
    """He et al.'s whole claim at every pair of depths: plain deeper is worse AND residual deeper is better."""
    plain = [c for c in comparisons if c["kind"] == "plain"]
    res = [c for c in comparisons if c["kind"] == "res"]
    return (
        bool(plain and res)
        and all(c["summary"] == "deeper is worse" for c in plain)
        and all(c["summary"] == "deeper is better" for c in res)
    )


def setting_label(c: dict) -> str:
    """A setting in a few words, e.g. "mnist1d conv1d w16, 30 epochs, lr 0.1, warm-up 9, batch 128, seeds 0,1,2"."""
    return (
        f"{c['data']} {c['family']} w{c['width']}, {c['epochs']} epochs, lr {c['lr']:g}, warm-up "
        f"{c['warmup_epochs']:g}, batch {c['batch_size']}, seeds {','.join(map(str, c['seeds']))}"
    )


def search_entry(label: str, command: str, result: dict) -> dict:
    """One setting of the search: what was run (command, config) and what the rule says about its runs."""
    j = judge(result["rows"], result["config"].get("alpha", 0.05))
    comparisons = [c.to_dict() for c in j["comparisons"]]
    return {
        "label": label,
        "command": command,
        "config": result["config"],
        "rows": result["rows"],
        "comparisons": comparisons,
        "error_comparisons": [c.to_dict() for c in j["error_comparisons"]],
        "verdict": j["verdict"],
        "both_halves": both_halves(comparisons),
        "wall_seconds": result.get("wall_seconds"),
    }


def search_record(entries: list[dict], runs: dict[str, dict], alpha: float = 0.05) -> dict:
    """The search's results: every setting tried with its outcome, the finding in words, and all the runs."""
    found = [e["label"] for e in entries if e["both_halves"]]
    plain_only = [
        e["label"]
        for e in entries
        if all(c["summary"] == "deeper is worse" for c in e["comparisons"] if c["kind"] == "plain")
    ]
    if found:
        finding = (
            f"Both halves of the claim (plain deeper is worse, residual deeper is better, on best training loss by "
            f"the rule) show in: {'; '.join(found)}."
        )
    else:
        residual = "; ".join(
            f"{e['label']}: {c['summary']} ({c['deep']} vs {c['shallow']}, best loss x {c['ratio']:.3g})"
            for e in entries
            for c in e["comparisons"]
            if c["kind"] == "res"
        )
        finding = (
            f"No setting tried shows residual deeper better than residual shallower by the rule ({len(entries)} "
            f"tried). Plain deeper is worse in: {'; '.join(plain_only) or 'none'}. Residual: {residual}. The "
            f"paper's result on CIFAR-10 needs `skiplab train --preset he2015-cifar` with the CIFAR-10 binary release."
        )
    return {
        "config": {"alpha": alpha, "threads": _threads(runs), "settings": [e["label"] for e in entries]},
        "rule": rule_text(alpha),
        "finding": finding,
        "found": found,
        "settings": entries,
        "runs": runs,
    }


def _threads(runs: dict[str, dict]) -> int | None:
    threads = {r["config"].get("threads") for r in runs.values()}
    return threads.pop() if len(threads) == 1 else None


def degradation_search(
    settings: list[DegradationConfig],
    *,
    store: RunStore | None = None,
    on_run: Callable[[str, dict], None] | None = None,
    command_of: Callable[[DegradationConfig], str] | None = None,
) -> dict:
    """Run the degradation experiment for every setting and record each with its outcome."""
    entries, runs = [], {}
    for cfg in settings:
        label = setting_label(cfg.to_dict())
        result = degradation(cfg, store=store, on_run=on_run).to_dict()
        entries.append(search_entry(label, command_of(cfg) if command_of else "", result))
        runs.update({f"{label}/{name}": run for name, run in result["runs"].items()})
    return search_record(entries, runs, settings[0].alpha if settings else 0.05)


def assemble_search(files: list[dict], alpha: float = 0.05) -> dict:
    """The search record from degradation results files (one per setting, each made by its recorded command)."""
    entries, runs = [], {}
    for data in files:
        if data.get("name") != "degradation":
            raise ValueError(f"a search is assembled from degradation results files; got {data.get('name')!r}")
        c = data["config"]
        label = setting_label(c)
        if any(e["label"] == label for e in entries):
            raise ValueError(f"setting {label!r} is given twice")
        entries.append(search_entry(label, data["command"], {**data, "config": {**c, "alpha": alpha}}))
        runs.update({f"{label}/{name}": run for name, run in data["runs"].items()})
    return search_record(entries, runs, alpha)
