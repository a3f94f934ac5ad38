"""Slider drag in a real browser: time from each input event to the figure drawn for that value or a later one.

Debian's chromium opens the article from `skiplab serve` (as a user runs it) and
drags three sliders across their range, one step every 40 ms, as a hand would:
the skip-types depth (six conv stacks measured per value), the bypass layers
and the ensemble's block count, each value a fresh computation on a fresh
server (the answer cache cannot help). The page keeps one request in
flight per widget and sends the latest value when it returns, so values passed
over are never computed; an input's latency is therefore the time until the
first figure for its value, or for a value dragged to after it, is drawn.
Reported: median and p99 over the inputs, the renders per drag, and the
requests sent.
"""

from __future__ import annotations

import statistics
from urllib.parse import parse_qs, urlsplit

from bench.load import served
from tests.web.conftest import CHROMIUM, CHROMIUM_ARGS

STEP_MS = 40
ALL_DRAWN = "[...document.querySelectorAll('[data-widget]')].every(e => ['ready', 'error'].includes(e.dataset.state))"
# widget, slider, the values dragged over (a fresh server computes each one it is asked for)
DRAGS = (("types", "depth", range(2, 33)), ("bypass", "layers", range(2, 41)), ("ensemble", "n", range(13, 41)))

# Each request's value, and when its figure was drawn (the widget's data-renders goes up after each drawing).
RECORD = """
window.__drag = { renders: [], last: null };
const realFetch = window.fetch;
window.fetch = async (url, options) => {
  const response = await realFetch(url, options);
  window.__drag.last = String(url);
  return response;
};
new MutationObserver((changes) => {
  for (const c of changes) {
    if (c.attributeName === "data-renders") window.__drag.renders.push([performance.now(), window.__drag.last]);
  }
}).observe(document, { attributes: true, subtree: true, attributeFilter: ["data-renders"] });
"""


def _drag(page, widget: str, name: str, values) -> dict:
    page.evaluate("window.__drag.renders = []")
    sent = page.evaluate(
        """async ([w, name, values, step]) => {
          const e = document.querySelector(`#w-${w} [name=${name}]`);
          const times = [];
          for (const v of values) {
            e.value = String(v);
            times.push(performance.now());
            e.dispatchEvent(new Event("input", { bubbles: true }));
            await new Promise((r) => setTimeout(r, step));
          }
          e.dispatchEvent(new Event("change", { bubbles: true }));
          return times;
        }""",
        [widget, name, list(values), STEP_MS],
    )
    last = list(values)[-1]
    page.wait_for_function(
        "([w, name, v]) => window.__drag.renders.some(([, url]) => url && url.includes(`${name}=${v}`))",
        arg=[widget, name, last],
        timeout=120_000,
    )
    renders = []
    for t, url in page.evaluate("window.__drag.renders"):
        query = parse_qs(urlsplit(url or "").query)
        if name in query:
            renders.append((t, int(query[name][0])))
    latencies = []
    for t_in, v in zip(sent, values):
        done = [t for t, shown in renders if t >= t_in and shown >= v]
        latencies.append(min(done) - t_in)
    latencies.sort()
    return {
        "inputs": len(latencies),
        "renders": len(renders),
        "median_ms": round(statistics.median(latencies), 1),
        "p99_ms": round(latencies[min(len(latencies) - 1, int(0.99 * len(latencies)))], 1),
        "max_ms": round(latencies[-1], 1),
    }


def run() -> dict:
    from playwright.sync_api import sync_playwright

    out: dict = {"step_ms": STEP_MS}
    with served() as (url, _), sync_playwright() as p:
        browser = p.chromium.launch(executable_path=CHROMIUM, args=CHROMIUM_ARGS)
        try:
            page = browser.new_page(viewport={"width": 1280, "height": 900})
            page.add_init_script(RECORD)
            page.goto(url + "/")
            page.wait_for_function(ALL_DRAWN, timeout=180_000)
            for widget, name, values in DRAGS:
                page.locator(f"#w-{widget}").scroll_into_view_if_needed()
                out[f"{widget}.{name}"] = _drag(page, widget, name, values)
        finally:
            browser.close()
    return out
