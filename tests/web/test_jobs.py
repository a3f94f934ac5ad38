"""Live training jobs: the manager's bounds and cancellation, and one real digits run streamed over SSE."""

from __future__ import annotations

import json
import multiprocessing
import threading
import time

import pytest
from fastapi.testclient import TestClient

from skiplab.store import RunStore
from skiplab.web.app import create_app
from skiplab.web.jobs import JobManager, TooManyJobs, UnknownJob
from skiplab.web.settings import WebSettings


def wait_done(manager, job_id, timeout=300.0):  # a hang guard, not a speed goal
    deadline = time.monotonic() + timeout
    while not manager.get(job_id).done:
        assert time.monotonic() < deadline, "job did not finish"
        time.sleep(0.01)
    return manager.get(job_id)


def looping_work(epochs: int, step_s: float = 0.01):
    """Fake training: one 'batch' per step, polling should_stop like the trainer does."""

    def work(on_epoch, should_stop, on_progress):
        for e in range(1, epochs + 1):
            for _ in range(10):
                if should_stop():
                    return "stopped", ""
                time.sleep(step_s)
            on_epoch({"epoch": e, "train_loss": 1.0 / e})
        return "completed", ""

    return work


def test_manager_bounds_running_jobs_and_forgets_old_ones():
    m = JobManager(WebSettings(max_jobs=1, job_keep=1))
    a = m.start({}, looping_work(100))
    with pytest.raises(TooManyJobs, match="1 live training job"):
        m.start({}, looping_work(1))
    m.cancel(a.id, wait_s=2)
    assert m.get(a.id).status == "stopped"
    b = m.start({}, looping_work(1))
    assert wait_done(m, b.id).status == "completed"
    c = m.start({}, looping_work(1))
    wait_done(m, c.id)
    with pytest.raises(UnknownJob):
        m.get(a.id)  # only the last `job_keep` finished jobs are remembered


def test_manager_records_epochs_and_failures():
    m = JobManager(WebSettings())
    ok = m.start({"x": 1}, looping_work(3, 0.001))
    snap = wait_done(m, ok.id).snapshot()
    assert [e["epoch"] for e in snap["epochs"]] == [1, 2, 3] and snap["spec"] == {"x": 1}

    def boom(on_epoch, should_stop, on_progress):
        raise RuntimeError("out of coffee")

    bad = wait_done(m, m.start({}, boom).id)
    assert bad.status == "failed" and "out of coffee" in bad.message


def test_a_job_nobody_watches_stops_after_the_grace_period():
    m = JobManager(WebSettings(viewer_grace_s=0.3))
    unwatched = m.start({}, looping_work(10_000))
    job = wait_done(m, unwatched.id, timeout=60)
    assert job.status == "stopped" and "no one had watched it for 0.3 s" in job.message

    watched = m.start({}, looping_work(10_000))
    with watched.watched():
        time.sleep(1.0)  # watched: well past the grace period, it still trains
        assert not watched.done and watched.viewers == 1
    assert wait_done(m, watched.id, timeout=60).status == "stopped"  # and stops once its viewer has gone
    assert watched.viewers == 0


def read_events(client, job_id):
    events, name = [], None
    with client.stream("GET", f"/api/jobs/{job_id}/events") as s:
        assert s.headers["content-type"].startswith("text/event-stream")
        for line in s.iter_lines():
            if line.startswith("event: "):
                name = line[7:]
            elif line.startswith("data: "):
                events.append((name, json.loads(line[6:])))
    return events


@pytest.mark.slow
def test_a_real_training_job_streams_each_epoch_then_ends():
    with TestClient(create_app(WebSettings(warm_up=False)), base_url="http://127.0.0.1") as client:
        r = client.post("/api/jobs", json={"depth": 20, "skip": "identity", "epochs": 2})
        assert r.status_code == 202
        job = r.json()
        events = read_events(client, job["id"])
        epochs = [d for n, d in events if n == "epoch"]
        assert [e["epoch"] for e in epochs] == [1, 2]
        assert all(0 <= e["train_error"] <= 1 and e["train_loss"] > 0 for e in epochs)
        assert events[-1][0] == "end" and events[-1][1]["status"] == "completed"
        assert client.get(f"/api/jobs/{job['id']}").json()["status"] == "completed"


@pytest.mark.slow
def test_a_cancelled_job_stops():
    with TestClient(create_app(WebSettings(warm_up=False, max_jobs=1)), base_url="http://127.0.0.1") as client:
        job = client.post("/api/jobs", json={"depth": 56, "skip": "none", "epochs": 30}).json()
        assert client.post("/api/jobs", json={"epochs": 1}).status_code == 429  # the only slot is taken
        time.sleep(0.5)
        assert client.post(f"/api/jobs/{job['id']}/cancel").json()["cancel_requested"] is True
        deadline = time.monotonic() + 300  # a hang guard only: the trainer stops before its next step
        while client.get(f"/api/jobs/{job['id']}").json()["status"] == "running":
            assert time.monotonic() < deadline, "the cancelled job never stopped"
            time.sleep(0.02)
        assert client.get(f"/api/jobs/{job['id']}").json()["status"] == "stopped"
        assert client.delete(f"/api/jobs/{job['id']}").json()["status"] == "stopped"
        assert client.get(f"/api/jobs/{job['id']}").status_code == 404


@pytest.mark.slow
def test_delete_stops_a_real_training_job_and_frees_its_slot():
    with TestClient(create_app(WebSettings(warm_up=False, max_jobs=1)), base_url="http://127.0.0.1") as client:
        job = client.post("/api/jobs", json={"depth": 56, "skip": "none", "epochs": 30}).json()
        assert [j["id"] for j in client.get("/api/jobs").json()] == [job["id"]]
        r = client.delete(f"/api/jobs/{job['id']}")
        assert r.status_code == 200 and r.json()["cancel_requested"] is True
        assert client.get(f"/api/jobs/{job['id']}").status_code == 404
        deadline = time.monotonic() + 300  # a hang guard only: the trainer stops before its next step
        while (r := client.post("/api/jobs", json={"depth": 4, "epochs": 1})).status_code == 429:
            assert time.monotonic() < deadline, "the removed job never freed its slot"
            time.sleep(0.05)
        assert r.status_code == 202


def test_job_errors_are_readable():
    with TestClient(create_app(WebSettings(warm_up=False, max_epochs=5)), base_url="http://127.0.0.1") as client:
        assert client.get("/api/jobs/nope").status_code == 404
        assert "nope" in client.get("/api/jobs/nope/events").json()["detail"]
        r = client.post("/api/jobs", json={"epochs": 10})
        assert r.status_code == 422 and "epochs must be at most 5" in r.json()["detail"]
        r = client.post("/api/jobs", json={"skip": "dense"})
        assert r.status_code == 422 and "skip" in r.json()["detail"]


def test_shutdown_cancels_running_jobs():
    m = JobManager(WebSettings())
    job = m.start({}, looping_work(1000))
    t = threading.Thread(target=m.shutdown)
    t.start()
    t.join(3)
    assert not t.is_alive() and m.get(job.id).status == "stopped"


@pytest.mark.slow
def test_live_runs_are_recorded_in_the_run_store(tmp_path):
    settings = WebSettings(warm_up=False, store_path=str(tmp_path / "runs.db"))
    with TestClient(create_app(settings), base_url="http://127.0.0.1") as client:
        assert client.get("/api/runs").json() == []
        job = client.post("/api/jobs", json={"depth": 4, "skip": "identity", "epochs": 1}).json()
        end = read_events(client, job["id"])[-1][1]
        assert end["status"] == "completed" and "stored as run" in end["message"]
        runs = client.get("/api/runs", params={"name": "live"}).json()
        assert len(runs) == 1 and runs[0]["model"] == "resmlp4" and runs[0]["epochs_done"] == 1
        one = client.get(f"/api/runs/{runs[0]['id']}").json()
        assert [e["epoch"] for e in one["epochs"]] == [1]
        assert client.get("/api/runs/nope").status_code == 404


def test_without_a_store_the_runs_endpoint_says_how_to_get_one():
    with TestClient(create_app(WebSettings(warm_up=False)), base_url="http://127.0.0.1") as client:
        r = client.get("/api/runs")
        assert r.status_code == 404 and "--store" in r.json()["detail"]


def test_manager_lists_jobs_and_removes_one_for_good():
    m = JobManager(WebSettings(max_jobs=1))
    a = m.start({"depth": 4}, looping_work(1000))
    assert [j.id for j in m.jobs()] == [a.id]
    removed = m.remove(a.id, wait_s=60)  # a hang guard: the fake trainer polls every 10 ms
    assert removed.cancel.is_set() and removed.status == "stopped"
    assert m.jobs() == []
    with pytest.raises(UnknownJob):
        m.get(a.id)
    with pytest.raises(UnknownJob):
        m.remove(a.id)
    b = m.start({}, looping_work(1))  # the slot is free again
    assert [j.id for j in m.jobs()] == [b.id]


def test_a_removed_job_holds_its_slot_until_its_thread_ends():
    gate = threading.Event()

    def stubborn(on_epoch, should_stop, on_progress):  # ignores cancellation until the gate opens
        gate.wait(60)
        return "stopped", ""

    m = JobManager(WebSettings(max_jobs=1))
    a = m.start({}, stubborn)
    m.remove(a.id)
    with pytest.raises(TooManyJobs):
        m.start({}, looping_work(1))
    gate.set()
    m.shutdown(wait_s=60)  # joins the removed job's thread too
    assert m.running() == 0
    b = m.start({}, looping_work(1))
    assert wait_done(m, b.id).status == "completed"


def test_the_api_lists_jobs_and_delete_removes_one():
    app = create_app(WebSettings(warm_up=False, max_jobs=1))
    with TestClient(app, base_url="http://127.0.0.1") as client:
        assert client.get("/api/jobs").json() == []
        # a job whose 202 reply was lost: started behind the API's back, found through the list
        job = app.state.jobs.start({"depth": 20, "skip": "identity", "epochs": 2, "seed": 0}, looping_work(10_000))
        listed = client.get("/api/jobs").json()
        assert listed == [
            {
                "id": job.id,
                "spec": {"depth": 20, "skip": "identity", "epochs": 2, "seed": 0},
                "status": "running",
                "message": "",
            }
        ]
        r = client.delete(f"/api/jobs/{job.id}")
        assert r.status_code == 200
        assert r.json()["id"] == job.id and r.json()["cancel_requested"] is True
        assert client.get(f"/api/jobs/{job.id}").status_code == 404
        assert client.get(f"/api/jobs/{job.id}/events").status_code == 404
        assert client.post(f"/api/jobs/{job.id}/cancel").status_code == 404
        assert client.delete(f"/api/jobs/{job.id}").status_code == 404
        assert client.get("/api/jobs").json() == []
        # POST .../cancel stops a job and keeps it readable
        other = app.state.jobs.start({"depth": 4, "skip": "none", "epochs": 1, "seed": 0}, looping_work(10_000))
        assert client.post(f"/api/jobs/{other.id}/cancel").json()["cancel_requested"] is True
        assert client.get(f"/api/jobs/{other.id}").status_code == 200


def test_the_job_routes_are_documented():
    spec = create_app(WebSettings(warm_up=False)).openapi()["paths"]
    assert spec["/api/jobs"]["get"]["responses"]["200"]["content"]["application/json"]["schema"]["type"] == "array"
    assert {"200", "404"} <= set(spec["/api/jobs/{job_id}"]["delete"]["responses"])
    assert {"413", "422", "429"} <= set(spec["/api/jobs"]["post"]["responses"])


def job_processes() -> list:
    return [p for p in multiprocessing.active_children() if p.name == "skiplab-job"]


@pytest.mark.slow
def test_a_job_trains_in_a_process_of_its_own_which_ends_with_the_job(tmp_path):
    store = tmp_path / "runs.db"
    app = create_app(WebSettings(warm_up=False, max_jobs=1, store_path=str(store)))
    with TestClient(app, base_url="http://127.0.0.1") as client:
        job = client.post("/api/jobs", json={"depth": 56, "skip": "none", "epochs": 30}).json()
        deadline = time.monotonic() + 300  # hang guards only
        while not job_processes():
            assert time.monotonic() < deadline, "no training process started"
            time.sleep(0.02)
        while not client.get(f"/api/jobs/{job['id']}").json()["epochs"]:  # epochs come back from the process
            assert time.monotonic() < deadline, "no epoch came back"
            time.sleep(0.05)
        assert client.post(f"/api/jobs/{job['id']}/cancel").status_code == 200
        while client.get(f"/api/jobs/{job['id']}").json()["status"] == "running":
            assert time.monotonic() < deadline, "the cancelled job never stopped"
            time.sleep(0.02)
        ended = client.get(f"/api/jobs/{job['id']}").json()
        assert ended["status"] == "stopped" and "stored as run" in ended["message"]
        assert job_processes() == []
    run_id = ended["message"].rsplit(" ", 1)[-1]
    stored = RunStore(store).get(run_id)  # the process wrote the store the server was given
    assert stored.status == "stopped" and [e["epoch"] for e in stored.epochs] == [e["epoch"] for e in ended["epochs"]]


def test_a_live_run_trains_the_stored_runs_setting_and_refuses_a_depth_it_lacks(monkeypatch):
    from skiplab.experiments import DegradationConfig
    from skiplab.web.routers import jobs as jobs_router

    conv1d = DegradationConfig(
        depths=(20, 56), family="conv1d", data="mnist1d", epochs=40, warmup_epochs=12.0, width=16
    )
    monkeypatch.setattr(jobs_router, "stored_setting", lambda: conv1d)
    with TestClient(create_app(WebSettings(warm_up=False)), base_url="http://127.0.0.1") as client:
        r = client.post("/api/jobs", json={"depth": 32, "skip": "identity", "epochs": 1})
        assert r.status_code == 422 and "depth must be one of 20, 56" in r.json()["detail"]
    monkeypatch.undo()
    shipped = DegradationConfig.from_dict(jobs_router.load_results("degradation")["config"])
    assert jobs_router.stored_setting() == shipped  # without the stand-in: the shipped runs' own setting
