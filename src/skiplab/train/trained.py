"""Open a run for study: the model with its last checkpoint's weights, and the data it was trained on."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

from torch import nn

from skiplab.data import Dataset, load_dataset
from skiplab.train.checkpoint import CHECKPOINT_JSON, load_checkpoint, load_model_state, priced_config
from skiplab.train.config import TrainConfig
from skiplab.train.models import build_model


@dataclass(frozen=True)
class Trained:
    model: nn.Module  # in eval mode, on the CPU
    data: Dataset
    config: TrainConfig
    epoch: int  # epochs completed when the checkpoint was written


def load_trained(run_dir: str | Path, data_root: str | None = None) -> Trained:
    """Rebuild the run's model from its recorded config and load the checkpoint's (SHA-256 verified) weights.

    The run folder is untrusted: `load_checkpoint` prices its config and checks its weights file before
    anything is built or read in full (see skiplab.train.untrusted).
    """
    ckpt = load_checkpoint(run_dir)
    cfg = priced_config(ckpt.meta["config"], Path(run_dir) / CHECKPOINT_JSON)
    if data_root is not None:
        cfg = cfg.replace(data_root=data_root)
    data = load_dataset(cfg.data, seed=cfg.seed, root=cfg.data_root, held_out=cfg.held_out)
    model = build_model(cfg.model, data.input_shape, data.num_classes, cfg.width)
    load_model_state(ckpt, model)
    return Trained(model.eval(), data, cfg, ckpt.epoch)
