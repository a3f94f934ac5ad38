from pathlib import Path

from tests.check_layers import SRC, imported_layers, violations


def test_imports_point_down_the_layers():
    assert violations() == []


def test_checker_sees_a_violation(tmp_path: Path):
    bad = tmp_path / "bad.py"
    bad.write_text("from skiplab.web.app import create_app\nimport skiplab.train.trainer\n")
    assert {t for t, _ in imported_layers(bad)} == {"web", "train"}
    assert (SRC / "nn").is_dir()
