"""The shipped results files: their format, their provenance, and the reproducibility contract.

Same kernels (CPU architecture, torch's CPU capability, thread count) as the
file records: a rerun is bit-exact. Other kernels (tested here by making this
machine use an older instruction set, `provenance.older_kernels_env`): the
first step agrees within float32's rounding bound, and every claim the page
draws from the files still holds after the whole experiment is run again.
"""

import json
import math
import os
import subprocess
import sys

import pytest
import torch

from skiplab import experiments as exp
from skiplab.experiments.results import RESULT_NAMES, load_results
from skiplab.provenance import machine, older_kernels_env, rounding_bound, same_kernels
from skiplab.train import TrainConfig, train

CURVE_KEYS = ("train_loss", "train_error", "test_loss", "test_error", "lr", "grad_norm_mean", "grad_norm_max")


def rerun_first_epochs(config: dict, epochs: int) -> list[dict]:
    """Train the stored config again, cancelled after `epochs` epochs (the schedule keeps the full length)."""
    done = []
    result = train(TrainConfig.from_dict(config), on_epoch=done.append, should_stop=lambda: len(done) >= epochs)
    return [e.to_dict() for e in result.epochs]


def here_with(threads: int) -> dict:
    """This machine's record as a run with `threads` threads would write it."""
    return {**machine(), "threads": threads}


@pytest.mark.parametrize("name", RESULT_NAMES)
def test_every_shipped_file_records_how_and_where_it_was_made(name):
    data = load_results(name)
    assert data["format"] == "skiplab-results-1" and data["name"] == name
    assert data["command"].startswith(f"skiplab experiment {name.replace('_', '-')}")
    assert data["versions"]["torch"] == torch.__version__
    assert "git_revision" in data and data["created"].endswith("Z")
    assert {"cpu", "arch", "capability", "threads"} <= set(data["machine"])
    if "runs" not in data:  # a measurement of the zoo, nothing trained: the process's own threads
        assert data["machine"]["threads"] >= 1
        return
    assert data["machine"]["threads"] == data["config"]["threads"]
    for run in data["runs"].values():
        assert run["status"] == "completed" and run["machine"] == data["machine"]
        assert [e["epoch"] for e in run["epochs"]] == list(range(1, run["config"]["epochs"] + 1))
        if "best_train_loss" in run:  # classifier runs (the U-Net's keep IoU and boundary F per epoch instead)
            assert run["best_train_loss"] == min(e["train_loss"] for e in run["epochs"])


def test_unknown_results_name():
    with pytest.raises(ValueError, match="results name must be one of degradation"):
        load_results("everything")


def test_degradation_verdict_follows_from_its_runs():
    data = load_results("degradation")
    cfg = exp.DegradationConfig(
        **{**data["config"], "depths": tuple(data["config"]["depths"]), "seeds": tuple(data["config"]["seeds"])}
    )
    rows = {(r["kind"], r["depth"]): r for r in data["rows"]}
    for (kind, depth), row in rows.items():
        for seed, best in zip(cfg.seeds, row["best_train_loss"]):
            assert best == data["runs"][f"{kind}{depth}-s{seed}"]["best_train_loss"]
    again = exp.judge(data["rows"], cfg.alpha)
    assert [c.to_dict() for c in again["comparisons"]] == data["comparisons"]
    assert [c.to_dict() for c in again["error_comparisons"]] == data["error_comparisons"]
    assert again["verdict"] == data["verdict"] and again["rule"] == data["rule"] == exp.rule_text(cfg.alpha)
    if "verdict_recomputed" in data:  # recomputed from stored runs: says so, and by which command
        assert data["verdict_recomputed"]["command"].startswith("skiplab experiment degradation-verdict")
        assert data["runs_command"].startswith("skiplab experiment degradation ")
    assert_page_claims(data, load_results("lesion"))


def test_lesion_file_rows_follow_from_its_blocks():
    data = load_results("lesion")
    for row in data["rows"]:
        blocks = data["runs"][row["net"]]["lesion"]["blocks"]
        accs = [b["accuracy"] for b in blocks]
        assert row["worst_accuracy"] == min(accs) and row["mean_accuracy"] == pytest.approx(sum(accs) / len(accs))


def test_skip_types_file_lists_its_skips_in_order():
    data = load_results("skip_types")
    assert [r["skip"] for r in data["rows"]] == data["config"]["skips"]


def assert_page_claims(degradation: dict, lesion: dict) -> None:
    """What the article says these files show."""
    plain = [c for c in degradation["comparisons"] if c["kind"] == "plain"]
    res = [c for c in degradation["comparisons"] if c["kind"] == "res"]
    assert all(o == "worse" for c in plain for o in c["outcomes"])  # plain: deeper is worse, on every seed
    assert all(c["summary"] == "deeper is worse" for c in plain)
    assert degradation["verdict"].startswith("plain: deeper is worse")
    # residual: the deeper net is not shown better (on the digits MLPs it is worse, by far less than plain)
    assert all(c["summary"] != "deeper is better" for c in res)
    assert all(r["mean_log_ratio"] < p["mean_log_ratio"] for r, p in zip(res, plain))
    rows = {r["kind"]: r for r in lesion["rows"]}
    # Deleting one block barely hurts the residual net and brings the plain net down to near chance (10 classes).
    assert rows["residual"]["intact_accuracy"] - rows["residual"]["mean_accuracy"] < 0.1
    assert rows["plain"]["intact_accuracy"] > 0.5 and rows["plain"]["mean_accuracy"] < 0.25


# ------------------------------------------------------------------ same kernels: bit-exact


SHIPPED_RERUNS = [("degradation", "plain20-s0", 2), ("degradation", "res20-s0", 2), ("lesion", "res20-s0", 1),
                  ("skip_types", "identity", 1)]  # fmt: skip


@pytest.mark.parametrize("name,run_name,epochs", SHIPPED_RERUNS)
def test_shipped_runs_rerun_bit_exact_on_the_same_kernels(name, run_name, epochs):
    data = load_results(name)
    run = data["runs"][run_name]
    mine = rerun_first_epochs(run["config"], epochs)
    shipped = run["epochs"][:epochs]
    if same_kernels(data["machine"], here_with(run["config"]["threads"])):
        for m, s in zip(mine, shipped, strict=True):
            assert {k: m[k] for k in CURVE_KEYS} == {k: s[k] for k in CURVE_KEYS}
    else:  # another CPU: the curves are not promised bit for bit (see the claims test below), the schedule is
        assert [m["lr"] for m in mine] == [s["lr"] for s in shipped]
        assert all(math.isfinite(m["train_loss"]) for m in mine)


def test_a_rerun_in_a_fresh_process_is_bit_exact():
    cfg = TrainConfig(model="plainmlp6", width=16, epochs=2, threads=1, seed=4)
    here = [e.to_dict() for e in train(cfg).epochs]
    code = (
        "import json, sys; from skiplab.train import TrainConfig, train; "
        "cfg = TrainConfig.from_dict(json.loads(sys.argv[1])); "
        "print(json.dumps([e.to_dict() for e in train(cfg).epochs]))"
    )
    out = subprocess.run([sys.executable, "-c", code, json.dumps(cfg.to_dict())], capture_output=True, text=True)
    assert out.returncode == 0, out.stderr[-2000:]
    there = json.loads(out.stdout)
    assert [{k: e[k] for k in CURVE_KEYS} for e in there] == [{k: e[k] for k in CURVE_KEYS} for e in here]


# ------------------------------------------------------------------ other kernels


FIRST_STEP = """
import json, sys
from skiplab.provenance import machine
from skiplab.train import TrainConfig
from skiplab.train.loop import loss_of_first_batch
cfg = TrainConfig.from_dict(json.loads(sys.argv[1]))
print(json.dumps({"machine": machine(), **loss_of_first_batch(cfg)}))
"""


def run_with_env(args: list[str], env: dict[str, str], timeout: float | None = None) -> subprocess.CompletedProcess:
    out = subprocess.run(args, capture_output=True, text=True, env={**os.environ, **env}, timeout=timeout)
    assert out.returncode == 0, out.stderr[-3000:]
    return out


def other_kernels() -> dict[str, str]:
    env = older_kernels_env()
    if not env:
        pytest.skip(f"this CPU already runs PyTorch's default kernels ({torch.backends.cpu.get_cpu_capability()})")
    return env


@pytest.mark.parametrize("model", ["plainmlp56", "resmlp56"])
def test_first_step_agrees_across_kernels_within_the_float32_rounding_bound(model):
    cfg = TrainConfig(model=model, width=64, epochs=1, threads=1, seed=0)
    env = other_kernels()
    args = [sys.executable, "-c", FIRST_STEP, json.dumps(cfg.to_dict())]
    native, older = (json.loads(run_with_env(args, e).stdout) for e in ({}, env))
    assert native["machine"]["capability"] != older["machine"]["capability"]
    # 56 blocks + stem and head forward (and as many again backward, for the gradient); the longest sums are
    # BatchNorm's over the batch of 128 and the 64-wide layers'.
    forward = rounding_bound(layers=58, reduction=max(cfg.batch_size, cfg.width))
    backward = rounding_bound(layers=2 * 58, reduction=max(cfg.batch_size, cfg.width))
    for key, bound in (("loss", forward), ("logits_norm", forward), ("grad_norm", backward)):
        assert abs(native[key] - older[key]) <= bound * abs(native[key]), key


@pytest.mark.slow
def test_every_claim_the_page_draws_from_the_shipped_files_holds_on_other_kernels(tmp_path):
    env = other_kernels()
    reruns = {}
    for name in ("degradation", "lesion"):
        command = load_results(name)["command"].split()[1:]
        out_file = tmp_path / f"{name}.json"
        args = [sys.executable, "-m", "skiplab", *command, "--store", str(tmp_path / "runs.db")]
        run_with_env([*args, "--results-out", str(out_file)], env)
        reruns[name] = json.loads(out_file.read_text())
        assert reruns[name]["machine"]["capability"] != load_results(name)["machine"]["capability"]
    assert_page_claims(reruns["degradation"], reruns["lesion"])


def test_rejudge_recomputes_an_old_verdict_and_says_so():
    seeds = [0, 1, 2]
    losses = {("plain", 20): [0.6, 0.7, 0.65], ("plain", 56): [2.2, 2.1, 2.0],
              ("res", 20): [0.02, 0.04, 0.035], ("res", 56): [0.07, 0.11, 0.066]}  # fmt: skip
    rows = [
        {"kind": k, "depth": d, "best_train_loss": v, "final_train_error": [x / 10 for x in v],
         "final_test_error": v, "run_ids": [f"{k}{d}{s}" for s in seeds]}
        for (k, d), v in losses.items()
    ]  # fmt: skip
    runs = {f"{k}{d}-s{s}": {"best_train_loss": v[i]} for (k, d), v in losses.items() for i, s in enumerate(seeds)}
    old = {
        "name": "degradation", "command": "skiplab experiment degradation --seeds 0,1,2 --tolerance 0.1 --workers 2",
        "config": {"seeds": seeds, "tolerance": 0.1}, "rows": rows, "runs": runs,
        "verdict": "residual: deeper is no worse", "comparisons": [],
    }  # fmt: skip
    new = exp.results.rejudge(old, ["experiment", "degradation-verdict"])
    assert new["runs"] == runs and new["rows"] == rows  # the runs are untouched
    assert new["runs_command"] == old["command"]
    assert new["command"] == "skiplab experiment degradation --seeds 0,1,2 --workers 2 --alpha 0.05"
    assert "tolerance" not in new["config"] and new["config"]["alpha"] == 0.05
    assert new["verdict_recomputed"]["command"] == "skiplab experiment degradation-verdict"
    assert new["verdict"].startswith("plain: deeper is worse") and "residual: deeper is worse" in new["verdict"]
    assert new["rule"] == exp.rule_text(0.05)
    again = exp.results.rejudge(new, ["experiment", "degradation-verdict"])  # idempotent
    assert again["runs_command"] == old["command"] and again["command"] == new["command"]
    bad = {**old, "runs": {**runs, "res56-s1": {"best_train_loss": 9.0}}}
    with pytest.raises(ValueError, match="does not match its run"):
        exp.results.rejudge(bad, [])


def test_the_search_record_follows_from_its_runs():
    data = load_results("degradation_search")
    assert data["rule"] == exp.rule_text(data["config"]["alpha"])
    assert data["config"]["settings"] == [e["label"] for e in data["settings"]]
    for e in data["settings"]:
        assert e["command"].startswith("skiplab experiment degradation ")
        assert e["label"] == exp.setting_label(e["config"])
        for row in e["rows"]:  # every row's losses are its runs'
            for seed, best in zip(e["config"]["seeds"], row["best_train_loss"], strict=True):
                assert data["runs"][f"{e['label']}/{row['kind']}{row['depth']}-s{seed}"]["best_train_loss"] == best
        again = exp.judge(e["rows"], data["config"]["alpha"])
        assert [c.to_dict() for c in again["comparisons"]] == e["comparisons"]
        assert e["verdict"] == again["verdict"] and e["both_halves"] == exp.both_halves(e["comparisons"])
    assert data["found"] == [e["label"] for e in data["settings"] if e["both_halves"]]
    if not data["found"]:  # the record says exactly that
        assert data["finding"].startswith("No setting tried shows residual deeper better")
