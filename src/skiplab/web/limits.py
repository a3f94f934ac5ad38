"""Bounded work: heavy computations run in a small pool with a bounded queue.

A request that would wait beyond the queue is refused at once (429 with
Retry-After) instead of piling up; one that runs past its time budget is
answered 503 while its worker finishes (a thread cannot be killed, so every
compute is also priced beforehand and kept small). Light endpoints never enter
the pool, so they stay fast while it is full.
"""

from __future__ import annotations

import asyncio
import threading
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from typing import TypeVar

T = TypeVar("T")


class Busy(Exception):
    """The pool and its queue are full; retry after `retry_after` seconds."""

    def __init__(self, retry_after: int) -> None:
        super().__init__(f"the server is busy; retry in {retry_after} s")
        self.retry_after = retry_after


class TooSlow(Exception):
    """A computation ran past its time budget."""


class HeavyPool:
    """`workers` threads and at most `queue` waiting requests; beyond that, `Busy`."""

    def __init__(self, workers: int = 2, queue: int = 8, timeout_s: float = 10.0, retry_after_s: int = 1) -> None:
        if workers < 1 or queue < 0:
            raise ValueError("workers must be >= 1 and queue >= 0")
        self.capacity = workers + queue
        self.timeout_s = timeout_s
        self.retry_after_s = retry_after_s
        self._executor = ThreadPoolExecutor(max_workers=workers, thread_name_prefix="skiplab-heavy")
        self._lock = threading.Lock()
        self._admitted = 0

    @property
    def admitted(self) -> int:
        """Requests running or queued now."""
        return self._admitted

    def _admit(self) -> None:
        with self._lock:
            if self._admitted >= self.capacity:
                raise Busy(self.retry_after_s)
            self._admitted += 1

    def _release(self, _future=None) -> None:
        with self._lock:
            self._admitted -= 1

    async def run(self, fn: Callable[..., T], *args, **kwargs) -> T:
        self._admit()
        future = self._executor.submit(fn, *args, **kwargs)
        future.add_done_callback(self._release)  # the slot is held until the work really ends
        try:
            return await asyncio.wait_for(asyncio.wrap_future(future), self.timeout_s)
        except TimeoutError:
            raise TooSlow(f"the computation took longer than {self.timeout_s:g} s; lower its size") from None

    def shutdown(self) -> None:
        self._executor.shutdown(wait=False, cancel_futures=True)
