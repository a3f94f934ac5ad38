import json

import pytest
from typer.testing import CliRunner

from skiplab.cli import app
from skiplab.experiments.zoo import PUBLISHED_TOP1, activation_memory, imagenet_resnets, zoo_costs

runner = CliRunner()


def test_published_errors_fall_with_depth_and_each_names_its_table():
    errors = [PUBLISHED_TOP1[f"resnet{d}"][0] for d in (18, 34, 50, 101, 152)]
    assert errors == sorted(errors, reverse=True)
    assert all("Table" in source for _, source in PUBLISHED_TOP1.values())


def test_memory_grows_with_the_resolution_and_bad_input_is_refused():
    small, big = activation_memory(("densenet121",), (32, 64))
    assert big.activation_bytes_per_example > 3 * small.activation_bytes_per_example  # 4x the pixels
    assert big.params == small.params
    with pytest.raises(ValueError, match="resolution"):
        activation_memory(("densenet121",), (8,))
    with pytest.raises(ValueError, match="no published error"):
        imagenet_resnets(("plain56",))


def test_finding_says_what_was_measured_and_what_was_published():
    result = zoo_costs(("resnet18", "resnet34"), ("densenet121", "resnet50"), (32,))
    assert "Published: each deeper ResNet has a lower top-1 error" in result.finding
    assert "measured here: resnet34 has 1.9x the parameters" in result.finding
    assert result.memory_finding.startswith("At 32x32, DenseNet-121 saves")


def test_cli_prints_json_and_names_a_bad_option():
    ok = runner.invoke(
        app,
        [
            "experiment",
            "imagenet-costs",
            "--models",
            "resnet18",
            "--memory-models",
            "densenet121",
            "--resolutions",
            "32",
            "--json",
        ],
    )
    assert ok.exit_code == 0, ok.output
    data = json.loads(ok.output)
    assert data["rows"][0]["name"] == "resnet18" and data["memory"][0]["resolution"] == 32
    bad = runner.invoke(app, ["experiment", "imagenet-costs", "--resolutions", "3x"])
    assert bad.exit_code == 2 and "--resolutions" in bad.output
