"""SIGKILL a training process at random moments, resume, and check nothing was half-written or stored twice."""

import json
import random
import sqlite3
import subprocess
import sys
import time

import pytest

from skiplab.store import RunStore
from skiplab.train import TrainConfig, load_checkpoint, train

CFG = TrainConfig(model="resmlp6", width=32, epochs=16, batch_size=64, lr=0.05, threads=1)
KILLS = 3


def command(run_dir, store, resume, json_=True):
    """The CLI run; without --json it writes a line per epoch to stderr, which the kills below key on."""
    return [
        sys.executable, "-m", "skiplab", "train", "--model", CFG.model, "--width", str(CFG.width),
        "--epochs", str(CFG.epochs), "--batch", str(CFG.batch_size), "--lr", str(CFG.lr), "--threads", "1",
        "--run-dir", str(run_dir), "--store", str(store), *(["--json"] if json_ else []),
        *(["--resume"] if resume else []),
    ]  # fmt: skip


def kill_mid_training(proc, epochs_left: int, rng: random.Random) -> bool:
    """SIGKILL `proc` at a random moment inside a random epoch that is not its last; True if it was still running.

    The moment is chosen by training progress (the epoch lines the CLI writes), not by wall-clock time, so a
    fast CPU, a slow one and a busy one all see the kill land while the run is training or checkpointing.
    """
    target = rng.randint(1, max(1, epochs_left - 2))  # epoch lines to wait for; at least one epoch stays to run
    seen = 0
    for line in proc.stderr:
        seen += line.startswith(b"epoch ")
        if seen >= target:
            break
    time.sleep(rng.uniform(0.0, 0.05))  # somewhere inside the next epoch, checkpoint writes included
    alive = proc.poll() is None
    proc.kill()
    return alive


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
        done = load_checkpoint(run_dir).epoch if resume else 0
        if CFG.epochs - done < 2:
            break  # nothing left to interrupt
        cmd = command(run_dir, store_path, resume, json_=False)
        proc = subprocess.Popen(cmd, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
        kills += kill_mid_training(proc, CFG.epochs - done, rng)
        proc.communicate(timeout=600)  # a hang guard only
        assert_consistent(run_dir, store_path)
    resume = (run_dir / "checkpoint.json").exists()
    out = subprocess.run(command(run_dir, store_path, resume), capture_output=True, text=True, timeout=600)
    assert out.returncode == 0, out.stderr[-3000:]
    assert kills >= 1, "no kill landed while training"
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
