"""Loss landscapes of the shipped plain and residual nets (Li et al. 2018): planes streamed row by row, lines, study.

- `GET /api/landscape/subjects`: the shipped nets (their runs' configs and
  final metrics) and the shipped study (roughness, Hessian extremes and the
  finding, per seed), read from the package: no computation.
- `GET /api/landscape/plane`: a filter-normalised plane around one net,
  computed in a worker and streamed as JSON lines: a `start` event (the
  grid), one `row` event per row as it is computed, an `end` event (the
  whole result but its rows: roughness, timings, BatchNorm statistics).
- `GET /api/landscape/line`: the loss from the net's initial weights to its
  trained ones.

Every number comes from `skiplab.experiments.landscape_study` (and the
probes under it); this module only bounds the request and relays. The
routes have a worker of their own (`landscape_engine`): a plane takes
seconds to tens of seconds, and it never makes another widget wait in line.
"""

from __future__ import annotations

import functools
import threading
from collections.abc import Iterator
from typing import Annotated, Any, Literal

from fastapi import APIRouter, Depends, HTTPException, Query, Request, Response
from fastapi.responses import StreamingResponse
from pydantic import BaseModel, ConfigDict, Field, field_validator

from skiplab.experiments.landscape import DEPTHS, EXAMPLES, load_subject, read_index
from skiplab.experiments.landscape_study import line_of, load_study, plane_of, plane_positions, price_landscape
from skiplab.probes.landscape import LandscapeRow
from skiplab.web.deps import COMPUTE, NOT_FOUND, ComputeEngine, RequestEngine, Settings
from skiplab.web.limits import WorkerPool
from skiplab.web.settings import WebSettings
from skiplab.web.streaming import STREAMED, stream_items

router = APIRouter(prefix="/landscape", tags=["loss landscape"])


def landscape_engine(settings: WebSettings) -> ComputeEngine:
    """The landscape routes' engine: one worker of its own (it keeps the loaded nets), the server's limits."""
    pool = WorkerPool(
        workers=1,
        queue=settings.heavy_queue,
        timeout_s=settings.compute_timeout_s,
        retry_after_s=settings.retry_after_s,
        torch_threads=settings.torch_threads,
    )
    return ComputeEngine(settings.cache_size, settings.landscape_budget, pool)


def preload() -> list[str]:
    """In the worker: load every shipped net and its data (MNIST-1D is generated, a few seconds), once."""
    return [load_subject(s.kind, s.depth, s.seed).name for s in read_index().subjects]


def warm_up(engine: ComputeEngine, stop: threading.Event) -> None:
    """Start the landscape worker with the nets loaded, so that the first plane waits only for its rows."""
    if stop.is_set():
        return
    try:
        engine.call(preload)
    except Exception:  # no subjects shipped, or a fault: the routes say why when asked
        return


async def get_landscape_engine(request: Request) -> RequestEngine:
    return RequestEngine(request.app.state.landscape_engine, request)


LandscapeEngine = Annotated[RequestEngine, Depends(get_landscape_engine)]


class SubjectQuery(BaseModel):
    model_config = ConfigDict(extra="forbid")  # an unknown parameter is a 422 naming it, never ignored

    kind: Literal["plain", "res"] = Field("plain", description="plain: no shortcuts; res: residual.")
    depth: int = Field(56, ge=20, le=56, description="Layers: 20 or 56.")
    seed: int = Field(0, ge=0, le=2**31 - 1, description="The run's seed: one of the shipped seeds.")
    split: Literal["train", "test"] = Field("train", description="train: the loss training minimised; test: held out.")

    @field_validator("depth")
    @classmethod
    def _depth(cls, v: int) -> int:
        if v not in DEPTHS:
            raise ValueError(f"the shipped nets have {' or '.join(map(str, DEPTHS))} layers")
        return v


class PlaneQuery(SubjectQuery):
    # 21 x 21 around a 56-layer net is the largest plane the default budget prices in (0.85 TFLOP).
    grid: int = Field(9, ge=3, le=21, description="Points per axis (odd: the trained weights are the centre).")
    span: float = Field(1.0, ge=0.05, le=2.0, description="The plane covers [-span, span]² (filter-normalised).")
    direction_seed: int = Field(0, ge=0, le=9999, description="Seed of the two random directions.")

    @field_validator("grid")
    @classmethod
    def _odd(cls, v: int) -> int:
        if v % 2 == 0:
            raise ValueError("the grid must be odd, so that the trained weights are its centre")
        return v


class LineQuery(SubjectQuery):
    points: int = Field(51, ge=5, le=101, description="Positions t from initial (0) to trained (1), ±~10%.")


def _check_seed(q: SubjectQuery) -> None:
    seeds = read_index().seeds
    if q.seed not in seeds:
        raise HTTPException(422, f"seed: the shipped nets have seeds {', '.join(map(str, seeds))}; got {q.seed}")


def plane_events(q: PlaneQuery, threads: int) -> Iterator[dict]:
    """The worker's side of the stream: `start`, one `row` per row, `end`."""
    subject = load_subject(q.kind, q.depth, q.seed)
    stream = plane_of(
        subject,
        grid=q.grid,
        span=q.span,
        direction_seed=q.direction_seed,
        split=q.split,
        examples=EXAMPLES,
        threads=threads,
    )
    axis = list(plane_positions(q.grid, q.span))
    yield {
        "event": "start", "settings": q.model_dump(), "subject": subject.name, "model": subject.config.model,
        "xs": axis, "ys": axis,
    }  # fmt: skip
    for item in stream:
        if isinstance(item, LandscapeRow):
            yield {"event": "row", **item.to_dict()}
        else:
            whole = item.to_dict()
            whole.pop("rows")
            yield {"event": "end", "landscape": whole}


@router.get(
    "/plane",
    response_class=StreamingResponse,
    responses={**STREAMED, **COMPUTE},
    summary="A loss plane around a shipped net, streamed row by row (JSON lines)",
)
async def plane(q: Annotated[PlaneQuery, Query()], engine: LandscapeEngine, settings: Settings, request: Request):
    _check_seed(q)
    try:
        price = price_landscape(q.kind, q.depth, q.grid * q.grid + 1, EXAMPLES)
    except ValueError as e:
        raise HTTPException(422, str(e)) from None
    return await stream_items(
        engine.engine,
        plane_events,
        q,
        settings.landscape_threads,
        price=price,
        budget=settings.landscape_budget,
        request=request,
    )


class LineOut(BaseModel):
    settings: LineQuery
    subject: str
    model: str
    t: list[float] = Field(description="Positions: 0 the initial weights, 1 the trained ones.")
    loss: list[float | None]
    accuracy: list[float | None]
    bn_statistics: str
    examples: int
    seconds: float


def line_out(q: LineQuery, threads: int) -> LineOut:
    subject = load_subject(q.kind, q.depth, q.seed)
    line = line_of(subject, points=q.points, split=q.split, examples=EXAMPLES, threads=threads)
    row = line.rows[0]
    return LineOut(
        settings=q, subject=subject.name, model=subject.config.model, t=list(line.xs), loss=list(row.loss),
        accuracy=list(row.accuracy), bn_statistics=line.bn_statistics, examples=line.examples, seconds=line.seconds,
    )  # fmt: skip


@router.get("/line", response_model=LineOut, responses=COMPUTE, summary="The loss from initial to trained weights")
async def line(q: Annotated[LineQuery, Query()], engine: LandscapeEngine, settings: Settings) -> LineOut:
    _check_seed(q)
    return await engine.run(line_out, q, settings.landscape_threads)


class SubjectsOut(BaseModel):
    seeds: list[int]
    examples: int = Field(description="Signals in the batch every landscape is computed on.")
    command: str = Field(description="The command that shipped these nets from their run folders.")
    subjects: list[dict[str, Any]] = Field(description="Each net: name, model, seed, epochs, run config, metrics.")
    study: dict[str, Any] | None = Field(description="The shipped study of every net (None if not shipped).")


@functools.cache
def _subjects_json() -> bytes:
    index = read_index()
    try:
        study = load_study()
    except ValueError:
        study = None
    subjects = [{k: v for k, v in s.to_dict().items() if k != "sha256"} for s in index.subjects]
    out = SubjectsOut(seeds=list(index.seeds), examples=EXAMPLES, command=index.command, subjects=subjects, study=study)
    return out.model_dump_json().encode()


@router.get(
    "/subjects",
    response_model=SubjectsOut,
    responses=NOT_FOUND,
    summary="The shipped nets and their study",
)
async def subjects() -> Response:
    try:
        return Response(_subjects_json(), media_type="application/json")
    except ValueError as e:
        raise HTTPException(404, str(e)) from None
