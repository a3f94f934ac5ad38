"""Module-level generators for the streaming tests: a worker imports them by name, as it does the routers'."""

from __future__ import annotations

import time
from pathlib import Path


def count(n: int) -> object:
    for i in range(n):
        yield {"event": "row", "index": i}


def then_refuse(n: int, message: str) -> object:
    yield from count(n)
    raise ValueError(message)


def one_then_wait(gate: str) -> object:
    """One item, then block until `gate` exists (the test withdraws the work meanwhile)."""
    yield {"event": "row", "index": 0}
    while not Path(gate).exists():
        time.sleep(0.01)
    yield {"event": "row", "index": 1}


def slow_items(n: int, pause_s: float) -> object:
    for i in range(n):
        time.sleep(pause_s)
        yield {"event": "row", "index": i}
