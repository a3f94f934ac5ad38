"""Run many training runs at once in a pool of processes, each with a deliberate number of torch threads.

On a small CPU, one run per core with one intra-op thread each beats one run
with all threads: the digits nets are too small to keep two threads busy
(measured on the 2-core development machine while it was shared: a
plainconv56 step took 0.20 s on 1 thread and 2.3 s on 2 contended threads).
Workers are started with `spawn` (a fresh interpreter: no OpenMP state
inherited through fork) and write their runs into the shared SQLite store
themselves (WAL mode lets them commit concurrently).
"""

from __future__ import annotations

import concurrent.futures as cf
import functools
import multiprocessing
from collections.abc import Callable
from pathlib import Path

from skiplab.probes.common import usable_cores
from skiplab.store import RunStore
from skiplab.train.checkpoint import has_checkpoint
from skiplab.train.config import TrainConfig
from skiplab.train.loop import train


def default_workers() -> int:
    return usable_cores()


def run_one(cfg: dict, store_path: str | None, name: str, run_dir: str | None = None) -> dict:
    """Train one config (a dict, so it crosses process boundaries plainly) and return the result as a dict.

    run_dir: checkpoint there every epoch, and continue from its checkpoint if one is there (so a killed
    experiment picks up where it stopped, and the trained weights stay on disk).
    """
    store = RunStore(store_path) if store_path else None
    resume = run_dir is not None and has_checkpoint(run_dir)
    return train(TrainConfig.from_dict(cfg), store=store, name=name, run_dir=run_dir, resume=resume).to_dict()


def run_many(
    jobs: list[tuple[str, TrainConfig]],
    *,
    workers: int = 2,
    store: RunStore | None = None,
    on_run: Callable[[str, dict], None] | None = None,
    job: Callable[..., dict] = run_one,
    run_root: str | Path | None = None,
) -> dict[str, dict]:
    """Train every (name, config); returns {name: RunResult.to_dict()}. workers=1 trains in this process.

    job: the function each worker runs on (config dict, store path, name[, run folder]); a top-level
    function, so that it can be sent to a spawned process. The default trains and returns the run.
    run_root: keep each run's checkpoints in run_root/name (only with the default job).
    """
    if run_root is not None and job is not run_one:
        raise ValueError("run_root is only kept by the default training job")
    if not isinstance(workers, int) or workers < 1:
        raise ValueError(f"workers must be an integer >= 1; got {workers!r}")
    names = [n for n, _ in jobs]
    if len(set(names)) != len(names):
        raise ValueError("job names must be unique")
    store_path = str(Path(store.path)) if store is not None else None
    if run_root is not None:
        job = functools.partial(_in_folder, str(run_root))
    out: dict[str, dict] = {}
    if workers == 1 or len(jobs) == 1:
        for name, cfg in jobs:
            out[name] = job(cfg.to_dict(), store_path, name)
            if on_run is not None:
                on_run(name, out[name])
        return out
    ctx = multiprocessing.get_context("spawn")
    with cf.ProcessPoolExecutor(max_workers=min(workers, len(jobs)), mp_context=ctx) as pool:
        futures = {pool.submit(job, cfg.to_dict(), store_path, name): name for name, cfg in jobs}
        for fut in cf.as_completed(futures):
            name = futures[fut]
            out[name] = fut.result()
            if on_run is not None:
                on_run(name, out[name])
    return {n: out[n] for n in names}


def _in_folder(run_root: str, cfg: dict, store_path: str | None, name: str) -> dict:
    return run_one(cfg, store_path, name, str(Path(run_root) / name))
