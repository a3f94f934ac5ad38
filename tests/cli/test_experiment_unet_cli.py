"""`skiplab experiment unet`: the tables, the results file with its command, and refusals naming the option."""

import json

import pytest
from typer.testing import CliRunner

from skiplab.cli import app

runner = CliRunner()
TINY = ["experiment", "unet", "--seeds", "0,1,2", "--epochs", "1", "--width", "2", "--n", "16", "--batch", "8"]


def text(result) -> str:
    return " ".join(result.output.replace("│", " ").split())


def test_writes_a_results_file_with_the_command_that_made_it(tmp_path):
    target = tmp_path / "unet.json"
    out = runner.invoke(app, [*TINY, "--workers", "1", "--results-out", str(target)])
    assert out.exit_code == 0, out.output
    assert "long skips better?" in out.output and "Rule:" in text(out)
    data = json.loads(target.read_text())
    assert data["format"] == "skiplab-results-1" and data["name"] == "unet"
    assert data["command"].startswith("skiplab experiment unet --seeds 0,1,2 --epochs 1")
    assert "--batch 8" in data["command"] and "--results-out" not in data["command"]
    assert data["machine"]["threads"] == 1 and len(data["runs"]) == 6


@pytest.mark.parametrize(
    "argv, flag, word",
    [
        (["--seeds", "1,1"], "--seeds", "different"),
        (["--epochs", "0"], "--epochs", "epochs must"),
        (["--batch", "0"], "--batch", "batch_size must"),
        (["--width", "-1"], "--width", "width must"),
        (["--seeds", "x"], "--seeds", "comma-separated"),
    ],
)
def test_bad_options_exit_2_naming_the_option(argv, flag, word):
    out = runner.invoke(app, ["experiment", "unet", *argv])
    assert out.exit_code == 2
    assert flag in text(out) and word in text(out)
