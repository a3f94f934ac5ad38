"""`skiplab serve` starts the explainer: the article, its API and its run store answer on the chosen port;
SIGINT stops it and every process it started (its exit time is measured and written to test-artifacts/)."""

from __future__ import annotations

import contextlib
import json
import signal
import subprocess
import sys
import threading
import time
from pathlib import Path

import httpx
import pytest

from skiplab.web.settings import WebSettings
from tests.web.conftest import ARTIFACTS, free_port


@pytest.mark.slow
def test_serve_answers_on_the_chosen_port(tmp_path):
    port = free_port()
    cmd = [sys.executable, "-m", "skiplab", "serve", "--port", str(port), "--store", str(tmp_path / "runs.db")]
    proc = subprocess.Popen(cmd, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
    try:
        url = f"http://127.0.0.1:{port}"
        deadline = time.monotonic() + 60
        while True:
            try:
                r = httpx.get(url + "/", timeout=5)
                break
            except httpx.TransportError:
                assert proc.poll() is None, proc.stdout.read()
                assert time.monotonic() < deadline, "skiplab serve did not answer"
                time.sleep(0.2)
        assert r.status_code == 200 and "Skip connections, computed live" in r.text
        assert httpx.get(url + "/api/runs", timeout=5).json() == []
        assert (tmp_path / "runs.db").exists()
    finally:
        proc.terminate()
        proc.wait(10)


def test_serve_refuses_a_bad_port():
    out = subprocess.run([sys.executable, "-m", "skiplab", "serve", "--port", "0"], capture_output=True, text=True)
    assert out.returncode == 2 and "port" in (out.stderr + out.stdout).lower()


def _descendants(pid: int) -> set[int]:
    """Every process below `pid` (Linux /proc), the compute workers and their fork server included."""
    found, todo = set(), [pid]
    while todo:
        p = todo.pop()
        for task in Path(f"/proc/{p}/task").glob("*"):
            try:
                kids = {int(c) for c in (task / "children").read_text().split()}
            except OSError:
                continue
            todo.extend(kids - found)
            found |= kids
    return found


def _alive(pid: int) -> bool:
    try:
        status = Path(f"/proc/{pid}/status").read_text()
    except OSError:
        return False
    return "\tZ" not in next((line for line in status.splitlines() if line.startswith("State:")), "")


def _start(port: int) -> subprocess.Popen:
    cmd = [sys.executable, "-m", "skiplab", "serve", "--port", str(port)]
    proc = subprocess.Popen(cmd, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
    deadline = time.monotonic() + 120  # a hang guard only
    while True:
        try:
            if httpx.get(f"http://127.0.0.1:{port}/", timeout=5).status_code == 200:
                return proc
        except httpx.TransportError:
            pass
        assert proc.poll() is None, proc.stdout.read()
        assert time.monotonic() < deadline, "skiplab serve did not answer"
        time.sleep(0.2)


def _fill_the_queue(url: str) -> list[threading.Thread]:
    """Ask for distinct deep computations until one is refused with 429: the workers and their queue are full."""
    answers: list[int] = []
    threads: list[threading.Thread] = []

    def ask(depth: int) -> None:
        with contextlib.suppress(httpx.HTTPError):  # the server going away under it is expected
            r = httpx.get(f"{url}/api/gradflow", params={"depth": depth, "activation": "tanh"}, timeout=120)
            answers.append(r.status_code)

    def fire() -> None:
        threads.append(threading.Thread(target=ask, args=(300 + len(threads),), daemon=True))
        threads[-1].start()

    settings = WebSettings()
    for _ in range(settings.workers + settings.heavy_queue):
        fire()
    deadline = time.monotonic() + 120  # a hang guard only
    while 429 not in answers:
        assert time.monotonic() < deadline, f"the queue never filled (answers so far: {answers})"
        fire()
        time.sleep(0.25)
    return threads


@pytest.mark.slow
@pytest.mark.parametrize("load", ["idle", "queue full"])
def test_sigint_stops_the_server_and_every_process_it_started(load):
    port = free_port()
    proc = _start(port)
    try:
        url = f"http://127.0.0.1:{port}"
        threads = _fill_the_queue(url) if load == "queue full" else []
        family = _descendants(proc.pid)
        sent = time.monotonic()
        proc.send_signal(signal.SIGINT)
        proc.wait(60)  # a hang guard, not the goal: the time is measured and reported below
        took = time.monotonic() - sent
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait(10)
    ARTIFACTS.mkdir(exist_ok=True)
    (ARTIFACTS / f"shutdown-{load.replace(' ', '-')}.json").write_text(json.dumps({"load": load, "exit_s": took}))
    print(f"skiplab serve ({load}) exited {took:.2f} s after SIGINT")
    output = proc.stdout.read()
    # ended by the signal, or at the deadline with the status a shell reports for it
    assert proc.returncode in (-signal.SIGINT, 128 + signal.SIGINT), output
    with pytest.raises(httpx.ConnectError):
        httpx.get(url + "/", timeout=5)
    deadline = time.monotonic() + 30  # a hang guard: a worker left computing would outlive this
    while alive := {p for p in family if _alive(p)}:
        assert time.monotonic() < deadline, f"processes outlived the server: {alive}"
        time.sleep(0.1)
    for t in threads:
        t.join(30)
