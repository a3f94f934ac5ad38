"""The run store's tables: what a run and an epoch keep, and the columns added since the first stores."""

from __future__ import annotations

STATUSES: tuple[str, ...] = ("running", "completed", "stopped", "diverged", "failed", "interrupted")
# Per-epoch numbers with their own column; anything else an epoch reports goes into `extra` (JSON).
METRIC_COLUMNS: tuple[str, ...] = (
    "train_loss",
    "train_error",
    "test_loss",
    "test_error",
    "lr",
    "grad_norm_mean",
    "grad_norm_max",
    "seconds",
)

SCHEMA = f"""
CREATE TABLE IF NOT EXISTS runs (
    id TEXT PRIMARY KEY,
    name TEXT NOT NULL DEFAULT '',
    model TEXT NOT NULL DEFAULT '',
    data TEXT NOT NULL DEFAULT '',
    seed INTEGER,
    status TEXT NOT NULL,
    message TEXT NOT NULL DEFAULT '',
    config TEXT NOT NULL,
    versions TEXT NOT NULL DEFAULT '{{}}',
    machine TEXT NOT NULL DEFAULT '{{}}',
    git_revision TEXT,
    created_at REAL NOT NULL,
    updated_at REAL NOT NULL,
    finished_at REAL
);
CREATE TABLE IF NOT EXISTS epochs (
    run_id TEXT NOT NULL REFERENCES runs(id) ON DELETE CASCADE,
    epoch INTEGER NOT NULL,
    {", ".join(f"{c} REAL" for c in METRIC_COLUMNS)},
    extra TEXT NOT NULL DEFAULT '{{}}',
    PRIMARY KEY (run_id, epoch)
);
CREATE INDEX IF NOT EXISTS runs_created ON runs(created_at);
"""
# Columns added since the first stores: added on open, so an older store stays readable.
ADDED_COLUMNS: dict[str, str] = {
    "machine": "TEXT NOT NULL DEFAULT '{}'",
    "owner_pid": "INTEGER",
    "owner_host": "TEXT",
    "owner_start": "TEXT",
}
