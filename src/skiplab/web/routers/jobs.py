"""Live training: a job with an id — start it, list it, stream its epochs as server-sent events, cancel or remove it.

The work is `skiplab.train.train` on the embedded digits data with exactly the
recipe of the shipped degradation runs (`DegradationConfig().train_config`),
so a live curve can be laid over the stored ones; it trains in a process of its
own (`train_in_process`), relayed by a thread of the `JobManager`; each finished
epoch is streamed as an `epoch` event and the end as an `end` event.
`GET /api/jobs` lists every job the server remembers, so a client whose 202
reply was lost can find its job; `DELETE /api/jobs/{id}`
cancels it and forgets it (a later GET answers 404), while `POST .../cancel`
stops it and keeps it readable. A U-Net pair (`POST /api/unet/jobs`,
`skiplab.web.routers.unet`) is a job of the same manager: both kinds share its
slots, and these endpoints list, stream and cancel either.
"""

from __future__ import annotations

import asyncio
import functools
import json
import math
import multiprocessing
import signal
import time
from multiprocessing.connection import Connection
from typing import Annotated, Literal

from fastapi import APIRouter, Body, HTTPException, Request
from fastapi.responses import StreamingResponse
from pydantic import BaseModel, BeforeValidator, ConfigDict, Field

from skiplab.experiments import DegradationConfig
from skiplab.experiments.results import load_results
from skiplab.store import RunStore
from skiplab.train import TrainConfig, train
from skiplab.web.deps import NOT_FOUND, UNPROCESSABLE, Problem, Settings
from skiplab.web.jobs import Job, JobManager, TooManyJobs, UnknownJob
from skiplab.web.limits import fork_context

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

    depth: JsonInt = Field(
        56, ge=2, le=110, description="Layers of the net, of the stored runs' family (which may allow fewer depths)."
    )
    skip: Literal["none", "identity"] = Field("none", description="none: plain; identity: residual.")
    epochs: JsonInt = Field(10, ge=1, le=30, description="Epochs to train (the server may bound this lower).")
    seed: JsonInt = Field(0, ge=0, le=2**31 - 1)


class UNetJobRequest(BaseModel):
    """A live U-Net pair (`POST /api/unet/jobs`): with and without long skips, the shipped runs' recipe."""

    model_config = ConfigDict(extra="forbid")

    kind: Literal["unet"] = Field("unet", description="Tells a U-Net pair's spec from a digits net's.")
    seed: JsonInt = Field(0, ge=0, le=2**31 - 1, description="Initial weights and batch order of both nets.")
    epochs: JsonInt = Field(12, ge=1, le=30, description="Epochs of each net (the server may bound this lower).")


JobSpec = JobRequest | UNetJobRequest  # what a job was asked to train


class JobOut(BaseModel):
    id: str
    spec: JobSpec
    status: Literal["queued", "running", "completed", "stopped", "diverged", "failed"]
    message: str
    epochs: list[dict] = Field(
        description="Per-epoch metrics as the trainer reports them (EpochMetrics; a U-Net pair: one per net and epoch)."
    )
    progress: dict | None = Field(
        None, description="Where training is within the current epoch: {epoch, step, steps} (None before the first)."
    )
    cancel_requested: bool


class JobSummary(BaseModel):
    """A job as the list shows it: enough to recognise one's own and cancel it."""

    id: str
    spec: JobSpec
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


def train_in_process(conn: Connection, cfg: TrainConfig, store_path: str | None, stop, max_s: float) -> None:
    """A live job's process: train `cfg`, sending `("epoch", metrics)` per epoch and `("end", status, message)` last.

    It stops before its next step once `stop` (a process-shared event) is set, `max_s` has passed or the
    server has gone. SIGINT is the server's to handle: Ctrl-C reaches the whole process group, and the server
    cancels its jobs itself.
    """
    signal.signal(signal.SIGINT, signal.SIG_IGN)
    server = multiprocessing.parent_process()
    try:
        store = RunStore(store_path) if store_path is not None else None
        deadline = time.monotonic() + max_s  # a job's wall time is capped like a cancellation
        result = train(
            cfg,
            on_epoch=lambda m: conn.send(("epoch", json_safe(m.to_dict()))),
            on_step=progress_sender(conn),
            should_stop=lambda: stop.is_set() or time.monotonic() > deadline or not server.is_alive(),
            store=store,
            name="live",
        )
        kept = f"stored as run {result.run_id}" if store is not None else ""
        conn.send(("end", result.status, "; ".join(m for m in (result.message, kept) if m)))
    except Exception as e:  # a job's failure is its result: readers see it
        conn.send(("end", "failed", f"{type(e).__name__}: {e}"))


PROGRESS_EVERY_S = 0.5  # how often a training process reports where it is within an epoch


def progress_sender(conn: Connection):
    """on_step for `train`: send ("progress", {"epoch", "step", "steps"}) at most every PROGRESS_EVERY_S.

    The first epoch of a deep net can take seconds; without this a reader sees nothing move until it ends.
    """
    state = {"epoch": 1, "last": 0.0}

    def on_step(step: int, steps: int) -> None:
        now = time.monotonic()
        if step == steps or now - state["last"] >= PROGRESS_EVERY_S:
            state["last"] = now
            conn.send(("progress", {"epoch": state["epoch"], "step": step, "steps": steps}))
        if step == steps:
            state["epoch"] += 1

    return on_step


@functools.cache
def stored_setting() -> DegradationConfig:
    """The setting of the shipped degradation runs (the library's default where none is shipped)."""
    try:
        return DegradationConfig.from_dict(load_results("degradation")["config"])
    except ValueError:
        return DegradationConfig()


def training_work(req: JobRequest, store: RunStore | None = None, max_s: float = float("inf"), grace_s: float = 2.0):
    """The job's work: the degradation recipe on a plain or residual conv net, trained in a process of its own."""
    kind = "res" if req.skip == "identity" else "plain"
    # The stored runs' own setting, so the live curve lies over theirs; one torch thread: the widgets' probes keep
    # the other core while a job trains.
    cfg = stored_setting().live_config(kind, req.depth, req.seed, req.epochs)
    store_path = str(store.path) if store is not None else None
    return process_work(train_in_process, (cfg, store_path), max_s, grace_s)


def process_work(target, args: tuple, max_s: float, grace_s: float):
    """A job's work that runs `target(conn, *args, stop, max_s)` in a process of its own and relays its messages.

    Training is heavy work: in its own process it never competes with the server's event loop for the
    interpreter. The process sends `("epoch", metrics)` per result and `("end", status, message)` last; the
    job's thread in the server relays them and asks the process to stop (sets `stop`) when the job is
    cancelled; a process that has not stopped `grace_s` after that is killed.
    """

    def work(on_epoch, cancelled, on_progress=lambda progress: None) -> tuple[str, str]:
        ctx = fork_context()
        reader, writer = ctx.Pipe(duplex=False)
        stop = ctx.Event()
        process = ctx.Process(target=target, args=(writer, *args, stop, max_s), name="skiplab-job", daemon=True)
        process.start()
        writer.close()
        stop_asked = None
        try:
            while True:
                if cancelled() and stop_asked is None:
                    stop.set()
                    stop_asked = time.monotonic()
                if stop_asked is not None and time.monotonic() - stop_asked > grace_s:
                    return "stopped", f"cancelled; training did not stop within {grace_s:g} s and was killed"
                if not reader.poll(POLL_S):
                    continue
                try:
                    message = reader.recv()
                except EOFError:  # the process ended without a result
                    process.join(grace_s)
                    return "failed", f"the training process ended without a result (exit code {process.exitcode})"
                if message[0] == "epoch":
                    on_epoch(message[1])
                elif message[0] == "progress":
                    on_progress(message[1])
                else:
                    return message[1], message[2]
        finally:
            process.join(grace_s)
            if process.is_alive():
                process.kill()
                process.join()
            reader.close()

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
        work = training_work(req, request.app.state.store, settings.max_job_s, settings.cancel_grace_s)
        job = manager(request).start(req.model_dump(), work)
    except TooManyJobs as e:
        raise HTTPException(429, str(e), headers={"Retry-After": "10"}) from None
    except ValueError as e:  # not a net of the stored runs' setting (a depth it does not have)
        raise HTTPException(422, str(e)) from None
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
            "description": "`epoch` events (one EpochMetrics each, from the first) and `progress` events (where "
            "training is within an epoch, at most twice a second), then one `end` event.",
        },
    },
    summary="Stream a job's epochs as server-sent events",
)
async def events(request: Request, job_id: str) -> StreamingResponse:
    job = find(request, job_id)

    async def stream():
        sent = 0
        progress = None
        with job.watched():  # while a reader streams, the job is watched (an unwatched job stops)
            while True:
                snap = job.snapshot()
                for metrics in snap["epochs"][sent:]:
                    yield sse("epoch", metrics)
                sent = len(snap["epochs"])
                if snap["progress"] is not None and snap["progress"] != progress:
                    progress = snap["progress"]
                    yield sse("progress", progress)
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
