"""`skiplab serve`: the explainer on http://127.0.0.1:8000.

Ctrl-C (SIGINT) or SIGTERM stops it promptly: requests still open after
`GRACEFUL_SHUTDOWN_S` (an event stream, a computation waiting in the queue)
are cancelled, the app's lifespan stops the compute workers and cancels live
training, and the process then ends as the signal would end it, without the
interpreter's teardown (a second or more with torch loaded, and longer while
threads still wait on work nobody will read). Should the shutdown itself still
be running `EXIT_DEADLINE_S` after the signal, the process ends then.
"""

from __future__ import annotations

import contextlib
import gc
import logging
import multiprocessing
import os
import signal
import sys
import threading
from pathlib import Path
from typing import Annotated, NoReturn

import typer

GRACEFUL_SHUTDOWN_S = 0.5  # open requests get this long to finish once the server is told to stop
EXIT_DEADLINE_S = 1.5  # from the signal to the process gone, whatever is still running


def _leave(sig: int) -> NoReturn:
    """End the process as `sig` would: the worker processes killed, logs and stdio flushed, no teardown."""
    for child in multiprocessing.active_children():
        child.kill()
    logging.shutdown()
    sys.stdout.flush()
    sys.stderr.flush()
    if threading.current_thread() is threading.main_thread():  # only the main thread may set a handler
        signal.signal(sig, signal.SIG_DFL)
        os.kill(os.getpid(), sig)
    os._exit(128 + sig)  # what a shell reports for a process the signal ended


def _deadline(sig: int) -> None:
    print(f"skiplab: still stopping {EXIT_DEADLINE_S:g} s after the signal; exiting now", file=sys.stderr)
    _leave(sig)


def serve(
    host: Annotated[str, typer.Option(help="Address to bind; 127.0.0.1 keeps the server private.")] = "127.0.0.1",
    port: Annotated[int, typer.Option(min=1, max=65535, help="TCP port.")] = 8000,
    store: Annotated[
        Path | None,
        typer.Option(
            help="SQLite run store that records the live runs trained from the article (kept nowhere if unset)."
        ),
    ] = None,
) -> None:
    """Serve the explainer article."""
    import uvicorn

    from skiplab.cli.common import open_store
    from skiplab.web.app import create_app
    from skiplab.web.settings import WebSettings

    class Server(uvicorn.Server):
        """uvicorn's server, remembering the first SIGINT or SIGTERM and starting the deadline on stopping."""

        stopped_by: int | None = None

        def handle_exit(self, sig: int, frame) -> None:
            super().handle_exit(sig, frame)
            if self.stopped_by is None:
                self.stopped_by = sig
                timer = threading.Timer(EXIT_DEADLINE_S, _deadline, args=(sig,))
                timer.daemon = True
                timer.start()

    if store:
        open_store(store)  # a bad store file: exit 2 naming it, before the server starts
    settings = WebSettings(store_path=str(store) if store else None, host=host)
    typer.echo(f"skiplab explainer on http://{host}:{port}/")
    app = create_app(settings)
    # The objects made so far (the imported modules, torch's among them: ~230,000) leave the collector's scans
    # for good: a full collection of them took 60-90 ms, and under load those pauses made the answers' tail.
    gc.collect()
    gc.freeze()
    config = uvicorn.Config(
        app,
        host=host,
        port=port,
        log_level="warning",
        timeout_graceful_shutdown=GRACEFUL_SHUTDOWN_S,
    )
    server = Server(config)
    with contextlib.suppress(KeyboardInterrupt):  # uvicorn re-raises the SIGINT it handled once it has stopped
        server.run()
    if server.stopped_by is not None:
        _leave(server.stopped_by)
