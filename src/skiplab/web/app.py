"""The FastAPI app factory (the explainer article lands in the web issue)."""

from __future__ import annotations

from fastapi import FastAPI
from fastapi.responses import HTMLResponse

from skiplab.nn import list_models


def create_app() -> FastAPI:
    app = FastAPI(title="skiplab")

    @app.get("/api/models")
    def models() -> list[dict]:
        return [{"name": s.name, "family": s.family, "depth": s.depth} for s in list_models()]

    @app.get("/", response_class=HTMLResponse)
    def index() -> str:
        rows = "".join(f"<li>{s.name}: {s.description}</li>" for s in list_models())
        return f"<!doctype html><title>skiplab</title><h1>skiplab</h1><ul>{rows}</ul>"

    return app
