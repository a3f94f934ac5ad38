"""The files the server reads at run time are declared as package data, so a wheel install has them too."""

from __future__ import annotations

import tomllib
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
PACKAGE = ROOT / "src" / "skiplab"


def test_every_web_asset_and_shipped_result_is_package_data():
    patterns = tomllib.loads((ROOT / "pyproject.toml").read_text())["tool"]["setuptools"]["package-data"]["skiplab"]
    declared = {p for pattern in patterns for p in PACKAGE.glob(pattern) if p.is_file()}
    needed = [
        p
        for folder in ("web/static", "web/templates", "web/vendor", "results")
        for p in (PACKAGE / folder).rglob("*")
        if p.is_file() and "__pycache__" not in p.parts
    ]
    assert needed, "no assets found: the package layout changed"
    missing = sorted(str(p.relative_to(PACKAGE)) for p in needed if p not in declared)
    assert not missing, f"not in [tool.setuptools.package-data]: {missing}"
