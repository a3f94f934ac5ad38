"""Safe defaults for the HTTP server: only our own Host, no cross-origin writes, small bodies.

- Host: the header must be exactly `name` or `name:port` (an IPv6 address in
  brackets), sent once, and `name` one of the server's own names; anything
  else — `evil.example@127.0.0.1:8000`, `127.0.0.1:8000, evil.example`, a
  path, a second Host header — is answered 400. This defeats DNS rebinding
  against a server on 127.0.0.1.
- Origin: a state-changing request (POST, PUT, PATCH, DELETE) from a page of
  another origin is answered 403. The origin is judged by Origin — its scheme
  must be the request's own (http for this server) and its host:port exactly
  the Host header — or, failing that, by Sec-Fetch-Site; same-origin pages
  and clients that send neither (curl, scripts) pass.
- Bodies: a request body larger than `max_body_bytes` is answered 413 before
  more than that is read, whether its Content-Length says so or a chunked
  body runs past it (`BodyLimitMiddleware`).
Static files are served by Starlette's StaticFiles, which resolves every path
and refuses what falls outside its folder (`..`, encoded dots, absolute paths,
symlinks leading out).
"""

from __future__ import annotations

import ipaddress
import re
from collections.abc import Iterable

from starlette.exceptions import HTTPException
from starlette.responses import JSONResponse, PlainTextResponse
from starlette.types import ASGIApp, Message, Receive, Scope, Send

UNSAFE_METHODS = frozenset({"POST", "PUT", "PATCH", "DELETE"})
LOOPBACK_NAMES = ("127.0.0.1", "localhost", "::1")
DEFAULT_PORTS = {"http": "80", "https": "443"}

# A DNS name or IPv4 address (letters, digits, dots, hyphens), or an IPv6 address in brackets; then an optional port.
_HOST = re.compile(r"(?:(?P<name>[A-Za-z0-9.-]+)|\[(?P<ipv6>[0-9A-Fa-f:.]+)\])(?::(?P<port>[0-9]{1,5}))?")
_ORIGIN = re.compile(r"(?P<scheme>[a-z][a-z0-9+.-]*)://(?P<host>[^/?#@\s]+)")


def allowed_host_names(bind_host: str, extra: Iterable[str] = ()) -> frozenset[str]:
    """The names this server answers to: loopback names, plus the bound address when it is not a wildcard."""
    names = set(LOOPBACK_NAMES) | {_canonical(h) for h in extra}
    if bind_host not in ("0.0.0.0", "::", ""):
        names.add(_canonical(bind_host))
    return frozenset(names)


def _canonical(name: str) -> str:
    """A name as `parse_host` reports it: lower case, an IPv6 address compressed ('0:0::1' → '::1')."""
    try:
        return ipaddress.IPv6Address(name.strip("[]")).compressed
    except ValueError:
        return name.lower()


def parse_host(host: str) -> tuple[str, str | None] | None:
    """'127.0.0.1:8000' → ('127.0.0.1', '8000'); '[::1]' → ('::1', None); anything not `name[:port]` → None."""
    m = _HOST.fullmatch(host)
    if m is None:
        return None
    if m["ipv6"] is not None:
        try:
            name = ipaddress.IPv6Address(m["ipv6"]).compressed
        except ValueError:
            return None
    else:
        name = m["name"].lower()
    port = m["port"]
    if port is not None and not 0 < int(port) <= 65535:
        return None
    return name, port


def same_origin(origin: str, scheme: str, host: str) -> bool:
    """Whether the Origin header names this request's own scheme and host:port (a default port may be left out)."""
    m = _ORIGIN.fullmatch(origin.lower())
    if m is None or m["scheme"] != scheme.lower():
        return False
    theirs, ours = parse_host(m["host"]), parse_host(host)
    if theirs is None or ours is None:
        return False
    default = DEFAULT_PORTS.get(m["scheme"])
    return (theirs[0], theirs[1] or default) == (ours[0], ours[1] or default)


class GuardMiddleware:
    """Pure ASGI middleware: Host allow-list (400) and same-origin writes (403)."""

    def __init__(self, app: ASGIApp, allowed_hosts: frozenset[str]) -> None:
        self.app = app
        self.allowed_hosts = allowed_hosts

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        hosts = [v.decode("latin-1") for k, v in scope["headers"] if k.lower() == b"host"]
        parsed = parse_host(hosts[0]) if len(hosts) == 1 else None
        if parsed is None or parsed[0] not in self.allowed_hosts:
            await PlainTextResponse("Invalid Host header", status_code=400)(scope, receive, send)
            return
        if scope["method"] in UNSAFE_METHODS and self._cross_origin(scope, hosts[0]):
            await PlainTextResponse("Cross-origin request refused", status_code=403)(scope, receive, send)
            return
        await self.app(scope, receive, send)

    @staticmethod
    def _cross_origin(scope: Scope, host: str) -> bool:
        headers = {k.decode("latin-1").lower(): v.decode("latin-1") for k, v in scope["headers"]}
        origin = headers.get("origin")
        if origin is not None:
            return not same_origin(origin, scope.get("scheme", "http"), host)
        return headers.get("sec-fetch-site", "same-origin") not in ("same-origin", "none")


class BodyTooLarge(HTTPException):
    """A request body ran past the server's limit (413)."""

    def __init__(self, limit: int) -> None:
        # Connection: close, so the unread rest of the body is not taken for the next request.
        super().__init__(413, f"the request body is larger than {limit} bytes", headers={"Connection": "close"})


class BodyLimitMiddleware:
    """Pure ASGI middleware: at most `max_bytes` of request body are read; past that, 413.

    A Content-Length over the limit is refused before any of the body is read. A
    body without one (chunked) is counted as it arrives: the message that takes
    it past the limit raises `BodyTooLarge` (an HTTPException, so the app's
    handlers answer 413) instead of reaching the app, and nothing more is read.
    """

    def __init__(self, app: ASGIApp, max_bytes: int) -> None:
        self.app = app
        self.max_bytes = max_bytes

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        lengths = [v for k, v in scope["headers"] if k.lower() == b"content-length"]
        if lengths:
            if len(set(lengths)) != 1 or not lengths[0].isdigit():
                await self._refuse(scope, receive, send, 400, "invalid Content-Length")
                return
            if int(lengths[0]) > self.max_bytes:
                await self._refuse(scope, receive, send, 413, str(BodyTooLarge(self.max_bytes).detail))
                return

        received = 0
        started = False

        async def bounded_receive() -> Message:
            nonlocal received
            message = await receive()
            if message["type"] == "http.request":
                received += len(message.get("body", b""))
                if received > self.max_bytes:
                    raise BodyTooLarge(self.max_bytes)
            return message

        async def watched_send(message: Message) -> None:
            nonlocal started
            started = started or message["type"] == "http.response.start"
            await send(message)

        try:
            await self.app(scope, bounded_receive, watched_send)
        except BodyTooLarge as e:  # raised where nothing turned it into a response
            if started:
                raise
            await self._refuse(scope, receive, send, 413, str(e.detail))

    @staticmethod
    async def _refuse(scope: Scope, receive: Receive, send: Send, status: int, detail: str) -> None:
        response = JSONResponse({"detail": detail}, status_code=status, headers={"Connection": "close"})
        await response(scope, receive, send)
