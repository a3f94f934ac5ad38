"""The transformer endpoints: MiniLM's stream for a sentence, lesions, bounds, and post- vs pre-LN at init."""

from __future__ import annotations

import pytest
from fastapi.testclient import TestClient

from skiplab.probes.budget import Budget
from skiplab.probes.common import threads
from skiplab.probes.transformer import MAX_SENTENCES, probe_sentences
from skiplab.probes.transformer_budget import check_probe
from skiplab.web.app import create_app
from skiplab.web.routers.transformer import DEFAULT_TEXT
from skiplab.web.settings import WebSettings

LOCAL = "http://127.0.0.1"
pytestmark = pytest.mark.slow  # the worker loads MiniLM once (a few seconds)


@pytest.fixture(scope="module")
def client():
    with TestClient(create_app(WebSettings(warm_up=False)), base_url=LOCAL) as c:
        yield c


def test_default_stream_is_the_library_result(client):
    r = client.get("/api/transformer/stream")
    assert r.status_code == 200, r.text
    out = r.json()
    with threads(1):
        expected = probe_sentences([DEFAULT_TEXT]).to_dict()
    assert out["texts"] == [DEFAULT_TEXT] and out["lesion"] is None
    assert (out["norm_position"], out["statement"]) == (expected["norm_position"], expected["statement"])
    assert out["hidden_norms"] == pytest.approx(expected["hidden_norms"], rel=1e-5)
    assert len(out["sublayers"]) == 2 * out["layers"] == 12


def test_lesions_cut_what_was_asked(client):
    r = client.get("/api/transformer/stream", params={"text": "The cat sat on the mat.", "lesion": "0.ffn,3.attention",
                                                      "drop": "skip"})  # fmt: skip
    assert r.status_code == 200, r.text
    effect = r.json()["lesion"]
    assert [(c["key"], c["drop"]) for c in effect["lesions"]] == [("0.ffn", "skip"), ("3.attention", "skip")]
    assert len(effect["embedding_cosine"]) == 1 and len(effect["pair_similarity"]) == len(r.json()["pairs"])


def test_several_sentences(client):
    r = client.get("/api/transformer/stream", params=[("text", "One sentence."), ("text", "And another.")])
    assert r.status_code == 200 and r.json()["texts"] == ["One sentence.", "And another."]


@pytest.mark.parametrize(
    "params,message",
    [
        ({"text": "   "}, "sentence 1 is empty"),
        ({"text": "word " * 35}, "at most 32"),
        ({"text": "x" * 201}, "text.0: String should have at most 200 characters"),
        ([("text", s) for s in "abcde"], "text: List should have at most 4 items"),
        ({"lesion": "6.ffn"}, "LAYER from 0 to 5"),
        ({"lesion": "0.FFN"}, "lesion: String should match pattern"),
        ({"drop": "both"}, "drop: Input should be 'branch' or 'skip'"),
        ({"depth": 3}, "depth: Extra inputs are not permitted"),
    ],
)
def test_bad_requests_are_422_with_a_reason(client, params, message):
    r = client.get("/api/transformer/stream", params=params)
    assert r.status_code == 422 and message in r.json()["detail"]


def test_init_comparison(client):
    r = client.get("/api/transformer/init")
    assert r.status_code == 200, r.text
    out = r.json()
    assert (out["post_ln"]["norm_position"], out["pre_ln"]["norm_position"]) == ("post-LN", "pre-LN")
    assert len(out["post_ln"]["layer_grad"]) == out["config"]["layers"] and out["finding"].startswith("measured")


def test_the_largest_request_the_schema_allows_fits_the_default_budget(client):
    longest = "word " * 30  # 30 word tokens + [CLS] and [SEP]: exactly the limit
    every = ",".join(f"{i}.{k}" for i in range(6) for k in ("attention", "ffn"))
    price = check_probe([longest] * MAX_SENTENCES, every.split(","), "skip", Budget())
    assert price.flops > 0
    paths = client.app.openapi()["paths"]
    for path in ("/api/transformer/stream", "/api/transformer/init"):
        assert {"422", "429", "503"} <= set(paths[path]["get"]["responses"]), path


def test_a_request_over_the_budget_says_what_to_lower():
    with pytest.raises(ValueError, match="Lower the sentences' length or number"):
        check_probe(["A short sentence."], [], "branch", Budget(max_flops=10**6))
    with TestClient(create_app(WebSettings(warm_up=False, budget=Budget(max_flops=10**6))), base_url=LOCAL) as c:
        r = c.get("/api/transformer/stream")
        assert r.status_code == 422 and "FLOP" in r.json()["detail"]
        assert len(c.app.state.text_engine) == 0  # refused before anything was computed
