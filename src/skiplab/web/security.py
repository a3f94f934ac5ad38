"""Safe defaults for the HTTP server: only our own Host, no cross-origin writes.

- Host: a request whose Host header is not one of the server's own names is
  answered 400, which defeats DNS rebinding against a server on 127.0.0.1.
- Origin: a state-changing request (POST, PUT, PATCH, DELETE) from a page of
  another origin is answered 403, judged by Origin or, failing that,
  Sec-Fetch-Site; same-origin pages and clients that send neither (curl,
  scripts) pass.
Static files are served by Starlette's StaticFiles, which resolves every path
and refuses what falls outside its folder (`..`, encoded dots, absolute paths,
symlinks leading out).
"""

from __future__ import annotations

from collections.abc import Iterable
from urllib.parse import urlsplit

from starlette.responses import PlainTextResponse
from starlette.types import ASGIApp, Receive, Scope, Send

UNSAFE_METHODS = frozenset({"POST", "PUT", "PATCH", "DELETE"})
LOOPBACK_NAMES = ("127.0.0.1", "localhost", "::1")


def allowed_host_names(bind_host: str, extra: Iterable[str] = ()) -> frozenset[str]:
    """The names this server answers to: loopback names, plus the bound address when it is not a wildcard."""
    names = set(LOOPBACK_NAMES) | {h.lower() for h in extra}
    if bind_host not in ("0.0.0.0", "::", ""):
        names.add(bind_host.lower())
    return frozenset(names)


def _host_name(host_header: str) -> str:
    """'127.0.0.1:8000' → '127.0.0.1'; '[::1]:8000' → '::1'."""
    try:
        return (urlsplit(f"//{host_header}").hostname or "").lower()
    except ValueError:
        return ""


class GuardMiddleware:
    """Pure ASGI middleware: Host allow-list (400) and same-origin writes (403)."""

    def __init__(self, app: ASGIApp, allowed_hosts: frozenset[str]) -> None:
        self.app = app
        self.allowed_hosts = allowed_hosts

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        headers = {k.decode("latin-1").lower(): v.decode("latin-1") for k, v in scope["headers"]}
        host = headers.get("host", "")
        if _host_name(host) not in self.allowed_hosts:
            await PlainTextResponse("Invalid Host header", status_code=400)(scope, receive, send)
            return
        if scope["method"] in UNSAFE_METHODS and self._cross_origin(headers, host):
            await PlainTextResponse("Cross-origin request refused", status_code=403)(scope, receive, send)
            return
        await self.app(scope, receive, send)

    @staticmethod
    def _cross_origin(headers: dict[str, str], host: str) -> bool:
        origin = headers.get("origin")
        if origin is not None:
            return origin == "null" or urlsplit(origin).netloc.lower() != host.lower()
        return headers.get("sec-fetch-site", "same-origin") not in ("same-origin", "none")
