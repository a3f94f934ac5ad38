"""skiplab.store: the SQLite run store (standard library only; imports no other skiplab layer)."""

from skiplab.store.runs import METRIC_COLUMNS, STATUSES, RunRecord, RunStore, StoreError, UnknownRunError

__all__ = ["METRIC_COLUMNS", "STATUSES", "RunRecord", "RunStore", "StoreError", "UnknownRunError"]
