"""Runs in the run store: the live runs trained from the article (when the server has a store), with their epochs.

Reads `skiplab.store.RunStore`; the server records each live training job
there when started with `skiplab serve --store PATH`.
"""

from __future__ import annotations

from typing import Annotated, Any, Literal

from fastapi import APIRouter, HTTPException, Query, Request
from pydantic import BaseModel, ConfigDict, Field

from skiplab.store import RunStore
from skiplab.store.runs import UnknownRunError
from skiplab.web.deps import NOT_FOUND, UNPROCESSABLE

router = APIRouter(prefix="/runs", tags=["run store"])


class RunsQuery(BaseModel):
    model_config = ConfigDict(extra="forbid")  # an unknown parameter is a 422 naming it, never ignored

    name: str | None = Field(None, max_length=100, description="Only runs whose name starts with this.")
    status: Literal["running", "completed", "stopped", "diverged", "failed", "interrupted"] | None = None
    limit: int = Field(20, ge=1, le=200)


class RunOut(BaseModel):
    """`skiplab.store.RunRecord`: a stored run, with its epochs when asked for one run."""

    id: str
    name: str
    model: str
    data: str
    seed: int | None
    status: str
    message: str
    config: dict[str, Any]
    versions: dict[str, Any]
    git_revision: str | None
    created_at: float
    updated_at: float
    finished_at: float | None
    epochs_done: int
    best_train_loss: float | None
    machine: dict[str, Any]
    epochs: list[dict[str, Any]]


def store_of(request: Request) -> RunStore:
    store = request.app.state.store
    if store is None:
        raise HTTPException(404, "this server keeps no run store; start it with `skiplab serve --store PATH`")
    return store


@router.get("", response_model=list[RunOut], responses={**NOT_FOUND, **UNPROCESSABLE}, summary="Stored runs")
def runs(request: Request, q: Annotated[RunsQuery, Query()]) -> list[RunOut]:
    return [RunOut(**r.to_dict()) for r in store_of(request).list(status=q.status, name=q.name, limit=q.limit)]


@router.get("/{run_id}", response_model=RunOut, responses=NOT_FOUND, summary="One stored run with its epochs")
def run(request: Request, run_id: str) -> RunOut:
    try:
        return RunOut(**store_of(request).get(run_id).to_dict())
    except UnknownRunError as e:
        raise HTTPException(404, str(e)) from None
