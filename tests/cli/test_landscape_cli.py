"""`skiplab probe landscape` and `skiplab experiment landscape-subjects` render the library's results."""

import json

from typer.testing import CliRunner

from skiplab.cli import app
from skiplab.experiments.landscape import read_index
from skiplab.probes.common import usable_cores
from tests.experiments.test_landscape import _fake_runs

runner = CliRunner()


def _shipped() -> str:
    return f"res20-s{read_index().seeds[0]}"


def test_probe_landscape_plane_json_and_table():
    result = runner.invoke(app, ["probe", "landscape", "--subject", _shipped(), "--grid", "3", "--examples", "16",
                                 "--json"])  # fmt: skip
    assert result.exit_code == 0, result.output
    out = json.loads(result.output)
    assert out["subject"] == _shipped() and out["model"] == "resnet1d20"
    plane = out["plane"]
    assert plane["kind"] == "plane" and len(plane["rows"]) == 3 and plane["bn"] == "running"
    assert plane["rows"][1]["loss"][1] == plane["base_loss"]
    one = runner.invoke(app, ["probe", "landscape", "--subject", _shipped(), "--grid", "3", "--examples", "16",
                              "--threads", "1", "--json"])  # fmt: skip
    assert plane["threads"] == usable_cores()  # the default: one point per core at once
    assert json.loads(one.output)["plane"]["rows"] == plane["rows"]  # the same numbers as one at a time
    table = runner.invoke(app, ["probe", "landscape", "--subject", _shipped(), "--grid", "3", "--examples", "16"])
    assert table.exit_code == 0 and "non-convex share of the plane" in table.output


def test_probe_landscape_line_and_sharpness():
    line = runner.invoke(app, ["probe", "landscape", "--subject", _shipped(), "--view", "line", "--points", "5",
                               "--examples", "8", "--json"])  # fmt: skip
    assert line.exit_code == 0, line.output
    assert json.loads(line.output)["line"]["xs"] == [0.0, 0.25, 0.5, 0.75, 1.0]
    sharp = runner.invoke(app, ["probe", "landscape", "--subject", _shipped(), "--view", "sharpness",
                                "--examples", "8", "--iters", "5"])  # fmt: skip
    assert sharp.exit_code == 0, sharp.output
    assert "|λmin/λmax|" in sharp.output and "smallest" in sharp.output


def test_probe_landscape_bad_options_exit_2_naming_them():
    for args, flag in (
        (["--subject", "res21-s0"], "--subject"),
        (["--subject", _shipped(), "--grid", "4"], "--grid"),
        (["--subject", _shipped(), "--view", "volume"], "--view"),
        (["--subject", _shipped(), "--split", "val"], "--split"),
        (["--subject", _shipped(), "--threads", "0"], "--threads"),
    ):
        result = runner.invoke(app, ["probe", "landscape", *args])
        assert result.exit_code == 2 and flag in result.output, (args, result.output)
    both = runner.invoke(app, ["probe", "landscape"])
    assert both.exit_code == 2 and "either --run-dir" in both.output


def test_landscape_subjects_from_run_folders(tmp_path):
    _fake_runs(tmp_path / "runs", seed=2)
    out = tmp_path / "subjects"
    result = runner.invoke(app, ["experiment", "landscape-subjects", "--runs-dir", str(tmp_path / "runs"),
                                 "--out", str(out), "--json"])  # fmt: skip
    assert result.exit_code == 0, result.output
    index = json.loads(result.output)
    assert [s["name"] for s in index["subjects"]] == ["plain20-s2", "plain56-s2", "res20-s2", "res56-s2"]
    assert index["command"] == f"skiplab experiment landscape-subjects --runs-dir {tmp_path / 'runs'}"
    missing = runner.invoke(app, ["experiment", "landscape-subjects", "--runs-dir", str(tmp_path / "none")])
    assert missing.exit_code == 2 and "--runs-dir" in missing.output


def test_probe_landscape_of_a_run_folder(tmp_path):
    _fake_runs(tmp_path / "runs", seed=1, depths=(20,))
    run = tmp_path / "runs" / "res20-s1"
    result = runner.invoke(app, ["probe", "landscape", "--run-dir", str(run), "--grid", "3", "--examples", "8",
                                 "--json"])  # fmt: skip
    assert result.exit_code == 0, result.output
    out = json.loads(result.output)
    assert out["subject"] == str(run) and out["model"] == "resnet1d20" and out["plane"]["folded_bn"] == 19
