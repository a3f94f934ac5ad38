"""The explainer's server without a browser: pages, static files, every endpoint, errors, the compute engine."""

from __future__ import annotations

import asyncio
import hashlib
import re
import threading
import time
import typing

import pytest
from fastapi import HTTPException
from fastapi.testclient import TestClient

from skiplab.probes.budget import Budget
from skiplab.web.app import create_app, default_views
from skiplab.web.article import plotly_js_path, plotly_js_version
from skiplab.web.deps import ComputeEngine
from skiplab.web.limits import WorkerPool
from skiplab.web.settings import WebSettings
from tests.web import work

SECTIONS = ("bypass", "formula", "block", "gradients", "degradation", "landscape", "types", "beyond", "ensemble")
SECTIONS += ("pitfalls",)
SECTIONS += ("takeaways", "related")


@pytest.fixture(scope="module")
def client():
    with TestClient(create_app(WebSettings(warm_up=False)), base_url="http://127.0.0.1") as c:
        yield c


def test_article_has_every_section_and_server_side_math(client):
    r = client.get("/")
    assert r.status_code == 200
    html = r.text
    for section in SECTIONS:
        assert f'<section id="{section}">' in html
    assert html.count("<math") >= 20  # formulas are MathML from the server, no script renders them
    assert "\\mathcal" not in html  # no LaTeX left unconverted
    # Nothing on the page points outside the server.
    assert not re.search(r'(src|href)="(https?:)?//', html)
    widgets = ("bypass", "anatomy", "gradflow", "degradation", "imagenet", "types", "ensemble", "shortcut", "preact")
    for widget in (*widgets, "dense", "landscape"):
        assert f'data-widget="{widget}"' in html


def test_plotly_and_static_files_are_served_locally_and_cached(client):
    html = client.get("/").text
    plotly_url = re.search(r'data-plotly="([^"]+)"', html).group(1)
    r = client.get(plotly_url)
    assert r.status_code == 200
    assert r.content == plotly_js_path().read_bytes()
    assert plotly_url == f"/vendor/plotly-basic-{plotly_js_version()}.min.js"
    assert "immutable" in r.headers["cache-control"]
    css = re.search(r'href="(/static/[0-9a-f]+/article.css)"', html).group(1)
    r = client.get(css)
    assert r.status_code == 200 and "immutable" in r.headers["cache-control"]
    assert client.get(css.replace("article.css", "../app.py")).status_code == 404


@pytest.mark.parametrize(
    "url",
    [
        "/api/bypass",
        "/api/anatomy",
        "/api/gradflow?depth=8",
        "/api/skip-types?depth=2&width=8",
        "/api/paths?n=4",
        "/api/pitfalls/shortcut",
        "/api/pitfalls/preact?depth=8",
        "/api/pitfalls/dense-memory?max_depth=4&width=8",
    ],
)
def test_every_widget_endpoint_answers(client, url):
    r = client.get(url)
    assert r.status_code == 200, r.text
    assert r.json()


@pytest.mark.parametrize(
    ("url", "words"),
    [
        ("/api/gradflow?depth=5000", ["depth", "1000"]),
        ("/api/gradflow?activation=swish", ["activation", "relu", "tanh", "sigmoid"]),
        ("/api/anatomy?form=dense", ["form", "basic", "bottleneck", "preact"]),
        ("/api/anatomy?scale=3", ["scale", "2"]),
        ("/api/bypass?layers=0", ["layers"]),
        ("/api/bypass?skips=maybe", ["skips"]),
        ("/api/paths?n=abc", ["n"]),
        ("/api/pitfalls/shortcut?shortcut=magic", ["shortcut", "identity", "projection"]),
    ],
)
def test_bad_settings_get_a_readable_422(client, url, words):
    r = client.get(url)
    assert r.status_code == 422
    detail = r.json()["detail"]
    assert isinstance(detail, str)
    for w in words:
        assert w in detail


def test_openapi_documents_every_4xx(client):
    spec = client.get("/openapi.json").json()
    for path, ops in spec["paths"].items():
        for method, op in ops.items():
            if op.get("parameters") or op.get("requestBody"):
                codes = set(op["responses"])
                assert codes & {"404", "422"}, f"{method.upper()} {path} documents no 4xx"
    assert "429" in spec["paths"]["/api/jobs"]["post"]["responses"]
    assert "422" in spec["paths"]["/api/jobs"]["post"]["responses"]
    assert "404" in spec["paths"]["/api/jobs/{job_id}/events"]["get"]["responses"]


def test_gradient_highway_turning_skips_off_in_a_deep_sigmoid_stack_kills_the_first_layer_gradient(client):
    r = client.get("/api/gradflow", params={"depth": 56, "activation": "sigmoid", "norm": "none", "preact": "true"})
    data = r.json()
    plain = data["plain"]["layers"][0]["weight_grad_norm"]
    residual = data["residual"]["layers"][0]["weight_grad_norm"]
    assert residual > 0
    assert plain < residual * 1e-3  # orders of magnitude
    assert len(data["plain"]["layers"]) == 56


def test_gradient_highway_notes_where_the_folk_story_fails(client):
    data = client.get("/api/gradflow", params={"depth": 56}).json()  # relu + batch norm: plain grows, not vanishes
    assert data["plain"]["weight_summary"]["first_last_ratio"] > 1
    assert data["note"] and "contradicted" in data["note"]


def test_shortcut_pitfall_shows_the_library_error_and_the_fix(client):
    bad = client.get("/api/pitfalls/shortcut", params={"shortcut": "identity"}).json()
    assert bad["ok"] is False and bad["error_type"] == "ShapeMismatchError" and "projection" in bad["error"]
    fix = client.get("/api/pitfalls/shortcut", params={"shortcut": "projection"}).json()
    assert fix["ok"] is True and fix["cost"]["params"] > 0 and "Conv2d(16, 32" in fix["module"]
    same = client.get("/api/pitfalls/shortcut", params={"out_channels": 16, "stride": 1}).json()
    assert same["ok"] is True and same["cost"]["params"] == 0  # identity where shapes match is free


def test_dense_memory_grows_faster_than_identity(client):
    pts = client.get("/api/pitfalls/dense-memory", params={"max_depth": 8, "width": 8}).json()["points"]
    assert [p["depth"] for p in pts] == [1, 2, 4, 8]
    dense = [p["dense"]["activation_bytes_per_example"] for p in pts]
    ident = [p["identity"]["activation_bytes_per_example"] for p in pts]
    assert dense == sorted(dense) and dense[-1] > 2 * ident[-1]


def test_anatomy_scale_changes_the_branch_not_the_shortcut(client):
    lo = client.get("/api/anatomy", params={"scale": 0.1}).json()
    hi = client.get("/api/anatomy", params={"scale": 2.0}).json()
    assert lo["shortcut_norm"] == hi["shortcut_norm"]
    assert hi["residual_norm"] > 10 * lo["residual_norm"]
    assert lo["explanation"] != hi["explanation"]


def test_skip_types_lists_all_six_with_formulas(client):
    rows = client.get("/api/skip-types", params={"depth": 2, "width": 8}).json()["rows"]
    assert {r["skip"] for r in rows} == {"identity", "projection", "dense", "highway", "se", "none"}
    assert all(r["formula_mathml"].startswith("<math") and r["when"] and r["used_in"] for r in rows)
    assert all(set(r["ratings"]) == {"params", "memory", "gradient"} for r in rows)


class GoneClient:
    """A request whose client has already disconnected."""

    async def is_disconnected(self) -> bool:
        return True


def test_engine_caches_answers_and_reports_refusals_and_failures():
    engine = ComputeEngine(cache_size=2, pool=WorkerPool(workers=1, queue=0, timeout_s=600))
    first = asyncio.run(engine.run(work.echo, 1))
    assert first == {"value": 1} and asyncio.run(engine.run(work.echo, 1)) is first  # remembered, not recomputed
    with pytest.raises(HTTPException) as e:
        asyncio.run(engine.run(work.refuse, "q must be >= 0"))
    assert e.value.status_code == 422 and e.value.detail == "q must be >= 0"
    with pytest.raises(HTTPException) as e:  # a bug is a 500 that says nothing of the internals
        asyncio.run(engine.run(work.crash))
    assert e.value.status_code == 500 and "ZeroDivisionError" not in e.value.detail
    uncached = ComputeEngine(cache_size=0, pool=engine.pool)
    assert asyncio.run(uncached.run(work.echo, 2)) is not asyncio.run(uncached.run(work.echo, 2))
    engine.shutdown()


def test_a_request_whose_client_has_gone_is_withdrawn_and_its_worker_stopped(tmp_path):
    engine = ComputeEngine(cache_size=0, pool=WorkerPool(workers=1, queue=0, timeout_s=600))
    before = asyncio.run(engine.run(work.pid))
    with pytest.raises(HTTPException) as e:
        asyncio.run(engine.run(work.wait_for, str(tmp_path / "never"), request=GoneClient()))
    assert e.value.status_code == 499 and engine.pool.admitted == 0
    assert asyncio.run(engine.run(work.pid)) != before
    engine.shutdown()


def test_refusals_and_light_endpoints_answer_while_every_worker_computes(tmp_path):
    gate = tmp_path / "open"
    tight = Budget(max_flops=10**8)
    app = create_app(WebSettings(warm_up=False, workers=1, heavy_queue=1, compute_timeout_s=600, budget=tight))
    engine = app.state.engine

    def blocked_request() -> threading.Thread:
        thread = threading.Thread(target=lambda: asyncio.run(engine.run(work.wait_for, str(gate))))
        thread.start()
        return thread

    with TestClient(app, base_url="http://127.0.0.1") as c:
        running = blocked_request()
        while engine.pool.admitted < 1:
            time.sleep(0.01)
        # The worker is busy and the queue has room: over budget is refused by its price, at once.
        over = c.get("/api/gradflow", params={"depth": 1000})
        assert over.status_code == 422 and "GFLOP" in over.json()["detail"]
        queued = blocked_request()
        while engine.pool.admitted < 2:
            time.sleep(0.01)
        # The queue is full too: a refusal by count, before any pricing; light pages still answer.
        assert c.get("/api/gradflow", params={"depth": 3}).status_code == 429
        assert c.get("/api/gradflow", params={"depth": 1000}).status_code == 429
        assert c.get("/api/results/degradation").status_code == 200
        assert not gate.exists() and running.is_alive() and queued.is_alive()  # all answered during the work
        gate.touch()
        running.join(600)
        queued.join(600)
    engine.shutdown()


def test_default_views_cover_every_compute_route():
    assert len(default_views()) == 8


def test_stored_degradation_runs_say_where_they_came_from(client):
    data = client.get("/api/results/degradation").json()
    assert data["provenance"]["command"].startswith("skiplab experiment degradation")
    depths = sorted({c["depth"] for c in data["curves"]})
    assert len(depths) >= 2 and {c["kind"] for c in data["curves"]} == {"plain", "res"}
    assert len(data["curves"]) == len(depths) * 2 * len(data["seeds"])
    assert all(c["epochs"] and c["epochs"][0]["epoch"] == 1 for c in data["curves"])
    assert {c["kind"] for c in data["comparisons"]} == {"plain", "res"}


def test_stored_lesion_study_has_a_residual_and_a_plain_net(client):
    data = client.get("/api/results/lesion").json()
    assert data["provenance"]["command"].startswith("skiplab experiment lesion")
    kinds = {s["kind"] for s in data["studies"]}
    assert kinds == {"res", "plain"}
    for s in data["studies"]:
        assert s["blocks"] and all(b["accuracy"] is None or 0 <= b["accuracy"] <= 1 for b in s["blocks"])


def test_stored_imagenet_costs_are_the_zoo_measured_beside_published_errors(client):
    data = client.get("/api/results/imagenet").json()
    assert data["provenance"]["command"].startswith("skiplab experiment imagenet-costs")
    rows = data["rows"]
    assert [r["name"] for r in rows] == ["resnet18", "resnet34", "resnet50", "resnet101", "resnet152"]
    assert all(r["source"].startswith("He et al. 2015") for r in rows)
    assert rows[0]["params"] == 11_689_512 and rows[-1]["params"] == 60_192_808  # torchvision's counts
    at = {(p["name"], p["resolution"]): p["activation_bytes_per_example"] for p in data["memory"]}
    assert at["densenet121", 224] > at["resnet50", 224]  # a third of the parameters, more memory
    assert at["densenet121", 224] > 40 * at["densenet121", 32]  # grows with the area (49x the pixels)


def test_shipped_imagenet_costs_are_what_the_library_measures_now():
    from skiplab.experiments.results import load_results
    from skiplab.experiments.zoo import zoo_costs

    shipped = load_results("imagenet")
    again = zoo_costs(("resnet18",), ("densenet121",), (32,)).to_dict()
    assert again["rows"][0] == shipped["rows"][0]
    assert again["memory"][0] == next(p for p in shipped["memory"] if p["name"] == "densenet121")


def test_vendored_plotly_is_the_recorded_bundle():
    # `make vendor` fetched it and wrote its hash; a hand-edited or truncated bundle fails here.
    digest, name = (plotly_js_path().parent / "SHA256SUMS").read_text().split()
    assert name == plotly_js_path().name
    assert hashlib.sha256(plotly_js_path().read_bytes()).hexdigest() == digest
    assert re.fullmatch(r"\d+\.\d+\.\d+", plotly_js_version())


def test_widget_forms_leave_validation_to_the_server(client):
    # The browser's own validation bubble would cover the server's 422 message, which names the limit.
    forms = re.findall(r"<form [^>]*>", client.get("/").text)
    assert forms and all("novalidate" in f for f in forms)


def test_the_runs_filter_accepts_every_status_the_store_records():
    from skiplab.store import STATUSES
    from skiplab.web.routers.runs import RunsQuery

    assert set(typing.get_args(RunsQuery.model_fields["status"].annotation.__args__[0])) == set(STATUSES)


def test_the_degradation_search_record_carries_every_setting_with_its_command_and_verdict(client):
    from skiplab.experiments import both_halves, judge

    data = client.get("/api/results/degradation-search").json()
    assert data["rule"] and data["finding"] and data["settings"]
    for s in data["settings"]:
        assert s["command"].startswith("skiplab experiment degradation") and s["label"]
        # The verdict shown is the rule's, recomputed here from the setting's own rows.
        again = judge(s["rows"], s["config"].get("alpha", 0.05))
        assert again["verdict"] == s["verdict"]
        assert both_halves([c.to_dict() for c in again["comparisons"]]) == s["both_halves"]
    assert data["found"] == [s["label"] for s in data["settings"] if s["both_halves"]]
