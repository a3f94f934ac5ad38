"""Hostile run folders, run stores and CIFAR folders on the command line: exit 2 naming the file and the fault.

The cases the issue measured in memory run the CLI in a subprocess and check its peak RSS stays far below the
2 GiB (sparse) file it was handed.
"""

import hashlib
import json
import os
import pickle
import shutil
import subprocess
import sys

import numpy as np
import pytest
from typer.testing import CliRunner

from skiplab.cli import app
from skiplab.data import write_batch_file
from skiplab.store import RunStore
from skiplab.train import TrainConfig, train

runner = CliRunner()
GiB = 2**30


def flat(result) -> str:
    return " ".join(result.output.replace("│", " ").split())


def invoke(*argv):
    return runner.invoke(app, list(argv), env={"COLUMNS": "400"})


@pytest.fixture(scope="module")
def pristine(tmp_path_factory):
    run_dir = tmp_path_factory.mktemp("pristine") / "run"
    train(TrainConfig(model="resmlp3", width=8, epochs=1, threads=1), run_dir=run_dir)
    return run_dir


@pytest.fixture
def run(pristine, tmp_path):
    return shutil.copytree(pristine, tmp_path / "run")


def edit_meta(run_dir, **changes):
    meta = json.loads((run_dir / "checkpoint.json").read_text())
    config = changes.pop("config", {})
    meta["config"].update(config)
    meta.update(changes)
    (run_dir / "checkpoint.json").write_text(json.dumps(meta))


def weights_are(run_dir, blob):
    (run_dir / "weights-00001.safetensors").write_bytes(blob)
    edit_meta(run_dir, sha256=hashlib.sha256(blob).hexdigest())


def both_commands(run_dir):
    """The two commands that load a run folder: a study of it and a resume."""
    return [
        invoke("probe", "lesion", "--run-dir", str(run_dir)),
        invoke("train", "--resume", "--run-dir", str(run_dir), "--no-store"),
    ]


SPOILERS = {
    "deep model": (lambda d: edit_meta(d, config={"model": "resmlp1000000000"}), "checkpoint.json", "deeper than"),
    "wide model": (lambda d: edit_meta(d, config={"width": 10**9}), "checkpoint.json", "width 1,000,000,000"),
    "absolute weights": (lambda d: edit_meta(d, weights="/etc/passwd"), "checkpoint.json", "plain file name"),
    "weights up": (lambda d: edit_meta(d, weights="../../etc/hostname"), "checkpoint.json", "plain file name"),
    "pickle": (lambda d: weights_are(d, pickle.dumps({"a": 1})), "weights-00001.safetensors", "a pickle"),
    "truncated": (
        lambda d: weights_are(d, (d / "weights-00001.safetensors").read_bytes()[:-10]),
        "weights-00001.safetensors",
        "truncated or padded",
    ),
    "huge header": (
        lambda d: weights_are(d, (2**62).to_bytes(8, "little") + b"{}"),
        "weights-00001.safetensors",
        "header length 4,611,686,018,427,387,904 bytes",
    ),
    "history types": (lambda d: edit_meta(d, history=[{"epoch": "one"}]), "checkpoint.json", "history[0]"),
    "deep json": (
        lambda d: (d / "checkpoint.json").write_text("[" * 100_000),
        "checkpoint.json",
        "nests too deeply",
    ),
    "epoch type": (lambda d: edit_meta(d, epoch=[1]), "checkpoint.json", "epoch must be an integer"),
}


@pytest.mark.parametrize("case", list(SPOILERS))
def test_a_hostile_run_folder_exits_2_naming_the_file_and_the_fault(run, case):
    spoil, file, fault = SPOILERS[case]
    spoil(run)
    for out in both_commands(run):
        assert out.exit_code == 2, out.output
        assert file in flat(out) and fault in flat(out), out.output


# Runs the CLI as a child of a fresh, small interpreter: a process forked from pytest would start with pytest's
# own resident memory counted in its peak.
LAUNCHER = """
import os, sys
pid = os.fork()
if pid == 0:
    os.execv(sys.executable, [sys.executable, "-m", "skiplab", *sys.argv[1:]])
_, status, usage = os.wait4(pid, 0)
print(os.waitstatus_to_exitcode(status), usage.ru_maxrss * 1024)
"""


def peak_rss(argv) -> tuple[int, str, int]:
    """(exit code, stderr, peak RSS in bytes) of the CLI run in its own process."""
    out = subprocess.run(
        [sys.executable, "-c", LAUNCHER, *argv],
        capture_output=True,
        text=True,
        env={**os.environ, "COLUMNS": "400"},
        timeout=300,
    )
    code, rss = map(int, out.stdout.split()[-2:])
    return code, " ".join(out.stderr.replace("│", " ").split()), rss


def sparse(path, size=2 * GiB, head=b""):
    with open(path, "wb") as f:
        f.write(head)
        f.truncate(size)


@pytest.mark.slow
def test_huge_files_are_refused_in_bounded_memory(run, tmp_path):
    cases = []
    sparse(tmp_path / "big.bin")
    (run / "w.safetensors").symlink_to(tmp_path / "big.bin")
    link = shutil.copytree(run, tmp_path / "link", symlinks=True)
    edit_meta(link, weights="w.safetensors")
    cases.append((["probe", "lesion", "--run-dir", str(link)], "links out of the run folder"))

    header = json.dumps({"model/x": {"dtype": "F32", "shape": [2**29], "data_offsets": [0, 2**31]}}).encode()
    declared = shutil.copytree(run, tmp_path / "declared", symlinks=True)
    sparse(
        declared / "weights-00001.safetensors", 8 + len(header) + 2 * GiB, len(header).to_bytes(8, "little") + header
    )
    cases.append((["probe", "lesion", "--run-dir", str(declared)], "unexpected tensors model/x"))

    big_json = shutil.copytree(run, tmp_path / "bigjson", symlinks=True)
    sparse(big_json / "checkpoint.json")
    cases.append((["train", "--resume", "--run-dir", str(big_json), "--no-store"], "larger than 8 MiB"))

    wide = shutil.copytree(run, tmp_path / "wide", symlinks=True)
    edit_meta(wide, config={"model": "resmlp1000000000", "width": 10**9})
    cases.append((["train", "--resume", "--run-dir", str(wide), "--no-store"], "deeper than depth 2,000"))

    for argv, fault in cases:
        code, err, rss = peak_rss(argv)
        assert code == 2 and fault in err, (argv, err[-2000:])
        assert rss < GiB, (argv, rss)  # reading the 2 GiB file would take more


# ---------------------------------------------------------------- run stores


def bad_stores(tmp_path):
    text = tmp_path / "notes.db"
    text.write_bytes(b"not a database\n" * 100)
    return [(str(text), "notes.db", "not a SQLite file"), ("/dev/full", "/dev/full", "not a regular file")]


def test_a_bad_store_exits_2_in_every_command_that_opens_one(tmp_path):
    for store, file, fault in bad_stores(tmp_path):
        for argv in (
            ["runs", "list", "--store", store],
            ["runs", "show", "x", "--store", store],
            ["runs", "export", "--store", store],
            ["train", "--model", "resmlp3", "--width", "4", "--epochs", "1", "--store", store],
            ["serve", "--store", store, "--port", "1"],
        ):
            out = invoke(*argv)
            assert out.exit_code == 2, (argv, out.output)
            assert file in flat(out) and fault in flat(out), (argv, out.output)


def test_a_full_store_exits_2(tmp_path, monkeypatch):
    import sqlite3

    store = tmp_path / "runs.db"
    filler = RunStore(store)
    for i in range(3):
        filler.create_run(f"filler{i}", {"note": "x" * 3900})  # about a page each
    (pages,) = sqlite3.connect(store).execute("PRAGMA page_count").fetchone()
    connect = sqlite3.connect

    def full_disk(*args, **kwargs):  # what a full disk looks like to SQLite: no page can be added
        db = connect(*args, **kwargs)
        db.execute(f"PRAGMA max_page_count={pages}")
        return db

    monkeypatch.setattr(sqlite3, "connect", full_disk)
    out = invoke("train", "--model", "resmlp3", "--width", "4", "--epochs", "1", "--store", str(store))
    assert out.exit_code == 2, out.output
    assert "runs.db" in flat(out) and "is full" in flat(out)


def test_runs_list_shows_a_run_whose_process_died_as_interrupted(tmp_path):
    import sqlite3

    store = tmp_path / "runs.db"
    RunStore(store).create_run("ghost", {"model": "m"})
    dead = subprocess.run([sys.executable, "-c", "import os; print(os.getpid())"], capture_output=True, text=True)
    db = sqlite3.connect(store)  # as if a process that is gone now had created it
    db.execute("UPDATE runs SET owner_pid=? WHERE id='ghost'", (int(dead.stdout),))
    db.commit()
    out = invoke("runs", "list", "--store", str(store), "--status", "interrupted", "--json")
    assert out.exit_code == 0, out.output
    (run,) = json.loads(out.output)
    assert run["id"] == "ghost" and run["status"] == "interrupted" and "ended without recording" in run["message"]


# ---------------------------------------------------------------- CIFAR folders


def test_every_bad_cifar_file_is_named_by_the_cli(tmp_path):
    folder = tmp_path / "cifar-10-batches-bin"
    folder.mkdir()
    rng = np.random.default_rng(0)
    for name in [f"data_batch_{i}.bin" for i in range(1, 6)] + ["test_batch.bin"]:
        write_batch_file(folder / name, rng.integers(0, 256, (4, 3, 32, 32), dtype=np.uint8), rng.integers(0, 10, 4))
    (folder / "data_batch_1.bin").unlink()
    (folder / "test_batch.bin").write_bytes(b"\x00" * 5)
    out = invoke("train", "--data", "cifar10", "--data-root", str(tmp_path), "--model", "resnet8", "--no-store")
    assert out.exit_code == 2
    assert "has 2 bad files" in flat(out)
    assert "missing CIFAR-10 file data_batch_1.bin" in flat(out) and "test_batch.bin has 5 bytes" in flat(out)
