"""U-Net long skips: the shipped runs with and without them, and a live pair trained as a job.

`GET /api/unet/results` sends the shipped results of `skiplab experiment unet`
(`skiplab.experiments.unet`): per seed the held-out IoU and boundary F of both
nets, the verdict of the stated rule, and the predicted masks of a few
held-out images beside their inputs and true masks. `POST /api/unet/jobs`
trains a fresh pair with the shipped recipe (`live_pair`) in a process of
its own, as a job of the live-training manager: it shares the digits runs'
slots and wall-time cap, and is streamed, listed and cancelled through
`/api/jobs/{id}/...`. Each net's epoch is sent as soon as it is measured.
"""

from __future__ import annotations

import functools
import multiprocessing
import signal
import time
from multiprocessing.connection import Connection
from typing import Annotated, Any

from fastapi import APIRouter, Body, HTTPException, Request, Response
from pydantic import BaseModel, Field

from skiplab.experiments.unet import live_config, live_pair
from skiplab.train.segment import SegmentConfig
from skiplab.web.deps import NOT_FOUND, UNPROCESSABLE, Settings
from skiplab.web.jobs import TooManyJobs
from skiplab.web.routers.jobs import BAD_BODY, TOO_LARGE, TOO_MANY, JobOut, UNetJobRequest, json_safe, process_work
from skiplab.web.routers.results import Provenance, provenance, shipped

router = APIRouter(prefix="/unet", tags=["U-Net long skips"])


class UNetEpochOut(BaseModel):
    epoch: int
    train_loss: float
    iou: float = Field(description="Held-out IoU, mean over images.")
    boundary_f: float = Field(description="Held-out boundary F-score, mean over images.")


class UNetRunOut(BaseModel):
    run: str = Field(description="The run's name in the results file, e.g. skips-s0.")
    long_skips: bool
    seed: int
    params: int
    iou: float | None = Field(description="After the last epoch.")
    boundary_f: float | None
    predictions: list[list[str]] = Field(description="Per kept example, its predicted mask as rows of '0'/'1'.")
    epochs: list[UNetEpochOut]
    seconds: float


class UNetRowOut(BaseModel):
    long_skips: bool
    label: str
    params: int
    iou: list[float] = Field(description="Per seed, in the order of `seeds`.")
    boundary_f: list[float]


class SkipComparisonOut(BaseModel):
    metric: str = Field(description="iou | boundary_f")
    with_skips: list[float]
    without_skips: list[float]
    gains: list[float] = Field(description="Per seed: with − without.")
    smallest_gain: float
    spread: float = Field(description="The larger of the two nets' seed ranges (highest − lowest).")
    summary: str = Field(description="long skips better | long skips worse | no measurable difference")


class ExamplesOut(BaseModel):
    indices: list[int] = Field(description="Held-out image indices.")
    inputs: list[list[str]] = Field(description="Per example, rows of two-digit hex grey levels (its own min..max).")
    truths: list[list[str]] = Field(description="Per example, the true mask as rows of '0'/'1'.")
    data: dict[str, Any]


class UNetResultsOut(BaseModel):
    provenance: Provenance
    seeds: list[int]
    rows: list[UNetRowOut]
    comparisons: list[SkipComparisonOut]
    long_skips_win: bool = Field(description="Better on every seed, by more than the seed spread, on both metrics.")
    verdict: str = Field(description="What the runs show, in words, with the numbers.")
    rule: str
    params: dict[str, int] = Field(description="with, without, difference (without − with).")
    boundary_tolerance: int = Field(description="Pixels a boundary may be off and still count.")
    examples: ExamplesOut
    runs: list[UNetRunOut]


@functools.cache
def _results_json() -> bytes:
    """The shipped file does not change while the server runs: the answer is built and serialised once."""
    return unet_out().model_dump_json().encode()


def unet_out() -> UNetResultsOut:
    data = shipped("unet")
    runs = [
        UNetRunOut(
            run=name,
            long_skips=run["config"]["long_skips"],
            seed=run["config"]["seed"],
            **{k: run[k] for k in ("params", "iou", "boundary_f", "predictions", "seconds")},
            epochs=[UNetEpochOut(**{k: e[k] for k in UNetEpochOut.model_fields}) for e in run["epochs"]],
        )
        for name, run in data["runs"].items()
    ]
    return UNetResultsOut(
        provenance=provenance(data),
        seeds=data["config"]["seeds"],
        **{k: data[k] for k in ("rows", "comparisons", "long_skips_win", "verdict", "rule", "params", "examples")},
        boundary_tolerance=next(iter(data["runs"].values()))["boundary_tolerance"],
        runs=runs,
    )


@router.get("/results", response_model=UNetResultsOut, responses=NOT_FOUND, summary="Stored U-Net runs")
async def results() -> Response:
    return Response(_results_json(), media_type="application/json")


@functools.cache
def _shipped_config() -> dict | None:
    try:
        return shipped("unet")["config"]
    except HTTPException:  # not shipped with this install: the library's defaults
        return None


def pair_in_process(conn: Connection, cfg: SegmentConfig, stop, max_s: float) -> None:
    """A live pair's process: `live_pair`, each net's epoch sent as ("epoch", metrics), ("end", status, message) last.

    It stops before its next step once `stop` is set, `max_s` has passed or the server has gone; SIGINT is the
    server's to handle (see `skiplab.web.routers.jobs.train_in_process`).
    """
    signal.signal(signal.SIGINT, signal.SIG_IGN)
    server = multiprocessing.parent_process()
    deadline = time.monotonic() + max_s
    try:
        status, message = live_pair(
            cfg,
            on_epoch=lambda m: conn.send(("epoch", json_safe(m))),
            should_stop=lambda: stop.is_set() or time.monotonic() > deadline or not server.is_alive(),
        )
        conn.send(("end", status, message))
    except Exception as e:  # a job's failure is its result: readers see it
        conn.send(("end", "failed", f"{type(e).__name__}: {e}"))


@router.post(
    "/jobs",
    response_model=JobOut,
    status_code=202,
    responses={**BAD_BODY, **TOO_LARGE, **UNPROCESSABLE, **TOO_MANY},
    summary="Train a U-Net pair live (with and without long skips)",
)
def start_pair(
    request: Request, settings: Settings, req: Annotated[UNetJobRequest, Body()] = UNetJobRequest()
) -> JobOut:
    if req.epochs > settings.max_epochs:
        raise HTTPException(422, f"epochs must be at most {settings.max_epochs}")
    cfg = live_config(_shipped_config(), req.seed, req.epochs)
    work = process_work(pair_in_process, (cfg,), settings.max_job_s, settings.cancel_grace_s)
    try:
        job = request.app.state.jobs.start(req.model_dump(), work)
    except TooManyJobs as e:
        raise HTTPException(429, str(e), headers={"Retry-After": "10"}) from None
    return JobOut(**job.snapshot())
