"""The loss-landscape section in Debian's headless chromium: the planes fill in row by row, the 3-D view, the
line from initial to trained weights, the shipped study beside them; screenshots at desktop and phone sizes."""

from __future__ import annotations

import pytest

from tests.web.conftest import open_session

pytestmark = [pytest.mark.browser, pytest.mark.slow]

W = "#w-landscape"
READY = (
    "(n) => { const e = document.querySelector('#w-landscape');"
    " return Number(e.dataset.renders || 0) >= n && ['ready', 'error'].includes(e.dataset.state); }"
)
# A canvas with any drawn pixel (the plane's colours are opaque; a blank canvas reads all zero alpha).
PAINTED = (
    "c => { const d = c.getContext('2d').getImageData(0, 0, c.width, c.height).data;"
    " let n = 0; for (let i = 3; i < d.length; i += 4) n += d[i] > 0; return n / (d.length / 4); }"
)


def _open(chromium, live_server, query: str, viewport=(1400, 900)):
    context, s = open_session(chromium, live_server.url, viewport={"width": viewport[0], "height": viewport[1]})
    s.page.set_default_timeout(120_000)
    s.page.goto(f"{live_server.url}/{query}")
    s.page.wait_for_function(READY, arg=1)  # the shipped study is drawn at once, before the section is seen
    return context, s


def test_planes_stream_in_when_the_section_is_seen_and_follow_the_controls(chromium, live_server):
    context, s = _open(chromium, live_server, "?landscape.depth=20&landscape.grid=5")
    page = s.page
    try:
        # Not yet in view: only the study (shipped numbers), no plane asked for.
        assert page.get_attribute(W, "data-rows") is None
        assert "What these nets show" in page.inner_text(f"{W} [data-role=finding]")
        assert page.locator(f"{W} [data-role=stats] tbody tr").count() == 7
        seeds = page.eval_on_selector(f"{W} [name=seed]", "s => [...s.options].map(o => o.value)")
        assert seeds and seeds[0] == "0"
        page.locator(W).scroll_into_view_if_needed()
        page.wait_for_function(READY, arg=2)
        assert page.get_attribute(W, "data-state") == "ready", page.inner_text(f"{W} .status")
        assert page.get_attribute(W, "data-rows") == "10"  # 5 rows of each plane, each drawn as it came
        for kind in ("plain", "res"):
            canvas = page.locator(f"{W} [data-role={kind}] canvas")
            assert canvas.evaluate(PAINTED) > 0.5, kind
            note = page.inner_text(f"{W} [data-role={kind}] .panel-note")
            assert "non-convex at" in note and "25 points" in note, note
        assert page.inner_text(f"{W} [data-role=plain] h4") == "plain-20"
        lines = page.eval_on_selector(f"{W} [data-role=line]", "d => d.data.map(t => [t.name, t.x.length])")
        assert lines == [["plain-20", 51], ["residual-20", 51]]
        assert "In this view (seed 0, 5×5 points" in page.inner_text(f"{W} [data-role=finding]")
        # The 3-D view redraws what is there, without asking the server again.
        before = page.locator(f"{W} [data-role=res] canvas").evaluate("c => c.toDataURL()")
        page.select_option(f"{W} [name=view]", "surface")
        after = page.locator(f"{W} [data-role=res] canvas").evaluate("c => c.toDataURL()")
        assert after != before and "landscape.view=surface" in page.url
        assert page.get_attribute(W, "data-renders") == "2"
        # Another pair of directions is another plane: asked for, streamed, drawn.
        page.fill(f"{W} [name=direction_seed]", "3")
        page.dispatch_event(f"{W} [name=direction_seed]", "change")
        page.wait_for_function(READY, arg=3)
        assert "directions seed 3" in page.inner_text(f"{W} [data-role=finding]")
        s.assert_clean()
    finally:
        context.close()


def test_a_refused_setting_is_said_in_words(chromium, live_server):
    context, s = _open(chromium, live_server, "?landscape.depth=20&landscape.grid=5&landscape.direction_seed=1")
    try:
        s.page.locator(W).scroll_into_view_if_needed()
        s.page.wait_for_function(READY, arg=2)
        # A seed no shipped net has (as an edited URL or an old link could ask): the server's 422, in words.
        s.page.evaluate(
            "() => { const sel = document.querySelector('#w-landscape [name=seed]');"
            " sel.append(new Option('99', '99')); sel.value = '99';"
            " sel.dispatchEvent(new Event('change', {bubbles: true})); }"
        )
        s.page.wait_for_function("document.querySelector('#w-landscape').dataset.state === 'error'")
        message = s.page.inner_text(f"{W} .status")
        assert "the shipped nets have seeds" in message and "controls are back" in message
        # The figures on the page are still the ones the controls now show.
        assert s.page.input_value(f"{W} [name=seed]") == "0" and "landscape.seed=0" in s.page.url
        assert s.page.locator(f"{W} [data-role=res] canvas").evaluate(PAINTED) > 0.5
        assert "directions seed 1" in s.page.inner_text(f"{W} [data-role=finding]")
        # The refusal is the only thing the console reports (the browser logs every failed load).
        assert s.outside_requests == [] and all("422" in e for e in s.console_errors), s.console_errors
    finally:
        context.close()


@pytest.mark.parametrize("viewport", [(1400, 900), (390, 844)], ids=["desktop", "phone"])
def test_screenshots_default_and_3d(chromium, live_server, viewport):
    width, height = viewport
    context, s = _open(chromium, live_server, "", viewport)
    try:
        s.page.locator(W).scroll_into_view_if_needed()
        s.page.wait_for_function(READY, arg=2)
        assert s.page.get_attribute(W, "data-state") == "ready", s.page.inner_text(f"{W} .status")
        default = s.screenshot(W, f"{width}x{height}-landscape-default")
        s.page.select_option(f"{W} [name=view]", "surface")
        changed = s.screenshot(W, f"{width}x{height}-landscape-changed")
        assert changed.read_bytes() != default.read_bytes()
        assert s.page.evaluate("document.documentElement.scrollWidth") <= width  # nothing widens the page
        s.assert_clean()
    finally:
        context.close()
