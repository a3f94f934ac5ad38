"""U-Net long skips, trained: the same small U-Net with and without its long skips, same budget, several seeds.

Ronneberger et al. (2015) argue that the long skips carry the fine spatial
detail the contracting path throws away, so the decoder can place edges
precisely. Here a U-Net (`skiplab.nn.unet`) learns to segment thin shapes on
textured noise (`skiplab.data.segmentation`) twice per seed, once with its
long skips and once with them cut, with the same recipe, images and epochs;
each run reports the held-out IoU and boundary F-score
(`skiplab.train.masks`) and keeps its predicted masks for a few held-out
images, so a reader can see what was lost.

What the runs show is decided per metric by `rule_text`: the long skips win
only if they score higher on every seed and the smallest per-seed gain is
larger than the seed-to-seed spread of either net. The degradation rule
(`skiplab.experiments.verdict`) tests log-ratios of losses with a t-test;
the question here is the issue's own: better on every seed, by a margin
beyond the seed spread.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import asdict, dataclass, field

import torch

from skiplab.experiments.pool import run_many
from skiplab.experiments.verdict import MIN_SEEDS
from skiplab.nn.unet import long_skip_param_difference
from skiplab.train.segment import SegmentConfig, SegmentTrainer, encode_mask, segmentation_data, train_segmenter

METRICS: dict[str, str] = {"iou": "IoU", "boundary_f": "boundary F"}
NETS: dict[bool, str] = {True: "with long skips", False: "without long skips"}
SUMMARIES: tuple[str, ...] = ("long skips better", "long skips worse", "no measurable difference")


def rule_text() -> str:
    """The comparison rule in words, as the results file and the page state it."""
    return (
        "Per metric (held-out IoU, boundary F), the two nets paired by seed: 'long skips better' if the net with "
        "long skips scores higher on every seed and its smallest per-seed gain is larger than the seed spread "
        "(the larger of the two nets' ranges, highest minus lowest seed); 'long skips worse' if it scores lower on "
        "every seed by more than the spread; otherwise 'no measurable difference'. At least "
        f"{MIN_SEEDS} seeds are needed to call a difference."
    )


@dataclass(frozen=True, kw_only=True)
class UNetConfig:
    # Why these defaults: a width-8 U-Net (3 levels, a 4x4 bottleneck) on 900 training images for 12 epochs
    # takes about half a minute per run on one core, so the 6 runs fit in a few minutes on the 2-core machine;
    # by then the net with long skips has nearly stopped improving on the held-out images.
    seeds: tuple[int, ...] = (0, 1, 2)
    epochs: int = 12
    width: int = 8  # channels at full resolution (doubling per level)
    lr: float = 3e-3  # Adam, cosine to zero
    batch_size: int = 32
    n: int = 1200  # images generated (a quarter held out)
    data_seed: int = 0  # the images, shared by every run
    workers: int = 2  # processes training at once
    threads: int = 1  # torch threads per process

    def __post_init__(self) -> None:
        if not self.seeds or len(set(self.seeds)) != len(self.seeds):
            raise ValueError(f"seeds must be one or more different integers; got {self.seeds!r}")
        if any(isinstance(s, bool) or not isinstance(s, int) or s < 0 for s in self.seeds):
            raise ValueError(f"seeds must be integers >= 0; got {self.seeds!r}")
        if isinstance(self.workers, bool) or not isinstance(self.workers, int) or self.workers < 1:
            raise ValueError(f"workers must be an integer >= 1; got {self.workers!r}")
        self.segment_config(True, self.seeds[0])  # validates the training fields

    def segment_config(self, long_skips: bool, seed: int) -> SegmentConfig:
        return SegmentConfig(
            long_skips=long_skips,
            width=self.width,
            epochs=self.epochs,
            batch_size=self.batch_size,
            lr=self.lr,
            seed=seed,
            data_seed=self.data_seed,
            n=self.n,
            threads=self.threads,
        )

    def to_dict(self) -> dict:
        return {**asdict(self), "seeds": list(self.seeds)}

    @classmethod
    def from_dict(cls, d: dict) -> UNetConfig:
        return cls(**{k: (tuple(v) if k == "seeds" else v) for k, v in d.items() if k in cls.__dataclass_fields__})


def run_name(long_skips: bool, seed: int) -> str:
    return f"{'skips' if long_skips else 'noskips'}-s{seed}"


@dataclass(frozen=True)
class SkipComparison:
    """One metric, the net with long skips against the one without, seed by seed (see `rule_text`)."""

    metric: str  # iou | boundary_f
    with_skips: list[float]  # per seed, in config.seeds order
    without_skips: list[float]
    gains: list[float]  # per seed: with − without
    smallest_gain: float  # the per-seed gain nearest zero (signed)
    spread: float  # the larger of the two nets' ranges over seeds
    summary: str  # long skips better | long skips worse | no measurable difference

    def to_dict(self) -> dict:
        return asdict(self)


def compare_skips(metric: str, with_skips: list[float], without_skips: list[float]) -> SkipComparison:
    """Decide better / worse / no measurable difference for one metric by `rule_text`."""
    if len(with_skips) != len(without_skips) or not with_skips:
        raise ValueError("compare_skips needs one value per seed for both nets")
    gains = [a - b for a, b in zip(with_skips, without_skips)]
    smallest = min(gains, key=abs)
    spread = max(max(v) - min(v) for v in (with_skips, without_skips))
    enough = len(gains) >= MIN_SEEDS
    if enough and all(g > 0 for g in gains) and smallest > spread:
        summary = SUMMARIES[0]
    elif enough and all(g < 0 for g in gains) and -smallest > spread:
        summary = SUMMARIES[1]
    else:
        summary = SUMMARIES[2]
    return SkipComparison(metric, list(with_skips), list(without_skips), gains, smallest, spread, summary)


def _finding(comparisons: list[SkipComparison]) -> tuple[bool, str]:
    """Whether the long skips won on every metric, and the sentence that says what was measured."""
    parts = []
    for c in comparisons:
        n = len(c.gains)
        parts.append(
            f"{METRICS[c.metric]}: {c.summary} (with long skips {' / '.join(f'{v:.3f}' for v in c.with_skips)}, "
            f"without {' / '.join(f'{v:.3f}' for v in c.without_skips)}; higher on {sum(g > 0 for g in c.gains)}/{n} "
            f"seeds; smallest gain {c.smallest_gain:.3f} against a seed spread of {c.spread:.3f})"
        )
    won = all(c.summary == SUMMARIES[0] for c in comparisons)
    head = (
        "The U-Net with long skips beat the one without on every seed, by more than the seeds differ, on both metrics"
        if won
        else "These runs do not show the U-Net with long skips better on every seed by more than the seed spread on "
        "both metrics; measured"
    )
    return won, f"{head}: {'; '.join(parts)}."


def encode_image(image: torch.Tensor) -> list[str]:
    """A (1, H, W) or (H, W) image as H strings of two-digit hex grey levels (0-255, its own min to max)."""
    img = image.reshape(image.shape[-2:]).float()
    lo, hi = float(img.min()), float(img.max())
    levels = ((img - lo) / max(hi - lo, 1e-12) * 255).round().to(torch.uint8)
    return ["".join(f"{v:02x}" for v in row) for row in levels.tolist()]


def examples(cfg: SegmentConfig) -> dict:
    """The held-out images whose predictions the runs keep: their indices, inputs and true masks."""
    data = segmentation_data(cfg)
    return {
        "indices": list(cfg.examples),
        "inputs": [encode_image(data.x_test[i]) for i in cfg.examples],
        "truths": [encode_mask(data.y_test[i]) for i in cfg.examples],
        "data": data.to_dict(),
    }


@dataclass(frozen=True)
class UNetResult:
    config: UNetConfig
    rows: list[dict]  # per net: long_skips, label, params, iou and boundary_f per seed, run names
    comparisons: list[SkipComparison]
    long_skips_win: bool  # better on every seed, beyond the seed spread, on every metric
    verdict: str
    rule: str
    params: dict[str, int]  # with, without, difference (without − with)
    examples: dict
    runs: dict[str, dict] = field(repr=False)  # "skips-s0" → SegmentRun.to_dict()
    wall_seconds: float = 0.0

    def to_dict(self) -> dict:
        return {
            "config": self.config.to_dict(),
            "rows": self.rows,
            "comparisons": [c.to_dict() for c in self.comparisons],
            "long_skips_win": self.long_skips_win,
            "verdict": self.verdict,
            "rule": self.rule,
            "params": self.params,
            "examples": self.examples,
            "wall_seconds": self.wall_seconds,
            "runs": self.runs,
        }


def unet_job(cfg: dict, store_path: str | None, name: str) -> dict:
    """Train one U-Net (runs in a worker process); the run store is not used: a U-Net run is no classifier."""
    return train_segmenter(SegmentConfig.from_dict(cfg)).to_dict()


def judge_runs(cfg: UNetConfig, runs: dict[str, dict]) -> tuple[list[dict], list[SkipComparison], bool, str]:
    """Rows, comparisons, win flag and verdict from the runs (a results file's runs give the same)."""
    rows = []
    for long_skips in (True, False):
        rs = [runs[run_name(long_skips, s)] for s in cfg.seeds]
        rows.append(
            {
                "long_skips": long_skips,
                "label": NETS[long_skips],
                "params": rs[0]["params"],
                **{m: [r[m] if r[m] is not None else 0.0 for r in rs] for m in METRICS},
                "runs": [run_name(long_skips, s) for s in cfg.seeds],
            }
        )
    comparisons = [compare_skips(m, rows[0][m], rows[1][m]) for m in METRICS]
    won, verdict = _finding(comparisons)
    return rows, comparisons, won, verdict


def unet_experiment(cfg: UNetConfig = UNetConfig(), *, on_run: Callable[[str, dict], None] | None = None) -> UNetResult:
    """Train the U-Net with and without long skips for every seed (in parallel) and compare them."""
    jobs = [(run_name(ls, s), cfg.segment_config(ls, s)) for s in cfg.seeds for ls in (True, False)]
    t0 = time.perf_counter()
    runs = run_many(jobs, workers=cfg.workers, on_run=on_run, job=unet_job)
    wall = time.perf_counter() - t0
    rows, comparisons, won, verdict = judge_runs(cfg, runs)
    diff = long_skip_param_difference(cfg.width)
    params = {"with": rows[0]["params"], "without": rows[1]["params"], "difference": diff}
    ex = examples(cfg.segment_config(True, cfg.seeds[0]))
    return UNetResult(cfg, rows, comparisons, won, verdict, rule_text(), params, ex, runs, round(wall, 2))


def live_pair(
    cfg: SegmentConfig,
    on_epoch: Callable[[dict], None],
    should_stop: Callable[[], bool] = lambda: False,
) -> tuple[str, str]:
    """Train a fresh pair, with and without long skips, one epoch of each in turn; report each epoch at once.

    `on_epoch` receives {"long_skips": bool, **SegmentEpoch.to_dict()} (predicted masks of the kept examples
    included) as soon as that net's epoch is measured, so the first result shows after one epoch of one net.
    Returns the final status (completed | stopped) and a message.
    """
    previous = torch.get_num_threads()
    torch.set_num_threads(cfg.threads)
    try:
        data = segmentation_data(cfg)
        trainers = [SegmentTrainer(cfg.replace(long_skips=ls), data) for ls in (True, False)]
        for _ in range(cfg.epochs):
            for trainer in trainers:
                epoch = trainer.run_epoch(should_stop)
                if epoch is None:
                    return "stopped", f"stopped after {len(trainers[1].epochs)} epoch(s) of both nets"
                on_epoch({"long_skips": trainer.cfg.long_skips, **epoch.to_dict()})
        return "completed", f"{cfg.epochs} epoch(s) of each net, seed {cfg.seed}"
    finally:
        torch.set_num_threads(previous)


def live_config(shipped: dict | None, seed: int, epochs: int) -> SegmentConfig:
    """The live pair's recipe: the shipped runs' (`shipped`, a results file's config; None: the defaults) for
    `seed` and `epochs`, on one torch thread, so that a live run can be set beside the stored ones."""
    cfg = UNetConfig.from_dict({**shipped, "seeds": (seed,)}) if shipped else UNetConfig(seeds=(seed,))
    return cfg.segment_config(True, seed).replace(epochs=epochs, threads=1)
