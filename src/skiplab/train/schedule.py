"""Learning-rate schedules: one pure function of the (fractional) epoch.

Linear warm-up from lr/10 over `warmup_epochs` (Goyal et al. 2017 ramp; He
et al. 2015 warmed ResNet-110 at lr/10), then one of: constant; step (divide
by 1/gamma at each milestone, He et al. 2015); cosine to zero (Loshchilov &
Hutter 2017).
"""

from __future__ import annotations

import math

from skiplab.train.config import TrainConfig


def lr_at(cfg: TrainConfig, epoch: float) -> float:
    """The learning rate at `epoch` (0 = start of training; 1.5 = half-way through the second epoch)."""
    # 1) warm-up: rise linearly from lr/10 to lr
    if epoch < cfg.warmup_epochs:
        return cfg.lr * (0.1 + 0.9 * epoch / cfg.warmup_epochs)
    # 2) after warm-up, the schedule's shape over the whole run
    progress = epoch / cfg.epochs
    if cfg.schedule == "constant":
        return cfg.lr
    if cfg.schedule == "step":
        return cfg.lr * cfg.gamma ** sum(progress >= m for m in cfg.milestones)
    # 3) cosine over the part of the run after warm-up
    t = (epoch - cfg.warmup_epochs) / max(cfg.epochs - cfg.warmup_epochs, 1e-12)
    return cfg.lr * 0.5 * (1.0 + math.cos(math.pi * min(max(t, 0.0), 1.0)))
