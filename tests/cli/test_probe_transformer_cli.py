"""`skiplab probe transformer`: JSON equal to the library's result, a table, and bad options named."""

import json

import pytest
from typer.testing import CliRunner

from skiplab.cli import app
from skiplab.probes.common import threads
from skiplab.probes.transformer import probe_sentences

runner = CliRunner()
pytestmark = pytest.mark.slow  # loads MiniLM (a few seconds, once per process)


def _run(*args):
    with threads(1):
        return runner.invoke(app, ["probe", "transformer", *args])


def test_json_is_the_library_result():
    args = ["--text", "A short sentence.", "--text", "Another one here.", "--lesion", "1.ffn", "--drop", "skip"]
    result = _run(*args, "--json")
    assert result.exit_code == 0, result.output
    out = json.loads(result.output)
    with threads(1):
        expected = probe_sentences(["A short sentence.", "Another one here."], lesion=["1.ffn"], drop="skip")
    assert out["probe"] == json.loads(json.dumps(expected.to_dict()))
    assert out["init"] is None
    assert out["probe"]["norm_position"] == "post-LN" and out["probe"]["lesion"]["lesions"][0]["drop"] == "skip"


def test_table_names_the_architecture_and_every_sublayer():
    result = _run("--text", "Tables are for people.", "--lesion", "0.attention")
    assert result.exit_code == 0, result.output
    assert "post-LN (BERT)" in result.output and "the lesion asked for" in result.output
    assert result.output.count("│ 5 ") == 2  # layer 5's attention and feed-forward rows


@pytest.mark.parametrize(
    "args,flag,message",
    [
        (["--text", " "], "--text", "sentence 1 is empty"),
        (["--text", "word " * 40], "--text", "at most 32"),
        (["--lesion", "6.attention"], "--lesion", "LAYER from 0 to 5"),
        (["--drop", "both"], "--drop", "drop must be one of branch, skip"),
    ],
)
def test_bad_options_exit_2_and_name_the_option(args, flag, message):
    result = _run(*args)
    assert result.exit_code == 2
    assert flag in result.output and message in " ".join(result.output.split()).replace("│ ", "").replace(" │", "")
