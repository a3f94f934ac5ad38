"""What every router shares: the settings dependency and the one door to the library, `ComputeEngine.run`.

`engine.run(fn, *args, stacks=...)` answers one (synchronous, torch-bound)
library call for one request:

1. A remembered answer is returned at once: every probe is seeded, so the same
   settings give the same numbers, and a reader flipping a toggle back and
   forth gets the earlier answer without computing.
2. A request beyond the workers and their queue is refused at once: 429 with
   Retry-After, before any other work.
3. Every stack the call will build is priced (`skiplab.probes.budget`) against
   the settings' budget in the serving process, before the request queues:
   an oversized request is refused with a 422 that says what to lower, in
   milliseconds, whatever the workers are doing.
4. The call runs in a worker process (`skiplab.web.limits.WorkerPool`); a
   full queue is a 429 with Retry-After, a computation past the cap is
   stopped and answered 503, and a request whose client has gone is
   withdrawn (dropped from the queue, or its worker stopped).

The library's ValueErrors become 422 with the library's own message; any
other exception is a bug: logged with its traceback and answered 500.
"""

from __future__ import annotations

import asyncio
import logging
import threading
from collections import OrderedDict
from collections.abc import Callable, Sequence
from typing import Annotated, Any, TypeVar

from fastapi import Depends, HTTPException, Request
from pydantic import BaseModel

from skiplab.nn import StackConfig
from skiplab.probes.budget import Budget, check_budget, price_stack
from skiplab.web.limits import Busy, Cancelled, ComputeFailed, TooSlow, WorkerPool
from skiplab.web.settings import WebSettings

T = TypeVar("T")
log = logging.getLogger("skiplab.web")

DISCONNECT_POLL_S = 0.1  # how often a computing request checks that its client is still there
CLIENT_GONE = 499  # nginx's "client closed request": nobody reads it, but the access log says what happened


class Problem(BaseModel):
    """A request the server could not answer: `detail` says what to change."""

    detail: str


# Documented on every route that takes input: bad values get a 422 naming the option and its allowed values.
UNPROCESSABLE: dict[int | str, dict[str, Any]] = {
    422: {"model": Problem, "description": "A setting is out of range or unknown; `detail` says which and why."}
}
NOT_FOUND: dict[int | str, dict[str, Any]] = {404: {"model": Problem, "description": "No such item."}}
# Documented on every computing route: the workers and their queue are full, or the computation ran too long.
BUSY: dict[int | str, dict[str, Any]] = {
    429: {"model": Problem, "description": "The server is computing at capacity; retry after `Retry-After` s."},
    503: {"model": Problem, "description": "The computation ran past the server's time cap and was stopped."},
}
COMPUTE = {**UNPROCESSABLE, **BUSY}


def _key(fn: Callable, args: tuple) -> tuple:
    parts = tuple(a.model_dump_json() if isinstance(a, BaseModel) else repr(a) for a in args)
    return (fn.__module__, fn.__qualname__, parts)


class ComputeEngine:
    """Prices, queues and runs library calls in worker processes, remembering the last `cache_size` answers."""

    def __init__(self, cache_size: int, budget: Budget | None = None, pool: WorkerPool | None = None) -> None:
        self.cache_size = cache_size
        self.budget = budget or Budget()
        self.pool = pool or WorkerPool()
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

    def price(self, stacks: Sequence[tuple[StackConfig, int]]) -> None:
        """Raise `OverBudget` (a ValueError saying what to lower) if any stack costs more than the budget."""
        for cfg, batch in stacks:
            check_budget(price_stack(cfg, batch), self.budget)

    def call(self, fn: Callable[..., T], *args: Any, stacks: Sequence[tuple[StackConfig, int]] = ()) -> T:
        """The synchronous path (the warm-up thread): a remembered answer, or price, then compute in a worker."""
        key = _key(fn, args)
        hit = self._remembered(key)
        if hit is not None:
            return hit
        self.price(stacks)
        result = self.pool.call_admitted(fn, *args)
        self._remember(key, result)
        return result

    async def run(
        self,
        fn: Callable[..., T],
        *args: Any,
        stacks: Sequence[tuple[StackConfig, int]] = (),
        request: Request | None = None,
    ) -> T:
        """One library call for one request (see the module's docstring for the steps and their answers)."""
        key = _key(fn, args)
        hit = self._remembered(key)
        if hit is not None:
            return hit
        cancelled = threading.Event()
        try:
            self.pool.admit()  # a full queue is refused first, before any other work: the refusal never waits
            try:
                await asyncio.to_thread(self.price, stacks)
            except BaseException:
                self.pool.release()
                raise
            work = asyncio.ensure_future(self.pool.run(fn, *args, cancelled=cancelled, admitted=True))
            while not work.done():
                await asyncio.wait({work}, timeout=DISCONNECT_POLL_S)
                if not work.done() and request is not None and await request.is_disconnected():
                    cancelled.set()
            result = work.result()
        except ValueError as e:
            raise HTTPException(status_code=422, detail=str(e)) from None
        except Busy as e:
            raise HTTPException(429, str(e), headers={"Retry-After": str(e.retry_after)}) from None
        except TooSlow as e:
            raise HTTPException(503, str(e)) from None
        except Cancelled as e:
            raise HTTPException(CLIENT_GONE, str(e)) from None
        except ComputeFailed as e:
            log.error("%s%s failed in a worker:\n%s", fn.__qualname__, args, e)
            raise HTTPException(500, "the computation failed; the server logged why") from None
        self._remember(key, result)
        return result

    def shutdown(self) -> None:
        self.pool.shutdown()


class RequestEngine:
    """The engine as one request sees it: `run` withdraws the work if this request's client goes away."""

    def __init__(self, engine: ComputeEngine, request: Request) -> None:
        self.engine = engine
        self.request = request

    async def run(self, fn: Callable[..., T], *args: Any, stacks: Sequence[tuple[StackConfig, int]] = ()) -> T:
        return await self.engine.run(fn, *args, stacks=stacks, request=self.request)


# Dependencies and endpoints that do not block are `async def`: FastAPI runs a plain `def` one in its thread pool,
# a hand-off between threads for every request (a tenth of the serving process's time under load).
async def get_settings(request: Request) -> WebSettings:
    return request.app.state.settings


async def get_engine(request: Request) -> RequestEngine:
    return RequestEngine(request.app.state.engine, request)


Settings = Annotated[WebSettings, Depends(get_settings)]
Engine = Annotated[RequestEngine, Depends(get_engine)]
