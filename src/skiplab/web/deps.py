"""What every router shares: the settings dependency and the one compute helper.

`compute(fn, *args)` is the single door between a request and the library: it
runs the (synchronous, torch-bound) call in a worker thread, serialised by a
lock because two torch calls at once on a 2-core machine only slow each other
down, and turns the library's ValueErrors into HTTP 422 with the library's own
message. Limits (budgets, 429s) wrap this function and nothing else.
"""

from __future__ import annotations

import threading
from collections.abc import Callable
from typing import Annotated, Any, TypeVar

from fastapi import Depends, HTTPException, Request
from pydantic import BaseModel
from starlette.concurrency import run_in_threadpool

from skiplab.web.settings import WebSettings

T = TypeVar("T")


class Problem(BaseModel):
    """A request the server could not answer: `detail` says what to change."""

    detail: str


# Documented on every route that takes input: bad values get a 422 naming the option and its allowed values.
UNPROCESSABLE: dict[int | str, dict[str, Any]] = {
    422: {"model": Problem, "description": "A setting is out of range or unknown; `detail` says which and why."}
}
NOT_FOUND: dict[int | str, dict[str, Any]] = {404: {"model": Problem, "description": "No such item."}}


def get_settings(request: Request) -> WebSettings:
    return request.app.state.settings


Settings = Annotated[WebSettings, Depends(get_settings)]


def _torch_lock(request: Request) -> threading.Lock:
    return request.app.state.torch_lock


TorchLock = Annotated[threading.Lock, Depends(_torch_lock)]


async def compute(lock: threading.Lock, fn: Callable[..., T], *args: Any, **kwargs: Any) -> T:
    """Run one library call off the event loop; a ValueError becomes a 422 with its message."""

    def call() -> T:
        with lock:
            return fn(*args, **kwargs)

    try:
        return await run_in_threadpool(call)
    except ValueError as e:
        raise HTTPException(status_code=422, detail=str(e)) from None
