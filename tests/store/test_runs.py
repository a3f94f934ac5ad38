import csv
import io
import sqlite3

import pytest

from skiplab.store import RunStore, UnknownRunError


@pytest.fixture
def store(tmp_path):
    return RunStore(tmp_path / "runs.db")


def test_wal_mode_and_schema(store):
    db = sqlite3.connect(store.path)
    assert db.execute("PRAGMA journal_mode").fetchone()[0] == "wal"
    tables = {r[0] for r in db.execute("SELECT name FROM sqlite_master WHERE type='table'")}
    assert {"runs", "epochs"} <= tables
    assert store.integrity_check() == "ok"


def test_run_lifecycle_and_unique_epochs(store):
    store.create_run(
        "r1", {"model": "resconv20", "data": "digits", "lr": 0.1}, name="a", seed=3, versions={"torch": "x"}
    )
    store.put_epoch("r1", {"epoch": 1, "train_loss": 2.0, "test_error": 0.5, "images_per_s": 100.0})
    store.put_epoch("r1", {"epoch": 2, "train_loss": 1.0})
    store.put_epoch("r1", {"epoch": 2, "train_loss": 0.9})  # replayed after a resume: replaces, never duplicates
    run = store.get("r1")
    assert run.status == "running" and run.seed == 3 and run.model == "resconv20"
    assert [e["epoch"] for e in run.epochs] == [1, 2]
    assert run.epochs[1]["train_loss"] == 0.9 and run.epochs[0]["images_per_s"] == 100.0
    assert run.best_train_loss == 0.9 and run.epochs_done == 2
    store.finish("r1", "completed")
    assert store.get("r1").status == "completed" and store.get("r1").finished_at is not None
    assert store.truncate_epochs("r1", 1) == 1
    assert [e["epoch"] for e in store.epochs("r1")] == [1]


def test_list_filters_and_errors(store):
    for i, status in enumerate(["completed", "diverged", "completed"]):
        store.create_run(f"r{i}", {"model": "m"}, name=f"exp-{i}")
        store.finish(f"r{i}", status)
    assert {r.id for r in store.list(status="completed")} == {"r0", "r2"}
    assert [r.id for r in store.list(name="exp-1")] == ["r1"]
    assert len(store.list(limit=2)) == 2
    with pytest.raises(ValueError, match="status must be one of"):
        store.list(status="weird")
    with pytest.raises(UnknownRunError, match="unknown run 'zz'"):
        store.get("zz")
    with pytest.raises(ValueError, match="status must be one of"):
        store.finish("r0", "done")


def test_export_csv_and_json(store):
    store.create_run("a", {"model": "m", "data": "digits"}, seed=1)
    store.put_epochs("a", [{"epoch": e, "train_loss": 1.0 / e, "lr": 0.1} for e in (1, 2, 3)])
    rows = list(csv.DictReader(io.StringIO(store.export_csv())))
    assert [int(r["epoch"]) for r in rows] == [1, 2, 3]
    assert float(rows[1]["train_loss"]) == 0.5 and rows[0]["run_id"] == "a"
    js = store.export_json(["a"])
    assert js[0]["config"] == {"model": "m", "data": "digits"} and len(js[0]["epochs"]) == 3


def test_two_handles_share_one_file(tmp_path):
    a, b = RunStore(tmp_path / "s.db"), RunStore(tmp_path / "s.db")
    a.create_run("x", {})
    b.put_epoch("x", {"epoch": 1, "train_loss": 1.0})
    assert a.get("x").epochs_done == 1
