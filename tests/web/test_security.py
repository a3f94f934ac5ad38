from pathlib import Path

import pytest
from fastapi import FastAPI
from fastapi.staticfiles import StaticFiles
from fastapi.testclient import TestClient

from skiplab.web.security import GuardMiddleware, allowed_host_names, parse_host, same_origin


@pytest.fixture
def client(tmp_path: Path):
    static = tmp_path / "static"
    static.mkdir()
    (static / "app.js").write_text("ok")
    (tmp_path / "secret.txt").write_text("secret")
    (static / "link.txt").symlink_to(tmp_path / "secret.txt")
    app = FastAPI()

    @app.get("/api/ping")
    def ping():
        return {"ok": True}

    @app.post("/api/jobs")
    def start():
        return {"started": True}

    app.mount("/static", StaticFiles(directory=static), name="static")
    app.add_middleware(GuardMiddleware, allowed_hosts=allowed_host_names("127.0.0.1"))
    return TestClient(app, base_url="http://127.0.0.1:8000")


def test_own_host_passes(client):
    assert client.get("/api/ping").status_code == 200
    assert client.get("/api/ping", headers={"Host": "localhost:8000"}).status_code == 200
    assert client.get("/api/ping", headers={"Host": "[::1]:8000"}).status_code == 200


@pytest.mark.parametrize("host", ["evil.example", "127.0.0.1.evil.example:8000", "", "10.0.0.1"])
def test_foreign_host_gets_400(client, host):
    assert client.get("/api/ping", headers={"Host": host}).status_code == 400


def test_cross_origin_writes_get_403(client):
    assert client.post("/api/jobs", headers={"Origin": "http://evil.example"}).status_code == 403
    assert client.post("/api/jobs", headers={"Origin": "null"}).status_code == 403
    assert client.post("/api/jobs", headers={"Sec-Fetch-Site": "cross-site"}).status_code == 403
    # same origin, and scripts that send no Origin, may write
    assert client.post("/api/jobs", headers={"Origin": "http://127.0.0.1:8000"}).status_code == 200
    assert client.post("/api/jobs").status_code == 200
    # reading cross-origin is the browser's business (CORS), not refused here
    assert client.get("/api/ping", headers={"Origin": "http://evil.example"}).status_code == 200


def test_binding_a_wildcard_does_not_allow_every_host():
    names = allowed_host_names("0.0.0.0", extra=["skiplab.lan"])
    assert "0.0.0.0" not in names and "skiplab.lan" in names and "127.0.0.1" in names


@pytest.mark.parametrize(
    "path",
    [
        "/static/../secret.txt",
        "/static/%2e%2e/secret.txt",
        "/static/%2E%2E%2Fsecret.txt",
        "/static//etc/passwd",
        "/static/link.txt",
        "/static/..%2fsecret.txt",
    ],
)
def test_static_files_cannot_be_escaped(client, path):
    r = client.get(path)
    assert r.status_code in (400, 404)
    assert "secret" not in r.text and "root:" not in r.text


def test_static_file_is_served(client):
    assert client.get("/static/app.js").text == "ok"


@pytest.mark.parametrize(
    "host",
    [
        "evil.example@127.0.0.1:8000",  # userinfo: urlsplit reads the name after the @
        "127.0.0.1:8000, evil.example",  # two values folded into one header
        "127.0.0.1:8000/evil",
        "127.0.0.1:8000?x",
        "127.0.0.1:8000#x",
        "127.0.0.1:http",
        "127.0.0.1:99999",
        "127.0.0.1:",
        " 127.0.0.1:8000",
        "::1",  # IPv6 without its brackets
        "[::1%25eth0]:8000",
        "[127.0.0.1]:8000",
    ],
)
def test_a_host_header_that_is_not_name_or_name_port_gets_400(client, host):
    assert client.get("/api/ping", headers={"Host": host}).status_code == 400


@pytest.mark.parametrize(
    ("host", "parsed"),
    [
        ("127.0.0.1:8000", ("127.0.0.1", "8000")),
        ("LocalHost", ("localhost", None)),
        ("[::1]:8000", ("::1", "8000")),
        ("[0:0:0:0:0:0:0:1]", ("::1", None)),
        ("evil.example@127.0.0.1:8000", None),
        ("127.0.0.1:8000, evil.example", None),
        ("[::1]x", None),
    ],
)
def test_parse_host_reads_only_name_and_port(host, parsed):
    assert parse_host(host) == parsed


def test_two_host_headers_get_400(client):
    # Starlette reads the first; a check of the last would let evil.example through
    r = client.get("/api/ping", headers=[("Host", "evil.example"), ("Host", "127.0.0.1:8000")])
    assert r.status_code == 400


@pytest.mark.parametrize(
    "origin",
    [
        "https://127.0.0.1:8000",  # same host and port, another scheme: another origin
        "http://127.0.0.1:8001",
        "http://127.0.0.1",  # port 80 is not this server's 8000
        "http://localhost:8000",  # another name for the machine is another origin to a browser
        "http://evil.example@127.0.0.1:8000",
        "http://127.0.0.1:8000/",
        "http://127.0.0.1:8000, http://evil.example",
        "ws://127.0.0.1:8000",
    ],
)
def test_an_origin_other_than_the_requests_scheme_and_host_port_gets_403(client, origin):
    assert client.post("/api/jobs", headers={"Origin": origin}).status_code == 403


def test_same_origin_is_judged_by_the_requests_scheme_and_host(client):
    assert client.post("/api/jobs", headers={"Origin": "HTTP://127.0.0.1:8000"}).status_code == 200
    assert client.post("/api/jobs", headers={"Host": "[::1]:8000", "Origin": "http://[::1]:8000"}).status_code == 200
    # a default port may be left out of either side, as browsers do
    assert client.post("/api/jobs", headers={"Host": "127.0.0.1", "Origin": "http://127.0.0.1:80"}).status_code == 200
    assert same_origin("https://127.0.0.1", "https", "127.0.0.1:443")
    assert not same_origin("http://127.0.0.1:8000", "https", "127.0.0.1:8000")
