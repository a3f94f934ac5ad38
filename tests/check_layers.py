"""Check that imports inside skiplab only point down the layers of DESIGN.md.

nn, data, store → nothing of skiplab; probes → nn; train → nn, data;
experiments → nn, data, probes, train, store; web → everything but cli;
cli → everything. The top-level modules (`skiplab/seeding.py`,
`skiplab/provenance.py`) sit below every layer and import none of them.
Imports under `if TYPE_CHECKING:` name types only and are not counted. Run as
a script (exit 1 on a violation) or through tests/test_layers.py.
"""

from __future__ import annotations

import ast
import sys
from pathlib import Path

SRC = Path(__file__).resolve().parents[1] / "src" / "skiplab"
ALLOWED: dict[str, set[str]] = {
    "nn": set(),
    "data": set(),
    "store": set(),
    "probes": {"nn"},
    "train": {"nn", "data"},
    "experiments": {"nn", "data", "probes", "train", "store"},
    "web": {"nn", "data", "probes", "train", "store", "experiments"},
    "cli": {"nn", "data", "probes", "train", "store", "experiments", "web"},
}


def _type_only(tree: ast.AST) -> set[int]:
    """ids of the nodes inside `if TYPE_CHECKING:` blocks: imports for annotations, never run."""
    out = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.If) and isinstance(node.test, ast.Name) and node.test.id == "TYPE_CHECKING":
            out |= {id(n) for stmt in node.body for n in ast.walk(stmt)}
    return out


def imported_layers(path: Path) -> set[tuple[str, int]]:
    tree = ast.parse(path.read_text(), str(path))
    found = set()
    skip = _type_only(tree)
    for node in ast.walk(tree):
        if id(node) in skip:
            continue
        names = []
        if isinstance(node, ast.Import):
            names = [a.name for a in node.names]
        elif isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
            names = [node.module]
        for name in names:
            parts = name.split(".")
            if parts[0] == "skiplab" and len(parts) > 1:
                found.add((parts[1], node.lineno))
    return found


def violations() -> list[str]:
    out = []
    for path in sorted(p for p in SRC.glob("*.py") if p.name != "__main__.py"):  # __main__ runs the cli
        for target, line in sorted(imported_layers(path)):
            if target in ALLOWED:
                out.append(
                    f"{path.relative_to(SRC.parent)}:{line}: a top-level module must not import skiplab.{target}"
                )
    for layer, allowed in ALLOWED.items():
        for path in sorted((SRC / layer).rglob("*.py")):
            for target, line in sorted(imported_layers(path)):
                if target != layer and target in ALLOWED and target not in allowed:
                    out.append(f"{path.relative_to(SRC.parent)}:{line}: {layer} must not import skiplab.{target}")
    return out


if __name__ == "__main__":
    bad = violations()
    print("\n".join(bad) or f"layers ok ({', '.join(ALLOWED)})")
    sys.exit(1 if bad else 0)
