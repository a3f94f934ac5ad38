"""The shipped results files: their format, their internal consistency, and that the code reproduces them."""

import pytest
import torch

from skiplab.train import TrainConfig, train
from skiplab.train import experiments as exp
from skiplab.train.results import RESULT_NAMES, load_results

CURVE_KEYS = ("train_loss", "train_error", "test_loss", "test_error", "lr", "grad_norm_mean", "grad_norm_max")


def rerun_first_epochs(config: dict, epochs: int) -> list[dict]:
    """Train the stored config again, cancelled after `epochs` epochs (the schedule keeps the full length)."""
    done = []
    result = train(TrainConfig.from_dict(config), on_epoch=done.append, should_stop=lambda: len(done) >= epochs)
    return [e.to_dict() for e in result.epochs]


@pytest.mark.parametrize("name", RESULT_NAMES)
def test_every_shipped_file_records_how_it_was_made(name):
    data = load_results(name)
    assert data["format"] == "skiplab-results-1" and data["name"] == name
    assert data["command"].startswith(f"skiplab experiment {name.replace('_', '-')}")
    assert data["versions"]["torch"] == torch.__version__
    assert "git_revision" in data and data["created"].endswith("Z")
    for run in data["runs"].values():
        assert run["status"] == "completed"
        assert [e["epoch"] for e in run["epochs"]] == list(range(1, run["config"]["epochs"] + 1))
        assert run["best_train_loss"] == min(e["train_loss"] for e in run["epochs"])


def test_unknown_results_name():
    with pytest.raises(ValueError, match="results name must be one of degradation"):
        load_results("everything")


def test_degradation_file_verdict_follows_from_its_runs_and_reruns_exactly():
    data = load_results("degradation")
    cfg = exp.DegradationConfig(
        **{**data["config"], "depths": tuple(data["config"]["depths"]), "seeds": tuple(data["config"]["seeds"])}
    )
    rows = {(r["kind"], r["depth"]): r for r in data["rows"]}
    for (kind, depth), row in rows.items():
        for seed, best in zip(cfg.seeds, row["best_train_loss"]):
            assert best == data["runs"][f"{kind}{depth}-s{seed}"]["best_train_loss"]
    for c in data["comparisons"]:
        again = exp.compare(
            c["kind"], c["shallow"], c["deep"], rows[c["kind"], c["shallow"]]["best_train_loss"],
            rows[c["kind"], c["deep"]]["best_train_loss"], cfg.tolerance,
        )  # fmt: skip
        assert again.to_dict() == c
    # The shipped claim: plain degrades on every seed.
    plain = [c for c in data["comparisons"] if c["kind"] == "plain"]
    assert all(o == "worse" for c in plain for o in c["outcomes"])
    assert data["verdict"].startswith("plain: deeper is worse")
    # Fixed seeds: the first epochs of two shipped runs come out exactly the same again.
    for name in ("plain20-s0", "res20-s0"):
        run = data["runs"][name]
        for mine, shipped in zip(rerun_first_epochs(run["config"], 2), run["epochs"][:2], strict=True):
            assert {k: mine[k] for k in CURVE_KEYS} == {k: shipped[k] for k in CURVE_KEYS}


def test_lesion_file_rows_follow_from_its_blocks_and_rerun_exactly():
    data = load_results("lesion")
    for row in data["rows"]:
        blocks = data["runs"][row["net"]]["lesion"]["blocks"]
        accs = [b["accuracy"] for b in blocks]
        assert row["worst_accuracy"] == min(accs) and row["mean_accuracy"] == pytest.approx(sum(accs) / len(accs))
    run = data["runs"]["res20-s0"]
    mine = rerun_first_epochs(run["config"], 1)[0]
    assert {k: mine[k] for k in CURVE_KEYS} == {k: run["epochs"][0][k] for k in CURVE_KEYS}


def test_skip_types_file_reruns_exactly():
    data = load_results("skip_types")
    assert [r["skip"] for r in data["rows"]] == data["config"]["skips"]
    run = data["runs"]["identity"]
    mine = rerun_first_epochs(run["config"], 1)[0]
    assert {k: mine[k] for k in CURVE_KEYS} == {k: run["epochs"][0][k] for k in CURVE_KEYS}
