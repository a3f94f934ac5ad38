"""Bounded work: heavy computations run in worker processes behind a bounded queue.

- Capacity: `workers` processes (`skiplab.web.worker`), each running one
  computation, and at most `queue` requests waiting for one. A request beyond
  that is refused at once (429 with Retry-After) instead of piling up; the
  refusal is decided in the serving process and never waits on a computation.
- The cap: a computation running longer than `timeout_s` is stopped (its
  worker is killed and replaced), not abandoned to finish in the background.
- Cancellation: a request whose `cancelled` event is set (its client has gone)
  leaves the queue, or, if it is already running, its worker is killed.

Workers are forked from a fork server that has imported torch and the
routers once, so a replacement starts in a fraction of a second; they are
started on first use and stopped by `shutdown` (or when the server process
ends: a worker exits when its pipe closes).
"""

from __future__ import annotations

import asyncio
import multiprocessing
import queue as queue_mod
import threading
import time
import weakref
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from typing import Any

POLL_S = 0.02  # how often a waiting request looks at its cancel flag and the clock


class Busy(Exception):
    """The workers and their queue are full; retry after `retry_after` seconds."""

    def __init__(self, retry_after: int) -> None:
        super().__init__(f"the server is busy; retry in {retry_after} s")
        self.retry_after = retry_after


class TooSlow(Exception):
    """A computation ran past its cap and was stopped."""


class Cancelled(Exception):
    """The request was withdrawn (its client has gone) before it finished."""


class ComputeFailed(Exception):
    """The computation raised something other than a ValueError: a bug; the message is its traceback."""


def fork_context() -> multiprocessing.context.BaseContext:
    """Processes forked from a fork server that has imported torch and the routers once (quick to start)."""
    ctx = multiprocessing.get_context("forkserver")
    ctx.set_forkserver_preload(["skiplab.web.worker"])
    return ctx


class _Worker:
    """One worker process and the server's end of its pipe."""

    def __init__(self, torch_threads: int) -> None:
        from skiplab.web.worker import serve

        ctx = fork_context()
        self.conn, child = ctx.Pipe()
        self.process = ctx.Process(target=serve, args=(child, torch_threads), name="skiplab-worker", daemon=True)
        self.process.start()
        child.close()

    def run(
        self,
        fn: Callable,
        args: tuple,
        timeout_s: float,
        cancelled: threading.Event,
        on_item: Callable[[Any], None] | None = None,
    ) -> Any:
        """`fn(*args)` in the worker; kills the worker (and raises) past `timeout_s` or once `cancelled` is set.

        A generator `fn` streams: each item it yields is passed to `on_item` as it arrives, and the cap then
        applies to each item (the wait for the next one), so a long stream of priced items keeps going.
        """
        self.conn.send((fn, args))
        deadline = time.monotonic() + timeout_s
        while True:
            while not self.conn.poll(POLL_S):
                if cancelled.is_set():
                    self.kill()
                    raise Cancelled("the request was withdrawn")
                if time.monotonic() > deadline:
                    self.kill()
                    raise TooSlow(f"the computation took longer than {timeout_s:g} s and was stopped; lower its size")
                if not self.process.is_alive():
                    raise ComputeFailed(f"the worker process died (exit code {self.process.exitcode})")
            kind, value = self.conn.recv()
            if kind != "item":
                break
            if on_item is not None:
                on_item(value)
            deadline = time.monotonic() + timeout_s
        if kind == "refused":
            raise ValueError(value)
        if kind == "failed":
            raise ComputeFailed(value)
        return value

    @property
    def alive(self) -> bool:
        return self.process.is_alive()

    def kill(self) -> None:
        self.process.kill()
        self.process.join()
        self.conn.close()


def _stop_all(workers: set[_Worker]) -> None:
    for w in list(workers):
        if w.alive:
            w.kill()
    workers.clear()


class WorkerPool:
    """`workers` processes and at most `queue` waiting requests; beyond that, `Busy`."""

    def __init__(
        self,
        workers: int = 1,
        queue: int = 8,
        timeout_s: float = 10.0,
        retry_after_s: int = 1,
        torch_threads: int = 1,
    ) -> None:
        if workers < 1 or queue < 0:
            raise ValueError("workers must be >= 1 and queue >= 0")
        self.workers = workers
        self.capacity = workers + queue
        self.timeout_s = timeout_s
        self.retry_after_s = retry_after_s
        self.torch_threads = torch_threads
        # One waiting thread per admitted request: it blocks on a pipe, not on the interpreter.
        self._threads = ThreadPoolExecutor(max_workers=self.capacity, thread_name_prefix="skiplab-wait")
        self._idle: queue_mod.Queue[_Worker] = queue_mod.Queue()
        self._all: set[_Worker] = set()
        self._lock = threading.Lock()
        self._admitted = 0
        self._starting = 0  # workers being started (outside the lock)
        self._closed = False
        self._finalizer = weakref.finalize(self, _stop_all, self._all)

    @property
    def admitted(self) -> int:
        """Requests running or queued now."""
        return self._admitted

    def admit(self) -> None:
        """Take a slot (running or queued), or raise `Busy` at once; `run(..., admitted=True)` then uses it."""
        with self._lock:
            if self._closed or self._admitted >= self.capacity:
                raise Busy(self.retry_after_s)
            self._admitted += 1

    def release(self) -> None:
        """Give back a slot taken by `admit` that will not be used after all."""
        with self._lock:
            self._admitted -= 1

    def _take_worker(self, cancelled: threading.Event) -> _Worker:
        while True:
            with self._lock:
                if self._closed:
                    raise Cancelled("the server is shutting down")
                start = self._starting + len(self._all) < self.workers and self._idle.empty()
                self._starting += start
            if start:  # started outside the lock: the first start waits for the fork server (~1 s)
                try:
                    worker = _Worker(self.torch_threads)
                finally:
                    with self._lock:
                        self._starting -= 1
                with self._lock:
                    self._all.add(worker)
                    if not self._closed:
                        return worker
                worker.kill()
                raise Cancelled("the server is shutting down")
            try:
                return self._idle.get(timeout=POLL_S)
            except queue_mod.Empty:
                if cancelled.is_set():
                    raise Cancelled("the request was withdrawn while queued") from None

    def _give_back(self, worker: _Worker) -> None:
        with self._lock:
            if worker.alive and not self._closed:
                self._idle.put(worker)
                return
            self._all.discard(worker)  # a killed or dead worker; the next request starts a fresh one
        if worker.alive:
            worker.kill()

    def call(
        self,
        fn: Callable,
        *args: Any,
        cancelled: threading.Event | None = None,
        on_item: Callable[[Any], None] | None = None,
    ) -> Any:
        """Run `fn(*args)` in a worker, blocking this thread; the caller must have been admitted.

        on_item: receives each item a generator `fn` yields, in this thread, as it arrives.
        """
        cancelled = cancelled or threading.Event()
        worker = self._take_worker(cancelled)
        try:
            return worker.run(fn, args, self.timeout_s, cancelled, on_item)
        finally:
            self._give_back(worker)

    def call_admitted(self, fn: Callable, *args: Any, cancelled: threading.Event | None = None) -> Any:
        """`call` for a synchronous caller (the warm-up thread): admitted like any request, or `Busy`."""
        self.admit()
        try:
            return self.call(fn, *args, cancelled=cancelled)
        finally:
            self.release()

    async def run(
        self,
        fn: Callable,
        *args: Any,
        cancelled: threading.Event | None = None,
        admitted: bool = False,
        on_item: Callable[[Any], None] | None = None,
    ) -> Any:
        """Admit (or refuse with `Busy` at once) unless `admitted`, then await `fn(*args)` computed in a worker.

        on_item: see `call` (it runs in a waiting thread, not in the event loop).
        """
        if not admitted:
            self.admit()
        cancelled = cancelled or threading.Event()
        try:
            future = asyncio.get_running_loop().run_in_executor(
                self._threads, self.call_in_slot, fn, args, cancelled, on_item
            )
        except BaseException:
            self.release()
            raise
        try:
            return await asyncio.shield(future)
        except asyncio.CancelledError:
            cancelled.set()  # the awaiting task was cancelled: stop the work too
            future.add_done_callback(lambda f: f.cancelled() or f.exception())  # nobody awaits it any more
            raise

    def call_in_slot(
        self, fn: Callable, args: tuple, cancelled: threading.Event, on_item: Callable[[Any], None] | None = None
    ) -> Any:
        try:
            return self.call(fn, *args, cancelled=cancelled, on_item=on_item)
        finally:
            self.release()

    def shutdown(self) -> None:
        """Stop every worker now; waiting requests end with `Cancelled` or `Busy`."""
        with self._lock:
            self._closed = True
        self._threads.shutdown(wait=False, cancel_futures=True)
        self._finalizer()
