"""The transformer widget as a reader meets it: a sentence typed, sublayers cut, the architecture said from the model.

Its own server without warm-up, so the page meets MiniLM before it is loaded and must say so; screenshots at
1400x900 and 390x844, before and after one cut, go to test-artifacts/.
"""

from __future__ import annotations

from collections.abc import Iterator
from urllib.parse import parse_qs, urlsplit

import pytest

from skiplab.web.settings import WebSettings
from tests.web.conftest import LiveServer, open_session, start_server, stop_server

pytestmark = [pytest.mark.browser, pytest.mark.slow]

W = "#w-transformer"
DRAWN = f"['ready', 'error'].includes(document.querySelector('{W}').dataset.state)"


@pytest.fixture(scope="module")
def server() -> Iterator[LiveServer]:
    live = start_server(WebSettings(warm_up=False))
    yield live
    stop_server(live)


@pytest.fixture(scope="module")
def session(chromium, server):
    context, s = open_session(chromium, server.url, viewport={"width": 1280, "height": 900})
    s.page.set_default_timeout(120_000)  # the first request loads MiniLM in a fresh worker
    s.page.goto(server.url + "/#beyond")
    yield s
    context.close()
    s.assert_clean()


@pytest.fixture(scope="module")
def page(session):
    return session.page


def renders(page) -> int:
    return int(page.get_attribute(W, "data-renders") or 0)


def redrawn(page, before: int) -> None:
    page.wait_for_function(
        f"(() => {{ const e = document.querySelector('{W}'); "
        f"return Number(e.dataset.renders || 0) > {before} || e.dataset.state === 'error'; }})()"
    )
    assert page.get_attribute(W, "data-state") == "ready", page.inner_text(f"{W} .status")


def readout(page) -> dict[str, str]:
    return page.eval_on_selector(
        f"{W} dl.readout",
        "dl => Object.fromEntries([...dl.querySelectorAll('dt')]"
        ".map(dt => [dt.textContent, dt.nextElementSibling.textContent]))",
    )


def settings(page) -> dict[str, list[str]]:
    return parse_qs(urlsplit(page.url).query, keep_blank_values=True)


def test_the_first_request_says_the_model_is_loading_then_draws(page, server):
    loading = page.inner_text(f"{W} .status")
    assert page.get_attribute(W, "data-state") == "busy" and "Loading MiniLM" in loading
    page.wait_for_function(DRAWN)
    assert page.get_attribute(W, "data-state") == "ready", page.inner_text(f"{W} .status")
    assert page.inner_text(f"{W} .status") == ""  # the loading note is gone with the answer
    api = page.request.get(server.url + "/api/transformer/stream").json()
    # The architecture is said as the model reports it, word for word.
    assert api["norm_position"] == "post-LN"
    assert api["statement"] in page.inner_text(f"{W} [data-role=architecture]")
    assert page.eval_on_selector(f"{W} [data-role=norms]", "d => d.data.length") == 1  # intact only: nothing cut
    assert page.eval_on_selector(f"{W} [data-role=norms]", "d => d.data[0].y") == pytest.approx(
        [api["hidden_norms"][0], *(s["stream_norm_out"] for s in api["sublayers"])]
    )
    assert page.locator(f"{W} [data-role=toggles] button").count() == 2 * api["layers"]
    # Post-LN vs pre-LN at initialisation: both models drawn, the finding the library's own words.
    init = page.request.get(server.url + "/api/transformer/init").json()
    assert page.eval_on_selector(f"{W} [data-role=init]", "d => d.data.length") == 2
    assert init["finding"] in page.inner_text(f"{W} [data-role=init-finding]")


def test_a_typed_sentence_is_measured(page):
    before = renders(page)
    box = page.locator(f"{W} [name=text]")
    box.fill("The river bank was flooded after the storm.")
    box.press("Enter")
    redrawn(page, before)
    assert "river bank was flooded" in page.inner_text(f"{W} [data-role=tokens]")
    assert settings(page)["transformer.text"] == ["The river bank was flooded after the storm."]


def test_cutting_sublayers_shows_the_lesion(page):
    before = renders(page)
    page.click(f"{W} [data-role=toggles] button[data-key='5.ffn']")
    redrawn(page, before)
    assert page.get_attribute(f"{W} button[data-key='5.ffn']", "aria-pressed") == "true"
    assert settings(page)["transformer.lesion"] == ["5.ffn"]
    branch = readout(page)
    assert branch["cut"].startswith("5·ffn") and "skip kept" in branch["cut"]
    assert page.eval_on_selector(f"{W} [data-role=norms]", "d => d.data.map(t => t.name)") == ["intact", "cut"]
    assert branch["pair ranking kept"] in ("yes", "no")
    before = renders(page)
    page.select_option(f"{W} [name=drop]", "skip")
    redrawn(page, before)
    skip = readout(page)
    assert "skip dropped" in skip["cut"]
    cos = "sentence embedding vs intact (cosine)"
    assert float(skip[cos]) < float(branch[cos])  # losing the skip turns the sentence further than losing F(x)
    before = renders(page)
    page.click(f"{W} button[data-key='5.ffn']")  # uncut
    redrawn(page, before)
    assert readout(page)["cut"].startswith("nothing") and settings(page)["transformer.lesion"] == [""]


def test_a_sentence_too_long_is_refused_and_the_figures_stay(page, session):
    shown = page.input_value(f"{W} [name=text]")
    box = page.locator(f"{W} [name=text]")
    box.fill("word " * 40)
    box.press("Enter")
    page.wait_for_function(f"document.querySelector('{W}').dataset.state === 'error'")
    status = page.inner_text(f"{W} .status")
    assert "at most 32" in status and "controls are back" in status
    assert page.input_value(f"{W} [name=text]") == shown and page.get_attribute(W, "data-figures") == "kept"
    # The browser logs the refused request itself; that one line is expected, anything else is not.
    assert session.console_errors == ["Failed to load resource: the server responded with a status of 422 "
                                      "(Unprocessable Entity)"]  # fmt: skip
    session.console_errors.clear()


@pytest.mark.parametrize("viewport", [(1400, 900), (390, 844)], ids=["desktop", "phone"])
def test_screenshots_before_and_after_one_cut(chromium, server, viewport):
    width, height = viewport
    context, s = open_session(chromium, server.url, viewport={"width": width, "height": height})
    try:
        s.page.set_default_timeout(120_000)
        s.page.goto(server.url + "/#beyond")
        s.page.wait_for_function(DRAWN)
        overflow = s.page.evaluate("document.documentElement.scrollWidth - window.innerWidth")
        assert overflow <= 0, f"the page scrolls sideways by {overflow}px at {width}px"
        box = s.page.locator(W).bounding_box()
        assert box["x"] >= 0 and box["x"] + box["width"] <= width
        s.page.locator(W).scroll_into_view_if_needed()
        default = s.screenshot(W, f"{width}x{height}-transformer-default")
        before = renders(s.page)
        s.page.click(f"{W} button[data-key='2.attention']")
        redrawn(s.page, before)
        changed = s.screenshot(W, f"{width}x{height}-transformer-changed")
        assert changed.read_bytes() != default.read_bytes()
        s.assert_clean()
    finally:
        context.close()


def test_a_360_px_phone_does_not_scroll_sideways(chromium, server):
    context, s = open_session(
        chromium, server.url, viewport={"width": 360, "height": 800}, is_mobile=True, has_touch=True
    )
    try:
        s.page.set_default_timeout(120_000)
        s.page.goto(server.url + "/#beyond")
        s.page.wait_for_function(DRAWN)
        assert s.page.evaluate("window.innerWidth") == 360  # a page too wide would widen the layout viewport
        right = s.page.evaluate(
            f"Math.max(...[...document.querySelectorAll('{W} *')].map(e => e.getBoundingClientRect().right))"
        )
        assert right <= 360
        s.assert_clean()
    finally:
        context.close()
