"""The worker pool: capacity and fast refusals, the cap that stops work, withdrawal, errors by kind."""

import asyncio
import threading

import pytest

from skiplab.web.limits import Busy, Cancelled, ComputeFailed, TooSlow, WorkerPool
from tests.web import work

HANG_GUARD_S = 600  # a stuck test fails instead of hanging; no test decides on how long anything took


@pytest.fixture
def gate(tmp_path):
    """A path the workers wait for; the test opens the gate by creating it."""
    return str(tmp_path / "open")


def open_gate(path: str) -> None:
    with open(path, "w"):
        pass


def test_work_runs_in_another_process_and_refusals_never_wait(gate):
    pool = WorkerPool(workers=1, queue=1, timeout_s=HANG_GUARD_S)

    async def scenario():
        running = asyncio.ensure_future(pool.run(work.wait_for, gate))
        queued = asyncio.ensure_future(pool.run(work.echo, 1))
        while pool.admitted < 2:
            await asyncio.sleep(0.01)
        with pytest.raises(Busy) as e:  # refused while the gate is still shut: it never waited in the queue
            await pool.run(work.echo, 2)
        assert e.value.retry_after >= 1
        assert not running.done() and not queued.done()
        open_gate(gate)
        worker_pid = await running
        assert await queued == {"value": 1}
        return worker_pid

    worker_pid = asyncio.run(scenario())
    assert worker_pid != threading.get_native_id() and worker_pid == asyncio.run(pool.run(work.pid))
    assert pool.admitted == 0
    pool.shutdown()


def test_work_past_the_cap_is_stopped_and_its_worker_replaced(gate):
    pool = WorkerPool(workers=1, queue=0, timeout_s=0.5)

    async def scenario():
        first = await pool.run(work.pid)
        with pytest.raises(TooSlow, match="stopped"):
            await pool.run(work.wait_for, gate)  # never opened: only the cap ends it
        assert pool.admitted == 0  # the slot is free at once: the work was stopped, not abandoned
        second = await pool.run(work.pid)
        return first, second

    first, second = asyncio.run(scenario())
    assert first != second  # the stopped worker was killed; a fresh one answered
    pool.shutdown()


def test_withdrawn_requests_leave_the_queue_and_stop_their_worker(gate):
    pool = WorkerPool(workers=1, queue=1, timeout_s=HANG_GUARD_S)

    async def scenario():
        first = await pool.run(work.pid)
        running_flag, queued_flag = threading.Event(), threading.Event()
        running = asyncio.ensure_future(pool.run(work.wait_for, gate, cancelled=running_flag))
        queued = asyncio.ensure_future(pool.run(work.echo, 1, cancelled=queued_flag))
        while pool.admitted < 2:
            await asyncio.sleep(0.01)
        queued_flag.set()
        with pytest.raises(Cancelled):
            await queued
        assert not running.done()
        running_flag.set()
        with pytest.raises(Cancelled):
            await running
        assert pool.admitted == 0
        return first, await pool.run(work.pid)

    first, second = asyncio.run(scenario())
    assert first != second  # the running request's worker was stopped, not left computing
    pool.shutdown()


def test_value_errors_are_refusals_and_anything_else_a_failure_with_its_traceback():
    pool = WorkerPool(workers=1, queue=0, timeout_s=HANG_GUARD_S)

    async def scenario():
        with pytest.raises(ValueError, match="depth must be <= 1000"):
            await pool.run(work.refuse, "depth must be <= 1000")
        with pytest.raises(ComputeFailed, match="ZeroDivisionError: a library bug"):
            await pool.run(work.crash)
        assert await pool.run(work.echo, 7) == {"value": 7}

    asyncio.run(scenario())
    assert pool.admitted == 0
    pool.shutdown()


def test_a_shut_pool_refuses_and_its_workers_are_gone():
    pool = WorkerPool(workers=1, queue=0, timeout_s=HANG_GUARD_S)
    worker_pid = asyncio.run(pool.run(work.pid))
    pool.shutdown()
    with pytest.raises(Busy):
        asyncio.run(pool.run(work.pid))
    import os

    with pytest.raises(ProcessLookupError):
        os.kill(worker_pid, 0)
