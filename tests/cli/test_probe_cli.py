import json

import pytest
from typer.testing import CliRunner

from skiplab.cli import app

runner = CliRunner()


def _json(*args):
    result = runner.invoke(app, ["probe", *args, "--json"])
    assert result.exit_code == 0, result.output
    return json.loads(result.output)


def test_gradflow_stack_json_matches_the_library():
    from skiplab.nn import StackConfig
    from skiplab.probes import stack_gradient_flow

    out = _json("gradflow", "--depth", "6", "--width", "16", "--skip", "none", "--batch", "8")
    expected = stack_gradient_flow(StackConfig(depth=6, width=16, skip="none", in_shape=(16,)), batch=8).to_dict()
    assert out == json.loads(json.dumps(expected))


def test_gradflow_of_a_registry_model():
    out = _json("gradflow", "--model", "resnet20", "--batch", "2")
    assert [la["name"] for la in out["layers"]][:2] == ["layer1.0", "layer1.1"] and len(out["layers"]) == 9


def test_other_probes_json():
    assert _json("anatomy", "--zero-init", "--form", "preact")["residual_norm"] == 0.0
    assert _json("bypass", "--no-skips", "--layers", "3")["paths"] == 1
    assert _json("cost", "resnet20")["peak_bytes"] > 0
    assert [r["skip"] for r in _json("skip-types", "--depth", "2", "--width", "4")["rows"]][-1] == "none"
    assert _json("paths", "--n", "5", "--no-gradient")["distribution"]["total"] == 32


@pytest.mark.parametrize("command", ["gradflow --depth 4", "anatomy", "bypass", "skip-types --depth 2", "paths --n 4"])
def test_tables(command):
    result = runner.invoke(app, ["probe", *command.split()])
    assert result.exit_code == 0, result.output
    assert "│" in result.output


@pytest.mark.parametrize(
    "command,message",
    [
        ("gradflow --depth 1001", "depth must be an integer from 1 to 1000"),
        ("gradflow --skip wormhole", "skip must be one of"),
        ("gradflow --model resnet21", "unknown model 'resnet21'"),
        ("anatomy --form dense", "form must be one of"),
        ("bypass --layers 0", "layers"),
        ("skip-types --width 0", "width"),
        ("paths --n 0", "n must be"),
        ("cost nothing", "unknown model"),
    ],
)
def test_bad_options_exit_2_and_name_the_option(command, message):
    result = runner.invoke(app, ["probe", *command.split()])
    assert result.exit_code == 2
    assert message in " ".join(result.output.split())


def test_probe_lesion_of_a_trained_run(tmp_path):
    import torch

    from skiplab.probes.lesion import lesion_study
    from skiplab.train import TrainConfig, train
    from skiplab.train.trained import load_trained

    run_dir = tmp_path / "run"
    train(TrainConfig(model="resmlp4", width=16, epochs=2, batch_size=64, threads=1), run_dir=run_dir)
    result = runner.invoke(app, ["probe", "lesion", "--run-dir", str(run_dir), "--json"])
    assert result.exit_code == 0, result.output
    out = json.loads(result.output)
    assert out["epoch"] == 2 and out["architecture"] == "residual" and len(out["blocks"]) == 4
    # the same numbers as the library on the reloaded model
    trained = load_trained(run_dir)
    with torch.no_grad():
        direct = lesion_study(trained.model, trained.data.prepare(trained.data.x_test), trained.data.y_test)
    assert out["intact_accuracy"] == direct.intact_accuracy
    assert [b["accuracy"] for b in out["blocks"]] == [b.accuracy for b in direct.blocks]
    table = runner.invoke(app, ["probe", "lesion", "--run-dir", str(run_dir)])
    assert table.exit_code == 0 and "deleted block" in table.output


def test_probe_lesion_of_a_missing_run_exits_2(tmp_path):
    result = runner.invoke(app, ["probe", "lesion", "--run-dir", str(tmp_path / "nothing")])
    assert result.exit_code == 2


def test_huge_path_counts_are_printed_whole_at_80_columns():
    r = runner.invoke(app, ["probe", "paths", "--n", "1000", "--no-gradient"], env={"COLUMNS": "80"})
    assert r.exit_code == 0, r.output
    assert "…" not in r.output
    assert "1.0715e+301 paths" in r.output  # 2^1000
    assert "2.7029e+299" in r.output  # C(1000, 500), the most common length
