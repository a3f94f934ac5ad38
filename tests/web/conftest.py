"""Fixtures for the web tests: a live server in a thread, and Debian's chromium driven by Playwright.

The browser fixture records every console error, uncaught page error and
request to a host other than the test server (such a request is blocked); a
test ends by calling `session.assert_clean()`, and the fixture checks again
on teardown, so no test passes while the page misbehaves.
"""

from __future__ import annotations

import socket
import threading
import time
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from urllib.parse import urlsplit

import pytest
import uvicorn

from skiplab.web.app import create_app
from skiplab.web.settings import WebSettings

ARTIFACTS = Path(__file__).resolve().parents[2] / "test-artifacts"
CHROMIUM = "/usr/bin/chromium"
CHROMIUM_ARGS = [
    "--headless",
    "--no-sandbox",
    "--disable-gpu",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
    "--no-first-run",
]


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@dataclass
class LiveServer:
    url: str
    app: object
    server: uvicorn.Server
    thread: threading.Thread


def start_server(settings: WebSettings | None = None) -> LiveServer:
    app = create_app(settings)
    port = free_port()
    server = uvicorn.Server(uvicorn.Config(app, host="127.0.0.1", port=port, log_level="warning"))
    thread = threading.Thread(target=server.run, name="uvicorn-test", daemon=True)
    thread.start()
    deadline = time.monotonic() + 300  # a hang guard: warm-up computes every widget's default first
    while not server.started:
        if time.monotonic() > deadline or not thread.is_alive():
            raise RuntimeError("the test server did not start")
        time.sleep(0.02)
    return LiveServer(f"http://127.0.0.1:{port}", app, server, thread)


def stop_server(live: LiveServer) -> None:
    live.server.should_exit = True
    live.thread.join(10)


@pytest.fixture(scope="module")
def live_server() -> Iterator[LiveServer]:
    live = start_server()
    yield live
    stop_server(live)


@dataclass
class BrowserSession:
    """One page on the live server, with everything that went wrong recorded."""

    page: object
    base_url: str
    console_errors: list[str] = field(default_factory=list)
    outside_requests: list[str] = field(default_factory=list)

    def assert_clean(self) -> None:
        assert not self.console_errors, f"console errors: {self.console_errors}"
        assert not self.outside_requests, f"requests that left the server: {self.outside_requests}"

    def screenshot(self, selector: str, name: str) -> Path:
        ARTIFACTS.mkdir(exist_ok=True)
        path = ARTIFACTS / f"{name}.png"
        self.page.locator(selector).screenshot(path=str(path))
        return path


@pytest.fixture(scope="module")
def chromium() -> Iterator[object]:
    if not Path(CHROMIUM).exists():
        pytest.fail(f"{CHROMIUM} is missing: run `make system-deps` (apt-get install chromium)")
    from playwright.sync_api import sync_playwright

    with sync_playwright() as p:
        browser = p.chromium.launch(executable_path=CHROMIUM, args=CHROMIUM_ARGS)
        yield browser
        browser.close()


def open_session(chromium, base_url: str, **context_args) -> tuple[object, BrowserSession]:
    context = chromium.new_context(**context_args)
    page = context.new_page()
    session = BrowserSession(page, base_url)
    host = urlsplit(base_url).netloc

    def guard(route) -> None:
        url = route.request.url
        if url.startswith(("data:", "blob:")) or urlsplit(url).netloc == host:
            route.continue_()
        else:
            session.outside_requests.append(url)
            route.abort()

    context.route("**/*", guard)
    page.on("console", lambda m: m.type == "error" and session.console_errors.append(m.text))
    page.on("pageerror", lambda e: session.console_errors.append(f"uncaught: {e}"))
    return context, session


@pytest.fixture(scope="module")
def session(chromium, live_server) -> Iterator[BrowserSession]:
    """A laptop-sized page, shared by the tests of one module (one browser session per module)."""
    context, s = open_session(chromium, live_server.url, viewport={"width": 1280, "height": 900})
    yield s
    context.close()
    s.assert_clean()
