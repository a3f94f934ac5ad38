"""`skiplab serve`: the explainer on http://127.0.0.1:8000."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer


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

    if store:
        open_store(store)  # a bad store file: exit 2 naming it, before the server starts
    settings = WebSettings(store_path=str(store) if store else None, host=host)
    typer.echo(f"skiplab explainer on http://{host}:{port}/")
    uvicorn.run(create_app(settings), host=host, port=port, log_level="warning")
