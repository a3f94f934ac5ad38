import pytest

from skiplab import experiments as exp
from skiplab.store import RunStore


@pytest.mark.parametrize(
    "shallow, deep, outcomes, summary",
    [
        ([0.1, 0.2], [1.0, 1.5], ["worse", "worse"], "deeper is worse"),
        ([0.02, 0.04], [0.07, 0.11], ["same", "same"], "deeper is no worse"),
        ([0.5, 0.5], [0.1, 0.45], ["better", "same"], "deeper is no worse"),
        ([0.5, 0.6], [0.1, 0.2], ["better", "better"], "deeper is better"),
        ([0.1, 0.1], [0.5, 0.1], ["worse", "same"], "mixed"),
    ],
)
def test_compare_claims_only_what_every_seed_shows(shallow, deep, outcomes, summary):
    c = exp.compare("plain", 20, 56, shallow, deep, tol=0.1)
    assert c.outcomes == outcomes and c.summary == summary
    assert c.deltas == pytest.approx([d - s for s, d in zip(shallow, deep)])


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
        again = exp.compare(c.kind, 2, 6, by[c.kind, 2].best_train_loss, by[c.kind, 6].best_train_loss, 0.1)
        assert c == again
    plain = next(c for c in result.comparisons if c.kind == "plain")
    assert result.verdict.startswith(f"plain: {plain.summary} (6 vs 2: worse on {plain.outcomes.count('worse')}/2")
    assert "tolerance 0.1 nats" in result.verdict
    assert result.to_dict()["config"]["seeds"] == [0, 1]


@pytest.mark.parametrize(
    "changes, word",
    [
        ({"depths": (20,)}, "two or more"),
        ({"seeds": ()}, "seeds"),
        ({"family": "rnn"}, "family must be one of"),
        ({"lr": 0.0}, "lr"),
        ({"tolerance": -1.0}, "tolerance"),
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
