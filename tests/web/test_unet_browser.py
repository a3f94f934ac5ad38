"""The U-Net widget as a reader meets it, in Debian's headless chromium: stored masks per seed, a live pair.

The widget draws the shipped runs' predicted masks beside each held-out
input and its truth, the scores per seed, and the verdict of the stated
rule; the seed picker redraws it from the same answer; "Train a pair live"
trains a fresh pair as a job and draws each net's masks as its epochs
arrive. Screenshots at 1400x900 and 390x844, before and after one change.
"""

from __future__ import annotations

import json
from urllib.request import urlopen

import pytest

from skiplab.web.settings import WebSettings
from tests.web.conftest import open_session, start_server, stop_server

pytestmark = [pytest.mark.browser, pytest.mark.slow]

NOT_SHIPPED = '{"detail": "no shipped results"}'
READY = "document.querySelector('#w-unet').dataset.state === 'ready'"


@pytest.fixture(scope="module")
def live_server():
    # No warm-up: this widget draws a stored file and a live job; the other widgets' defaults are not its concern.
    # Each test opens the whole page afresh, so the other widgets ask again while earlier asks still compute:
    # a deeper queue keeps their requests waiting instead of answered 429 (which the browser logs as errors).
    live = start_server(WebSettings(warm_up=False, heavy_queue=64, compute_timeout_s=120))
    yield live
    stop_server(live)


@pytest.fixture(scope="module")
def shipped(live_server):
    with urlopen(live_server.url + "/api/unet/results") as r:
        return json.loads(r.read())


def open_unet(chromium, live_server, width=1280, height=900, query=""):
    context, s = open_session(chromium, live_server.url, viewport={"width": width, "height": height})
    s.page.set_default_timeout(60_000)
    s.page.goto(f"{live_server.url}/{query}#beyond")
    s.page.wait_for_function(READY)
    return context, s


def canvases(page, kind: str) -> list[int]:
    """The number of lit pixels of every canvas of one column (input, truth, with, without, live-with, ...)."""
    return page.eval_on_selector_all(f"#w-unet canvas[data-kind={kind}]", "cs => cs.map(c => Number(c.dataset.on))")


def test_stored_masks_scores_and_verdict_then_the_seed_picker(chromium, live_server, shipped):
    context, s = open_unet(chromium, live_server)
    try:
        page = s.page
        n = len(shipped["examples"]["indices"])
        for kind in ("input", "truth", "with", "without"):
            assert len(canvases(page, kind)) == n, kind
        # The truth column draws the shipped true masks; the predicted columns the chosen seed's masks.
        truths = [sum(row.count("1") for row in m) for m in shipped["examples"]["truths"]]
        assert canvases(page, "truth") == truths
        first = shipped["seeds"][0]
        run = next(r for r in shipped["runs"] if r["long_skips"] and r["seed"] == first)
        assert canvases(page, "with") == [sum(row.count("1") for row in m) for m in run["predictions"]]
        assert page.locator("#w-unet [data-role=scores] tbody tr").count() == len(shipped["seeds"])
        assert page.inner_text("#w-unet [data-role=verdict]") == shipped["verdict"]
        assert page.locator("#w-unet [data-role=rule] tbody tr").count() == 2  # IoU and boundary F
        assert "skiplab experiment unet" in page.inner_text("#w-unet [data-role=provenance]")
        assert page.eval_on_selector("#w-unet [data-role=iou]", "d => d.data.length") == len(shipped["runs"])
        # The seed picker redraws from the same answer, and keeps the choice in the URL.
        other = shipped["seeds"][1]
        renders = int(page.get_attribute("#w-unet", "data-renders"))
        page.select_option("#w-unet [name=seed]", str(other))
        page.wait_for_function(f"Number(document.querySelector('#w-unet').dataset.renders) > {renders}")
        run = next(r for r in shipped["runs"] if not r["long_skips"] and r["seed"] == other)
        assert canvases(page, "without") == [sum(row.count("1") for row in m) for m in run["predictions"]]
        assert f"unet.seed={other}" in page.url
        selected = page.locator("#w-unet [data-role=scores] tbody tr.selected th").inner_text()
        assert selected == f"seed {other}"
        s.assert_clean()
    finally:
        context.close()


def test_a_seed_from_the_url_is_drawn_and_an_unknown_one_falls_back(chromium, live_server, shipped):
    last = shipped["seeds"][-1]
    context, s = open_unet(chromium, live_server, query=f"?unet.seed={last}")
    try:
        assert s.page.input_value("#w-unet [name=seed]") == str(last)
        assert f"seed {last}" in s.page.inner_text("#w-unet .mask-head[data-kind=with]")
    finally:
        context.close()
    context, s = open_unet(chromium, live_server, query="?unet.seed=999")
    try:
        assert s.page.input_value("#w-unet [name=seed]") == str(shipped["seeds"][0])
        s.assert_clean()
    finally:
        context.close()


def test_a_live_pair_draws_each_net_as_it_trains_and_can_be_cancelled(chromium, live_server, shipped, monkeypatch):
    # The shipped recipe on the same images, with a net of width 2: the test is about the job, the stream and the
    # drawing, and an epoch of the shipped width costs seconds to tens of seconds on a busy 2-core machine.
    from skiplab.web.routers import unet as unet_router

    monkeypatch.setattr(unet_router, "_shipped_config", lambda: {**shipped["provenance"]["config"], "width": 2})
    context, s = open_unet(chromium, live_server)
    try:
        page = s.page
        page.locator("#w-unet [name=epochs]").fill("1")
        page.click("#w-unet [data-role=train]")
        page.wait_for_function("document.querySelector('#w-unet').dataset.job === 'done'", timeout=180_000)
        assert "completed" in page.inner_text("#w-unet .status")
        assert page.get_attribute("#w-unet", "data-live-events") == "2"  # one epoch of each net
        n = len(canvases(page, "truth"))
        assert len(canvases(page, "live-with")) == len(canvases(page, "live-without")) == n
        live_row = page.locator("#w-unet [data-role=scores] tbody tr").last.inner_text()
        assert live_row.startswith("live, seed 3 (epoch 1/1)")
        names = page.eval_on_selector("#w-unet [data-role=iou]", "d => d.data.map(t => t.name)")
        assert "live, with long skips" in names and "live, without long skips" in names
        # A long pair stops when cancelled, and says so.
        page.locator("#w-unet [name=epochs]").fill("30")
        page.click("#w-unet [data-role=train]")
        page.wait_for_function("document.querySelector('#w-unet').dataset.job === 'running'")
        page.click("#w-unet [data-role=cancel]")
        page.wait_for_function("document.querySelector('#w-unet').dataset.job === 'done'", timeout=60_000)
        assert "stopped" in page.inner_text("#w-unet .status")
        s.assert_clean()
    finally:
        context.close()


def test_a_refused_live_run_says_why(chromium, live_server):
    context, s = open_unet(chromium, live_server)
    try:
        page = s.page
        page.locator("#w-unet [name=epochs]").evaluate("e => { e.removeAttribute('max'); e.value = '99'; }")
        page.click("#w-unet [data-role=train]")
        page.wait_for_function("document.querySelector('#w-unet').dataset.state === 'error'")
        assert "422" in page.inner_text("#w-unet .status") and "epochs" in page.inner_text("#w-unet .status")
        assert page.locator("#w-unet canvas[data-kind=with]").first.is_visible()  # the stored figures stay
        s.console_errors.clear()  # the refused POST is logged by the browser as a failed request
        s.assert_clean()
    finally:
        context.close()


def test_when_the_stored_runs_cannot_be_read_the_widget_says_why_and_shows_no_figures(chromium, live_server):
    context, s = open_session(chromium, live_server.url, viewport={"width": 1280, "height": 900})
    try:
        page = s.page
        page.set_default_timeout(60_000)
        page.route(
            "**/api/unet/results",
            lambda route: route.fulfill(status=404, content_type="application/json", body=NOT_SHIPPED),
        )
        page.goto(live_server.url + "/#beyond")
        page.wait_for_function("document.querySelector('#w-unet').dataset.state === 'error'")
        message = page.inner_text("#w-unet .status")
        assert "404" in message and "no shipped results" in message
        hidden = page.eval_on_selector(
            "#w-unet",
            "w => [...w.querySelectorAll('.mask-grid, .table-wrap, .chart-pair')].every(e => !e.getClientRects()[0])",
        )
        assert hidden and page.is_disabled("#w-unet [data-role=train]")
    finally:
        context.close()


@pytest.mark.parametrize("viewport", [(1400, 900), (390, 844)], ids=["desktop", "phone"])
def test_screenshots_before_and_after_one_change(chromium, live_server, shipped, viewport):
    width, height = viewport
    context, s = open_unet(chromium, live_server, width, height)
    try:
        page = s.page
        overflow = page.evaluate("document.documentElement.scrollWidth - window.innerWidth")
        assert overflow <= 0, f"the page scrolls sideways by {overflow}px at {width}px"
        box = page.locator("#w-unet").bounding_box()
        assert box["x"] >= 0 and box["x"] + box["width"] <= width
        page.locator("#w-unet").scroll_into_view_if_needed()
        default = s.screenshot("#w-unet", f"{width}x{height}-unet-default")
        renders = int(page.get_attribute("#w-unet", "data-renders"))
        page.select_option("#w-unet [name=seed]", str(shipped["seeds"][1]))
        page.wait_for_function(f"Number(document.querySelector('#w-unet').dataset.renders) > {renders}")
        changed = s.screenshot("#w-unet", f"{width}x{height}-unet-changed")
        assert changed.read_bytes() != default.read_bytes()
        s.assert_clean()
    finally:
        context.close()
