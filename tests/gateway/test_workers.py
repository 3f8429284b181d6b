"""gateway.workers: a route's threads (one while it keeps up, more while all are stuck).
No test asserts a wall-clock time: they wait on events, with generous timeouts."""

from __future__ import annotations

import asyncio
import functools
import threading
import time
from typing import Any

import pytest

from wasmscope.gateway.workers import Workers


def test_sequential_requests_share_one_thread() -> None:
    workers = Workers(8, "t")
    names: list[str] = []
    released: list[int] = []

    def name() -> str:
        return threading.current_thread().name

    async def main() -> None:
        for i in range(50):
            names.append(await workers.submit(name, done=functools.partial(released.append, i)))

    asyncio.run(main())
    workers.shutdown()
    assert workers.started == 1 and len(set(names)) == 1
    assert released == list(range(50))  # done() once per request, on completion


def test_short_concurrent_requests_stay_on_few_threads() -> None:
    workers = Workers(8, "t", stuck_after=30.0)  # nothing is ever stuck that long

    async def main() -> list[int]:
        return list(await asyncio.gather(*[workers.submit(lambda k=k: k * 2) for k in range(200)]))

    assert asyncio.run(main()) == [k * 2 for k in range(200)]
    workers.shutdown()
    assert workers.started == 1


def test_stuck_threads_make_room_up_to_the_limit() -> None:
    """A handler that blocks does not hold back the others: threads start (up to the
    limit) while every thread is stuck and requests wait."""
    workers = Workers(3, "t", stuck_after=0.001)
    gate = threading.Event()
    started = threading.Semaphore(0)

    def block() -> str:
        started.release()
        assert gate.wait(60)
        return "blocked"

    async def main() -> list[Any]:
        blocked = [workers.submit(block) for _ in range(2)]
        quick = workers.submit(lambda: "quick")  # needs a third thread: two are stuck
        assert await asyncio.wait_for(quick, 60) == "quick"
        gate.set()
        return [await f for f in blocked]

    try:
        assert asyncio.run(main()) == ["blocked", "blocked"]
    finally:
        gate.set()
        workers.shutdown()
    assert workers.started == 3
    assert started.acquire(timeout=0) and started.acquire(timeout=0)


def test_extra_threads_end_once_nothing_waits() -> None:
    workers = Workers(3, "t", stuck_after=0.001)
    gate = threading.Event()

    async def main() -> None:
        blocked = [workers.submit(gate.wait, 60) for _ in range(3)]
        while workers.started < 3:  # the checks start threads while every one is stuck
            await asyncio.sleep(0.001)
        gate.set()
        assert await asyncio.gather(*blocked) == [True, True, True]

    try:
        asyncio.run(main())
        deadline = time.monotonic() + 60  # a guard, not a measure
        while workers.threads > 1 and time.monotonic() < deadline:
            time.sleep(0.005)
        assert workers.threads == 1  # the first thread stays
    finally:
        gate.set()
        workers.shutdown()


def test_exceptions_reach_the_awaiting_request() -> None:
    workers = Workers(2, "t")
    done: list[bool] = []

    def boom() -> None:
        raise ValueError("boom")

    async def main() -> None:
        with pytest.raises(ValueError, match="boom"):
            await workers.submit(boom, done=lambda: done.append(True))

    asyncio.run(main())
    workers.shutdown()
    assert done == [True]


def test_shutdown_cancels_waiting_requests_and_refuses_new_ones() -> None:
    workers = Workers(1, "t")
    gate = threading.Event()
    running = threading.Event()
    released: list[str] = []

    def block() -> str:
        running.set()
        gate.wait(60)
        return "ran"

    async def main() -> None:
        first = workers.submit(block, done=lambda: released.append("first"))
        second = workers.submit(lambda: "never", done=lambda: released.append("second"))
        await asyncio.to_thread(running.wait, 60)
        workers.shutdown(wait=False, cancel_futures=True)
        gate.set()
        await asyncio.to_thread(workers.shutdown)  # joins the thread
        assert await first == "ran"
        with pytest.raises(asyncio.CancelledError):
            await second
        with pytest.raises(RuntimeError):
            workers.submit(lambda: None)

    asyncio.run(main())
    assert sorted(released) == ["first", "second"]


def test_a_cancelled_request_that_never_ran_is_released() -> None:
    workers = Workers(1, "t", stuck_after=30.0)
    gate = threading.Event()
    ran: list[str] = []
    released: list[str] = []

    async def main() -> None:
        first = workers.submit(lambda: gate.wait(60), done=lambda: released.append("first"))
        second = workers.submit(lambda: ran.append("second"), done=lambda: released.append("second"))
        second.cancel()
        gate.set()
        await first

    asyncio.run(main())
    workers.shutdown()
    assert ran == [] and sorted(released) == ["first", "second"]
