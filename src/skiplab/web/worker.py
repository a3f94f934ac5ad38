"""The compute worker: a process that runs library calls for the server, one at a time.

Heavy computations run here, outside the serving process's interpreter, so the
event loop, light endpoints and refusals never wait on torch. A worker reads
`(fn, args)` from its pipe, runs `fn(*args)` with the server's torch settings
and sends back one of:

- `("ok", result)`, after one `("item", value)` per value if `fn` returned a
  generator (a stream, such as a loss landscape's rows);
- `("refused", message)`: the library's ValueError (a bad option, over
  budget), which the server answers 422 with the library's own words;
- `("failed", traceback)`: anything else, a bug, which the server logs and
  answers 500.

A worker ends when its pipe closes (the server stopped or died); the server
kills it when a computation runs past its cap or its client has gone. It
ignores SIGINT: Ctrl-C reaches the whole process group, and the server, not
the worker, decides when work stops.
"""

from __future__ import annotations

import inspect
import signal
import traceback
from multiprocessing.connection import Connection

# Imported here so that the fork server loads them once and every worker (and training job) forked from it
# starts warm.
import skiplab.web.routers.anatomy
import skiplab.web.routers.bypass
import skiplab.web.routers.gradflow
import skiplab.web.routers.jobs
import skiplab.web.routers.landscape
import skiplab.web.routers.paths
import skiplab.web.routers.pitfalls
import skiplab.web.routers.skip_types
import skiplab.web.routers.transformer
import skiplab.web.routers.unet  # noqa: F401
from skiplab.probes.common import tuned


def serve(conn: Connection, torch_threads: int) -> None:
    """Answer `(fn, args)` requests on `conn` until it closes."""
    signal.signal(signal.SIGINT, signal.SIG_IGN)
    with tuned(torch_threads, flush_denormal=True):
        while True:
            try:
                fn, args = conn.recv()
            except (EOFError, OSError):
                return
            try:
                result = fn(*args)
                if inspect.isgenerator(result):  # a stream: each item goes back as it is made
                    for item in result:
                        conn.send(("item", item))
                    result = None
                reply = ("ok", result)
            except ValueError as e:
                reply = ("refused", str(e))
            except Exception:
                reply = ("failed", traceback.format_exc())
            try:
                conn.send(reply)
            except (BrokenPipeError, OSError):
                return
            except Exception:  # the result itself could not be sent (not picklable): a bug, reported as one
                conn.send(("failed", traceback.format_exc()))
