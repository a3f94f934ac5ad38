"""Helpers every subcommand shares: readable errors with exit code 2, JSON and table output."""

from __future__ import annotations

import json
import re
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from decimal import Decimal
from pathlib import Path
from typing import Annotated, Any

import click
import typer
from rich.console import Console
from rich.table import Table

from skiplab.store import RunStore

console = Console()
err_console = Console(stderr=True)


def _option_named_by(message: str) -> str | None:
    """The flag of the running command that the library's message is about ('width must be ...' → --width)."""
    try:  # typer vendors click and exposes no public accessor for the current context
        from typer._click.globals import get_current_context
    except ImportError:
        return None
    ctx = get_current_context(silent=True)
    if ctx is None:
        return None
    first = message.split(" ", 1)[0].strip(":'\"").replace("-", "_")
    flags = [p.opts[0] for p in ctx.command.params if p.name == first and p.opts and p.opts[0].startswith("--")]
    return flags[0] if flags else None


@contextmanager
def user_errors() -> Iterator[None]:
    """Turn the library's ValueErrors (bad options, unknown names) into a usage error naming the flag: exit code 2."""
    try:
        yield
    except ValueError as e:
        flag = _option_named_by(str(e))
        raise typer.BadParameter(str(e), param_hint=f"'{flag}'" if flag else None) from None


def print_json(data: Any) -> None:
    click.echo(json.dumps(data, indent=2, default=str))


def print_table(title: str, columns: Sequence[str], rows: Sequence[Sequence[Any]]) -> None:
    table = Table(title=title, title_justify="left")
    cells = [[str(v) for v in r] for r in rows]
    for i, c in enumerate(columns):
        # Numbers align right, words left; the first column names the row and is never broken.
        numeric = all(_NUMBER.fullmatch(r[i]) for r in cells if i < len(r) and r[i])
        table.add_column(c, justify="right" if numeric and i else "left", no_wrap=i == 0)
    for r in cells:
        table.add_row(*r)
    console.print(table)


_NUMBER = re.compile(r"[-+]?[\d,.]+(e[-+]?\d+)?\s*[%kKMGT]?(i?B|FLOP)?|nan|inf|—|-")


def human_count(n: float) -> str:
    for unit, scale in (("G", 1e9), ("M", 1e6), ("k", 1e3)):
        if abs(n) >= scale:
            return f"{n / scale:.2f}{unit}"
    return f"{n:g}"


def exact_or_scientific(n: int) -> str:
    """An integer with thousands separators, or in scientific notation beyond 15 digits (2^1000 paths)."""
    return f"{n:,}" if abs(n) < 10**15 else f"{Decimal(n):.4e}"


def human_bytes(n: float) -> str:
    for unit, scale in (("GiB", 2**30), ("MiB", 2**20), ("KiB", 2**10)):
        if abs(n) >= scale:
            return f"{n / scale:.1f} {unit}"
    return f"{n:.0f} B"


DEFAULT_STORE = Path("skiplab-runs.db")  # in the working directory, next to the user's run folders

StoreOpt = Annotated[Path, typer.Option("--store", help="SQLite run store (created if missing).")]
JsonOpt = Annotated[bool, typer.Option("--json", help="Print JSON instead of a table.")]


def open_store(path: Path) -> RunStore:
    """The run store at `path`; a file that is not a usable store (StoreError) exits 2 naming it and the fault."""
    with user_errors():
        return RunStore(path)


def parse_ints(option: str, text: str) -> tuple[int, ...]:
    try:
        values = tuple(int(v) for v in text.split(",") if v.strip())
    except ValueError:
        raise typer.BadParameter(f"{option} takes comma-separated integers, e.g. 20,56; got {text!r}") from None
    if not values:
        raise typer.BadParameter(f"{option} needs at least one integer")
    return values


def fmt(x: float | None, digits: int = 4) -> str:
    return "-" if x is None else f"{x:.{digits}g}"
