"""A run store is a file the user names: bad files, full disks and killed owners end in StoreError or 'interrupted'."""

import os
import signal
import sqlite3
import subprocess
import sys
import textwrap

import pytest

from skiplab.store import RunStore, StoreError
from skiplab.store.runs import process_start


def filled_store(path, runs=50):
    store = RunStore(path)
    for i in range(runs):
        store.create_run(f"r{i}", {"model": "m" * 200})
        store.put_epochs(f"r{i}", [{"epoch": e, "train_loss": 1.0} for e in range(1, 20)])
        store.finish(f"r{i}", "completed")
    db = sqlite3.connect(path)
    db.execute("PRAGMA wal_checkpoint(TRUNCATE)")
    db.close()
    return store


def test_a_file_that_is_not_sqlite_is_named(tmp_path):
    bad = tmp_path / "notes.db"
    bad.write_bytes(b"these are my notes, not a database\n" * 200)
    with pytest.raises(StoreError, match=r"notes\.db.*not a SQLite file"):
        RunStore(bad)


def test_a_truncated_store_is_named(tmp_path):
    path = tmp_path / "runs.db"
    filled_store(path)
    with open(path, "r+b") as f:
        f.truncate(os.path.getsize(path) // 2)
    with pytest.raises(StoreError, match=r"runs\.db.*damaged or truncated"):
        RunStore(path).list()


def test_a_device_is_refused_without_touching_it(tmp_path):
    with pytest.raises(StoreError, match=r"'/dev/full' is not a regular file"):
        RunStore("/dev/full")
    assert not os.path.exists("/dev/full-wal")
    with pytest.raises(StoreError, match="not a directory"):
        RunStore(tmp_path)


def test_a_full_disk_is_named(tmp_path, monkeypatch):
    store = RunStore(tmp_path / "runs.db")
    store.create_run("r", {"model": "m"})
    connect = sqlite3.connect

    def tiny_disk(*args, **kwargs):  # what a full disk looks like to SQLite: no page can be added
        db = connect(*args, **kwargs)
        db.execute("PRAGMA max_page_count=8")
        return db

    monkeypatch.setattr(sqlite3, "connect", tiny_disk)
    with pytest.raises(StoreError, match=r"runs\.db.*disk .* is full"):
        for e in range(1, 10_000):
            store.put_epoch("r", {"epoch": e, "train_loss": 1.0, "note": "x" * 500})


def test_unreadable_json_in_a_row_is_named(tmp_path):
    store = RunStore(tmp_path / "runs.db")
    store.create_run("r", {"model": "m"})
    db = sqlite3.connect(store.path)
    db.execute("UPDATE runs SET config=? WHERE id='r'", ("[" * 100_000,))
    db.commit()
    with pytest.raises(StoreError, match=r"runs\.db.*run 'r' holds unreadable JSON"):
        store.list()


OWNER = """
import sys, time
from skiplab.store import RunStore
RunStore(sys.argv[1]).create_run("victim", {"model": "m"})
print("created", flush=True)
time.sleep(600)
"""


def test_a_run_whose_process_was_killed_is_marked_interrupted_and_a_live_one_is_not(tmp_path):
    path = tmp_path / "runs.db"
    proc = subprocess.Popen(
        [sys.executable, "-c", textwrap.dedent(OWNER), str(path)], stdout=subprocess.PIPE, text=True
    )
    try:
        assert proc.stdout.readline().strip() == "created"
        assert RunStore(path).get("victim").status == "running"  # its owner still runs
        proc.send_signal(signal.SIGKILL)
        proc.wait(timeout=30)
    finally:
        proc.kill()
    run = RunStore(path).get("victim")
    assert run.status == "interrupted" and f"pid {proc.pid}" in run.message and run.finished_at is not None
    assert [r.id for r in RunStore(path).list(status="interrupted")] == ["victim"]


def test_a_reused_pid_does_not_keep_a_dead_run_running(tmp_path):
    store = RunStore(tmp_path / "runs.db")
    store.create_run("mine", {})
    store.create_run("stranger", {})
    db = sqlite3.connect(store.path)  # as if 'stranger' had been recorded by an earlier process with this pid
    db.execute("UPDATE runs SET owner_start='another-boot:1' WHERE id='stranger'")
    db.commit()
    assert process_start(os.getpid()) is not None
    assert store.mark_interrupted() == ["stranger"]
    assert RunStore(store.path).get("mine").status == "running"


def test_a_resumed_run_is_running_again(tmp_path):
    store = RunStore(tmp_path / "runs.db")
    store.create_run("r", {})
    store.finish("r", "interrupted", "killed")
    store.create_run("r", {})
    run = store.get("r")
    assert run.status == "running" and run.finished_at is None


def test_an_older_store_gains_the_owner_columns_and_stays_readable(tmp_path):
    path = tmp_path / "old.db"
    db = sqlite3.connect(path)
    db.executescript(
        """
        CREATE TABLE runs (id TEXT PRIMARY KEY, name TEXT NOT NULL DEFAULT '', model TEXT NOT NULL DEFAULT '',
            data TEXT NOT NULL DEFAULT '', seed INTEGER, status TEXT NOT NULL, message TEXT NOT NULL DEFAULT '',
            config TEXT NOT NULL, versions TEXT NOT NULL DEFAULT '{}', git_revision TEXT,
            created_at REAL NOT NULL, updated_at REAL NOT NULL, finished_at REAL);
        INSERT INTO runs (id, status, config, created_at, updated_at) VALUES ('old', 'running', '{}', 1, 1);
        """
    )
    db.commit()
    db.close()
    store = RunStore(path)
    columns = {r[1] for r in sqlite3.connect(path).execute("PRAGMA table_info(runs)")}
    assert {"machine", "owner_pid", "owner_host", "owner_start"} <= columns
    run = store.get("old")
    assert run.status == "running" and run.machine == {}  # no recorded owner: nothing says it stopped


def test_a_linked_companion_file_is_refused_before_sqlite_writes_through_it(tmp_path):
    victim = tmp_path / "victim.txt"
    victim.write_text("precious")
    (tmp_path / "runs.db-wal").symlink_to(victim)
    with pytest.raises(StoreError, match=r"runs\.db.*companion file runs\.db-wal is a link"):
        RunStore(tmp_path / "runs.db")
    assert victim.read_text() == "precious"
