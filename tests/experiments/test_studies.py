import math

import pytest

from skiplab import experiments as exp
from skiplab.store import RunStore
from skiplab.train.checkpoint import load_checkpoint


@pytest.mark.parametrize(
    "shallow, deep, summary",
    [
        # plain nets: several times worse on every seed, with little spread in the ratio
        ([0.65, 0.72, 0.66], [2.25, 2.16, 2.08], "deeper is worse"),
        # the shipped digits MLPs' residual pair: 2-3x worse on every seed (an absolute 0.1-nat tolerance hid it)
        ([0.0216, 0.0416, 0.0354], [0.0738, 0.1142, 0.0660], "deeper is worse"),
        # tiny losses: the rule is relative, so 1e-4 vs 5e-4 on every seed is a real difference
        ([1e-4, 1.2e-4, 0.9e-4], [5e-4, 5.5e-4, 5.2e-4], "deeper is worse"),
        # deeper better on every seed, consistently
        ([0.0021, 0.0025, 0.0019], [0.0010, 0.0011, 0.0010], "deeper is better"),
        # lower on every seed but the ratio swings from 0.99 to 0.2: not more than the spread allows
        ([1.0, 1.0, 1.0], [0.99, 0.2, 0.5], "no measurable difference"),
        # mixed signs: never a difference, however large the mean
        ([0.1, 0.1, 0.1], [10.0, 10.0, 0.09], "no measurable difference"),
        # identical: no difference
        ([0.3, 0.4, 0.5], [0.3, 0.4, 0.5], "no measurable difference"),
        # two seeds are too few to call anything, even a 10x gap
        ([0.1, 0.1], [1.0, 1.1], "no measurable difference"),
        # zero spread: every seed the same ratio, which is then decisive
        ([0.1, 0.2, 0.4], [0.2, 0.4, 0.8], "deeper is worse"),
        # diverged deep runs (inf) count as the largest loss
        ([0.5, 0.6, 0.55], [float("inf"), float("inf"), float("inf")], "deeper is worse"),
        # one diverged seed among ordinary ones is an outlier: the ratio is not consistent across seeds, so the
        # t-test does not call it (the per-seed outcomes still show "worse" on every seed)
        ([0.5, 0.6, 0.55], [float("inf"), 2.0, 2.1], "no measurable difference"),
    ],
)
def test_compare_decides_from_the_paired_log_ratios_against_their_spread(shallow, deep, summary):
    c = exp.compare("res", 20, 56, shallow, deep)
    assert c.summary == summary
    assert c.deltas == pytest.approx([d - s for s, d in zip(shallow, deep)])
    assert c.outcomes == ["worse" if r > 0 else "better" if r < 0 else "same" for r in c.log_ratios]
    assert c.ratio == pytest.approx(math.exp(sum(c.log_ratios) / len(c.log_ratios)))
    if c.summary != "no measurable difference":  # a difference always has every seed on its side
        assert len(set(c.outcomes)) == 1 and len(shallow) >= 3


def test_compare_states_its_numbers():
    c = exp.compare("plain", 20, 56, [1.0, 1.0, 1.0], [2.0, 3.0, 4.0])
    logs = [math.log(2), math.log(3), math.log(4)]
    mean = sum(logs) / 3
    se = math.sqrt(sum((x - mean) ** 2 for x in logs) / 2 / 3)
    assert c.log_ratios == pytest.approx(logs) and c.mean_log_ratio == pytest.approx(mean)
    assert c.std_error == pytest.approx(se) and c.t_stat == pytest.approx(mean / se)
    assert c.t_critical == pytest.approx(4.3027, abs=1e-3)  # Student's t, 2 degrees of freedom, 97.5 %
    assert c.summary == "deeper is worse"
    # a stricter level needs a larger t: at alpha 0.001 (t > 31.6) the same runs no longer decide
    assert exp.compare("plain", 20, 56, [1.0, 1.0, 1.0], [2.0, 3.0, 4.0], alpha=0.001).summary == (
        "no measurable difference"
    )
    assert exp.t_critical(5) == pytest.approx(2.776, abs=1e-3)


def test_the_rule_is_stated_with_its_numbers():
    rule = exp.rule_text(0.05)
    assert "every seed" in rule and "standard errors" in rule and "95%" in rule and "3 seeds" in rule
    assert "99%" in exp.rule_text(0.01)


def test_tiny_degradation_stores_every_run_and_its_verdict_matches_the_rows(tmp_path):
    store = RunStore(tmp_path / "runs.db")
    cfg = exp.DegradationConfig(depths=(2, 6), seeds=(0, 1), epochs=2, width=8, workers=1)
    result = exp.degradation(cfg, store=store)
    assert len(result.runs) == 8 and len(store.list()) == 8
    assert all(r.status == "completed" and r.epochs_done == 2 for r in store.list())
    for row in result.rows:
        for seed, loss, run_id in zip(cfg.seeds, row.best_train_loss, row.run_ids):
            run = result.runs[f"{row.kind}{row.depth}-s{seed}"]
            assert run["run_id"] == run_id and loss == min(e["train_loss"] for e in run["epochs"])
    by = {(r.kind, r.depth): r for r in result.rows}
    for c in result.comparisons:
        assert c == exp.compare(c.kind, 2, 6, by[c.kind, 2].best_train_loss, by[c.kind, 6].best_train_loss)
    for c in result.error_comparisons:
        again = exp.compare(c.kind, 2, 6, by[c.kind, 2].final_train_error, by[c.kind, 6].final_train_error, floor=1e-4)
        assert c == again
    plain = next(c for c in result.comparisons if c.kind == "plain")
    assert plain.summary == "no measurable difference"  # two seeds never call a difference
    assert result.verdict.startswith(f"plain: {plain.summary} (6 vs 2: best training loss x {plain.ratio:.3g}")
    assert result.rule == exp.rule_text(cfg.alpha)
    assert exp.judge([r.to_dict() for r in result.rows], cfg.alpha)["verdict"] == result.verdict
    assert result.to_dict()["config"]["seeds"] == [0, 1]


def test_a_degradation_keeps_each_run_folder_and_a_longer_rerun_continues_it(tmp_path):
    cfg = exp.DegradationConfig(depths=(2, 6), seeds=(0,), epochs=1, width=8, workers=1)
    exp.degradation(cfg, run_root=tmp_path / "runs")
    names = sorted(p.name for p in (tmp_path / "runs").iterdir())
    assert names == ["plain2-s0", "plain6-s0", "res2-s0", "res6-s0"]
    assert load_checkpoint(tmp_path / "runs" / "res6-s0").epoch == 1
    longer = exp.DegradationConfig(**{**cfg.to_dict(), "epochs": 2})
    again = exp.degradation(longer, run_root=tmp_path / "runs")
    assert all(r["resumed_from"] == 1 and len(r["epochs"]) == 2 for r in again.runs.values())
    assert load_checkpoint(tmp_path / "runs" / "res6-s0").epoch == 2


@pytest.mark.parametrize(
    "changes, word",
    [
        ({"depths": (20,)}, "two or more"),
        ({"seeds": ()}, "seeds"),
        ({"family": "rnn"}, "family must be one of"),
        ({"lr": 0.0}, "lr"),
        ({"alpha": 0.0}, "alpha"),
        ({"alpha": 1.5}, "alpha"),
        ({"family": "conv1d"}, "family conv1d trains on data mnist1d"),
        ({"data": "mnist1d"}, "data mnist1d is trained with family conv1d"),
        ({"family": "conv1d", "data": "mnist1d", "depths": (20, 44)}, "family conv1d has depths"),
        ({"family": "conv1d", "data": "mnist1d", "width": 64}, "family conv1d has widths"),
    ],
)
def test_bad_degradation_config(changes, word):
    with pytest.raises(ValueError, match=word):
        exp.DegradationConfig(**changes).validate()


@pytest.mark.slow
def test_skip_types_in_two_worker_processes(tmp_path):
    store = RunStore(tmp_path / "runs.db")
    cfg = exp.SkipTypesConfig(skips=("none", "identity", "dense"), depth=2, width=4, epochs=1, workers=2)
    result = exp.skip_types(cfg, store=store)
    assert [r["skip"] for r in result.rows] == ["none", "identity", "dense"]
    assert len(store.list()) == 3  # the workers wrote into the shared store
    params = {r["skip"]: r["params"] for r in result.rows}
    assert params["none"] == params["identity"] < params["dense"]  # an identity shortcut has no parameters
    # the same config trained in this process gives the same curve: worker processes change nothing
    again = exp.skip_types(exp.SkipTypesConfig(skips=("identity",), depth=2, width=4, epochs=1, workers=1))
    assert again.runs["identity"]["epochs"][0]["train_loss"] == result.runs["identity"]["epochs"][0]["train_loss"]
    with pytest.raises(ValueError, match="skip must be one of"):
        exp.SkipTypesConfig(skips=("shortcut",)).validate()


def test_lesion_deletes_every_block_of_both_nets():
    cfg = exp.LesionConfig(depth=3, width=16, epochs=2, workers=1)
    result = exp.lesion(cfg)
    assert {r["kind"] for r in result.rows} == {"residual", "plain"}
    for name, run in result.runs.items():
        blocks = run["lesion"]["blocks"]
        assert len(blocks) == 3
        kinds = {b["kind"] for b in blocks}
        assert kinds == ({"residual"} if name.startswith("res") else {"skipped"})
        row = next(r for r in result.rows if r["net"] == name)
        assert row["worst_accuracy"] == min(b["accuracy"] for b in blocks)


def comparison(kind: str, summary: str) -> dict:
    return {"kind": kind, "summary": summary}


@pytest.mark.parametrize(
    "plain, res, expected",
    [
        ("deeper is worse", "deeper is better", True),
        ("deeper is worse", "no measurable difference", False),
        ("deeper is worse", "deeper is worse", False),
        ("no measurable difference", "deeper is better", False),
    ],
)
def test_both_halves_needs_plain_worse_and_residual_better(plain, res, expected):
    assert exp.both_halves([comparison("plain", plain), comparison("res", res)]) is expected


def test_a_search_records_every_setting_with_its_outcome(tmp_path):
    base = exp.DegradationConfig(depths=(2, 6), seeds=(0, 1, 2), epochs=1, width=8, workers=1)
    settings = [base, exp.DegradationConfig(**{**base.to_dict(), "depths": (2, 6), "seeds": (0, 1, 2), "lr": 0.05})]
    record = exp.degradation_search(settings, store=RunStore(tmp_path / "runs.db"))
    assert [e["label"] for e in record["settings"]] == [exp.setting_label(c.to_dict()) for c in settings]
    assert len(record["runs"]) == 2 * 2 * 2 * 3 and record["config"]["threads"] == 1
    for e in record["settings"]:
        assert e["both_halves"] == exp.both_halves(e["comparisons"])
        assert [c["summary"] for c in e["comparisons"]] == [
            c.summary for c in exp.judge(e["rows"], 0.05)["comparisons"]
        ]
    found = [e["label"] for e in record["settings"] if e["both_halves"]]
    assert record["found"] == found
    if not found:  # says exactly that, and what to run for the paper's result
        assert record["finding"].startswith("No setting tried shows residual deeper better")
        assert "he2015-cifar" in record["finding"]
    assert record["rule"] == exp.rule_text(0.05)


def test_a_live_run_is_the_stored_setting_compressed_to_its_epochs():
    stored = exp.DegradationConfig(
        depths=(20, 56), family="conv1d", data="mnist1d", epochs=40, lr=0.1, warmup_epochs=12.0, width=16
    )
    assert exp.DegradationConfig.from_dict({**stored.to_dict(), "tolerance": 0.1}) == stored  # unknown keys ignored
    live = stored.live_config("res", 56, 3, 10)
    assert live.model == "resnet1d56" and live.epochs == 10 and live.warmup_epochs == 3.0 and live.seed == 3
    assert live.lr == 0.1 and live.threads == 1 and live.device == "cpu"
    with pytest.raises(ValueError, match="depth must be one of 20, 56"):
        stored.live_config("plain", 32, 0, 10)
