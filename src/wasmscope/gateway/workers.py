"""A route's worker threads: as few as keep up, more only while some are stuck.

A Wasm call releases the GIL, and so does every wasmtime-py call and every file
system call around it (a request makes ~25). With one thread per concurrent request
(``ThreadPoolExecutor(max_workers=max_concurrency)``), each of those releases hands
the GIL to another thread and back: measured on the C hello, in-process with 8
concurrent requests, ~76 context switches and ~1000 µs of CPU per request, against
~6 and ~560 µs when one thread runs them one after the other.

:class:`Workers` therefore runs a route's requests on one thread while that keeps up,
and starts another one (up to ``limit``, the route's ``max_concurrency``) only when
every thread has been busy with its current request for ``stuck_after`` seconds while
requests wait: a handler that loops until its timeout (or a long, CPU-bound one)
delays the route's other requests by at most ``stuck_after`` (plus one check), and
long handlers still run in parallel (Wasm runs without the GIL). The extra threads
end as soon as they find nothing waiting (a stall of the machine must not leave the
route with 8 threads handing the GIL around); the first stays until :meth:`shutdown`.
The route's concurrency limit (503 past it) is counted by the caller, not here:
nothing queues beyond it.

Results go straight to an asyncio future through ``loop.call_soon_threadsafe``
(no ``concurrent.futures.Future`` and ``asyncio.wrap_future`` in between).
"""

from __future__ import annotations

import asyncio
import collections
import contextlib
import threading
import time
import weakref
from collections.abc import Callable
from typing import Any

__all__ = ["STUCK_AFTER", "Workers"]

STUCK_AFTER = 0.005  # seconds a thread runs one request before another may start

_LIVE: weakref.WeakSet[Workers] = weakref.WeakSet()


def _at_exit() -> None:
    # Like concurrent.futures' threads: running requests finish, the threads end, before
    # the interpreter (and wasmtime's bindings) go away.
    for workers in list(_LIVE):
        workers.shutdown(wait=True)


threading._register_atexit(_at_exit)  # type: ignore[attr-defined]


class _Item:
    __slots__ = ("args", "done", "fn", "future", "loop")

    def __init__(
        self, fn: Callable[..., Any], args: tuple[Any, ...], loop: asyncio.AbstractEventLoop, future: asyncio.Future[Any],
        done: Callable[[], None] | None,
    ) -> None:  # fmt: skip
        self.fn = fn
        self.args = args
        self.loop = loop
        self.future = future
        self.done = done

    def finish(self) -> None:
        if self.done is not None:
            self.done()


def _deliver(future: asyncio.Future[Any], ok: bool, value: Any) -> None:
    if future.cancelled():
        return
    if ok:
        future.set_result(value)
    else:
        future.set_exception(value)


class Workers:
    """The threads of one route (see the module docstring)."""

    def __init__(self, limit: int, name: str, *, stuck_after: float = STUCK_AFTER) -> None:
        if limit < 1:
            raise ValueError("a route needs at least one worker thread")
        self.limit = limit
        self.name = name
        self.stuck_after = stuck_after
        self._queue: collections.deque[_Item] = collections.deque()
        self._cond = threading.Condition(threading.Lock())
        self._threads: list[threading.Thread] = []
        self.started = 0  # threads started so far
        self._idle = 0
        self._busy_since: dict[int, float] = {}  # thread ident -> when its current item started
        self._check_pending = False
        self._shutdown = False
        _LIVE.add(self)

    @property
    def threads(self) -> int:
        """Threads running now."""
        return len(self._threads)

    @property
    def shut_down(self) -> bool:
        """Whether :meth:`shutdown` was called (no new work is taken)."""
        return self._shutdown

    def submit(self, fn: Callable[..., Any], *args: Any, done: Callable[[], None] | None = None) -> asyncio.Future[Any]:
        """Run ``fn(*args)`` on a worker thread; await the returned future (on the
        running loop) for its result. ``done()`` is called on the worker thread once
        ``fn`` returned or raised, or when the request is dropped without running (its
        future cancelled first, or :meth:`shutdown` with ``cancel_futures``). Raises
        ``RuntimeError`` after :meth:`shutdown`."""
        loop = asyncio.get_running_loop()
        future: asyncio.Future[Any] = loop.create_future()
        check = False
        with self._cond:
            if self._shutdown:
                raise RuntimeError("cannot schedule new work after shutdown")
            self._queue.append(_Item(fn, args, loop, future, done))
            if self._idle:
                self._cond.notify()
            if not self._threads:
                self._start()
            elif len(self._queue) > self._idle and len(self._threads) < self.limit and not self._check_pending:
                check = self._check_pending = True
        if check:
            loop.call_later(self.stuck_after, self._check, loop)
        return future

    def _start(self) -> None:
        # With the lock held.
        t = threading.Thread(target=self._work, args=(not self._threads,), name=f"{self.name}-{self.started}")
        self._threads.append(t)
        self.started += 1
        t.start()

    def _check(self, loop: asyncio.AbstractEventLoop) -> None:
        """On the event loop, ``stuck_after`` after a request found every thread busy:
        start threads for the waiting requests if every thread is stuck; look again later
        while requests wait."""
        now = time.monotonic()
        with self._cond:
            self._check_pending = False
            if self._shutdown or not self._queue:
                return
            waiting = len(self._queue) - self._idle
            stuck = len(self._busy_since) == len(self._threads) and all(
                now - since >= self.stuck_after for since in self._busy_since.values()
            )
            if waiting > 0 and stuck:
                for _ in range(min(waiting, self.limit - len(self._threads))):
                    self._start()
            if len(self._threads) < self.limit:
                self._check_pending = True
        if self._check_pending:
            loop.call_later(self.stuck_after, self._check, loop)

    def _work(self, first: bool) -> None:
        me = threading.get_ident()
        cond = self._cond
        queue = self._queue
        while True:
            with cond:
                while not queue:
                    if self._shutdown or not first:
                        self._busy_since.pop(me, None)
                        if not first:
                            self._threads.remove(threading.current_thread())
                        return
                    self._busy_since.pop(me, None)
                    self._idle += 1
                    cond.wait()
                    self._idle -= 1
                item = queue.popleft()
                self._busy_since[me] = time.monotonic()
            if item.future.cancelled():
                item.finish()
                continue
            try:
                result = item.fn(*item.args)
            except BaseException as exc:  # handed to the awaiting request
                ok, value = False, exc
            else:
                ok, value = True, result
            try:
                item.finish()
            finally:
                with contextlib.suppress(RuntimeError):  # a closed loop: nobody waits any more
                    item.loop.call_soon_threadsafe(_deliver, item.future, ok, value)
            del item, value

    def shutdown(self, wait: bool = True, *, cancel_futures: bool = False) -> None:
        """No new work; the threads end once the queue is empty (``cancel_futures``:
        requests not started yet are cancelled). ``wait``: until they have ended."""
        with self._cond:
            self._shutdown = True
            dropped = list(self._queue) if cancel_futures else []
            if cancel_futures:
                self._queue.clear()
            self._cond.notify_all()
            threads = list(self._threads)
        for item in dropped:
            item.finish()
            with contextlib.suppress(RuntimeError):
                item.loop.call_soon_threadsafe(item.future.cancel)
        if wait:
            me = threading.current_thread()
            for t in threads:
                if t is not me:
                    t.join()
