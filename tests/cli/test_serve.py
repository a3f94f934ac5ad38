"""`skiplab serve` starts the explainer: the article, its API and its run store answer on the chosen port."""

from __future__ import annotations

import subprocess
import sys
import time

import httpx
import pytest

from tests.web.conftest import free_port


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
