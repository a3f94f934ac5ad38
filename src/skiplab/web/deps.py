"""What every router shares: the settings dependency and the one door to the library, `ComputeEngine.run`.

`engine.run(fn, *args, stacks=...)` runs one (synchronous, torch-bound)
library call in the engine's `HeavyPool` — one worker, since two torch calls
at once on a 2-core machine only slow each other down, and a bounded queue,
beyond which the answer is 429 with Retry-After. Before it computes, every
stack the call will build is priced (`skiplab.probes.budget`) against the
settings' budget, so an oversized request is refused with a 422 that says
what to lower before anything of its size is allocated. The library's
ValueErrors become 422 with the library's own message. Answers are remembered
in a small LRU cache: every probe is seeded, so the same settings give the
same numbers, and a reader flipping a toggle back and forth gets the earlier
answer at once.
"""

from __future__ import annotations

import threading
from collections import OrderedDict
from collections.abc import Callable, Sequence
from typing import Annotated, Any, TypeVar

from fastapi import Depends, HTTPException, Request
from pydantic import BaseModel

from skiplab.nn import StackConfig
from skiplab.probes.budget import Budget, check_budget, price_stack
from skiplab.probes.common import tuned
from skiplab.web.limits import Busy, HeavyPool, TooSlow
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
# Documented on every computing route: the worker and its queue are full, or the computation ran too long.
BUSY: dict[int | str, dict[str, Any]] = {
    429: {"model": Problem, "description": "The server is computing at capacity; retry after `Retry-After` s."},
    503: {"model": Problem, "description": "The computation ran past the server's time budget; ask for less."},
}
COMPUTE = {**UNPROCESSABLE, **BUSY}


def _key(fn: Callable, args: tuple) -> tuple:
    parts = tuple(a.model_dump_json() if isinstance(a, BaseModel) else repr(a) for a in args)
    return (fn.__module__, fn.__qualname__, parts)


class ComputeEngine:
    """Runs library calls off the event loop, one at a time, remembering the last `cache_size` answers."""

    def __init__(
        self,
        cache_size: int,
        torch_threads: int = 1,
        budget: Budget | None = None,
        pool: HeavyPool | None = None,
    ) -> None:
        self.cache_size = cache_size
        self.torch_threads = torch_threads
        self.budget = budget or Budget()
        self.pool = pool or HeavyPool(workers=1)
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

    def call(self, fn: Callable[..., T], *args: Any, stacks: Sequence[tuple[StackConfig, int]] = ()) -> T:
        """The synchronous path (the pool's worker, warm-up): cached answer, or price then compute."""
        key = _key(fn, args)
        hit = self._remembered(key)
        if hit is not None:
            return hit
        with self.torch_lock, tuned(self.torch_threads, flush_denormal=True):  # the server's own torch settings
            for cfg, batch in stacks:
                check_budget(price_stack(cfg, batch), self.budget)
            result = fn(*args)
        self._remember(key, result)
        return result

    async def run(self, fn: Callable[..., T], *args: Any, stacks: Sequence[tuple[StackConfig, int]] = ()) -> T:
        """One library call for one request, after pricing `stacks` (config, batch) against the budget.

        A ValueError (bad option, over budget) becomes a 422 with its message; a full pool a 429.
        """
        hit = self._remembered(_key(fn, args))
        if hit is not None:
            return hit
        try:
            return await self.pool.run(self.call, fn, *args, stacks=stacks)
        except ValueError as e:
            raise HTTPException(status_code=422, detail=str(e)) from None
        except Busy as e:
            raise HTTPException(429, str(e), headers={"Retry-After": str(e.retry_after)}) from None
        except TooSlow as e:
            raise HTTPException(503, str(e)) from None


def get_settings(request: Request) -> WebSettings:
    return request.app.state.settings


def get_engine(request: Request) -> ComputeEngine:
    return request.app.state.engine


Settings = Annotated[WebSettings, Depends(get_settings)]
Engine = Annotated[ComputeEngine, Depends(get_engine)]
