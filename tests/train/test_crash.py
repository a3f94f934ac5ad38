"""SIGKILL a training process at random moments, resume, and check nothing was half-written or stored twice."""

import json
import random
import signal
import sqlite3
import subprocess
import sys
import time

import pytest

from skiplab.store import RunStore
from skiplab.train import TrainConfig, load_checkpoint, train

CFG = TrainConfig(model="resmlp6", width=32, epochs=16, batch_size=64, lr=0.05, threads=1)
KILLS = 3


def command(run_dir, store, resume):
    return [
        sys.executable, "-m", "skiplab", "train", "--model", CFG.model, "--width", str(CFG.width),
        "--epochs", str(CFG.epochs), "--batch", str(CFG.batch_size), "--lr", str(CFG.lr), "--threads", "1",
        "--run-dir", str(run_dir), "--store", str(store), "--json", *(["--resume"] if resume else []),
    ]  # fmt: skip


def assert_consistent(run_dir, store_path):
    store = RunStore(store_path)
    assert store.integrity_check() == "ok"
    db = sqlite3.connect(store_path)
    assert not db.execute("SELECT run_id, epoch FROM epochs GROUP BY run_id, epoch HAVING COUNT(*) > 1").fetchall()
    if (run_dir / "checkpoint.json").exists():
        ckpt = load_checkpoint(run_dir)  # parses and its weights match the recorded SHA-256
        assert len(ckpt.meta["history"]) == ckpt.epoch
        assert len(list(run_dir.glob("weights-*.safetensors"))) >= 1


def kill_and_resume(tmp_path, attempts: int = KILLS, seed: int = 5) -> dict:
    """Start, SIGKILL at a random moment and restart the same run `attempts` times, then let it finish.

    Checks the store and the checkpoint after every kill and the final curves against an uninterrupted
    run; returns what happened (bench/bench_crash.py runs it with many more kills than the test).
    """
    reference = train(CFG)
    run_dir, store_path = tmp_path / "run", tmp_path / "runs.db"
    rng = random.Random(seed)
    kills = 0
    for _ in range(attempts):
        resume = (run_dir / "checkpoint.json").exists()
        proc = subprocess.Popen(command(run_dir, store_path, resume), stdout=subprocess.PIPE, stderr=subprocess.PIPE)
        # Interpreter start-up takes a few seconds; kill somewhere between start-up and the end of training.
        time.sleep(rng.uniform(2.0, 6.0))
        if proc.poll() is None:
            proc.send_signal(signal.SIGKILL)
            kills += 1
        proc.communicate(timeout=60)
        assert_consistent(run_dir, store_path)
    resume = (run_dir / "checkpoint.json").exists()
    out = subprocess.run(command(run_dir, store_path, resume), capture_output=True, text=True, timeout=120)
    assert out.returncode == 0, out.stderr[-3000:]
    assert kills >= 1, "no kill landed while training; the timings above need a longer run"
    assert_consistent(run_dir, store_path)
    result = json.loads(out.stdout)
    stored = RunStore(store_path).get(result["run_id"])
    assert stored.status == "completed"
    assert [e["epoch"] for e in stored.epochs] == list(range(1, CFG.epochs + 1))
    # Fixed seed: the interrupted-and-resumed run ends exactly where the uninterrupted one does.
    keys = ("train_loss", "train_error", "test_loss", "test_error", "lr", "grad_norm_mean", "grad_norm_max")
    for mine, ref in zip(stored.epochs, reference.epochs):
        assert {k: mine[k] for k in keys} == {k: getattr(ref, k) for k in keys}
    return {
        "kills": kills,
        "attempts": attempts,
        "epochs": len(stored.epochs),
        "integrity": "ok",
        "duplicated_epochs": 0,
        "same_metrics_as_uninterrupted": True,
    }


@pytest.mark.slow
def test_sigkill_at_random_moments_then_resume_matches_an_uninterrupted_run(tmp_path):
    assert kill_and_resume(tmp_path)["kills"] >= 1
