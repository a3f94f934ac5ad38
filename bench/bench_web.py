"""The explainer's speed, measured in the same headless chromium the tests use.

Goals (issue 3): the article is interactive within 2 s of opening, and each
widget answers a change within 100 ms at its default settings (median,
server time plus rendering). Measured here:

- page load, first visit (empty browser cache) and repeat visit (cached
  plotly.js and code cache), on a warmed server: when every widget shows its
  numbers (`numbers_ms`) and when every chart is drawn (`charts_ms`), from
  navigation start, read from the page's own clock. The baseline in the same
  run is plotly.js alone on an empty page (`plotly_alone_ms`): the part of the
  load that is the chart library (plotly.js's basic bundle) rather than skiplab.
- each widget's change latency: a control is flipped between its default and
  a neighbouring value, and the time from the change event to the redrawn
  widget is taken on the page. The server runs with its answer cache off so
  every change is computed afresh; the cached latency (a reader flipping
  back) is reported too. Baseline: the same round trip to a trivial endpoint
  (the shortcut pitfall, which builds one module), and the ratio to it.

The machine is shared (2 cores, other work running): timings are noisy;
compare ratios within one run.
"""

from __future__ import annotations

import re
import statistics
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from skiplab.web.settings import WebSettings  # noqa: E402
from tests.web.conftest import CHROMIUM, CHROMIUM_ARGS, start_server, stop_server  # noqa: E402

REPEATS = 5  # changes per widget (alternating between two values)
# widget → (control, default value, neighbouring value)
CHANGES: dict[str, tuple[str, str, str]] = {
    "shortcut": ("shortcut", "identity", "projection"),
    "bypass": ("skips", "true", "false"),
    "anatomy": ("scale", "1", "1.1"),
    "gradflow": ("activation", "relu", "tanh"),
    "types": ("width", "16", "8"),
    "ensemble": ("n", "12", "11"),
    "preact": ("activation", "tanh", "sigmoid"),
    "dense": ("width", "16", "8"),
}
ALL_DRAWN = "[...document.querySelectorAll('[data-widget]')].every(e => ['ready', 'error'].includes(e.dataset.state))"
LOAD_TIMES = """() => {
  const ws = [...document.querySelectorAll('[data-widget]')];
  return {numbers: Math.max(...ws.map(e => Number(e.dataset.numbersAt || NaN))),
          charts: Math.max(...ws.map(e => Number(e.dataset.readyAt || NaN))),
          errors: ws.filter(e => e.dataset.state === 'error').map(e => e.dataset.widget)};
}"""
CHANGE = """async ([widget, name, value]) => {
  const el = document.querySelector('#w-' + widget);
  const control = el.querySelector(`[name=${name}]`);
  const before = Number(el.dataset.renders || 0);
  const t0 = performance.now();
  if (control.type === 'checkbox') control.checked = value === 'true'; else control.value = value;
  control.dispatchEvent(new Event('change', {bubbles: true}));
  while (Number(el.dataset.renders || 0) === before && el.dataset.state !== 'error')
    await new Promise(r => setTimeout(r, 1));
  if (el.dataset.state === 'error') throw new Error(el.querySelector('.status').textContent);
  return Number(el.dataset.readyAt) - t0;
}"""

PLOTLY_ALONE = """url => new Promise(ok => {
  const t0 = performance.now();
  const s = document.createElement('script');
  s.src = url;
  s.onload = () => ok(performance.now() - t0);
  document.head.append(s);
})"""


def launch(p):
    return p.chromium.launch(executable_path=CHROMIUM, args=CHROMIUM_ARGS)


def wait_warm(live, timeout: float = 120.0) -> None:
    deadline = time.monotonic() + timeout
    while len(live.app.state.engine) < 8 and time.monotonic() < deadline:
        time.sleep(0.1)


def page_load(p) -> dict:
    live = start_server(WebSettings())
    try:
        wait_warm(live)
        browser = launch(p)
        plotly_url = re.search(r'data-plotly="([^"]+)"', live.app.state.article_html).group(1)
        out = {"first_visit": [], "repeat_visit": [], "plotly_alone_ms": []}
        for _ in range(3):
            context = browser.new_context(viewport={"width": 1280, "height": 900})
            page = context.new_page()
            for visit in ("first_visit", "repeat_visit"):
                page.goto(live.url + "/")
                page.wait_for_function(ALL_DRAWN, timeout=120_000)
                t = page.evaluate(LOAD_TIMES)
                out[visit].append({"numbers_ms": round(t["numbers"]), "charts_ms": round(t["charts"])})
            context.close()
            # Baseline: plotly.js alone, empty cache.
            context = browser.new_context()
            page = context.new_page()
            page.goto(live.url + "/openapi.json")
            out["plotly_alone_ms"].append(
                round(
                    page.evaluate(
                        PLOTLY_ALONE,
                        plotly_url,
                    )
                )
            )
            context.close()
        browser.close()
    finally:
        stop_server(live)
    summary = {}
    for visit in ("first_visit", "repeat_visit"):
        for key in ("numbers_ms", "charts_ms"):
            summary[f"{visit}_{key}_median"] = statistics.median(r[key] for r in out[visit])
    summary["plotly_alone_ms_median"] = statistics.median(out["plotly_alone_ms"])
    summary["goal_ms"] = 2000
    summary["first_visit_charts_vs_goal"] = round(summary["first_visit_charts_ms_median"] / 2000, 2)
    summary["repeat_visit_charts_vs_goal"] = round(summary["repeat_visit_charts_ms_median"] / 2000, 2)
    summary["first_visit_charts_vs_plotly_alone"] = round(
        summary["first_visit_charts_ms_median"] / summary["plotly_alone_ms_median"], 2
    )
    return {"summary": summary, "runs": out}


def widget_latency(p, cache_size: int) -> dict:
    live = start_server(WebSettings(cache_size=cache_size, warm_up=False))
    try:
        browser = launch(p)
        page = browser.new_page(viewport={"width": 1280, "height": 900})
        page.set_default_timeout(120_000)
        page.goto(live.url + "/")
        page.wait_for_function(ALL_DRAWN)
        out = {}
        for widget, (name, default, other) in CHANGES.items():
            times = []
            for i in range(REPEATS + 1):
                value = other if i % 2 == 0 else default
                ms = page.evaluate(CHANGE, [widget, name, value])
                if i > 0 or cache_size:  # with no cache, the first change also pays one-off warm-up: drop it
                    times.append(ms)
            out[widget] = round(statistics.median(times), 1)
        browser.close()
    finally:
        stop_server(live)
    return out


def server_compute(reps: int = 5, cold: bool = False) -> dict:
    """Each widget's default computation alone, in this process at the server's thread count, computed afresh.

    What a change costs before the network and the chart: the widget's
    latency above, minus this, is transport and rendering. cold: drop every
    remembered cost before each call (a configuration the server has not
    seen since it started).
    """
    from skiplab.probes.common import threads
    from skiplab.probes.cost import forget_built
    from skiplab.web.app import default_views

    out = {}
    with threads(WebSettings().torch_threads):
        for fn, query in default_views():
            fn(query)  # one-off warm-up (the first FLOP count imports torch._dynamo)
            times = []
            for _ in range(reps):
                if cold:
                    forget_built()
                t0 = time.perf_counter()
                fn(query)
                times.append(time.perf_counter() - t0)
            out[fn.__name__] = round(statistics.median(times) * 1e3, 1)
    return out


def run() -> dict:
    from playwright.sync_api import sync_playwright

    compute = server_compute()
    compute_cold = server_compute(cold=True)
    with sync_playwright() as p:
        load = page_load(p)
        fresh = widget_latency(p, cache_size=0)
        cached = widget_latency(p, cache_size=256)
    baseline = fresh["shortcut"]
    return {
        "page_load": load["summary"],
        "page_load_runs": load["runs"],
        "widget_change_ms_median_uncached": fresh,
        "widget_change_ms_median_cached": cached,
        "server_compute_ms_median": compute,
        "server_compute_cold_ms_median": compute_cold,
        "baseline_widget": "shortcut",
        "widget_vs_baseline": {w: round(ms / baseline, 1) for w, ms in fresh.items()},
        "widget_vs_100ms_goal": {w: round(ms / 100, 2) for w, ms in fresh.items()},
        "note": "shared 2-core machine with other work running: absolute times are noisy; compare ratios",
    }


if __name__ == "__main__":
    import json

    print(json.dumps(run(), indent=2))
