"""Load held by the explainer server: 50 concurrent clients on loopback, light and heavy requests mixed.

The server runs as `skiplab serve` in its own process, as a user runs it, so
the load generator does not share its interpreter (and its GIL) with it.
"""

from __future__ import annotations

import time

from bench.load import run_load, served


def run() -> dict:
    with served() as (url, _):
        time.sleep(5)  # let the warm-up thread finish
        # Baseline in the same run: the same closed-loop clients sending light requests only.
        light_only = run_load(url, clients=50, per_client=20, heavy_share=0.0, seed=2)
        report = run_load(url, clients=50, per_client=20, heavy_share=0.4, seed=1)
    return {
        **report.to_dict(),
        "light_only_p50_ms": light_only.light_p50_ms,
        "light_only_p99_ms": light_only.light_p99_ms,
        "light_p99_vs_light_only": round(report.light_p99_ms / light_only.light_p99_ms, 2),
    }
