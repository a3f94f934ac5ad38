"""What every router shares: the settings dependency and the one door to the library, `ComputeEngine.run`.

`engine.run(fn, *args)` runs one (synchronous, torch-bound) library call in a
worker thread, one at a time — two torch calls at once on a 2-core machine
only slow each other down — and turns the library's ValueErrors into HTTP 422
with the library's own message. Answers are remembered in a small LRU cache:
every probe is seeded, so the same settings give the same numbers, and a
reader flipping a toggle back and forth gets the earlier answer at once.
Limits (budgets, 429s) wrap `run` and nothing else.
"""

from __future__ import annotations

import threading
from collections import OrderedDict
from collections.abc import Callable
from typing import Annotated, Any, TypeVar

from fastapi import Depends, HTTPException, Request
from pydantic import BaseModel
from starlette.concurrency import run_in_threadpool

from skiplab.probes.common import threads
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


def _key(fn: Callable, args: tuple) -> tuple:
    parts = tuple(a.model_dump_json() if isinstance(a, BaseModel) else repr(a) for a in args)
    return (fn.__module__, fn.__qualname__, parts)


class ComputeEngine:
    """Runs library calls off the event loop, one at a time, remembering the last `cache_size` answers."""

    def __init__(self, cache_size: int, torch_threads: int = 1) -> None:
        self.cache_size = cache_size
        self.torch_threads = torch_threads
        self.torch_lock = threading.Lock()  # one torch computation at a time
        self._cache: OrderedDict[tuple, Any] = OrderedDict()
        self._cache_lock = threading.Lock()

    def __len__(self) -> int:
        """Answers currently remembered."""
        return len(self._cache)

    def _remembered(self, key: tuple) -> Any | None:
        with self._cache_lock:
            if key in self._cache:
                self._cache.move_to_end(key)
                return self._cache[key]
        return None

    def _remember(self, key: tuple, value: Any) -> None:
        if self.cache_size <= 0:
            return
        with self._cache_lock:
            self._cache[key] = value
            while len(self._cache) > self.cache_size:
                self._cache.popitem(last=False)

    def call(self, fn: Callable[..., T], *args: Any) -> T:
        """The synchronous path (worker threads, warm-up): cached answer or a fresh computation."""
        key = _key(fn, args)
        hit = self._remembered(key)
        if hit is not None:
            return hit
        with self.torch_lock, threads(self.torch_threads):
            result = fn(*args)
        self._remember(key, result)
        return result

    async def run(self, fn: Callable[..., T], *args: Any) -> T:
        """One library call for one request; a ValueError becomes a 422 with its message."""
        hit = self._remembered(_key(fn, args))
        if hit is not None:
            return hit
        try:
            return await run_in_threadpool(self.call, fn, *args)
        except ValueError as e:
            raise HTTPException(status_code=422, detail=str(e)) from None


def get_settings(request: Request) -> WebSettings:
    return request.app.state.settings


def get_engine(request: Request) -> ComputeEngine:
    return request.app.state.engine


Settings = Annotated[WebSettings, Depends(get_settings)]
Engine = Annotated[ComputeEngine, Depends(get_engine)]
