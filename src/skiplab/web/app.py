"""The FastAPI app factory: the explainer article and the JSON it draws.

The web layer is a thin adapter (DESIGN.md): routers parse and bound the
request with pydantic, call the library through `ComputeEngine.run`, and return
the library's `to_dict()` as typed JSON. Nothing here computes a number.
"""

from __future__ import annotations

import re
import threading
from collections.abc import AsyncIterator, Callable
from contextlib import asynccontextmanager
from typing import Any

from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse, Response
from fastapi.staticfiles import StaticFiles
from pydantic import BaseModel
from starlette.exceptions import HTTPException as StarletteHTTPException

from skiplab.store import RunStore
from skiplab.web.article import STATIC_DIR, plotly_js_path, plotly_js_version, render_article, static_version
from skiplab.web.deps import ComputeEngine
from skiplab.web.jobs import JobManager
from skiplab.web.limits import WorkerPool
from skiplab.web.routers import (
    anatomy,
    bypass,
    gradflow,
    jobs,
    landscape,
    pages,
    paths,
    pitfalls,
    results,
    runs,
    skip_types,
    unet,
)
from skiplab.web.routers import transformer as text_routes
from skiplab.web.security import BodyLimitMiddleware, GuardMiddleware, allowed_host_names
from skiplab.web.settings import WebSettings


class CachedStatic(StaticFiles):
    """Static files under a content-hashed URL, so the browser keeps them for `max_age` seconds."""

    def __init__(self, *args, max_age: int, **kwargs) -> None:
        super().__init__(*args, **kwargs)
        self.max_age = max_age

    def file_response(self, *args, **kwargs):
        response = super().file_response(*args, **kwargs)
        response.headers["Cache-Control"] = f"public, max-age={self.max_age}, immutable"
        return response


def _template_matches(template: str, path: str) -> bool:
    """Whether an OpenAPI path template such as /api/jobs/{job_id} matches `path`."""
    return re.fullmatch(re.sub(r"\\\{[^/]+?\\\}", "[^/]+", re.escape(template)), path) is not None


def _readable(exc: RequestValidationError) -> str:
    """'depth: Input should be less than or equal to 1000' for each bad field, joined."""
    parts = []
    for err in exc.errors():
        where = ".".join(str(p) for p in err.get("loc", ()) if p not in ("query", "body", "path"))
        parts.append(f"{where}: {err.get('msg', 'invalid')}" if where else err.get("msg", "invalid"))
    return "; ".join(parts) or "invalid request"


def default_views() -> list[tuple[Callable[[Any], Any], BaseModel]]:
    """Every widget's default computation: what the article asks for the moment it opens."""
    return [
        (bypass.bypass, bypass.BypassQuery()),
        (anatomy.anatomy_of, anatomy.AnatomyQuery()),
        (gradflow.gradient_highway, gradflow.GradFlowQuery()),
        (skip_types.skip_types, skip_types.SkipTypesQuery()),
        (paths.paths, paths.PathsQuery()),
        (pitfalls.shortcut_outcome, pitfalls.ShortcutQuery()),
        (pitfalls.post_vs_pre, pitfalls.PreactQuery()),
        (pitfalls.dense_memory, pitfalls.DenseQuery()),
    ]


def warm_up(engine: ComputeEngine, stop: threading.Event) -> None:
    """Compute the default views once at start-up (first torch calls are slow), so the page opens fast."""
    for fn, query in default_views():
        if stop.is_set():
            return
        try:
            engine.call(fn, query)
        except Exception:  # a failing view reports its error when the page asks for it
            continue


JOB_STOP_WAIT_S = 0.5  # at shutdown, how long live training may take to notice its cancellation (it polls per batch)


def _lifespan(settings: WebSettings):
    """Start: warm up the default views. Stop promptly: no new warm-up work, workers stopped, jobs cancelled."""

    @asynccontextmanager
    async def lifespan(app: FastAPI) -> AsyncIterator[None]:
        stop = threading.Event()
        if settings.warm_up:
            threading.Thread(target=warm_up, args=(app.state.engine, stop), name="warm-up", daemon=True).start()
            # MiniLM loads in a worker of its own: its few seconds never hold up the other views
            threading.Thread(
                target=text_routes.warm_up, args=(app.state.text_engine, stop), name="warm-up-text", daemon=True
            ).start()
            threading.Thread(
                target=landscape.warm_up, args=(app.state.landscape_engine, stop), name="warm-up-landscape", daemon=True
            ).start()
        try:
            yield
        finally:
            stop.set()
            app.state.engine.shutdown()  # stops the worker processes; queued requests are dropped
            app.state.text_engine.shutdown()
            app.state.landscape_engine.shutdown()
            app.state.jobs.shutdown(wait_s=min(settings.cancel_grace_s, JOB_STOP_WAIT_S))

    return lifespan


def _add_error_handlers(app: FastAPI) -> None:
    """A 405 that lists every allowed method, and 422s that say which field is wrong and why."""

    @app.exception_handler(405)
    async def method_not_allowed(request: Request, exc: StarletteHTTPException) -> JSONResponse:
        # Starlette names only the first route matching the path; list every documented method of the path.
        allowed = sorted(
            m.upper()
            for path, ops in app.openapi()["paths"].items()
            if _template_matches(path, request.url.path)
            for m in ops
        )
        return JSONResponse({"detail": "Method Not Allowed"}, 405, headers={"Allow": ", ".join(allowed)})

    @app.exception_handler(RequestValidationError)
    async def validation_error(request: Request, exc: RequestValidationError) -> JSONResponse:
        return JSONResponse({"detail": _readable(exc)}, status_code=422)


def create_app(settings: WebSettings | None = None) -> FastAPI:
    settings = settings or WebSettings()

    app = FastAPI(
        lifespan=_lifespan(settings),
        title="skiplab",
        summary="Skip connections explained with numbers computed live from real networks.",
        version="0.1.0",
        # Swagger UI and ReDoc load their scripts from a CDN: the page must not reach outside the server.
        # The schema itself stays at /openapi.json, encoded once (see _serve_schema).
        docs_url=None,
        redoc_url=None,
        openapi_url=None,
    )
    app.state.settings = settings
    pool = WorkerPool(
        workers=settings.workers,
        queue=settings.heavy_queue,
        timeout_s=settings.compute_timeout_s,
        retry_after_s=settings.retry_after_s,
        torch_threads=settings.torch_threads,
    )
    app.state.engine = ComputeEngine(settings.cache_size, settings.budget, pool)
    app.state.text_engine = text_routes.text_engine(settings)  # MiniLM's worker: see routers.transformer
    app.state.landscape_engine = landscape.landscape_engine(settings)  # loss planes: a worker of their own
    app.state.jobs = JobManager(settings)
    app.state.store = RunStore(settings.store_path) if settings.store_path else None

    static_url = f"/static/{static_version()}"
    plotly_url = f"/vendor/plotly-basic-{plotly_js_version()}.min.js"

    _add_error_handlers(app)

    # Bodies past max_body_bytes get 413 before more is read; the Guard (added last, so run first) lets only
    # our own Host through (400 otherwise: DNS rebinding) and refuses cross-origin writes (403).
    app.add_middleware(BodyLimitMiddleware, max_bytes=settings.max_body_bytes)
    app.add_middleware(GuardMiddleware, allowed_hosts=allowed_host_names(settings.host, settings.allowed_hosts))
    app.include_router(pages.router)
    app.include_router(pages.plotly_route(plotly_url, str(plotly_js_path()), settings.static_max_age_s))
    routers = (bypass, anatomy, gradflow, skip_types, paths, pitfalls, results, jobs, runs, unet, text_routes)
    for module in (*routers, landscape):
        app.include_router(module.router, prefix="/api")
    app.mount(static_url, CachedStatic(directory=STATIC_DIR, max_age=settings.static_max_age_s), name="static")
    app.state.article_html = render_article(static_url, plotly_url, app.openapi())
    _serve_schema(app)

    return app


def _serve_schema(app: FastAPI) -> None:
    """GET /openapi.json from bytes encoded once: FastAPI's own route encodes the 73 kB schema on every request,
    which took a quarter of the serving process's time under load when a client asked for it often."""
    body = JSONResponse(app.openapi()).body

    @app.api_route("/openapi.json", methods=["GET", "HEAD"], include_in_schema=False)
    async def openapi_json() -> Response:
        return Response(body, media_type="application/json")
