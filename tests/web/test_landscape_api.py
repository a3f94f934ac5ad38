"""The landscape routes and the streaming they use: events in order, refusals before the stream, errors in it."""

import json
import socket
import threading
import time

import pytest
from fastapi.testclient import TestClient

from skiplab.experiments.landscape import read_index
from skiplab.probes.budget import Budget
from skiplab.web.app import create_app
from skiplab.web.limits import Cancelled, TooSlow, WorkerPool
from skiplab.web.settings import WebSettings
from tests.web import stream_work
from tests.web.conftest import start_server, stop_server

LOCAL = "http://127.0.0.1"
HANG_GUARD_S = 600


@pytest.fixture(scope="module")
def client():
    with TestClient(create_app(WebSettings(warm_up=False, compute_timeout_s=HANG_GUARD_S)), base_url=LOCAL) as c:
        yield c


def _events(response) -> list[dict]:
    return [json.loads(line) for line in response.text.splitlines()]


def test_subjects_and_study_come_from_the_package(client):
    r = client.get("/api/landscape/subjects")
    assert r.status_code == 200
    body = r.json()
    assert body["seeds"] == list(read_index().seeds) and body["examples"] == 256
    assert {s["name"][:-3] for s in body["subjects"]} >= {"plain20", "plain56", "res20", "res56"}
    assert body["study"] is None or body["study"]["finding"]


def test_plane_streams_start_rows_end_and_replays_from_memory(client):
    params = {"kind": "res", "depth": 20, "grid": 3, "span": 0.5, "seed": read_index().seeds[0]}
    r = client.get("/api/landscape/plane", params=params)
    assert r.status_code == 200 and r.headers["content-type"].startswith("application/x-ndjson")
    events = _events(r)
    assert [e["event"] for e in events] == ["start", "row", "row", "row", "end"]
    assert events[0]["xs"] == [-0.5, 0.0, 0.5] and events[0]["model"] == "resnet1d20"
    end = events[-1]["landscape"]
    assert "rows" not in end and end["points"] == 9 and end["bn"] == "running"
    assert events[2]["loss"][1] == end["base_loss"]  # the centre is the trained net's own loss
    again = client.get("/api/landscape/plane", params=params)
    assert again.content == r.content


@pytest.mark.parametrize(
    ("params", "words"),
    [
        ({"grid": 4}, "grid must be odd"),
        ({"depth": 32}, "20 or 56 layers"),
        ({"seed": 12345}, "the shipped nets have seeds"),
        ({"kind": "dense"}, "kind"),
        ({"colour": "red"}, "colour"),
    ],
)
def test_bad_settings_are_422_before_any_streaming(client, params, words):
    r = client.get("/api/landscape/plane", params=params)
    assert r.status_code == 422 and words in r.json()["detail"]


def test_over_budget_and_busy_are_refused_before_the_stream():
    settings = WebSettings(warm_up=False, landscape_budget=Budget(max_flops=10**10), heavy_queue=0)
    with TestClient(create_app(settings), base_url=LOCAL) as c:
        r = c.get("/api/landscape/plane", params={"depth": 56, "grid": 21})
        assert r.status_code == 422 and "GFLOP" in r.json()["detail"] and "Lower grid or depth" in r.json()["detail"]
        pool = c.app.state.landscape_engine.pool
        pool.admit()  # the only slot is taken
        try:
            busy = c.get("/api/landscape/plane", params={"depth": 20, "grid": 3})
            assert busy.status_code == 429 and busy.headers["Retry-After"] == "1"
        finally:
            pool.release()


def test_the_largest_plane_the_schema_offers_is_within_the_default_budget():
    from skiplab.experiments.landscape_study import price_landscape
    from skiplab.probes.budget import check_budget
    from skiplab.web.routers.landscape import PlaneQuery

    top = PlaneQuery.model_fields["grid"].metadata
    grid = next(m.le for m in top if hasattr(m, "le"))
    check_budget(price_landscape("plain", 56, grid * grid + 1), WebSettings().landscape_budget)  # raises if over
    with pytest.raises(ValueError, match="Lower"):
        check_budget(price_landscape("plain", 56, (grid + 2) ** 2 + 1), WebSettings().landscape_budget)


def test_line_from_initial_to_trained_weights(client):
    r = client.get("/api/landscape/line", params={"kind": "plain", "depth": 20, "points": 11})
    assert r.status_code == 200
    line = r.json()
    assert line["t"][1] == 0.0 and line["t"][-2] == 1.0 and len(line["loss"]) == 11
    assert "batch itself" in line["bn_statistics"]


def test_the_pool_streams_items_and_ends_with_the_error_that_stopped_it():
    pool = WorkerPool(workers=1, queue=0, timeout_s=HANG_GUARD_S)
    try:
        got = []
        assert pool.call_admitted(stream_work.count, 3) is None
        pool.admit()
        try:
            pool.call(stream_work.count, 4, on_item=got.append)
        finally:
            pool.release()
        assert [g["index"] for g in got] == [0, 1, 2, 3]
        pool.admit()
        try:
            with pytest.raises(ValueError, match="no more"):
                pool.call(stream_work.then_refuse, 2, "no more", on_item=got.append)
        finally:
            pool.release()
        assert len(got) == 6
    finally:
        pool.shutdown()


def test_the_cap_applies_to_each_item_not_the_whole_stream():
    pool = WorkerPool(workers=1, queue=0, timeout_s=1.0)
    try:
        pool.admit()
        try:
            got = []  # 4 items 0.3 s apart: 1.2 s in all, never 1 s without an item
            pool.call(stream_work.slow_items, 4, 0.3, on_item=got.append)
            assert len(got) == 4
            with pytest.raises(TooSlow):  # one item that takes longer than the cap
                pool.call(stream_work.slow_items, 1, 30.0, on_item=got.append)
        finally:
            pool.release()
    finally:
        pool.shutdown()


def test_a_withdrawn_stream_stops_its_worker(tmp_path):
    pool = WorkerPool(workers=1, queue=0, timeout_s=HANG_GUARD_S)
    gate = str(tmp_path / "never")
    cancelled = threading.Event()
    try:
        pool.admit()
        try:
            with pytest.raises(Cancelled):  # the client went away after the first row
                pool.call(stream_work.one_then_wait, gate, cancelled=cancelled, on_item=lambda _: cancelled.set())
        finally:
            pool.release()
        assert pool.call_admitted(stream_work.count, 1) is None  # a fresh worker answers the next request
    finally:
        pool.shutdown()


def test_a_reader_who_leaves_mid_plane_stops_its_computation():
    """End to end over a real socket: the largest plane, the connection closed after its first row."""
    live = start_server(WebSettings(warm_up=False, cache_size=0, compute_timeout_s=HANG_GUARD_S))
    try:
        pool = live.app.state.landscape_engine.pool
        port = int(live.url.rsplit(":", 1)[1])
        query = f"kind=plain&depth=56&grid=21&seed={read_index().seeds[0]}"
        with socket.create_connection(("127.0.0.1", port), timeout=HANG_GUARD_S) as s:
            s.sendall(f"GET /api/landscape/plane?{query} HTTP/1.1\r\nHost: 127.0.0.1:{port}\r\n\r\n".encode())
            got = b""
            while b'"event": "row"' not in got and b'"event":"row"' not in got:
                chunk = s.recv(65536)
                assert chunk, got[-300:]
                got += chunk
            assert pool.admitted == 1 and len(pool._all) == 1
            (worker,) = pool._all
        left = time.monotonic()
        while pool.admitted and time.monotonic() - left < 30:
            time.sleep(0.05)
        # The plane has 20 rows to go (several seconds): the slot is freed and the worker stopped well before.
        assert pool.admitted == 0 and time.monotonic() - left < 30
        worker.process.join(10)
        assert not worker.process.is_alive()
    finally:
        stop_server(live)
