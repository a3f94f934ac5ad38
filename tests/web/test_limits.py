import asyncio
import threading

import pytest

from skiplab.web.limits import Busy, HeavyPool, TooSlow


def test_pool_admits_capacity_then_refuses_fast():
    pool = HeavyPool(workers=1, queue=1, timeout_s=5)
    gate = threading.Event()

    async def scenario():
        a = asyncio.ensure_future(pool.run(gate.wait))
        b = asyncio.ensure_future(pool.run(gate.wait))
        await asyncio.sleep(0.05)
        assert pool.admitted == 2
        with pytest.raises(Busy) as e:  # refused while the gate is still shut: it never waited in the queue
            await pool.run(lambda: 1)
        assert e.value.retry_after >= 1
        gate.set()
        assert await a is True and await b is True
        assert await pool.run(lambda: 41 + 1) == 42

    asyncio.run(scenario())
    assert pool.admitted == 0
    pool.shutdown()


def test_slow_work_is_answered_too_slow_and_keeps_its_slot_until_done():
    pool = HeavyPool(workers=1, queue=0, timeout_s=0.05)
    gate = threading.Event()

    async def scenario():
        with pytest.raises(TooSlow, match="longer than"):
            await pool.run(gate.wait)
        assert pool.admitted == 1  # the thread is still busy: the slot stays taken
        with pytest.raises(Busy):
            await pool.run(lambda: 1)
        gate.set()
        await asyncio.sleep(0.05)
        assert pool.admitted == 0

    asyncio.run(scenario())
    pool.shutdown()


def test_errors_propagate_and_free_the_slot():
    pool = HeavyPool(workers=1, queue=0)

    def boom():
        raise ValueError("depth must be <= 1000")

    async def scenario():
        with pytest.raises(ValueError, match="depth"):
            await pool.run(boom)
        assert await pool.run(lambda: 7) == 7

    asyncio.run(scenario())
    pool.shutdown()
