"""Streamed answers: a library generator run in a worker, each item sent to the client as one JSON line.

A loss plane takes seconds; its rows are worth seeing as they come. The
route prices the request and takes a worker slot first, so a refusal is
still an ordinary 422 or 429 (with Retry-After) before any byte of the
stream is sent. Then `ComputeEngine`'s pool runs the generator in a worker
process (`skiplab.web.limits`), which sends each item back as it is made;
this module writes it to the response as a line of JSON (`application/x-
ndjson`). The compute cap applies to each item, not the whole stream.

Once the stream has started a failure can no longer change the status code,
so it ends with a last line `{"event": "error", "status": ..., "detail":
...}` carrying the status it would have had. A client that goes away
(closes the page, or asks for other settings) withdraws the work: its worker
is stopped. A stream that completed is remembered like any answer and
replayed at once for the same settings.
"""

from __future__ import annotations

import asyncio
import json
import logging
import threading
from collections.abc import AsyncIterator, Callable, Iterator
from typing import Any

from fastapi import HTTPException, Request
from fastapi.responses import StreamingResponse

from skiplab.probes.budget import Budget, Price, check_budget
from skiplab.web.deps import CLIENT_GONE, DISCONNECT_POLL_S, ComputeEngine, _key
from skiplab.web.limits import Busy, Cancelled, TooSlow

log = logging.getLogger("skiplab.web")

NDJSON = "application/x-ndjson"
# Documented on a streaming route: its 200 is a stream of JSON lines, one event each.
STREAMED: dict[int | str, dict[str, Any]] = {
    200: {
        "description": "One JSON object per line, sent as computed: the events the route describes; a failure "
        'after the stream began ends it with {"event": "error", "status": ..., "detail": ...}.',
        "content": {NDJSON: {"schema": {"type": "string"}}},
    }
}


def _line(item: Any) -> bytes:
    return (json.dumps(item, separators=(",", ":"), allow_nan=False) + "\n").encode()


def _failure(e: BaseException, fn: Callable) -> dict:
    if isinstance(e, ValueError):
        return {"event": "error", "status": 422, "detail": str(e)}
    if isinstance(e, TooSlow):
        return {"event": "error", "status": 503, "detail": str(e)}
    log.error("%s failed in a worker while streaming:\n%s", fn.__qualname__, e)
    return {"event": "error", "status": 500, "detail": "the computation failed; the server logged why"}


async def stream_items(
    engine: ComputeEngine,
    fn: Callable[..., Iterator[Any]],
    *args: Any,
    price: Price,
    budget: Budget,
    request: Request,
) -> StreamingResponse:
    """Price, admit, then stream `fn(*args)`'s items as JSON lines (see the module's docstring)."""
    key = _key(fn, args)
    remembered = engine._remembered(key)
    if remembered is not None:
        return StreamingResponse(iter([_line(i) for i in remembered]), media_type=NDJSON)
    try:
        check_budget(price, budget, lower="grid or depth")
    except ValueError as e:
        raise HTTPException(422, str(e)) from None
    try:
        engine.pool.admit()  # a full queue is refused now, as a 429, before the stream starts
    except Busy as e:
        raise HTTPException(429, str(e), headers={"Retry-After": str(e.retry_after)}) from None
    return StreamingResponse(_relay(engine, key, fn, args, request), media_type=NDJSON)


async def _relay(
    engine: ComputeEngine, key: tuple, fn: Callable, args: tuple, request: Request
) -> AsyncIterator[bytes]:
    """The stream's body: items from the worker as they arrive; the work is withdrawn if the client goes."""
    loop = asyncio.get_running_loop()
    queue: asyncio.Queue = asyncio.Queue()
    cancelled = threading.Event()

    def on_item(item: Any) -> None:  # in the pool's waiting thread
        loop.call_soon_threadsafe(queue.put_nowait, item)

    work = asyncio.ensure_future(engine.pool.run(fn, *args, cancelled=cancelled, admitted=True, on_item=on_item))
    sent: list[Any] = []
    try:
        while not (work.done() and queue.empty()):
            try:
                item = await asyncio.wait_for(queue.get(), DISCONNECT_POLL_S)
            except TimeoutError:
                if await request.is_disconnected():
                    cancelled.set()
                    return
                continue
            sent.append(item)
            yield _line(item)
        try:
            work.result()
        except Cancelled:
            log.info("stream %s withdrawn (%d)", fn.__qualname__, CLIENT_GONE)
            return
        except Exception as e:  # a refusal (422), the cap (503), or a fault (500, logged)
            yield _line(_failure(e, fn))
            return
        engine._remember(key, sent)
    finally:
        if not work.done():
            cancelled.set()  # the client went away mid-stream (the response was cancelled): stop the worker
            work.add_done_callback(lambda f: f.cancelled() or f.exception())
