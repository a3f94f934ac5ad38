import json

from typer.testing import CliRunner

from skiplab.cli import app

runner = CliRunner()


def test_models_list_json_has_every_model():
    from skiplab.nn import list_models

    result = runner.invoke(app, ["models", "list", "--json"])
    assert result.exit_code == 0, result.output
    rows = json.loads(result.output)
    assert [r["name"] for r in rows] == [s.name for s in list_models()]
    assert {r["name"]: r["params"] for r in rows}["resnet20"] == 269_722


def test_models_info_resnet50_json():
    result = runner.invoke(app, ["models", "info", "resnet50", "--json"])
    assert result.exit_code == 0, result.output
    info = json.loads(result.output)
    assert info["params"] == 25_557_032
    assert info["blocks"] == 16
    # 4.1 GMACs, as published for ResNet-50 (2 FLOPs per multiply-add)
    assert 8.0e9 < info["flops_per_example"] < 8.4e9
    assert info["activation_bytes_per_example"] > 0


def test_models_info_table():
    result = runner.invoke(app, ["models", "info", "resnet20"])
    assert result.exit_code == 0
    assert "269,722" in result.output


def test_unknown_model_exits_2_and_names_choices():
    result = runner.invoke(app, ["models", "info", "resnet21"])
    assert result.exit_code == 2
    assert "unknown model 'resnet21'" in result.output
    assert "resnet20" in result.output


def test_unknown_family_exits_2():
    result = runner.invoke(app, ["models", "list", "--family", "transformers"])
    assert result.exit_code == 2
    assert "cifar-resnet" in result.output


def test_bad_option_error_names_the_flag():
    result = runner.invoke(app, ["probe", "gradflow", "--width", "0"])
    assert result.exit_code == 2
    assert "'--width'" in result.output and "width must be" in result.output
