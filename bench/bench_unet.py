"""The U-Net widget's live run: how long until a reader sees its first result (goal: within 30 s).

A reader clicks "Train a pair live"; the server starts a job that trains a
fresh pair (with and without long skips) in a process of its own, one epoch
of each net in turn, with the shipped runs' recipe, and streams each net's
epoch as it is measured. Measured in the same headless chromium the tests
use, on the page's own clock:

- `first_result_s`: from the click to the first live masks drawn (one epoch
  of the net with long skips, its held-out scores and predicted masks);
- `both_nets_s`: from the click to the first epoch of both nets drawn.

Two servers: a warm one (default settings, measured after its start-up
warm-up has computed every widget's default view, as a reader meets it once
the page has loaded) for `REPEATS` runs, and a cold one (warm-up off, nothing
computed yet: the first click also starts the process server the job is
forked from) for one. Each run is cancelled once both nets have shown an epoch.
Baseline in the same run: one epoch of one net trained in this process
with the same recipe (`epoch_in_process_s`) — the part of the wait that is
training rather than the job machinery, the stream and the drawing.

The machine is shared (2 cores, other work running): timings are noisy.
"""

from __future__ import annotations

import statistics
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from skiplab.web.settings import WebSettings  # noqa: E402
from tests.web.conftest import CHROMIUM, CHROMIUM_ARGS, start_server, stop_server  # noqa: E402

REPEATS = 3
GOAL_S = 30.0
CLICK = """() => {
  const el = document.querySelector('#w-unet');
  delete el.dataset.liveEvents;  // the previous repeat's counts: the widget resets them once its job starts
  delete el.dataset.liveFirstAt;
  window.__unetClick = performance.now();
  el.querySelector('[data-role=train]').click();
}"""
BOTH_SHOWN = """(() => { const d = document.querySelector('#w-unet').dataset;
  return Number(d.liveEvents || 0) >= 2 && d.liveFirstAt !== undefined; })()"""
TIMES = """() => {
  const el = document.querySelector('#w-unet');
  return {first: Number(el.dataset.liveFirstAt) - window.__unetClick, both: performance.now() - window.__unetClick};
}"""


def epoch_in_process() -> float:
    """One epoch of the net with long skips, the shipped recipe, one thread, data generation included."""
    from skiplab.experiments.results import load_results
    from skiplab.experiments.unet import live_config
    from skiplab.train.segment import train_segmenter

    cfg = live_config(load_results("unet")["config"], seed=3, epochs=1)
    t0 = time.perf_counter()
    train_segmenter(cfg)
    return time.perf_counter() - t0


def wait_warm(live, timeout: float = 180.0) -> None:
    """Until the start-up warm-up has computed the default views (as bench_web waits)."""
    deadline = time.monotonic() + timeout
    while len(live.app.state.engine) < 8 and time.monotonic() < deadline:
        time.sleep(0.1)


def live_runs(settings: WebSettings, repeats: int, warm: bool) -> list[dict]:
    from playwright.sync_api import sync_playwright

    live = start_server(settings)
    out = []
    try:
        if warm:
            wait_warm(live)
        with sync_playwright() as p:
            browser = p.chromium.launch(executable_path=CHROMIUM, args=CHROMIUM_ARGS)
            page = browser.new_page(viewport={"width": 1280, "height": 900})
            page.set_default_timeout(180_000)
            page.goto(live.url + "/#beyond")
            page.wait_for_function("document.querySelector('#w-unet').dataset.state === 'ready'")
            for i in range(repeats):
                page.fill("#w-unet [name=live_seed]", str(100 + i))
                page.evaluate(CLICK)
                page.wait_for_function(BOTH_SHOWN)
                t = page.evaluate(TIMES)
                out.append({"first_result_s": round(t["first"] / 1e3, 2), "both_nets_s": round(t["both"] / 1e3, 2)})
                page.click("#w-unet [data-role=cancel]")
                page.wait_for_function("document.querySelector('#w-unet').dataset.job === 'done'")
            browser.close()
    finally:
        stop_server(live)
    return out


def run() -> dict:
    baseline = epoch_in_process()
    runs = live_runs(WebSettings(), REPEATS, warm=True)
    cold = live_runs(WebSettings(warm_up=False), 1, warm=False)[0]
    first = statistics.median(r["first_result_s"] for r in runs)
    return {
        "first_result_s_median": first,
        "both_nets_s_median": statistics.median(r["both_nets_s"] for r in runs),
        "goal_s": GOAL_S,
        "first_result_vs_goal": round(first / GOAL_S, 2),
        "cold_first_result_s": cold["first_result_s"],
        "cold_both_nets_s": cold["both_nets_s"],
        "epoch_in_process_s": round(baseline, 2),
        "runs": runs,
    }
