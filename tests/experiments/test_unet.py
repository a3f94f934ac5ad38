"""The U-Net experiment: the stated rule on hand-made numbers, the runs it judges, the live pair."""

import json

import pytest

from skiplab.experiments.unet import (
    SUMMARIES,
    UNetConfig,
    compare_skips,
    encode_image,
    judge_runs,
    live_pair,
    run_name,
    unet_experiment,
)
from skiplab.train.segment import SegmentConfig

BETTER, WORSE, SAME = SUMMARIES


def test_better_on_every_seed_beyond_the_spread():
    c = compare_skips("iou", [0.80, 0.82, 0.81], [0.30, 0.35, 0.32])
    assert c.summary == BETTER
    assert c.gains == pytest.approx([0.50, 0.47, 0.49]) and c.smallest_gain == pytest.approx(0.47)
    assert c.spread == pytest.approx(0.05)  # the without-net's range, the larger


def test_better_on_every_seed_but_within_the_spread_is_no_measurable_difference():
    # gains 0.05, 0.05, 0.05, but the nets' seed ranges are 0.2
    c = compare_skips("iou", [0.50, 0.70, 0.60], [0.45, 0.65, 0.55])
    assert all(g > 0 for g in c.gains) and c.spread == pytest.approx(0.2) and c.summary == SAME


def test_mixed_signs_worse_and_too_few_seeds():
    assert compare_skips("iou", [0.5, 0.6, 0.4], [0.45, 0.65, 0.3]).summary == SAME
    assert compare_skips("boundary_f", [0.30, 0.31, 0.30], [0.80, 0.81, 0.80]).summary == WORSE
    assert compare_skips("iou", [0.9, 0.9], [0.1, 0.1]).summary == SAME  # two seeds never call a difference
    with pytest.raises(ValueError):
        compare_skips("iou", [0.9], [0.1, 0.2])


def fake_runs(seeds, with_iou, without_iou):
    runs = {}
    for ls, values in ((True, with_iou), (False, without_iou)):
        for s, v in zip(seeds, values):
            runs[run_name(ls, s)] = {"params": 100 if ls else 110, "iou": v, "boundary_f": v + 0.1}
    return runs


def test_judge_runs_builds_rows_and_says_what_was_measured():
    cfg = UNetConfig(seeds=(0, 1, 2), workers=1)
    rows, comps, won, verdict = judge_runs(cfg, fake_runs(cfg.seeds, [0.8, 0.82, 0.81], [0.3, 0.35, 0.32]))
    assert [r["long_skips"] for r in rows] == [True, False] and rows[1]["params"] == 110
    assert rows[0]["runs"] == ["skips-s0", "skips-s1", "skips-s2"]
    assert won and all(c.summary == BETTER for c in comps) and verdict.startswith("The U-Net with long skips beat")
    rows, comps, won, verdict = judge_runs(cfg, fake_runs(cfg.seeds, [0.8, 0.3, 0.81], [0.3, 0.35, 0.32]))
    assert not won and "do not show" in verdict and "higher on 2/3 seeds" in verdict


def test_encode_image_spans_the_grey_levels():
    import torch

    rows = encode_image(torch.tensor([[[0.0, 1.0], [0.5, 2.0]]]))
    assert rows == ["0080", "40ff"]


def test_a_tiny_experiment_end_to_end():
    cfg = UNetConfig(seeds=(0, 1, 2), epochs=1, width=2, n=16, batch_size=8, workers=1)
    result = unet_experiment(cfg)
    d = json.loads(json.dumps(result.to_dict()))  # everything is plain JSON
    assert set(d["runs"]) == {run_name(ls, s) for ls in (True, False) for s in cfg.seeds}
    assert d["params"]["without"] - d["params"]["with"] == d["params"]["difference"] > 0
    assert len(d["examples"]["inputs"]) == len(d["examples"]["truths"]) == 4
    assert d["rows"][0]["iou"] == [d["runs"][f"skips-s{s}"]["iou"] for s in cfg.seeds]
    assert [c["metric"] for c in d["comparisons"]] == ["iou", "boundary_f"] and d["rule"]


def test_live_pair_reports_each_net_after_each_epoch_and_stops_when_asked():
    cfg = SegmentConfig(width=2, epochs=2, n=16, batch_size=8, examples=(0,))
    events = []
    status, message = live_pair(cfg, events.append)
    assert status == "completed" and [(e["epoch"], e["long_skips"]) for e in events] == [
        (1, True), (1, False), (2, True), (2, False),
    ]  # fmt: skip
    assert len(events[0]["predictions"]) == 1 and 0 <= events[0]["iou"] <= 1
    events.clear()
    status, message = live_pair(cfg, events.append, should_stop=lambda: len(events) >= 1)
    assert status == "stopped" and len(events) == 1 and "stopped" in message


def test_bad_config_names_the_option():
    with pytest.raises(ValueError, match="seeds"):
        UNetConfig(seeds=(1, 1))
    with pytest.raises(ValueError, match="epochs"):
        UNetConfig(epochs=0)
    with pytest.raises(ValueError, match="workers"):
        UNetConfig(workers=0)


def test_the_live_recipe_is_the_shipped_one_for_the_readers_seed_and_epochs():
    from skiplab.experiments.unet import live_config

    shipped = {**UNetConfig(width=4, lr=0.01).to_dict(), "unknown_key": 1}
    cfg = live_config(shipped, seed=5, epochs=2)
    assert (cfg.width, cfg.lr, cfg.seed, cfg.epochs, cfg.threads, cfg.long_skips) == (4, 0.01, 5, 2, 1, True)
    assert live_config(None, seed=0, epochs=1).width == UNetConfig().width  # nothing shipped: the defaults
