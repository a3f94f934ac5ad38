"""skiplab.train: the trainer, schedules, checkpoints and distributed training.

Imports nn and data (never probes, store, experiments, web or cli).
"""

from skiplab.train.checkpoint import Checkpoint, CheckpointError, load_checkpoint, save_checkpoint
from skiplab.train.config import PRESETS, SCHEDULES, TrainConfig, preset
from skiplab.train.loop import EpochMetrics, RunResult, train, train_step
from skiplab.train.models import build_model
from skiplab.train.schedule import lr_at

__all__ = [
    "PRESETS",
    "SCHEDULES",
    "Checkpoint",
    "CheckpointError",
    "EpochMetrics",
    "RunResult",
    "TrainConfig",
    "build_model",
    "load_checkpoint",
    "lr_at",
    "preset",
    "save_checkpoint",
    "train",
    "train_step",
]
