"""The run store: every training run and its per-epoch metrics in one SQLite file (standard library only).

Two tables. `runs` keeps what is needed to trust and rerun a result (the
full config as JSON, the seed, the status, package versions, the git
revision, timestamps); `epochs` keeps one row per (run, epoch), enforced by
its primary key, so a resumed run that replays an epoch replaces the row
instead of storing it twice.

The database runs in WAL mode so that the web server can read while several
training processes write, and with `synchronous=FULL` so that a process
killed at any moment leaves every committed row intact. Each call opens a
short-lived connection: a `RunStore` is safe to share across processes.

A store is a file the user names, so it is untrusted: a file that is not
SQLite, a truncated or malformed one, a device, or a full disk raise
`StoreError` (a ValueError) naming the file and the fault, never a bare
sqlite3 error. Each run records the process that trains it (pid, host, and
the process's boot id and start time, which a reused pid does not share); a
store that is opened marks `interrupted` the running rows of this host whose
process is gone (killed before it could record a status), and leaves alone
the runs that a live process is still training.
"""

from __future__ import annotations

import csv
import io
import json
import os
import socket
import sqlite3
import stat
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import asdict, dataclass, field
from pathlib import Path

from skiplab.store.owner import alive as _alive
from skiplab.store.owner import process_start
from skiplab.store.schema import ADDED_COLUMNS, METRIC_COLUMNS, SCHEMA, STATUSES


class StoreError(ValueError):
    """The run store's file cannot be used: not SQLite, damaged, not a regular file, or the disk is full."""


class UnknownRunError(ValueError):
    pass


@dataclass(frozen=True)
class RunRecord:
    id: str
    name: str
    model: str
    data: str
    seed: int | None
    status: str
    message: str
    config: dict
    versions: dict
    git_revision: str | None
    created_at: float
    updated_at: float
    finished_at: float | None
    epochs_done: int = 0
    best_train_loss: float | None = None
    machine: dict = field(default_factory=dict)  # CPU, torch's CPU capability and threads the run trained with
    epochs: list[dict] = field(default_factory=list)  # filled by `RunStore.get` only

    def to_dict(self) -> dict:
        return asdict(self)


class RunStore:
    """A SQLite run store at `path` (created on first use)."""

    def __init__(self, path: str | Path) -> None:
        self.path = Path(path).expanduser()
        try:
            st = self.path.stat()
        except FileNotFoundError:
            st = None
        except OSError as e:
            raise StoreError(f"run store {str(self.path)!r} cannot be opened: {e.strerror}") from None
        if st is not None and stat.S_ISDIR(st.st_mode):
            raise StoreError(f"store must be a file path, not a directory: {str(self.path)!r}")
        if st is not None and not stat.S_ISREG(st.st_mode):
            raise StoreError(f"run store {str(self.path)!r} is not a regular file (a device, pipe or socket)")
        for suffix in ("-wal", "-shm", "-journal"):  # SQLite writes these next to the store, following links
            side = self.path.with_name(self.path.name + suffix)
            try:
                mode = side.lstat().st_mode
            except OSError:
                continue
            if not stat.S_ISREG(mode):
                raise StoreError(
                    f"run store {str(self.path)!r}: its companion file {side.name} is a link or not a regular file"
                )
        try:
            self.path.parent.mkdir(parents=True, exist_ok=True)
        except OSError as e:
            raise StoreError(f"run store {str(self.path)!r}: cannot create its folder ({e.strerror})") from None
        with self._connect() as db:
            db.executescript(SCHEMA)
            columns = {row["name"] for row in db.execute("PRAGMA table_info(runs)")}
            for name, decl in ADDED_COLUMNS.items():
                if name in columns:
                    continue
                try:
                    db.execute(f"ALTER TABLE runs ADD COLUMN {name} {decl}")
                except sqlite3.OperationalError as e:  # another process added it first
                    if "duplicate column" not in str(e):
                        raise
        self.mark_interrupted()

    @contextmanager
    def _connect(self) -> Iterator[sqlite3.Connection]:
        """A connection; any SQLite failure on it becomes a StoreError naming the file and the fault."""
        try:
            db = sqlite3.connect(self.path, timeout=30.0, isolation_level=None)
        except sqlite3.Error as e:
            raise self._error(e) from None
        try:
            db.row_factory = sqlite3.Row
            db.execute("PRAGMA journal_mode=WAL")
            db.execute("PRAGMA synchronous=FULL")
            db.execute("PRAGMA foreign_keys=ON")
            db.execute("PRAGMA busy_timeout=30000")
            yield db
        except sqlite3.Error as e:
            raise self._error(e) from None
        finally:
            db.close()

    def _error(self, e: sqlite3.Error) -> StoreError:
        fault = str(e)
        hint = {
            "file is not a database": "not a SQLite file, or damaged at its header",
            "database disk image is malformed": "the file is damaged or truncated",
            "database or disk is full": "the disk (or the store's size limit) is full",
            "disk I/O error": "a disk I/O error",
            "unable to open database file": "the file or its folder cannot be opened or written",
            "attempt to write a readonly database": "the file or its folder is read-only",
        }.get(fault)
        return StoreError(f"run store {str(self.path)!r}: {f'{hint} (SQLite: {fault})' if hint else fault}")

    @contextmanager
    def _transaction(self) -> Iterator[sqlite3.Connection]:
        with self._connect() as db:
            db.execute("BEGIN IMMEDIATE")
            try:
                yield db
            except BaseException:
                if db.in_transaction:  # SQLite ends some failed transactions itself (a full disk)
                    db.execute("ROLLBACK")
                raise
            db.execute("COMMIT")

    # ------------------------------------------------------------ writing

    def create_run(
        self,
        run_id: str,
        config: dict,
        *,
        name: str = "",
        seed: int | None = None,
        versions: dict | None = None,
        git_revision: str | None = None,
        machine: dict | None = None,
    ) -> None:
        """Record a new run as `running`, owned by this process; if `run_id` exists (a resume), running again."""
        now = time.time()
        pid = os.getpid()
        with self._transaction() as db:
            db.execute(
                "INSERT INTO runs (id, name, model, data, seed, status, config, versions, machine, git_revision,"
                " created_at, updated_at, owner_pid, owner_host, owner_start)"
                " VALUES (?, ?, ?, ?, ?, 'running', ?, ?, ?, ?, ?, ?, ?, ?, ?)"
                " ON CONFLICT(id) DO UPDATE SET status='running', message='', updated_at=excluded.updated_at,"
                " finished_at=NULL, owner_pid=excluded.owner_pid, owner_host=excluded.owner_host,"
                " owner_start=excluded.owner_start",
                (
                    run_id,
                    name,
                    str(config.get("model", "")),
                    str(config.get("data", "")),
                    seed,
                    json.dumps(config, sort_keys=True),
                    json.dumps(versions or {}, sort_keys=True),
                    json.dumps(machine or {}, sort_keys=True),
                    git_revision,
                    now,
                    now,
                    pid,
                    socket.gethostname(),
                    process_start(pid),
                ),
            )

    def mark_interrupted(self) -> list[str]:
        """Mark `interrupted` the running runs of this host whose training process is gone; returns their ids.

        Runs recorded by another host, or by a store from before runs recorded
        their process, are left as they are: nothing here can tell whether
        they still train.
        """
        host = socket.gethostname()
        with self._connect() as db:
            rows = db.execute(
                "SELECT id, owner_pid, owner_start FROM runs"
                " WHERE status='running' AND owner_host=? AND owner_pid IS NOT NULL",
                (host,),
            ).fetchall()
        gone = [r for r in rows if not _alive(r["owner_pid"], r["owner_start"])]
        if not gone:
            return []
        now = time.time()
        marked = []
        with self._transaction() as db:
            for r in gone:
                message = f"its training process (pid {r['owner_pid']} on {host}) ended without recording a status"
                n = db.execute(
                    "UPDATE runs SET status='interrupted', message=?, updated_at=?, finished_at=?"
                    " WHERE id=? AND status='running' AND owner_pid=? AND owner_start IS ?",
                    (message, now, now, r["id"], r["owner_pid"], r["owner_start"]),
                ).rowcount
                if n:
                    marked.append(r["id"])
        return marked

    def put_epoch(self, run_id: str, metrics: dict) -> None:
        """Store one epoch's metrics (the dict needs `epoch`); storing the same epoch again replaces it."""
        self.put_epochs(run_id, [metrics])

    def put_epochs(self, run_id: str, rows: list[dict]) -> None:
        cols = ("epoch", *METRIC_COLUMNS, "extra")
        sql = (
            f"INSERT INTO epochs (run_id, {', '.join(cols)}) VALUES (?, {', '.join('?' * len(cols))})"
            f" ON CONFLICT(run_id, epoch) DO UPDATE SET {', '.join(f'{c}=excluded.{c}' for c in cols[1:])}"
        )
        values = []
        for m in rows:
            if "epoch" not in m:
                raise ValueError("an epoch's metrics need an 'epoch' key")
            extra = {k: v for k, v in m.items() if k != "epoch" and k not in METRIC_COLUMNS}
            values.append((run_id, int(m["epoch"]), *(m.get(c) for c in METRIC_COLUMNS), json.dumps(extra)))
        with self._transaction() as db:
            db.executemany(sql, values)
            db.execute("UPDATE runs SET updated_at=? WHERE id=?", (time.time(), run_id))

    def truncate_epochs(self, run_id: str, after_epoch: int) -> int:
        """Delete the epochs after `after_epoch` (a resume replays them from the last checkpoint); returns how many."""
        with self._transaction() as db:
            return db.execute("DELETE FROM epochs WHERE run_id=? AND epoch>?", (run_id, after_epoch)).rowcount

    def finish(self, run_id: str, status: str, message: str = "") -> None:
        if status not in STATUSES:
            raise ValueError(f"status must be one of {', '.join(STATUSES)}; got {status!r}")
        now = time.time()
        finished = None if status == "running" else now
        with self._transaction() as db:
            n = db.execute(
                "UPDATE runs SET status=?, message=?, updated_at=?, finished_at=? WHERE id=?",
                (status, message, now, finished, run_id),
            ).rowcount
        if not n:
            raise UnknownRunError(f"unknown run {run_id!r}")

    def delete(self, run_id: str) -> None:
        with self._transaction() as db:
            db.execute("DELETE FROM epochs WHERE run_id=?", (run_id,))
            if not db.execute("DELETE FROM runs WHERE id=?", (run_id,)).rowcount:
                raise UnknownRunError(f"unknown run {run_id!r}")

    # ------------------------------------------------------------ reading

    def _record(self, row: sqlite3.Row) -> RunRecord:
        try:
            config, versions, machine = (json.loads(row[k]) for k in ("config", "versions", "machine"))
        except (TypeError, ValueError, RecursionError) as e:
            raise StoreError(f"run store {str(self.path)!r}: run {row['id']!r} holds unreadable JSON ({e})") from None
        return RunRecord(
            id=row["id"],
            name=row["name"],
            model=row["model"],
            data=row["data"],
            seed=row["seed"],
            status=row["status"],
            message=row["message"],
            config=config,
            versions=versions,
            git_revision=row["git_revision"],
            created_at=row["created_at"],
            updated_at=row["updated_at"],
            finished_at=row["finished_at"],
            epochs_done=row["epochs_done"] or 0,
            best_train_loss=row["best_train_loss"],
            machine=machine,
        )

    _SELECT = (
        "SELECT runs.*, COUNT(epochs.epoch) AS epochs_done, MIN(epochs.train_loss) AS best_train_loss"
        " FROM runs LEFT JOIN epochs ON epochs.run_id = runs.id"
    )

    def list(self, status: str | None = None, name: str | None = None, limit: int | None = None) -> list[RunRecord]:
        """Runs, newest first, optionally only those with `status` or whose name starts with `name`."""
        if status is not None and status not in STATUSES:
            raise ValueError(f"status must be one of {', '.join(STATUSES)}; got {status!r}")
        if limit is not None and (not isinstance(limit, int) or limit < 1):
            raise ValueError(f"limit must be an integer >= 1; got {limit!r}")
        where, args = [], []
        if status is not None:
            where.append("runs.status = ?")
            args.append(status)
        if name is not None:
            where.append("runs.name LIKE ? ESCAPE '\\'")
            args.append(name.replace("\\", "\\\\").replace("%", "\\%").replace("_", "\\_") + "%")
        sql = self._SELECT + (" WHERE " + " AND ".join(where) if where else "")
        sql += " GROUP BY runs.id ORDER BY runs.created_at DESC, runs.id"
        if limit is not None:
            sql += f" LIMIT {int(limit)}"
        with self._connect() as db:
            return [self._record(r) for r in db.execute(sql, args)]

    def get(self, run_id: str) -> RunRecord:
        """One run with all its epochs."""
        with self._connect() as db:
            row = db.execute(self._SELECT + " WHERE runs.id = ? GROUP BY runs.id", (run_id,)).fetchone()
            if row is None:
                raise UnknownRunError(f"unknown run {run_id!r}; `skiplab runs list` shows the stored runs")
            record = self._record(row)
        return RunRecord(**{**asdict(record), "epochs": self.epochs(run_id)})

    def epochs(self, run_id: str) -> list[dict]:
        with self._connect() as db:
            rows = db.execute("SELECT * FROM epochs WHERE run_id=? ORDER BY epoch", (run_id,)).fetchall()
        out = []
        for r in rows:
            d = {"epoch": r["epoch"], **{c: r[c] for c in METRIC_COLUMNS}}
            try:
                extra = json.loads(r["extra"])
            except (TypeError, ValueError, RecursionError) as e:
                raise StoreError(f"run store {str(self.path)!r}: run {run_id!r} holds unreadable JSON ({e})") from None
            d.update(extra if isinstance(extra, dict) else {})
            out.append(d)
        return out

    def integrity_check(self) -> str:
        """SQLite's `PRAGMA integrity_check`: 'ok' for a sound file."""
        with self._connect() as db:
            return "; ".join(r[0] for r in db.execute("PRAGMA integrity_check"))

    # ------------------------------------------------------------ export

    def export_json(self, run_ids: list[str] | None = None) -> list[dict]:
        """Every run (or the given ones) with its config and all its epochs, as JSON-safe dicts."""
        ids = run_ids if run_ids else [r.id for r in self.list()]
        return [self.get(i).to_dict() for i in ids]

    def export_csv(self, run_ids: list[str] | None = None) -> str:
        """One CSV row per (run, epoch): run columns first, then the metrics."""
        buf = io.StringIO()
        run_cols = ["run_id", "name", "model", "data", "seed", "status"]
        writer = csv.writer(buf, lineterminator="\n")
        writer.writerow([*run_cols, "epoch", *METRIC_COLUMNS])
        for run in self.export_json(run_ids):
            head = [run["id"], run["name"], run["model"], run["data"], run["seed"], run["status"]]
            for e in run["epochs"]:
                writer.writerow([*head, e["epoch"], *(e.get(c) for c in METRIC_COLUMNS)])
        return buf.getvalue()
