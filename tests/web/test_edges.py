"""The server's edges: bounded request bodies, unknown fields refused, and no page that reaches outside the server."""

from __future__ import annotations

import asyncio
import re
import select
import socket
from collections.abc import Iterator

import pytest
from fastapi.testclient import TestClient

from skiplab.web.app import create_app
from skiplab.web.settings import WebSettings
from tests.web.conftest import start_server, stop_server

LIMIT = 64 * 1024
HUGE = 200 * 1024 * 1024  # a body the server must never read


@pytest.fixture(scope="module")
def app():
    return create_app(WebSettings(warm_up=False))


@pytest.fixture(scope="module")
def client(app):
    with TestClient(app, base_url="http://127.0.0.1:8000") as c:
        yield c


def drive(app, method: str, path: str, chunks: Iterator[bytes], headers: list[tuple[bytes, bytes]] = ()):
    """Call the ASGI app with a streamed body; returns (status, body, how many chunks the app pulled)."""
    pulled = 0

    async def receive():
        nonlocal pulled
        chunk = next(chunks, None)
        if chunk is None:
            return {"type": "http.request", "body": b"", "more_body": False}
        pulled += 1
        return {"type": "http.request", "body": chunk, "more_body": True}

    sent = []

    async def send(message):
        sent.append(message)

    scope = {
        "type": "http",
        "asgi": {"version": "3.0"},
        "http_version": "1.1",
        "method": method,
        "scheme": "http",
        "path": path,
        "raw_path": path.encode(),
        "query_string": b"",
        "root_path": "",
        "headers": [(b"host", b"127.0.0.1:8000"), (b"content-type", b"application/json"), *headers],
        "client": ("127.0.0.1", 50000),
        "server": ("127.0.0.1", 8000),
    }
    asyncio.run(app(scope, receive, send))
    start = next(m for m in sent if m["type"] == "http.response.start")
    body = b"".join(m.get("body", b"") for m in sent if m["type"] == "http.response.body")
    return start["status"], body, pulled


def huge_body(chunk: int = 16 * 1024) -> Iterator[bytes]:
    """200 MiB of JSON-ish bytes, made one chunk at a time as they are pulled."""
    yield b'{"depth": 4, "pad": "'
    for _ in range(HUGE // chunk):
        yield b"x" * chunk


def test_the_default_body_limit_is_64_kib():
    assert WebSettings().max_body_bytes == LIMIT


def test_a_content_length_over_the_limit_is_refused_before_reading_the_body(app):
    status, body, pulled = drive(app, "POST", "/api/jobs", huge_body(), [(b"content-length", str(HUGE).encode())])
    assert status == 413 and b"65536" in body
    assert pulled == 0


def test_a_chunked_body_running_past_the_limit_is_refused_without_reading_on(app):
    chunk = 16 * 1024
    status, body, pulled = drive(app, "POST", "/api/jobs", huge_body(chunk))
    assert status == 413 and b"larger than 65536 bytes" in body
    assert pulled * chunk <= LIMIT + 2 * chunk  # stopped at the chunk that crossed the limit, not 200 MiB later


def test_a_chunked_body_within_the_limit_reaches_the_route(app):
    pieces = iter([b'{"dep', b'th": 1, "ski', b'p": "identity"}'])
    status, body, _ = drive(app, "POST", "/api/jobs", pieces)
    assert status == 422 and b"depth" in body  # parsed whole: the route judged depth=1, below its minimum


def test_a_malformed_content_length_is_refused(app):
    status, _, pulled = drive(app, "POST", "/api/jobs", iter([b"{}"]), [(b"content-length", b"2, 200000000")])
    assert status == 400 and pulled == 0


def test_a_body_just_under_the_limit_is_read(client):
    body = b'{"depth": 1}' + b" " * (LIMIT - 12)
    assert len(body) == LIMIT
    r = client.post("/api/jobs", content=body, headers={"Content-Type": "application/json"})
    assert r.status_code == 422 and "depth" in r.json()["detail"]
    r = client.post("/api/jobs", content=body + b" ", headers={"Content-Type": "application/json"})
    assert r.status_code == 413 and r.json()["detail"] == "the request body is larger than 65536 bytes"


def test_the_limit_is_a_setting():
    with TestClient(create_app(WebSettings(warm_up=False, max_body_bytes=10)), base_url="http://127.0.0.1") as c:
        r = c.post("/api/jobs", content=b'{"depth": 20}', headers={"Content-Type": "application/json"})
        assert r.status_code == 413


def _read_reply(sock: socket.socket) -> bytes:
    sock.settimeout(60)  # a hang guard only
    data = b""
    while b"\r\n\r\n" not in data:
        part = sock.recv(65536)
        if not part:
            break
        data += part
    return data


@pytest.fixture(scope="module")
def live():
    server = start_server(WebSettings(warm_up=False))
    yield server
    stop_server(server)


def _connect(live) -> tuple[socket.socket, str]:
    host, port = live.url.removeprefix("http://").split(":")
    return socket.create_connection((host, int(port)), timeout=60), f"{host}:{port}"


def test_a_real_server_answers_413_to_a_declared_200_mb_body_without_waiting_for_it(live):
    sock, host = _connect(live)
    with sock:
        head = f"POST /api/jobs HTTP/1.1\r\nHost: {host}\r\nContent-Type: application/json\r\n"
        head += f"Content-Length: {HUGE}\r\n\r\n"
        sock.sendall(head.encode())  # and not one byte of the body
        reply = _read_reply(sock)
    assert reply.startswith(b"HTTP/1.1 413"), reply[:200]


def test_a_real_server_stops_reading_a_chunked_body_past_the_limit(live):
    sock, host = _connect(live)
    chunk = b"x" * (64 * 1024)
    frame = f"{len(chunk):x}\r\n".encode() + chunk + b"\r\n"
    sent = 0
    with sock:
        head = f"POST /api/jobs HTTP/1.1\r\nHost: {host}\r\nContent-Type: application/json\r\n"
        head += "Transfer-Encoding: chunked\r\n\r\n"
        sock.sendall(head.encode())
        # Send until the server answers or refuses more; the kernel's buffers take a few MiB beyond what it reads.
        while sent < HUGE:
            readable, _, _ = select.select([sock], [], [], 0)
            if readable:
                break
            try:
                sock.sendall(frame)
            except OSError:  # the server answered and closed the connection
                break
            sent += len(chunk)
        reply = _read_reply(sock)
    assert reply.startswith(b"HTTP/1.1 413"), reply[:200]
    assert sent < 64 * 1024 * 1024, f"the server took {sent} bytes of a body it had refused"


# ---------------------------------------------------------------------------------------- unknown fields


def test_an_unknown_body_field_is_a_422_naming_it(client):
    r = client.post("/api/jobs", json={"depht": 20, "epochs": 1})
    assert r.status_code == 422 and "depht" in r.json()["detail"]
    assert client.get("/api/jobs").json() == []  # nothing was started with the default depth


def query_routes(app) -> list[tuple[str, list[str]]]:
    """Every GET route that takes query parameters, with their names (from the app's own OpenAPI)."""
    spec = app.openapi()
    out = []
    for path, ops in spec["paths"].items():
        params = [p["name"] for p in ops.get("get", {}).get("parameters", []) if p["in"] == "query"]
        if params:
            out.append((path, params))
    return out


def test_every_route_with_query_settings_is_covered(app):
    paths = {p for p, _ in query_routes(app)}
    expected = {"/api/bypass", "/api/anatomy", "/api/gradflow", "/api/skip-types", "/api/paths", "/api/runs"}
    expected |= {"/api/pitfalls/shortcut", "/api/pitfalls/preact", "/api/pitfalls/dense-memory"}
    expected |= {"/api/transformer/stream", "/api/landscape/plane", "/api/landscape/line"}
    assert paths == expected


@pytest.mark.parametrize(
    "path",
    [
        "/api/bypass",
        "/api/anatomy",
        "/api/gradflow",
        "/api/skip-types",
        "/api/paths",
        "/api/runs",
        "/api/pitfalls/shortcut",
        "/api/pitfalls/preact",
        "/api/pitfalls/dense-memory",
    ],
)
def test_an_unknown_query_parameter_is_a_422_naming_it(client, path):
    r = client.get(path, params={"dpeth": "8"})
    assert r.status_code == 422, r.text
    assert "dpeth" in r.json()["detail"]


def test_the_pages_own_forms_send_only_parameters_their_endpoint_knows(app, client):
    """Each widget sends its form's named controls to its endpoint (common.js `settingsOf`); the training
    form sends depth, skip and epochs as the JSON body of POST /api/jobs (degradation.js)."""
    html = client.get("/").text
    known = dict(query_routes(app))
    body = app.openapi()["components"]["schemas"]
    live = {"/api/results/degradation": "JobRequest", "/api/unet/results": "UNetJobRequest"}  # their forms train
    figures = re.findall(r'<figure class="widget"[^>]*data-endpoint="([^"]+)"[^>]*>(.*?)</figure>', html, re.S)
    assert len(figures) >= 9
    for endpoint, inner in figures:
        controls = re.findall(r'<(?:input|select|textarea)\b[^>]*>', inner)
        # data-display controls choose how figures are drawn and are never sent
        named = [c for c in controls if "name=" in c and "data-display" not in c]
        names = {(re.search(r'\bdata-param="([^"]+)"', c) or re.search(r'\bname="([^"]+)"', c))[1] for c in named}
        if endpoint in live:  # its form trains a live job: the controls are the fields of its JSON body
            fields = set(body[live[endpoint]]["properties"])
            assert names <= fields, names - fields
        elif endpoint in known:
            assert names, endpoint
            assert names <= set(known[endpoint]), (endpoint, names - set(known[endpoint]))
        else:
            assert not names, (endpoint, names)


# ---------------------------------------------------------------------------------------- no outside host

OUTSIDE = re.compile(r"""(?:src|href|action|srcset|poster|data)\s*=\s*["']?\s*(?:[a-z][a-z0-9+.-]*:)?//""", re.I)


def test_no_api_docs_page_that_loads_a_cdn_but_the_schema_stays(client):
    assert client.get("/docs").status_code == 404
    assert client.get("/redoc").status_code == 404
    assert client.get("/docs/oauth2-redirect").status_code == 404
    assert client.get("/openapi.json").json()["info"]["title"] == "skiplab"
    head = client.head("/openapi.json")  # served from bytes encoded once: HEAD answers as FastAPI's own route did
    assert head.status_code == 200 and head.headers["content-type"] == "application/json" and head.content == b""


def test_no_html_the_app_serves_references_an_outside_host(app, client):
    # every documented GET without a path parameter, the schema, the pages FastAPI would add, and a 404
    pages = [path for path, ops in app.openapi()["paths"].items() if "get" in ops and "{" not in path]
    pages += ["/openapi.json", "/docs", "/redoc", "/no-such-page"]
    assert "/" in pages
    html_seen = 0
    for path in pages:
        r = client.get(path)
        if "html" in r.headers.get("content-type", ""):
            html_seen += 1
            assert not OUTSIDE.search(r.text), (path, OUTSIDE.search(r.text).group(0))
            assert "cdn." not in r.text.lower(), path
    assert html_seen >= 1  # the article itself


def test_the_outside_host_pattern_catches_what_swagger_ui_loads():
    from fastapi.openapi.docs import get_redoc_html, get_swagger_ui_html

    assert OUTSIDE.search(get_swagger_ui_html(openapi_url="/openapi.json", title="x").body.decode())
    assert OUTSIDE.search(get_redoc_html(openapi_url="/openapi.json", title="x").body.decode())
    assert not OUTSIDE.search('<a href="/static/x.js">x</a><a href="#top">top</a>')

