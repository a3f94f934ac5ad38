"""Open a run for study: the model with its last checkpoint's weights, and the data it was trained on."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

from torch import nn

from skiplab.data import Dataset, load_dataset
from skiplab.train.checkpoint import load_checkpoint
from skiplab.train.config import TrainConfig
from skiplab.train.models import build_model


@dataclass(frozen=True)
class Trained:
    model: nn.Module  # in eval mode, on the CPU
    data: Dataset
    config: TrainConfig
    epoch: int  # epochs completed when the checkpoint was written


def load_trained(run_dir: str | Path, data_root: str | None = None) -> Trained:
    """Rebuild the run's model from its recorded config and load the checkpoint's (SHA-256 verified) weights."""
    ckpt = load_checkpoint(run_dir)
    cfg = TrainConfig.from_dict(ckpt.meta["config"])
    if data_root is not None:
        cfg = cfg.replace(data_root=data_root)
    data = load_dataset(cfg.data, seed=cfg.seed, root=cfg.data_root, held_out=cfg.held_out)
    model = build_model(cfg.model, data.input_shape, data.num_classes, cfg.width)
    model.load_state_dict(ckpt.model_state())
    return Trained(model.eval(), data, cfg, ckpt.epoch)
