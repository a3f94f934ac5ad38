"""Load held by the explainer server: 50 concurrent clients on loopback, light and heavy requests mixed.

The server runs as `skiplab serve` in its own process, as a user runs it, so
the load generator does not share its interpreter (and its GIL) with it.
"""

from __future__ import annotations

import subprocess
import sys
import time

import httpx

from bench.load import run_load
from tests.web.conftest import free_port


def run() -> dict:
    port = free_port()
    url = f"http://127.0.0.1:{port}"
    server = subprocess.Popen(
        [sys.executable, "-m", "skiplab", "serve", "--port", str(port)],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    try:
        deadline = time.monotonic() + 60
        while True:  # wait until it answers and has computed its default views (warm-up)
            try:
                if httpx.get(f"{url}/api/bypass", timeout=5).status_code == 200:
                    break
            except httpx.HTTPError:
                pass
            if time.monotonic() > deadline or server.poll() is not None:
                raise RuntimeError("skiplab serve did not start")
            time.sleep(0.5)
        time.sleep(5)  # let the warm-up thread finish
        # Baseline in the same run: the same closed-loop clients sending light requests only.
        light_only = run_load(url, clients=50, per_client=20, heavy_share=0.0, seed=2)
        report = run_load(url, clients=50, per_client=20, heavy_share=0.4, seed=1)
    finally:
        server.terminate()
        server.wait(10)
    return {
        **report.to_dict(),
        "light_only_p50_ms": light_only.light_p50_ms,
        "light_only_p99_ms": light_only.light_p99_ms,
        "light_p99_vs_light_only": round(report.light_p99_ms / light_only.light_p99_ms, 2),
    }
