import csv
import io
import json

import numpy as np
import pytest
from typer.testing import CliRunner

from skiplab.cli import app
from skiplab.data import write_batch_file

runner = CliRunner()


def text(result) -> str:
    """The output with rich's box drawing and line wrapping undone."""
    return " ".join(result.output.replace("│", " ").split())


TINY = ["--model", "resmlp3", "--width", "8", "--epochs", "2", "--threads", "1"]


def test_train_json_store_and_runs_commands(tmp_path):
    store = str(tmp_path / "runs.db")
    out = runner.invoke(app, ["train", *TINY, "--store", store, "--name", "cli", "--json"])
    assert out.exit_code == 0, out.output
    result = json.loads(out.output)
    assert result["status"] == "completed" and len(result["epochs"]) == 2
    run_id = result["run_id"]

    listed = json.loads(runner.invoke(app, ["runs", "list", "--store", store, "--json"]).output)
    assert [r["id"] for r in listed] == [run_id] and listed[0]["epochs_done"] == 2

    shown = runner.invoke(app, ["runs", "show", run_id, "--store", store, "--json"])
    assert json.loads(shown.output)["epochs"][1]["train_loss"] == result["epochs"][1]["train_loss"]
    table = runner.invoke(app, ["runs", "show", run_id, "--store", store])
    assert table.exit_code == 0 and "resmlp3" in table.output

    exported = runner.invoke(app, ["runs", "export", "--store", store])
    rows = list(csv.DictReader(io.StringIO(exported.output)))
    assert [int(r["epoch"]) for r in rows] == [1, 2] and rows[0]["run_id"] == run_id
    js = runner.invoke(app, ["runs", "export", "--store", store, "--format", "json", "--out", str(tmp_path / "x.json")])
    assert js.exit_code == 0 and json.loads((tmp_path / "x.json").read_text())[0]["id"] == run_id


def test_train_table_with_run_dir_then_resume_extends(tmp_path):
    store, run_dir = str(tmp_path / "runs.db"), str(tmp_path / "run")
    first = runner.invoke(app, ["train", *TINY, "--store", store, "--run-dir", run_dir])
    assert first.exit_code == 0 and "completed" in first.output
    again = runner.invoke(app, ["train", *TINY, "--store", store, "--run-dir", run_dir])
    assert again.exit_code == 2 and "already holds a checkpoint" in text(again)
    more = runner.invoke(app, ["train", "--epochs", "3", "--resume", "--run-dir", run_dir, "--store", store, "--json"])
    assert more.exit_code == 0, more.output
    assert json.loads(more.output)["resumed_from"] == 2 and len(json.loads(more.output)["epochs"]) == 3
    changed = runner.invoke(app, ["train", "--lr", "0.3", "--resume", "--run-dir", run_dir, "--store", store])
    assert changed.exit_code == 2 and "options differ from it: lr" in text(changed)


def test_bad_input_exits_2_naming_the_option(tmp_path):
    store = str(tmp_path / "runs.db")
    cases = [
        (["train", "--preset", "fastest"], "preset must be one of"),
        (["train", "--model", "resnett20", "--no-store"], "unknown model 'resnett20'"),
        (["train", "--data", "cifar10", "--data-root", str(tmp_path), "--no-store"], "holds no CIFAR-10"),
        (["train", "--schedule", "linear", "--no-store"], "schedule must be one of"),
        (["train", "--resume", "--no-store"], "--resume needs --run-dir"),
        (["runs", "show", "nope", "--store", store], "unknown run 'nope'"),
        (["runs", "export", "--format", "xml", "--store", store], "format must be one of csv, json"),
        (["experiment", "degradation", "--depths", "20", "--store", store], "two or more"),
        (["experiment", "degradation", "--depths", "a,b", "--store", store], "--depths takes comma-separated"),
        (["experiment", "skip-types", "--skips", "magic", "--store", store], "skip must be one of"),
    ]
    for argv, message in cases:
        out = runner.invoke(app, argv)
        assert out.exit_code == 2, (argv, out.output)
        assert message in text(out), (argv, out.output)


def test_truncated_cifar_file_is_reported(tmp_path):
    folder = tmp_path / "cifar-10-batches-bin"
    folder.mkdir()
    rng = np.random.default_rng(0)
    for name in [f"data_batch_{i}.bin" for i in range(1, 6)] + ["test_batch.bin"]:
        write_batch_file(folder / name, rng.integers(0, 256, (4, 3, 32, 32), dtype=np.uint8), rng.integers(0, 10, 4))
    (folder / "test_batch.bin").write_bytes((folder / "test_batch.bin").read_bytes()[:-1])
    out = runner.invoke(
        app, ["train", "--data", "cifar10", "--data-root", str(tmp_path), "--model", "resnet8", "--no-store"]
    )
    assert out.exit_code == 2 and "test_batch.bin has 12,291 bytes" in text(out)


@pytest.mark.parametrize("family", ["mlp", "conv"])
def test_experiment_degradation_writes_a_results_file(tmp_path, family):
    target = tmp_path / "deg.json"
    argv = ["experiment", "degradation", "--depths", "2,4", "--seeds", "0", "--epochs", "1", "--width", "4"]
    argv += ["--family", family]
    out = runner.invoke(app, [*argv, "--workers", "1", "--store", str(tmp_path / "r.db"), "--results-out", str(target)])
    assert out.exit_code == 0, out.output
    assert "deeper is better?" in out.output and "plain:" in out.output
    data = json.loads(target.read_text())
    assert data["format"] == "skiplab-results-1" and data["name"] == "degradation"
    assert data["config"]["depths"] == [2, 4] and len(data["runs"]) == 4
    assert data["runs"]["plain4-s0"]["config"]["model"] == f"plain{family}4"
    assert data["command"].startswith("skiplab experiment degradation")


def test_experiment_degradation_verdict_recomputes_a_results_file(tmp_path):
    from skiplab.experiments.results import load_results

    target = tmp_path / "deg.json"
    shipped = load_results("degradation")
    old = {**shipped, "verdict": "residual: deeper is no worse", "comparisons": []}
    target.write_text(json.dumps(old))
    out = runner.invoke(app, ["experiment", "degradation-verdict", "--results", str(target), "--alpha", "0.05"])
    assert out.exit_code == 0, out.output
    data = json.loads(target.read_text())
    assert data["verdict"] == shipped["verdict"] and data["comparisons"] == shipped["comparisons"]
    assert data["runs"] == shipped["runs"] and "Rule:" in out.output
    assert data["verdict_recomputed"]["command"].startswith("skiplab experiment degradation-verdict --results")
    bad = runner.invoke(app, ["experiment", "degradation-verdict", "--results", str(target), "--alpha", "2"])
    assert bad.exit_code == 2 and "alpha" in text(bad)


@pytest.mark.slow
def test_experiment_degradation_on_mnist1d_trains_the_1d_nets(tmp_path):
    target = tmp_path / "deg.json"
    argv = ["experiment", "degradation", "--data", "mnist1d", "--family", "conv1d", "--width", "16", "--seeds", "0"]
    argv += ["--epochs", "1"]
    out = runner.invoke(app, [*argv, "--workers", "1", "--store", str(tmp_path / "r.db"), "--results-out", str(target)])
    assert out.exit_code == 0, out.output
    data = json.loads(target.read_text())
    models = {r["config"]["model"] for r in data["runs"].values()}
    assert models == {"plain1d20", "plain1d56", "resnet1d20", "resnet1d56"}
    assert all(r["config"]["data"] == "mnist1d" and r["status"] == "completed" for r in data["runs"].values())
    assert data["rule"] and all(c["summary"] == "no measurable difference" for c in data["comparisons"])  # 1 seed


def test_experiment_degradation_search_assembles_settings_from_results_files(tmp_path):
    files = []
    for epochs in ("1", "2"):
        target = tmp_path / f"deg{epochs}.json"
        argv = ["experiment", "degradation", "--depths", "2,4", "--seeds", "0,1,2", "--epochs", epochs, "--width", "4"]
        out = runner.invoke(
            app, [*argv, "--workers", "1", "--store", str(tmp_path / "r.db"), "--results-out", str(target)]
        )
        assert out.exit_code == 0, out.output
        files += ["--from", str(target)]
    record_file = tmp_path / "search.json"
    out = runner.invoke(app, ["experiment", "degradation-search", *files, "--results-out", str(record_file)])
    assert out.exit_code == 0, out.output
    record = json.loads(record_file.read_text())
    assert record["name"] == "degradation_search" and record["command"].startswith(
        "skiplab experiment degradation-search --from"
    )
    assert [e["config"]["epochs"] for e in record["settings"]] == [1, 2]
    assert all(e["command"].startswith("skiplab experiment degradation ") for e in record["settings"])
    assert len(record["runs"]) == 2 * 12 and "Rule:" in out.output
    again = runner.invoke(app, ["experiment", "degradation-search", *files, *files[:2]])  # a setting twice
    assert again.exit_code == 2 and "given twice" in text(again)
    bad = runner.invoke(
        app, ["experiment", "degradation-search", "--settings", "depth=3", "--store", str(tmp_path / "r.db")]
    )
    assert bad.exit_code == 2 and "keys epochs, lr, warmup, batch, width" in text(bad)
