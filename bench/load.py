"""A bounded load generator for the explainer server: many concurrent clients on loopback.

Used by the load test (tests/web/test_load.py) and the load benchmark
(bench/bench_load.py). Each client sends a fixed number of requests — light
ones (the article, stored results) and heavy ones (widget computations with
settings varied so the answer cache cannot serve them) — so the run is
bounded in count, and every request has a timeout, so it is bounded in time.
"""

from __future__ import annotations

import asyncio
import random
import subprocess
import sys
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import asdict, dataclass, field

import httpx

from tests.web.conftest import free_port

LIGHT = ("/", "/api/results/degradation", "/api/results/lesion", "/openapi.json")


def heavy_path(rng: random.Random) -> str:
    """A widget computation with random settings (so that it is computed, not remembered)."""
    return rng.choice(
        [
            f"/api/gradflow?depth={rng.randint(2, 200)}&activation={rng.choice(['relu', 'tanh', 'sigmoid'])}",
            f"/api/bypass?layers={rng.randint(1, 50)}&skips={rng.choice(['true', 'false'])}",
            f"/api/anatomy?scale={rng.randint(1, 20) / 10}&form={rng.choice(['basic', 'bottleneck', 'preact'])}",
            f"/api/paths?n={rng.randint(2, 30)}",
        ]
    )


@dataclass
class Sample:
    kind: str  # light | heavy
    status: int  # 0: no answer within the timeout
    seconds: float
    retry_after: str | None


@dataclass
class LoadReport:
    clients: int
    requests: int
    wall_s: float
    statuses: dict[str, int]
    light_p50_ms: float
    light_p99_ms: float
    heavy_p50_ms: float
    too_many_share: float  # share of heavy requests answered 429
    too_many_p99_ms: float | None  # how fast a 429 comes back
    server_errors: int
    timeouts: int
    missing_retry_after: int
    samples: list[Sample] = field(repr=False, default_factory=list)

    def to_dict(self) -> dict:
        d = asdict(self)
        d.pop("samples")
        return d


def _pct(values: list[float], q: float) -> float:
    if not values:
        return float("nan")
    values = sorted(values)
    return values[min(len(values) - 1, int(q * len(values)))] * 1000


async def _client(base: str, n: int, heavy_share: float, seed: int, timeout: float, out: list[Sample]) -> None:
    rng = random.Random(seed)
    headers = {"Origin": base}
    async with httpx.AsyncClient(base_url=base, timeout=timeout, headers=headers) as client:
        for _ in range(n):
            kind = "heavy" if rng.random() < heavy_share else "light"
            path = heavy_path(rng) if kind == "heavy" else rng.choice(LIGHT)
            t0 = time.perf_counter()
            try:
                r = await client.get(path)
                status, retry = r.status_code, r.headers.get("retry-after")
            except httpx.TimeoutException:
                status, retry = 0, None
            out.append(Sample(kind, status, time.perf_counter() - t0, retry))


def run_load(
    base: str, clients: int = 50, per_client: int = 6, heavy_share: float = 0.4, timeout: float = 30.0, seed: int = 0
) -> LoadReport:
    samples: list[Sample] = []

    async def main() -> None:
        await asyncio.gather(
            *(_client(base, per_client, heavy_share, seed * 1000 + i, timeout, samples) for i in range(clients))
        )

    t0 = time.perf_counter()
    asyncio.run(main())
    wall = time.perf_counter() - t0
    light = [s.seconds for s in samples if s.kind == "light" and s.status == 200]
    heavy = [s for s in samples if s.kind == "heavy"]
    busy = [s for s in heavy if s.status == 429]
    statuses: dict[str, int] = {}
    for s in samples:
        statuses[str(s.status)] = statuses.get(str(s.status), 0) + 1
    return LoadReport(
        clients=clients,
        requests=len(samples),
        wall_s=round(wall, 2),
        statuses=dict(sorted(statuses.items())),
        light_p50_ms=round(_pct(light, 0.5), 1),
        light_p99_ms=round(_pct(light, 0.99), 1),
        heavy_p50_ms=round(_pct([s.seconds for s in heavy if s.status == 200], 0.5), 1),
        too_many_share=round(len(busy) / max(1, len(heavy)), 3),
        too_many_p99_ms=round(_pct([s.seconds for s in busy], 0.99), 1) if busy else None,
        server_errors=sum(s.status >= 500 for s in samples),
        timeouts=sum(s.status == 0 for s in samples),
        missing_retry_after=sum(s.status == 429 and not s.retry_after for s in samples),
        samples=samples,
    )


@contextmanager
def served(ready_path: str = "/api/bypass", start_s: float = 120) -> Iterator[tuple[str, subprocess.Popen]]:
    """`skiplab serve` in its own process on a free port, as a user runs it: yields (url, process) once it answers.

    It answers `ready_path` only after its warm-up has reached that view; it is stopped on leaving.
    """
    port = free_port()
    url = f"http://127.0.0.1:{port}"
    server = subprocess.Popen(
        [sys.executable, "-m", "skiplab", "serve", "--port", str(port)],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    try:
        deadline = time.monotonic() + start_s
        while True:
            try:
                if httpx.get(url + ready_path, timeout=30).status_code == 200:
                    break
            except httpx.HTTPError:
                pass
            if time.monotonic() > deadline or server.poll() is not None:
                raise RuntimeError("skiplab serve did not start")
            time.sleep(0.5)
        yield url, server
    finally:
        server.terminate()
        server.wait(30)
