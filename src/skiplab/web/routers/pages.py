"""The article itself and plotly.js, both long-cached where they can be."""

from __future__ import annotations

from fastapi import APIRouter, Request
from fastapi.responses import FileResponse, HTMLResponse

router = APIRouter(tags=["pages"])


@router.get("/", response_class=HTMLResponse, summary="The explainer article")
async def article(request: Request) -> HTMLResponse:
    # Rendered once at start-up (the formulas' MathML included); the numbers arrive as JSON.
    return HTMLResponse(request.app.state.article_html, headers={"Cache-Control": "no-cache"})


def plotly_route(path: str, js_file: str, max_age: int) -> APIRouter:
    """A route serving the vendored plotly.js bundle at a versioned URL."""
    r = APIRouter(tags=["pages"])

    @r.get(path, response_class=FileResponse, summary="plotly.js (basic bundle), served from the package")
    def plotly_js() -> FileResponse:
        return FileResponse(
            js_file,
            media_type="text/javascript",
            headers={"Cache-Control": f"public, max-age={max_age}, immutable"},
        )

    return r
