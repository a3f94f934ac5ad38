import math

import pytest

from skiplab.train import TrainConfig, lr_at


def test_step_schedule_drops_at_milestones():
    cfg = TrainConfig(epochs=100, lr=0.1, schedule="step", milestones=(0.5, 0.75))
    assert lr_at(cfg, 0) == 0.1 and lr_at(cfg, 49.9) == 0.1
    assert lr_at(cfg, 50) == pytest.approx(0.01) and lr_at(cfg, 80) == pytest.approx(0.001)


def test_cosine_reaches_zero_and_is_monotone():
    cfg = TrainConfig(epochs=10, lr=0.2, schedule="cosine")
    values = [lr_at(cfg, e / 10) for e in range(101)]
    assert values[0] == 0.2 and values[-1] == pytest.approx(0.0, abs=1e-12)
    assert all(a >= b for a, b in zip(values, values[1:]))
    assert lr_at(cfg, 5) == pytest.approx(0.1)


def test_warmup_ramps_from_a_tenth_then_joins_the_schedule():
    cfg = TrainConfig(epochs=10, lr=0.1, schedule="cosine", warmup_epochs=2)
    assert lr_at(cfg, 0) == pytest.approx(0.01)
    assert lr_at(cfg, 1) == pytest.approx(0.055)
    assert lr_at(cfg, 2) == pytest.approx(0.1)
    assert lr_at(cfg, 6) == pytest.approx(0.1 * 0.5 * (1 + math.cos(math.pi * 0.5)))
