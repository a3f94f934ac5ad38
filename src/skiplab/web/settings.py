"""The web server's settings: one frozen object, built once and handed to `create_app`.

The server's own knobs live here, in one place: live-training bounds, the
answer cache, threads, caching headers, the run store. Nothing is read from
the environment.
"""

from __future__ import annotations

import os
from dataclasses import dataclass, field

from skiplab.probes.budget import Budget
from skiplab.probes.common import usable_cores


@dataclass(frozen=True)
class WebSettings:
    """Live training bounds, the answer cache, threads and caching headers.

    The bounds on each widget's settings (depth up to 1000, scale 0.1..2, ...) sit
    on its query model, next to the field they bound, where OpenAPI documents them.
    """

    max_jobs: int = 2  # live training jobs running at once (the machine may have 2 cores)
    max_epochs: int = 30  # epochs of one live training job
    max_job_s: float = 300.0  # wall time of one live training job; past it the job stops as if cancelled
    max_job_depth: int = 110  # layers of a live-trained digits net
    job_keep: int = 16  # finished jobs remembered (their curves can still be streamed)
    cancel_grace_s: float = 2.0  # a cancelled job stops within this (the trainer polls every batch)
    viewer_grace_s: float = 15.0  # a job whose last event stream closed this long ago stops (a closed tab)
    cache_size: int = 256  # answers remembered (every probe is seeded: same settings, same numbers); 0 = none
    # torch intra-op threads for widget computations: the widgets' nets are small and dispatch-bound, and on a
    # busy 2-core machine a second thread mostly spins (measured: the dense-memory view 3-10x faster on one).
    torch_threads: int = 1
    warm_up: bool = True  # compute every widget's default view when the server starts
    store_path: str | None = None  # SQLite run store that records live runs; None: live runs are not kept
    static_max_age_s: int = 31_536_000  # plotly.js and our JS/CSS carry a version in their URL: cache for a year
    # Bounded work: every stack a request builds is priced first against `budget`; each worker computes
    # one request at a time, with at most `heavy_queue` waiting, beyond which the answer is 429.
    budget: Budget = field(default_factory=Budget)
    # A loss plane is many forwards of one trained net (skiplab.experiments.landscape_study.price_landscape):
    # 21 x 21 points of the 56-layer net on 256 signals is 0.85 TFLOP, 6-10 s on two cores (9-15 s on one),
    # streamed row by row (the compute cap applies to each row).
    landscape_budget: Budget = field(default_factory=lambda: Budget(max_flops=10**12))
    # Points of a loss plane or line evaluated at once in the landscape worker, each in a thread of its own on one
    # torch thread (skiplab.probes.landscape): one per core.
    landscape_threads: int = field(default_factory=usable_cores)
    # Worker processes that compute (skiplab.web.worker): one core is left to the serving process.
    workers: int = field(default_factory=lambda: max(1, (os.cpu_count() or 2) - 1))
    # requests waiting for a worker before new ones get 429: the page asks for its 8 widgets at once when it opens
    heavy_queue: int = 8
    compute_timeout_s: float = 10.0  # a computation running longer is stopped and answered 503
    retry_after_s: int = 1  # what a 429 tells the client to wait
    host: str = "127.0.0.1"  # the bound address: requests must name it (or a loopback name) as their Host
    allowed_hosts: tuple[str, ...] = ()  # further names the server answers to (e.g. a LAN name with --host 0.0.0.0)
    max_body_bytes: int = 65_536  # a request body past this is answered 413 before more of it is read
