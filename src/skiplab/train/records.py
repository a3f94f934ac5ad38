"""What a training run returns: its metrics per epoch and the run's record."""

from __future__ import annotations

import math
from dataclasses import asdict, dataclass, field

from torch import nn


@dataclass(frozen=True)
class EpochMetrics:
    epoch: int  # 1-based: metrics after this many epochs
    train_loss: float  # mean cross-entropy over the epoch's training batches (train mode)
    train_error: float  # share of training examples misclassified during the epoch
    test_loss: float  # held-out cross-entropy after the epoch (eval mode)
    test_error: float
    lr: float  # learning rate at the epoch's last step
    grad_norm_mean: float  # global L2 norm of the gradient, mean over the epoch's steps
    grad_norm_max: float
    grad_norm_min: float
    seconds: float  # wall time of the epoch (training and evaluation)
    images_per_s: float  # training throughput of this process

    def to_dict(self) -> dict:
        return asdict(self)


@dataclass(frozen=True)
class RunResult:
    run_id: str
    status: str  # completed | stopped | diverged
    message: str
    config: dict
    epochs: list[EpochMetrics]
    seconds: float
    params: int
    data: dict
    versions: dict
    git_revision: str | None
    machine: dict = field(default_factory=dict)  # CPU, torch's CPU capability and threads (provenance.machine)
    resumed_from: int = 0  # epochs that came from a checkpoint
    rank: int = 0  # this process's rank under torchrun (0 otherwise): only rank 0 stores and checkpoints
    rank_checksums: list[str] = field(default_factory=list)  # SHA-256 of each rank's final weights (torchrun)
    model: nn.Module | None = field(default=None, repr=False, compare=False)  # the trained network, not serialised

    @property
    def best_train_loss(self) -> float | None:
        finite = [e.train_loss for e in self.epochs if math.isfinite(e.train_loss)]
        return min(finite) if finite else None

    def to_dict(self) -> dict:
        return {
            "run_id": self.run_id,
            "status": self.status,
            "message": self.message,
            "config": self.config,
            "epochs": [e.to_dict() for e in self.epochs],
            "seconds": self.seconds,
            "params": self.params,
            "data": self.data,
            "versions": self.versions,
            "git_revision": self.git_revision,
            "machine": self.machine,
            "resumed_from": self.resumed_from,
            "rank": self.rank,
            "rank_checksums": self.rank_checksums,
            "best_train_loss": self.best_train_loss,
        }
