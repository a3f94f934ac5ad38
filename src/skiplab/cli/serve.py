"""`skiplab serve`: the explainer on http://127.0.0.1:8000."""

from __future__ import annotations

from typing import Annotated

import typer


def serve(
    host: Annotated[str, typer.Option(help="Address to bind; 127.0.0.1 keeps the server private.")] = "127.0.0.1",
    port: Annotated[int, typer.Option(min=1, max=65535, help="TCP port.")] = 8000,
) -> None:
    """Serve the explainer article."""
    import uvicorn

    from skiplab.web.app import create_app

    typer.echo(f"skiplab explainer on http://{host}:{port}/")
    uvicorn.run(create_app(), host=host, port=port, log_level="warning")
