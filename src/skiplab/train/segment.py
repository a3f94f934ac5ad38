"""Training a U-Net on the synthetic thin-shapes set: per-epoch held-out IoU and boundary F, predicted masks.

The classification trainer (`skiplab.train.loop`) predicts one label per
example; a segmenter predicts one per pixel, so it has its own small loop.
The recipe: Adam (Kingma and Ba 2015; the usual optimiser for U-Nets) with a
cosine schedule to zero, binary cross-entropy on one logit per pixel,
BatchNorm in training mode. Reproducible: `seed` fixes the initial weights
and the batch order; the images come from `data_seed`, so every run of an
experiment sees the same images. `SegmentTrainer` trains one epoch at a
time, so that two nets can be trained in turn and shown side by side.
"""

from __future__ import annotations

import math
import time
from collections.abc import Callable
from dataclasses import asdict, dataclass, field, replace

import torch
import torch.nn.functional as F

from skiplab.data.dataset import Dataset
from skiplab.data.segmentation import segmentation
from skiplab.nn.unet import UNet, count_params
from skiplab.provenance import machine
from skiplab.seeding import seeded
from skiplab.train.masks import BOUNDARY_TOLERANCE, mask_scores

EVAL_BATCH = 256  # held-out images per forward pass (no gradients kept)


@dataclass(frozen=True, kw_only=True)
class SegmentConfig:
    long_skips: bool = True
    width: int = 8  # channels at full resolution; 16, 32 at the coarser levels and 64 in the bottleneck
    levels: int = 3  # halvings: a 32x32 image is 4x4 in the bottleneck
    epochs: int = 12
    batch_size: int = 32
    lr: float = 3e-3  # Adam's step size at the start of the cosine schedule
    seed: int = 0  # initial weights and batch order
    data_seed: int = 0  # the images (the same for every run of an experiment)
    n: int = 1200  # images generated; the last `held_out` share is held out
    size: int = 32  # image side in pixels
    held_out: float = 0.25
    examples: tuple[int, ...] = (0, 1, 2, 3)  # held-out images whose predicted masks are kept
    threads: int = 1  # torch intra-op threads

    def __post_init__(self) -> None:
        for name in ("width", "levels", "epochs", "batch_size", "n", "threads"):
            value = getattr(self, name)
            if isinstance(value, bool) or not isinstance(value, int) or value < 1:
                raise ValueError(f"{name} must be an integer >= 1; got {value!r}")
        if isinstance(self.lr, bool) or not isinstance(self.lr, (int, float)) or not 0 < self.lr < 1:
            raise ValueError(f"lr must be a number between 0 and 1 (exclusive); got {self.lr!r}")
        if self.size % 2**self.levels:
            raise ValueError(f"size must be a multiple of {2**self.levels} for {self.levels} levels; got {self.size}")
        if any(isinstance(i, bool) or not isinstance(i, int) or i < 0 for i in self.examples):
            raise ValueError(f"examples must be held-out image indices >= 0; got {self.examples!r}")

    def replace(self, **changes) -> SegmentConfig:
        return replace(self, **changes)

    def to_dict(self) -> dict:
        return {**asdict(self), "examples": list(self.examples)}

    @classmethod
    def from_dict(cls, d: dict) -> SegmentConfig:
        return cls(**{**d, "examples": tuple(d.get("examples", cls.examples))})


def segmentation_data(cfg: SegmentConfig) -> Dataset:
    """The images a config trains and is judged on."""
    data = segmentation(cfg.n, cfg.size, cfg.data_seed, cfg.held_out)
    if cfg.examples and max(cfg.examples) >= len(data.y_test):
        raise ValueError(f"examples must be below {len(data.y_test)} (held-out images); got {cfg.examples!r}")
    return data


def cosine_lr(cfg: SegmentConfig, epoch: float) -> float:
    """The step size at `epoch` (fractional): cosine from `lr` to zero over the run."""
    return cfg.lr * 0.5 * (1.0 + math.cos(math.pi * min(max(epoch / cfg.epochs, 0.0), 1.0)))


def encode_mask(mask: torch.Tensor) -> list[str]:
    """A (H, W) mask as H strings of '0'/'1' (compact in JSON, easy to draw)."""
    return ["".join("1" if v else "0" for v in row) for row in mask.bool().tolist()]


@dataclass(frozen=True)
class SegmentEpoch:
    epoch: int
    train_loss: float  # mean binary cross-entropy per pixel over the epoch's batches
    iou: float  # held-out, mean over images
    boundary_f: float  # held-out, mean over images, tolerance BOUNDARY_TOLERANCE px
    lr: float  # at the epoch's last step
    seconds: float  # since training started
    predictions: list[list[str]] = field(default_factory=list)  # the kept examples' masks (encode_mask)

    def to_dict(self) -> dict:
        return asdict(self)


@dataclass(frozen=True)
class SegmentRun:
    config: SegmentConfig
    status: str  # completed | stopped
    params: int
    epochs: list[SegmentEpoch]
    iou: float | None  # the last epoch's held-out IoU (None if no epoch finished)
    boundary_f: float | None
    predictions: list[list[str]]  # the kept examples' masks after the last epoch
    seconds: float
    machine: dict

    def to_dict(self) -> dict:
        d = asdict(self)
        d["config"] = self.config.to_dict()
        d["epochs"] = [{k: v for k, v in e.to_dict().items() if k != "predictions"} for e in self.epochs]
        d["boundary_tolerance"] = BOUNDARY_TOLERANCE
        return d


class SegmentTrainer:
    """One U-Net and its optimiser; `run_epoch` trains one more epoch and measures it on the held-out images."""

    def __init__(self, cfg: SegmentConfig, data: Dataset) -> None:
        self.cfg, self.data = cfg, data
        with seeded(cfg.seed):
            self.model = UNet(width=cfg.width, levels=cfg.levels, long_skips=cfg.long_skips)
        self.optimizer = torch.optim.Adam(self.model.parameters(), lr=cfg.lr)
        self.x_train, self.y_train = data.prepare(data.x_train), data.y_train.float().unsqueeze(1)
        self.x_test = data.prepare(data.x_test)
        self.epochs: list[SegmentEpoch] = []
        self.started = time.perf_counter()

    def run_epoch(self, should_stop: Callable[[], bool] = lambda: False) -> SegmentEpoch | None:
        """Train one epoch (None if `should_stop()` turned true before a batch), then evaluate."""
        cfg, e = self.cfg, len(self.epochs)
        g = torch.Generator().manual_seed(cfg.seed * 1_000_003 + e)  # each epoch's order from seed and epoch
        order = torch.randperm(len(self.x_train), generator=g)
        steps = math.ceil(len(order) / cfg.batch_size)
        total, lr = 0.0, cfg.lr
        self.model.train()
        for i in range(steps):
            if should_stop():
                return None
            lr = cosine_lr(cfg, e + i / steps)
            for group in self.optimizer.param_groups:
                group["lr"] = lr
            idx = order[i * cfg.batch_size : (i + 1) * cfg.batch_size]
            loss = F.binary_cross_entropy_with_logits(self.model(self.x_train[idx]), self.y_train[idx])
            self.optimizer.zero_grad(set_to_none=True)
            loss.backward()
            self.optimizer.step()
            total += float(loss.detach())
        pred = self.predict(self.x_test)
        scores = mask_scores(pred, self.data.y_test)
        epoch = SegmentEpoch(
            epoch=e + 1,
            train_loss=total / steps,
            iou=scores["iou"],
            boundary_f=scores["boundary_f"],
            lr=lr,
            seconds=round(time.perf_counter() - self.started, 3),
            predictions=[encode_mask(pred[i]) for i in cfg.examples],
        )
        self.epochs.append(epoch)
        return epoch

    @torch.no_grad()
    def predict(self, x: torch.Tensor) -> torch.Tensor:
        """Masks (N, H, W) bool: a pixel is on its shape where the logit is positive."""
        self.model.eval()
        return torch.cat([self.model(x[i : i + EVAL_BATCH]) > 0 for i in range(0, len(x), EVAL_BATCH)])[:, 0]

    def result(self, status: str) -> SegmentRun:
        last = self.epochs[-1] if self.epochs else None
        return SegmentRun(
            config=self.cfg,
            status=status,
            params=count_params(self.model),
            epochs=self.epochs,
            iou=last.iou if last else None,
            boundary_f=last.boundary_f if last else None,
            predictions=last.predictions if last else [],
            seconds=round(time.perf_counter() - self.started, 2),
            machine=machine(),
        )


def train_segmenter(
    cfg: SegmentConfig,
    data: Dataset | None = None,
    on_epoch: Callable[[SegmentEpoch], None] | None = None,
    should_stop: Callable[[], bool] = lambda: False,
) -> SegmentRun:
    """Train one U-Net for `cfg.epochs` epochs (with `cfg.threads` torch threads) and return the run."""
    previous = torch.get_num_threads()
    torch.set_num_threads(cfg.threads)
    try:
        trainer = SegmentTrainer(cfg, data if data is not None else segmentation_data(cfg))
        for _ in range(cfg.epochs):
            epoch = trainer.run_epoch(should_stop)
            if epoch is None:
                return trainer.result("stopped")
            if on_epoch is not None:
                on_epoch(epoch)
        return trainer.result("completed")
    finally:
        torch.set_num_threads(previous)
