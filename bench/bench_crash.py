"""Crash safety under many kills: SIGKILL a training run at random moments, resume, check, repeat."""

from __future__ import annotations

import tempfile
from pathlib import Path

from tests.train.test_crash import kill_and_resume

ATTEMPTS = 20  # the unit test does 3; each attempt costs an interpreter start-up (~2-3 s)


def run() -> dict:
    with tempfile.TemporaryDirectory() as tmp:
        return kill_and_resume(Path(tmp), attempts=ATTEMPTS, seed=11)
