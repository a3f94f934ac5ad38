"""The U-Net endpoints: the shipped runs as the page reads them, and a live pair trained as a job."""

from __future__ import annotations

import json
import time

import pytest
from fastapi.testclient import TestClient

from skiplab.experiments.results import load_results
from skiplab.experiments.unet import UNetConfig, judge_runs
from skiplab.web.app import create_app
from skiplab.web.routers import unet as unet_router
from skiplab.web.settings import WebSettings

LOCAL = "http://127.0.0.1"
TINY = {"width": 2, "n": 16, "batch_size": 8, "lr": 0.003, "data_seed": 0, "seeds": [0], "epochs": 1}


@pytest.fixture(scope="module")
def client():
    with TestClient(create_app(WebSettings(warm_up=False, max_jobs=1)), base_url=LOCAL) as c:
        yield c


def test_shipped_results_as_the_page_reads_them(client):
    r = client.get("/api/unet/results")
    assert r.status_code == 200
    out, data = r.json(), load_results("unet")
    assert out["seeds"] == data["config"]["seeds"] and len(out["runs"]) == 2 * len(out["seeds"])
    assert out["provenance"]["command"].startswith("skiplab experiment unet")
    size = data["examples"]["data"]["input_shape"][-1]
    for run in out["runs"]:
        assert len(run["predictions"]) == len(out["examples"]["indices"])
        assert all(len(m) == size and all(len(row) == size for row in m) for m in run["predictions"])
    assert all(len(rows) == size and len(rows[0]) == 2 * size for rows in out["examples"]["inputs"])


def test_the_shipped_verdict_follows_from_the_shipped_runs_by_the_rule():
    data = load_results("unet")
    cfg = UNetConfig.from_dict(data["config"])
    rows, comparisons, won, verdict = judge_runs(cfg, data["runs"])
    assert [c.to_dict() for c in comparisons] == data["comparisons"]
    assert (won, verdict) == (data["long_skips_win"], data["verdict"])
    assert [r["iou"] for r in rows] == [r["iou"] for r in data["rows"]]
    # the file keeps the stated parameter difference and the net sizes its runs had
    assert data["params"]["without"] - data["params"]["with"] == data["params"]["difference"]


def read_events(client, job_id):
    events, name = [], None
    with client.stream("GET", f"/api/jobs/{job_id}/events") as s:
        for line in s.iter_lines():
            if line.startswith("event: "):
                name = line[7:]
            elif line.startswith("data: "):
                events.append((name, json.loads(line[6:])))
    return events


def test_a_live_pair_streams_each_net_per_epoch_and_is_listed_with_the_other_jobs(client, monkeypatch):
    monkeypatch.setattr(unet_router, "_shipped_config", lambda: TINY)  # a tiny recipe: the test is about the relay
    r = client.post("/api/unet/jobs", json={"seed": 1, "epochs": 2})
    assert r.status_code == 202, r.text
    job = r.json()
    assert job["spec"] == {"kind": "unet", "seed": 1, "epochs": 2}
    events = read_events(client, job["id"])
    epochs = [e for name, e in events if name == "epoch"]
    assert [(e["epoch"], e["long_skips"]) for e in epochs] == [(1, True), (1, False), (2, True), (2, False)]
    assert all(len(e["predictions"]) == 4 and 0 <= e["iou"] <= 1 for e in epochs)
    assert events[-1][0] == "end" and events[-1][1]["status"] == "completed"
    listed = {j["id"]: j for j in client.get("/api/jobs").json()}
    assert listed[job["id"]]["spec"]["kind"] == "unet"  # the job list shows both kinds
    assert client.get(f"/api/jobs/{job['id']}").json()["status"] == "completed"


def test_a_live_pair_can_be_cancelled_and_shares_the_job_slots(client, monkeypatch):
    monkeypatch.setattr(unet_router, "_shipped_config", lambda: {**TINY, "n": 400})
    job = client.post("/api/unet/jobs", json={"epochs": 30}).json()
    busy = client.post("/api/jobs", json={"depth": 2, "epochs": 1})  # max_jobs=1: the digits run must wait
    assert busy.status_code == 429 and "Retry-After" in busy.headers
    assert client.post(f"/api/jobs/{job['id']}/cancel").status_code == 200
    deadline = time.monotonic() + 60  # a hang guard
    while client.get(f"/api/jobs/{job['id']}").json()["status"] in ("queued", "running"):
        assert time.monotonic() < deadline
        time.sleep(0.05)
    assert client.get(f"/api/jobs/{job['id']}").json()["status"] == "stopped"


@pytest.mark.parametrize(
    "body, word",
    [
        ({"epochs": 0}, "epochs"),
        ({"epochs": 31}, "epochs"),
        ({"seed": -1}, "seed"),
        ({"seed": "1"}, "seed"),
        ({"epochs": 2, "depth": 20}, "depth"),
        ({"kind": "digits"}, "kind"),
    ],
)
def test_bad_requests_are_422_naming_the_field(client, body, word):
    r = client.post("/api/unet/jobs", json=body)
    assert r.status_code == 422 and word in r.json()["detail"]


def test_the_server_bound_on_epochs_applies():
    with TestClient(create_app(WebSettings(warm_up=False, max_epochs=3)), base_url=LOCAL) as c:
        r = c.post("/api/unet/jobs", json={"epochs": 4})
        assert r.status_code == 422 and "at most 3" in r.json()["detail"]
