"""The article as a reader meets it, in Debian's headless chromium: every widget operated, every change checked.

One browser session for the module (laptop viewport) plus one narrow phone
page. Each test operates a widget the way a reader would — select, toggle,
slide — waits for the widget to redraw, and checks that the numbers and
charts moved the way the network says they should. The session fixture fails
on any console error and on any request that leaves the server. Screenshots
of every widget go to test-artifacts/.
"""

from __future__ import annotations

import math
from urllib.parse import parse_qsl, urlencode, urlsplit

import pytest

from skiplab.web.settings import WebSettings
from tests.web.conftest import open_session, start_server, stop_server

pytestmark = [pytest.mark.browser, pytest.mark.slow]

WIDGETS = ("bypass", "anatomy", "gradflow", "degradation", "types", "ensemble", "shortcut", "preact", "dense")
ALL_DRAWN = "[...document.querySelectorAll('[data-widget]')].every(e => ['ready', 'error'].includes(e.dataset.state))"


@pytest.fixture(scope="module")
def page(session, live_server):
    session.page.set_default_timeout(60_000)
    session.page.goto(live_server.url + "/")
    session.page.wait_for_function(ALL_DRAWN)
    return session.page


def renders(page, widget: str) -> int:
    return int(page.get_attribute(f"#w-{widget}", "data-renders") or 0)


def operate(page, widget: str, name: str, value) -> None:
    """Set one control like a reader would and wait until the widget has redrawn with the new answer."""
    before = renders(page, widget)
    control = page.locator(f"#w-{widget} [name={name}]")
    kind = control.evaluate("e => e.type")
    current = control.evaluate("e => e.type === 'checkbox' ? e.checked : e.value")
    if current == value or (kind != "checkbox" and current == str(value)):
        assert page.get_attribute(f"#w-{widget}", "data-state") == "ready"
        return  # already so: a reader's click would change nothing
    if kind == "checkbox":
        control.set_checked(bool(value))
    elif kind.startswith("select"):
        control.select_option(str(value))
    else:  # range and number inputs: set the value and fire the events a drag or an edit would
        control.evaluate(
            "(e, v) => { e.value = v; e.dispatchEvent(new Event('input', {bubbles: true}));"
            " e.dispatchEvent(new Event('change', {bubbles: true})); }",
            str(value),
        )
    page.wait_for_function(
        f"(() => {{ const e = document.querySelector('#w-{widget}'); "
        f"return Number(e.dataset.renders || 0) > {before} || e.dataset.state === 'error'; }})()"
    )
    assert page.get_attribute(f"#w-{widget}", "data-state") == "ready", page.inner_text(f"#w-{widget} .status")


def readout(page, widget: str) -> dict[str, str]:
    """The widget's <dl> readout as {label: value}."""
    return page.eval_on_selector(
        f"#w-{widget} dl.readout",
        "dl => Object.fromEntries([...dl.querySelectorAll('dt')]"
        ".map(dt => [dt.textContent, dt.nextElementSibling.textContent]))",
    )


def number(text: str) -> float:
    return float(text.replace(",", "").split()[0])


def chart_y(page, widget: str, role: str = "chart", trace: int = 0) -> list:
    return page.eval_on_selector(f"#w-{widget} [data-role={role}]", f"d => d.data[{trace}].y")


def shot(session, widget: str, name: str | None = None) -> None:
    session.screenshot(f"#w-{widget}", name or widget)


def test_page_opens_with_every_widget_drawn_and_nothing_leaving_the_server(page, session, live_server):
    for w in WIDGETS:
        state = page.get_attribute(f"#w-{w}", "data-state")
        assert state == "ready", (w, page.inner_text(f"#w-{w} .status"))
    assert page.evaluate("typeof Plotly") == "object"  # charts come from the server's own plotly.js
    assert page.locator("math").count() >= 20  # formulas rendered as MathML
    session.page.screenshot(path=str(session.screenshot("main > section#bypass", "section-bypass").parent / "page.png"))
    session.assert_clean()


def test_highway_bypass_turning_skips_off_loses_signal_and_gradient(page, session):
    on = readout(page, "bypass")
    assert page.locator("#w-bypass svg path[stroke='#047857']").count() == 10  # one bypass arc per layer
    shot(session, "bypass", "bypass-skips-on")
    operate(page, "bypass", "skips", False)
    off = readout(page, "bypass")
    grad = "gradient strength |d out/d in|"
    assert number(off[grad]) < 1e-2 * number(on[grad])  # sigmoid, 10 layers, no bypass: the gradient is gone
    assert off["shortest path"] == "10 layers" and on["shortest path"] == "0 layers"
    assert page.locator("#w-bypass svg path[stroke='#047857']").count() == 0
    assert "bypass.skips=false" in page.url
    operate(page, "bypass", "layers", 20)
    assert readout(page, "bypass")["shortest path"] == "20 layers"
    shot(session, "bypass")


def test_block_explorer_slider_scales_the_branch(page, session):
    before = readout(page, "anatomy")
    operate(page, "anatomy", "scale", 0.1)
    after = readout(page, "anatomy")
    assert after["|x|"] == before["|x|"]
    assert number(after["|s·F(x)|"]) < 0.2 * number(before["|s·F(x)|"])
    assert "close to its shortcut" in page.inner_text("#w-anatomy [data-role=explain]")
    operate(page, "anatomy", "form", "bottleneck")
    assert page.locator("#w-anatomy svg text", has_text="conv3").count() == 1  # the bottleneck's third conv
    operate(page, "anatomy", "scale", 1)
    shot(session, "anatomy")


def test_gradient_highway_skips_off_in_a_deep_sigmoid_stack_drop_the_first_layer_gradient(page, session):
    assert page.locator("#w-gradflow [data-role=note]").is_visible()  # relu + BN default: folk story contradicted
    # The chart's colours are the stylesheet's palette (one source for page and charts).
    colours = page.eval_on_selector("#w-gradflow [data-role=chart]", "d => d.data.map(t => t.line.color)")
    css = page.evaluate(
        "['plain', 'residual'].map(n => getComputedStyle(document.documentElement).getPropertyValue('--' + n).trim())"
    )
    assert colours == css and all(c.startswith("#") for c in colours)
    for name, value in (("activation", "sigmoid"), ("norm", "none"), ("preact", "true")):
        operate(page, "gradflow", name, value)
    first = page.locator("#w-gradflow table tbody tr").first.locator("td")
    plain, residual = number(first.nth(0).inner_text()), number(first.nth(1).inner_text())
    assert residual > 0 and plain < 1e-3 * residual
    ys = chart_y(page, "gradflow", trace=1)
    assert len(ys) == 56 and all(y and y > 0 for y in ys)  # residual: a gradient at every layer, log axis
    operate(page, "gradflow", "depth", 200)
    assert len(chart_y(page, "gradflow", trace=1)) == 200
    shot(session, "gradflow")


def test_degradation_stored_runs_then_a_live_run_streams_and_can_be_cancelled(page, session):
    w = page.locator("#w-degradation")
    assert page.locator("#w-degradation [data-role=stats] tbody tr").count() == 2  # plain and residual rows
    assert "skiplab experiment degradation" in page.inner_text("#w-degradation [data-role=provenance]")
    stored = page.eval_on_selector("#w-degradation [data-role=loss]", "d => d.data.length")
    assert stored >= 4  # plain and residual at two depths, every seed
    # The log axis labels powers of ten only: no minor "5" or "2" between 1 and 0.1 to misread.
    ticks = page.eval_on_selector_all("#w-degradation [data-role=loss] .ytick text", "ts => ts.map(t => t.textContent)")
    assert len(ticks) >= 2 and all(t.replace("−", "-") in {"1", "10"} or t.startswith("10") for t in ticks), ticks
    page.select_option("#w-degradation [name=depth]", "20")
    page.select_option("#w-degradation [name=skip]", "identity")
    page.locator("#w-degradation [name=epochs]").fill("2")
    page.click("#w-degradation [data-role=train]")
    page.wait_for_function("document.querySelector('#w-degradation').dataset.job === 'done'", timeout=120_000)
    assert w.get_attribute("data-live-epochs") == "2"
    assert "completed" in page.inner_text("#w-degradation .status")
    live = page.eval_on_selector("#w-degradation [data-role=loss]", "d => d.data.at(-1)")
    assert live["name"] == "live residual-20" and len(live["y"]) == 2
    shot(session, "degradation")
    # A second run, plain-56, cancelled early: the stored figures are not faded while it trains, its progress
    # shows within the first epoch, and the chart names it, not the residual-20 run before it.
    page.select_option("#w-degradation [name=depth]", "56")
    page.select_option("#w-degradation [name=skip]", "none")
    page.locator("#w-degradation [name=epochs]").fill("30")
    page.click("#w-degradation [data-role=train]")
    page.wait_for_function("document.querySelector('#w-degradation').dataset.job === 'running'")
    assert w.get_attribute("aria-busy") != "true"
    assert page.eval_on_selector("#w-degradation [data-role=loss]", "d => getComputedStyle(d).opacity") == "1"
    assert page.eval_on_selector("#w-degradation [data-role=loss]", "d => d.data.at(-1).name").startswith(
        "live plain-56"
    )
    page.wait_for_function("/batch \\d+ of \\d+/.test(document.querySelector('#w-degradation .status').textContent)")
    page.click("#w-degradation [data-role=cancel]")
    page.wait_for_function("document.querySelector('#w-degradation').dataset.job === 'done'", timeout=120_000)
    assert "stopped" in page.inner_text("#w-degradation .status")
    assert page.eval_on_selector("#w-degradation [data-role=loss]", "d => d.data.at(-1).name").startswith(
        "live plain-56"
    )


def test_skip_types_table_follows_depth(page, session):
    rows = page.locator("#w-types tbody tr.type-row")
    assert rows.count() == 6
    dense = page.locator("#w-types tr[data-skip=dense] td").nth(0)  # parameters
    before = number(dense.inner_text())
    operate(page, "types", "depth", 12)
    assert number(dense.inner_text()) > before  # a deeper dense stack has more parameters
    card = page.locator("#w-types .type-card[data-skip=dense]")
    assert card.locator("math").count() == 1 and "DenseNet" in card.inner_text()
    assert card.locator("[data-rating=params]").inner_text() == "much more"
    assert page.locator("#w-types .type-card").count() == 6
    assert "1.25x" in page.inner_text("#w-types [data-role=rule]")
    shot(session, "types")


def test_ensemble_view_counts_paths_and_shows_lesions(page, session):
    operate(page, "ensemble", "n", 5)
    assert readout(page, "ensemble")["paths"] == "32"
    assert chart_y(page, "ensemble", "paths") == pytest.approx([math.comb(5, k) / 32 for k in range(6)])
    operate(page, "ensemble", "n", 12)
    assert readout(page, "ensemble")["paths"] == "4,096"
    shot(session, "ensemble")


def test_shape_mismatch_pitfall_and_its_fix(page, session):
    assert "ShapeMismatchError" in page.inner_text("#w-shortcut [data-role=outcome]")
    shot(session, "shortcut", "shortcut-error")
    operate(page, "shortcut", "shortcut", "projection")
    text = page.inner_text("#w-shortcut [data-role=outcome]")
    assert "built a projection shortcut" in text and "Conv2d(16, 32" in text
    shot(session, "shortcut")
    operate(page, "shortcut", "shortcut", "pool")
    text = page.inner_text("#w-shortcut [data-role=outcome]")
    assert "built a pool shortcut" in text and "PoolPad" in text and "0 parameters" in text
    shot(session, "shortcut", "shortcut-pool")


def test_imagenet_table_shows_the_zoo_measured_beside_published_errors(page, session):
    rows = page.locator("#w-imagenet tbody tr")
    assert rows.count() == 5
    assert rows.nth(0).locator("th").inner_text() == "ResNet-18"
    assert rows.nth(4).locator("td").nth(1).inner_text() == "60.19M"  # parameters, counted on the zoo's net
    assert "21.43 %" in rows.nth(4).inner_text()
    assert "He et al. 2015" in page.inner_text("#w-imagenet [data-role=provenance]")
    assert page.locator("#w-imagenet form").is_hidden()
    shot(session, "imagenet")


def test_pre_activation_and_dense_memory_pitfalls(page, session):
    post = chart_y(page, "preact", trace=0)
    pre = chart_y(page, "preact", trace=1)
    assert len(post) == len(pre) == 56  # the default depth, the gradient highway's
    assert max(post) > 100 * max(pre)  # tanh after every addition: the post-activation gradient runs away
    operate(page, "preact", "depth", 200)
    assert len(chart_y(page, "preact", trace=1)) == 200
    shot(session, "preact")
    small = chart_y(page, "dense")
    operate(page, "dense", "width", 32)
    big = chart_y(page, "dense")
    assert big[-1] > small[-1] and big == sorted(big)
    dense121, resnet50 = (chart_y(page, "dense", role="resolution", trace=t) for t in (0, 1))
    assert dense121 == sorted(dense121) and dense121[-1] > resnet50[-1]  # more memory than ResNet-50 at 224
    assert "DenseNet-121 saves" in page.inner_text("#w-dense [data-role=resolution-note]")
    shot(session, "dense")


def power_of_two(k: int) -> str:
    """How the article writes 2^k when it is a million or more: its exponent and its size."""
    mantissa, exponent = f"{2**k:.1e}".split("e")
    return f"2^{k} ≈ {mantissa}×10^{int(exponent)}"


def api(page, url: str) -> dict:
    return page.evaluate("async url => (await fetch(url)).json()", url)


def test_path_counts_read_the_same_way_in_both_widgets(page, session):
    operate(page, "bypass", "skips", True)
    operate(page, "bypass", "layers", 40)
    operate(page, "ensemble", "n", 40)
    assert readout(page, "bypass")["paths"] == readout(page, "ensemble")["paths"] == power_of_two(40)
    operate(page, "bypass", "layers", 50)
    assert readout(page, "bypass")["paths"] == power_of_two(50) == "2^50 ≈ 1.1×10^15"
    operate(page, "ensemble", "n", 12)
    assert readout(page, "ensemble")["paths"] == "4,096"  # small counts in full
    operate(page, "bypass", "skips", False)
    assert readout(page, "bypass")["paths"] == "1"


def test_block_explorer_shows_the_measured_costs_and_claims_only_what_they_say(page, session):
    operate(page, "anatomy", "form", "basic")
    data = api(page, "/api/anatomy?form=basic&scale=1")
    costs = {c["form"]: c for c in data["costs"]}
    shown = readout(page, "anatomy")
    for form, c in costs.items():
        assert number(shown[f"{form} block params"]) == c["params"]
        assert number(shown[f"{form} block FLOPs / example"]) == c["flops"]
    sentence = page.inner_text("#w-anatomy [data-role=costs]")
    assert sentence == data["cost_comparison"]
    ratio = costs["bottleneck"]["flops"] / costs["basic"]["flops"]
    assert f"{ratio:.2g}×" in sentence
    # The measured bottleneck is far cheaper: nothing on the block section may call it "about as cheap".
    assert ratio < 0.5 and "about as cheap" not in page.inner_text("#block")
    # The scale slider says which end is which.
    label = page.locator("#w-anatomy label", has=page.locator("[name=scale]"))
    ends = label.locator(".end-label").all_inner_texts()
    assert ends == ["weak", "strong"]
    slider = page.locator("#w-anatomy [name=scale]").bounding_box()
    weak, strong = (label.locator(".end-label").nth(i).bounding_box() for i in (0, 1))
    assert weak["x"] + weak["width"] <= slider["x"] and strong["x"] >= slider["x"] + slider["width"]


def test_gradient_highway_says_why_overflowed_layers_have_no_number(chromium, live_server):
    context, s = open_session(chromium, live_server.url, viewport={"width": 1280, "height": 900})
    try:
        s.page.set_default_timeout(120_000)
        s.page.goto(live_server.url + "/?gradflow.depth=1000")
        s.page.wait_for_function(ALL_DRAWN)
        assert s.page.get_attribute("#w-gradflow", "data-state") == "ready"
        data = api(s.page, "/api/gradflow?depth=1000")
        plain = data["plain"]
        missing = sum(1 for la in plain["layers"] if la["weight_grad_norm"] is None)
        assert missing > 0 and plain["weight_summary"]["overflowed"] == missing  # ReLU + BN, 1000 plain layers
        assert data["residual"]["weight_summary"]["overflowed"] == 0
        note = s.page.locator("#w-gradflow [data-role=range]")
        assert note.is_visible()
        text = note.inner_text()
        assert f"{missing} of the plain stack's 1000 layers" in text and "float32" in text and "overflowed" in text
        assert "residual stack" not in text
        chart = s.page.eval_on_selector("#w-gradflow [data-role=chart]", "d => d.data[0].y")
        assert sum(1 for y in chart if y is None) >= missing
        operate(s.page, "gradflow", "depth", 56)
        assert not note.is_visible()  # nothing lost at depth 56: nothing to explain
        assert s.outside_requests == []
    finally:
        context.close()


def url_params(page) -> dict[str, str]:
    return dict(parse_qsl(urlsplit(page.url).query))


def figures_visible(page, widget: str) -> bool:
    """Whether any of the widget's figures (charts, readouts, tables, diagrams, outcome) is on screen."""
    return page.eval_on_selector(
        f"#w-{widget}",
        "w => [...w.querySelectorAll('.chart, .readout, .stats, .diagram, .outcome')]"
        ".some(e => e.getClientRects().length > 0 && getComputedStyle(e).visibility !== 'hidden'"
        " && Number(getComputedStyle(e).opacity) > 0.9)",
    )


def test_settings_live_in_the_url_and_errors_read_well(chromium, live_server):
    context, s = open_session(chromium, live_server.url, viewport={"width": 1280, "height": 900})
    try:
        s.page.set_default_timeout(60_000)
        s.page.goto(live_server.url + "/?gradflow.depth=20&gradflow.activation=tanh&bypass.layers=3&anatomy.scale=5")
        s.page.wait_for_function(ALL_DRAWN)
        assert s.page.input_value("#w-gradflow [name=depth]") == "20"
        assert s.page.input_value("#w-gradflow [name=activation]") == "tanh"
        assert len(s.page.eval_on_selector("#w-gradflow [data-role=chart]", "d => d.data[0].y")) == 20
        assert readout(s.page, "bypass")["mean path"] == "1.5 layers"  # 3 layers with bypasses: 2^3 paths
        # 5 is beyond the scale's maximum, 2: the shared view is the closest valid one, and the URL says so.
        assert s.page.input_value("#w-anatomy [name=scale]") == "2"
        assert url_params(s.page)["anatomy.scale"] == "2"
        # A refused change is said in words, and the controls go back to the settings the figures are for:
        # the figures stay current (not faded), the message does not talk of stale figures.
        s.page.eval_on_selector(
            "#w-gradflow [name=depth]",
            "e => { e.value = '5000'; e.dispatchEvent(new Event('change', {bubbles: true})); }",
        )
        s.page.wait_for_function("document.querySelector('#w-gradflow').dataset.state === 'error'")
        message = s.page.inner_text("#w-gradflow .status")
        assert "422" in message and "depth" in message and "1000" in message and "5000" in message
        assert "previous settings" not in message and "faded" not in message
        assert s.page.input_value("#w-gradflow [name=depth]") == "20"
        assert url_params(s.page)["gradflow.depth"] == "20"
        assert len(s.page.eval_on_selector("#w-gradflow [data-role=chart]", "d => d.data[0].y")) == 20
        assert figures_visible(s.page, "gradflow")
        # The next accepted change clears the message.
        operate(s.page, "gradflow", "depth", 30)
        assert s.page.inner_text("#w-gradflow .status") == ""
        assert s.outside_requests == []
    finally:
        context.close()


def test_bad_url_values_fall_back_to_the_default_or_are_clamped_and_written_back(chromium, live_server):
    context, s = open_session(chromium, live_server.url, viewport={"width": 1280, "height": 900})
    try:
        s.page.set_default_timeout(60_000)
        bad = {
            "gradflow.depth": "abc",  # not a number: the control's default
            "ensemble.n": "abc",  # a range input would take its midpoint: the default instead
            "bypass.layers": "3.5",  # rounded to the control's step
            "types.depth": "-1",  # below the range: its minimum
            "bypass.skips": "maybe",  # not a checkbox value: the default
            "bypass.activation": "swish",  # not an option: the default
        }
        s.page.goto(live_server.url + "/?" + urlencode(bad))
        s.page.wait_for_function(ALL_DRAWN)
        expected = {}
        for key in bad:
            widget, name = key.split(".")
            control = f"#w-{widget} [name={name}]"
            expected[key] = s.page.eval_on_selector(
                control,
                "e => e.type === 'checkbox' ? String(e.defaultChecked) : e.tagName === 'SELECT'"
                " ? [...e.options].find(o => o.defaultSelected).value : e.defaultValue",
            )
        expected["bypass.layers"] = "4"
        expected["types.depth"] = s.page.get_attribute("#w-types [name=depth]", "min")
        assert expected["gradflow.depth"] == "56" and expected["ensemble.n"] == "12"
        for key, value in expected.items():
            widget, name = key.split(".")
            shown = s.page.eval_on_selector(
                f"#w-{widget} [name={name}]", "e => e.type === 'checkbox' ? String(e.checked) : e.value"
            )
            assert shown == value, key
            assert url_params(s.page)[key] == value, key  # the corrected value is written back
            assert s.page.get_attribute(f"#w-{widget}", "data-state") == "ready", key
        assert readout(s.page, "bypass")["shortest path"] == "0 layers"
        assert readout(s.page, "ensemble")["paths"] == "4,096"
        assert len(s.page.eval_on_selector("#w-gradflow [data-role=chart]", "d => d.data[0].y")) == 56
        # Far above the range: the maximum, written back.
        s.page.goto(live_server.url + "/?ensemble.n=999999&bypass.layers=-5")
        s.page.wait_for_function(ALL_DRAWN)
        assert url_params(s.page)["ensemble.n"] == s.page.get_attribute("#w-ensemble [name=n]", "max")
        assert url_params(s.page)["bypass.layers"] == s.page.get_attribute("#w-bypass [name=layers]", "min")
        assert s.page.get_attribute("#w-ensemble", "data-state") == "ready"
        assert s.outside_requests == []
    finally:
        context.close()


def test_a_widget_whose_first_answer_fails_shows_the_reason_and_no_figures(chromium, live_server):
    context, s = open_session(chromium, live_server.url, viewport={"width": 1280, "height": 900})
    try:
        s.page.set_default_timeout(60_000)
        s.page.route(
            "**/api/bypass?*",
            lambda route: route.fulfill(
                status=503, content_type="application/json", body='{"detail": "the compute workers are gone"}'
            ),
        )
        s.page.goto(live_server.url + "/")
        s.page.wait_for_function(ALL_DRAWN)
        assert s.page.get_attribute("#w-bypass", "data-state") == "error"
        message = s.page.inner_text("#w-bypass .status")
        assert "503" in message and "compute workers are gone" in message
        assert s.page.locator("#w-bypass .status").is_visible()
        assert "previous settings" not in message  # there are none: the message must not promise figures
        hidden = s.page.eval_on_selector(
            "#w-bypass",
            "w => [...w.querySelectorAll('.readout, .diagram')].every(e => e.getClientRects().length === 0)",
        )
        assert hidden  # no empty boxes beside the message
        assert figures_visible(s.page, "anatomy")
        assert s.outside_requests == []
    finally:
        context.close()


# Labels a reader needs on each diagram: where the signal enters and leaves, and the addition itself.
KEY_LABELS = {"bypass": ("input", "output"), "anatomy": ("x", "+", "act → y")}

# For each key label: its box, and whether a scroll container that clips it can scroll (and says so).
LABEL_BOXES = """([w, names]) => [...document.querySelectorAll(`#w-${w} .diagram svg text`)]
  .filter(t => names.includes(t.textContent))
  .map(t => { const r = t.getBoundingClientRect(); return [t.textContent, r.left, r.right, r.width]; })"""


@pytest.mark.parametrize("width", [360, 390])
def test_phone_viewport_stays_usable(chromium, live_server, width):
    context, s = open_session(
        chromium, live_server.url, viewport={"width": width, "height": 844}, is_mobile=True, has_touch=True
    )
    try:
        s.page.set_default_timeout(60_000)
        s.page.goto(live_server.url + "/")
        s.page.wait_for_function(ALL_DRAWN)
        inner = s.page.evaluate("window.innerWidth")
        assert inner == width  # a mobile page that is too wide zooms out: its layout viewport grows
        overflow = s.page.evaluate("document.documentElement.scrollWidth - window.innerWidth")
        assert overflow <= 0, f"the page scrolls sideways by {overflow}px on a {width}px phone"
        for w in WIDGETS:
            box = s.page.locator(f"#w-{w}").bounding_box()
            assert box["x"] >= 0 and box["x"] + box["width"] <= width, w
        # The diagrams fit: every key label is drawn inside the viewport, at a size that is not zero.
        for w, names in KEY_LABELS.items():
            boxes = s.page.evaluate(LABEL_BOXES, [w, list(names)])
            assert sorted(b[0] for b in boxes) == sorted(names), (w, boxes)
            for name, left, right, size in boxes:
                assert left >= 0 and right <= width and size > 0, (w, name, left, right)
        # A formula too wide for the column scrolls inside its own box, which is narrower than the page.
        se = s.page.locator("#types .formula-list li", has_text="Squeeze").locator(".wide-math")
        assert se.evaluate("e => getComputedStyle(e).overflowX") == "auto"
        assert se.bounding_box()["x"] + se.bounding_box()["width"] <= width
        for w in ("gradflow", "anatomy", "bypass", "types"):
            s.screenshot(f"#w-{w}", f"phone{width}-{w}")
        s.screenshot("#types .formula-list", f"phone{width}-formulas")
        assert s.outside_requests == []
        s.assert_clean()
    finally:
        context.close()


def test_a_busy_server_is_asked_again_after_its_retry_after(chromium):
    """One worker and no queue: the page's first burst is mostly refused with 429, and every widget still draws."""
    live = start_server(WebSettings(warm_up=False, workers=1, heavy_queue=0, compute_timeout_s=600))
    context, s = open_session(chromium, live.url, viewport={"width": 1280, "height": 900})
    try:
        s.page.set_default_timeout(300_000)  # a hang guard: each refused widget waits its Retry-After, then asks again
        s.page.goto(live.url + "/")
        s.page.wait_for_function(ALL_DRAWN)
        for w in WIDGETS:
            assert s.page.get_attribute(f"#w-{w}", "data-state") == "ready", (w, s.page.inner_text(f"#w-{w} .status"))
        assert any("429" in e for e in s.console_errors)  # the server did refuse, and the page asked again
        assert s.outside_requests == []
    finally:
        context.close()
        stop_server(live)


# Counts, per API path, the requests in flight and the most there ever were at once (installed before the page runs).
COUNT_FETCHES = """
window.__flight = {};
const realFetch = window.fetch;
window.fetch = async (url, options) => {
  const path = new URL(String(url), location.href).pathname;
  const f = (window.__flight[path] ??= { now: 0, max: 0, sent: [] });
  f.now += 1;
  f.max = Math.max(f.max, f.now);
  f.sent.push(String(url));
  try { return await realFetch(url, options); } finally { f.now -= 1; }
};
"""


def test_sliders_update_while_dragged_with_one_request_in_flight(chromium, live_server):
    context, s = open_session(chromium, live_server.url, viewport={"width": 1280, "height": 900})
    try:
        page = s.page
        page.set_default_timeout(60_000)
        page.add_init_script(COUNT_FETCHES)
        page.goto(live_server.url + "/?bypass.layers=1")
        page.wait_for_function(ALL_DRAWN)
        slider = page.locator("#w-bypass [name=layers]")
        slider.scroll_into_view_if_needed()
        box = slider.bounding_box()
        before = renders(page, "bypass")
        y = box["y"] + box["height"] / 2
        page.mouse.move(box["x"] + 2, y)
        page.mouse.down()
        # Drag to the right end in small steps, the button held all the while (no `change` yet).
        for i in range(1, 41):
            page.mouse.move(box["x"] + 2 + (box["width"] - 4) * i / 40, y)
        page.wait_for_function(
            f"Number(document.querySelector('#w-bypass').dataset.renders) > {before}", timeout=20_000
        )
        assert page.get_attribute("#w-bypass", "data-renders") != str(before)  # redrawn before the release
        page.wait_for_function(
            "document.querySelector('#w-bypass').dataset.state === 'ready' && window.__flight['/api/bypass'].now === 0"
        )
        page.mouse.up()
        page.wait_for_function(
            "document.querySelector('#w-bypass').dataset.state === 'ready' && window.__flight['/api/bypass'].now === 0"
        )
        flight = page.evaluate("window.__flight['/api/bypass']")
        assert flight["max"] == 1  # never two requests of one widget at once
        top = page.get_attribute("#w-bypass [name=layers]", "max")
        assert page.input_value("#w-bypass [name=layers]") == top
        # The figures end at the latest settings, and the request for them was the last one sent.
        assert readout(page, "bypass")["shortest path"] == "0 layers"
        assert page.locator("#w-bypass svg rect").count() == int(top)
        assert f"layers={top}&" in flight["sent"][-1]
        assert len(flight["sent"]) < 40  # settings passed over while a request was in flight were never sent
        assert s.outside_requests == []
    finally:
        context.close()


# Widgets that show stored results and have no control (screenshotted as they open).
STORED_ONLY = ("imagenet", "variants")

# One change per widget for the screenshots: (control, value). The degradation widget's change only picks
# the next live run's settings (training one is its own test), so it is made without waiting for a redraw.
ONE_CHANGE = {
    "bypass": ("skips", False),
    "anatomy": ("form", "bottleneck"),
    "gradflow": ("activation", "sigmoid"),
    "degradation": ("depth", "20"),
    "types": ("width", "8"),
    "ensemble": ("n", 20),
    "shortcut": ("shortcut", "projection"),
    "preact": ("activation", "relu"),
    "dense": ("width", "32"),
}


@pytest.mark.parametrize("viewport", [(1400, 900), (390, 844)], ids=["desktop", "phone"])
def test_screenshots_of_every_widget_before_and_after_one_change(chromium, live_server, viewport):
    width, height = viewport
    # A plain window of the phone's size: the same layout (the media queries read the width), and element
    # screenshots that are not shifted by mobile emulation's visual viewport.
    context, s = open_session(chromium, live_server.url, viewport={"width": width, "height": height})
    try:
        s.page.set_default_timeout(60_000)
        s.page.goto(live_server.url + "/")
        s.page.wait_for_function(ALL_DRAWN)
        assert set(ONE_CHANGE) == set(WIDGETS)
        for w, (name, value) in ONE_CHANGE.items():
            s.page.locator(f"#w-{w}").scroll_into_view_if_needed()
            default = s.screenshot(f"#w-{w}", f"{width}x{height}-{w}-default")
            if w == "degradation":
                s.page.select_option(f"#w-{w} [name={name}]", value)
            else:
                operate(s.page, w, name, value)
            changed = s.screenshot(f"#w-{w}", f"{width}x{height}-{w}-changed")
            assert default.stat().st_size > 0 and changed.read_bytes() != default.read_bytes(), w
            assert s.page.get_attribute(f"#w-{w}", "data-state") == "ready", w
        for w in STORED_ONLY:  # stored results with no control to change: the one view there is
            s.page.locator(f"#w-{w}").scroll_into_view_if_needed()
            assert s.screenshot(f"#w-{w}", f"{width}x{height}-{w}-default").stat().st_size > 0
        assert s.outside_requests == []
    finally:
        context.close()
