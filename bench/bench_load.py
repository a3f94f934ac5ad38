"""Load held by the explainer server: 50 concurrent clients on loopback, light and heavy requests mixed."""

from __future__ import annotations

from bench.load import run_load
from skiplab.web.settings import WebSettings
from tests.web.conftest import start_server, stop_server


def run() -> dict:
    live = start_server(WebSettings(warm_up=False))
    try:
        run_load(live.url, clients=4, per_client=3, seed=99)  # first torch calls are slow: warm up
        report = run_load(live.url, clients=50, per_client=20, heavy_share=0.4, seed=1)
    finally:
        stop_server(live)
    return report.to_dict()
