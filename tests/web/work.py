"""Module-level functions for the worker-process tests: a worker imports them by name, as it does the routers'."""

from __future__ import annotations

import os
import time
from pathlib import Path


def wait_for(path: str) -> int:
    """Block until `path` exists (a gate the test opens by creating it); return this worker's pid."""
    while not Path(path).exists():
        time.sleep(0.01)
    return os.getpid()


def pid() -> int:
    return os.getpid()


def echo(value: object) -> dict:
    return {"value": value}


def refuse(message: str) -> None:
    raise ValueError(message)


def crash() -> None:
    raise ZeroDivisionError("a library bug")
