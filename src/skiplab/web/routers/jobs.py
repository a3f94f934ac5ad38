"""Live training: a job with an id — start it, list it, stream its epochs as server-sent events, cancel or remove it.

The work is `skiplab.train.train` on the embedded digits data with exactly the
recipe of the shipped degradation runs (`DegradationConfig().train_config`),
so a live curve can be laid over the stored ones; it runs in a worker thread of the
`JobManager`; each finished epoch is streamed as an `epoch` event and the end
as an `end` event. `GET /api/jobs` lists every job the server remembers, so a
client whose 202 reply was lost can find its job; `DELETE /api/jobs/{id}`
cancels it and forgets it (a later GET answers 404), while `POST .../cancel`
stops it and keeps it readable.
"""

from __future__ import annotations

import asyncio
import json
import math
import time
from typing import Annotated, Literal

from fastapi import APIRouter, Body, HTTPException, Request
from fastapi.responses import StreamingResponse
from pydantic import BaseModel, BeforeValidator, ConfigDict, Field

from skiplab.experiments import DegradationConfig
from skiplab.store import RunStore
from skiplab.train import train
from skiplab.web.deps import NOT_FOUND, UNPROCESSABLE, Problem, Settings
from skiplab.web.jobs import Job, JobManager, TooManyJobs, UnknownJob

router = APIRouter(prefix="/jobs", tags=["live training"])

POLL_S = 0.1  # how often the event stream looks for new epochs
BAD_BODY = {400: {"model": Problem, "description": "The body could not be read as JSON."}}
TOO_MANY = {429: {"model": Problem, "description": "Every live-training slot is taken; wait or cancel a job."}}
TOO_LARGE = {413: {"model": Problem, "description": "The body is larger than the server reads (64 KiB by default)."}}


def json_integer(v: object) -> object:
    """A JSON integer (17 or 17.0), never a boolean or a string that looks like one."""
    if isinstance(v, bool) or not isinstance(v, (int, float)):
        raise ValueError("must be an integer")
    return v


JsonInt = Annotated[int, BeforeValidator(json_integer)]


class JobRequest(BaseModel):
    model_config = ConfigDict(extra="forbid")  # a misspelt field is a 422 naming it, not silently the default

    depth: JsonInt = Field(56, ge=2, le=110, description="Layers of the digits net (the stored runs' family).")
    skip: Literal["none", "identity"] = Field("none", description="none: plain; identity: residual.")
    epochs: JsonInt = Field(10, ge=1, le=30, description="Epochs to train (the server may bound this lower).")
    seed: JsonInt = Field(0, ge=0, le=2**31 - 1)


class JobOut(BaseModel):
    id: str
    spec: JobRequest
    status: Literal["queued", "running", "completed", "stopped", "diverged", "failed"]
    message: str
    epochs: list[dict] = Field(description="Per-epoch metrics as the trainer reports them (EpochMetrics).")
    cancel_requested: bool


class JobSummary(BaseModel):
    """A job as the list shows it: enough to recognise one's own and cancel it."""

    id: str
    spec: JobRequest
    status: Literal["queued", "running", "completed", "stopped", "diverged", "failed"]
    message: str


def manager(request: Request) -> JobManager:
    return request.app.state.jobs


def find(request: Request, job_id: str) -> Job:
    try:
        return manager(request).get(job_id)
    except UnknownJob:
        raise HTTPException(404, f"no job {job_id!r}: it never existed or was forgotten") from None


def json_safe(metrics: dict) -> dict:
    """JSON has no NaN or infinity (a diverged epoch): send them as null."""
    return {k: (None if isinstance(v, float) and not math.isfinite(v) else v) for k, v in metrics.items()}


def training_work(req: JobRequest, store: RunStore | None = None, max_s: float = float("inf")):
    """The job's work: the degradation recipe on a plain or residual conv net, one thread, streaming each epoch."""
    kind = "res" if req.skip == "identity" else "plain"
    # One torch thread: the widgets' probes keep the other core while a job trains.
    cfg = (
        DegradationConfig().train_config(kind, req.depth, req.seed).replace(epochs=req.epochs, device="cpu", threads=1)
    )

    def work(on_epoch, cancelled) -> tuple[str, str]:
        deadline = time.monotonic() + max_s  # a job's wall time is capped like a cancellation

        def should_stop() -> bool:
            return cancelled() or time.monotonic() > deadline

        result = train(
            cfg, on_epoch=lambda m: on_epoch(json_safe(m.to_dict())), should_stop=should_stop, store=store, name="live"
        )
        kept = f"stored as run {result.run_id}" if store is not None else ""
        return result.status, "; ".join(m for m in (result.message, kept) if m)

    return work


@router.post(
    "",
    response_model=JobOut,
    status_code=202,
    responses={**BAD_BODY, **TOO_LARGE, **UNPROCESSABLE, **TOO_MANY},
    summary="Start a live training job",
)
def start(request: Request, settings: Settings, req: Annotated[JobRequest, Body()] = JobRequest()) -> JobOut:
    if req.epochs > settings.max_epochs or req.depth > settings.max_job_depth:
        raise HTTPException(
            422, f"epochs must be at most {settings.max_epochs} and depth at most {settings.max_job_depth}"
        )
    try:
        job = manager(request).start(req.model_dump(), training_work(req, request.app.state.store, settings.max_job_s))
    except TooManyJobs as e:
        raise HTTPException(429, str(e), headers={"Retry-After": "10"}) from None
    return JobOut(**job.snapshot())


@router.get("", response_model=list[JobSummary], summary="Every job the server remembers, oldest first")
def jobs_list(request: Request) -> list[JobSummary]:
    summaries = []
    for job in manager(request).jobs():
        snap = job.snapshot()
        summaries.append(JobSummary(**{k: snap[k] for k in ("id", "spec", "status", "message")}))
    return summaries


@router.get("/{job_id}", response_model=JobOut, responses=NOT_FOUND, summary="A job's status and epochs so far")
def status(request: Request, job_id: str) -> JobOut:
    return JobOut(**find(request, job_id).snapshot())


@router.delete(
    "/{job_id}",
    response_model=JobOut,
    responses={
        **NOT_FOUND,
        200: {"description": "The job as it ended (or as it was when its thread was asked to stop); now forgotten."},
    },
    summary="Cancel a job if it runs, and remove it",
)
def delete(request: Request, settings: Settings, job_id: str) -> JobOut:
    try:
        job = manager(request).remove(job_id, wait_s=settings.cancel_grace_s)
    except UnknownJob:
        raise HTTPException(404, f"no job {job_id!r}: it never existed or was forgotten") from None
    return JobOut(**job.snapshot())


def sse(event: str, data: dict) -> str:
    return f"event: {event}\ndata: {json.dumps(data)}\n\n"


@router.get(
    "/{job_id}/events",
    response_class=StreamingResponse,
    responses={
        **NOT_FOUND,
        200: {
            "content": {"text/event-stream": {}},
            "description": "`epoch` events (one EpochMetrics each, from the first), then one `end` event.",
        },
    },
    summary="Stream a job's epochs as server-sent events",
)
async def events(request: Request, job_id: str) -> StreamingResponse:
    job = find(request, job_id)

    async def stream():
        sent = 0
        while True:
            snap = job.snapshot()
            for metrics in snap["epochs"][sent:]:
                yield sse("epoch", metrics)
            sent = len(snap["epochs"])
            if snap["status"] not in ("queued", "running"):
                yield sse("end", {k: snap[k] for k in ("id", "status", "message")})
                return
            if await request.is_disconnected():
                return
            await asyncio.sleep(POLL_S)

    return StreamingResponse(stream(), media_type="text/event-stream", headers={"Cache-Control": "no-cache"})


@router.post("/{job_id}/cancel", response_model=JobOut, responses=NOT_FOUND, summary="Cancel a job; it stays readable")
def cancel(request: Request, job_id: str) -> JobOut:
    find(request, job_id)
    return JobOut(**manager(request).cancel(job_id).snapshot())
