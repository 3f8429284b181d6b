"""Per-store watchdog: what each epoch tick means for one running guest.

Every store gets an epoch deadline one tick ahead and a deadline callback (raw FFI,
``wasmtime_store_epoch_deadline_callback``). On each tick of the engine's ticker
(:class:`wasmscope.runtime.engine.Ticker`, 5 ms) wasmtime calls it *on the guest's own
thread*, with the store's context, so it can safely:

- stop the guest at its wall-clock deadline (``timeout``),
- stop it when stdout or stderr went past the output cap (``output_limit``),
- stop it when another thread called :meth:`Watch.cancel` (``cancelled``), or when the
  user pressed Ctrl-C (:class:`SigintGuard`: ``interrupted``),
- sample the sizes of the exported memories (peak / grow count, ``sampled`` method),
- call :attr:`Watch.on_tick` (the profiler's epoch sampler reads the guest's books there),

and otherwise let it run one more tick. Stopping returns an error from the callback:
wasmtime unwinds the guest and the call fails with that error (and the guest's
backtrace); :attr:`Watch.reason` says why. Stores on one engine never disturb each
other: each has its own deadline and callback. Cost: one Python callback per tick
(~5 µs every 5 ms, 0.1%).

A guest blocked in a host call (reading stdin, ``poll_oneoff`` sleeping) is only
stopped when that call returns: wasmtime checks epochs in Wasm code only.
"""

from __future__ import annotations

import _signal  # type: ignore[import-not-found]
import ctypes
import itertools
import signal
import threading
import time
from collections.abc import Callable
from typing import TYPE_CHECKING, Any

from wasmscope.runtime.gil_calls import bindings
from wasmscope.runtime.memory import MemoryTracker, memory_sizes

if TYPE_CHECKING:
    import wasmtime

    from wasmscope.runtime.wasi import OutputCapture

__all__ = ["Watch", "arm"]

TIMEOUT = "timeout"
OUTPUT_LIMIT = "output_limit"
CANCELLED = "cancelled"
INTERRUPTED = "interrupted"


class Watch:
    """The watchdog state of one invocation."""

    __slots__ = (
        "__weakref__", "_cancel", "_interrupt", "capture", "deadline", "id", "memories", "on_tick", "reason", "ticks",
        "tracker",
    )  # fmt: skip

    def __init__(
        self, *, timeout: float | None, capture: OutputCapture | None, tracker: MemoryTracker | None
    ) -> None:
        self.deadline = None if timeout is None else time.monotonic() + timeout
        self.capture = capture
        self.tracker = tracker
        self.memories: list[Any] = []  # raw wasmtime_memory_t to sample
        self.reason: str | None = None
        self._cancel = False
        self._interrupt = False
        self.ticks = 0
        self.id = 0
        # Called on every tick the guest goes on running, on its thread (the guest is
        # paused at a safe point); an exception there is ignored.
        self.on_tick: Callable[[], None] | None = None

    def cancel(self) -> None:
        """Stop the guest at the next tick (callable from any thread)."""
        self._cancel = True

    def interrupt(self) -> None:
        """As :meth:`cancel`, for Ctrl-C: the caller re-raises ``KeyboardInterrupt``."""
        self._interrupt = True

    def sample(self, ctx: Any) -> None:
        tracker = self.tracker
        if tracker is None or not self.memories:
            return
        for key, size in enumerate(memory_sizes(ctx, self.memories)):
            old = tracker.sizes.get(key)
            if old is None:
                tracker.set_size(key, size)
            elif size > old:
                tracker.grew(key, old, size)

    def check(self, ctx: Any) -> str | None:
        self.ticks += 1
        if self._interrupt:
            return INTERRUPTED
        if self._cancel:
            return CANCELLED
        if self.deadline is not None and time.monotonic() >= self.deadline:
            return TIMEOUT
        if self.capture is not None and self.capture.over_cap():
            return OUTPUT_LIMIT
        if self.tracker is not None and self.tracker.method == "sampled":
            self.sample(ctx)
        if self.on_tick is not None:
            self.on_tick()
        return None


_WATCHES: dict[int, Watch] = {}
_IDS = itertools.count(1)
_LOCK = threading.Lock()
_CALLBACK: Any = None
_NO_FINALIZER: Any = None
_MESSAGES = {
    TIMEOUT: b"wasmscope: wall-clock timeout",
    OUTPUT_LIMIT: b"wasmscope: output limit exceeded",
    CANCELLED: b"wasmscope: cancelled",
    INTERRUPTED: b"wasmscope: interrupted (Ctrl-C)",
}


def _make_callback() -> Any:
    from wasmscope.runtime import _wasmtime_internals as internals

    cb_type = internals.epoch_callback_type()
    error_address = internals.error_address

    def stop(watch: Watch, reason: str) -> int:
        watch.reason = reason
        return error_address(_MESSAGES[reason])

    def on_tick(ctx: Any, data: Any, delta: Any, kind: Any) -> int:
        watch = None
        try:
            watch = _WATCHES.get(data or 0)
            if watch is not None:
                reason = watch.check(ctx)
                if reason is not None:
                    return stop(watch, reason)
        except KeyboardInterrupt:  # Ctrl-C lands here when the guest runs on the main thread
            if watch is not None:
                return stop(watch, INTERRUPTED)
        except BaseException:  # never unwind into wasmtime; run one more tick
            pass
        delta[0] = 1
        kind[0] = 0  # WASMTIME_UPDATE_DEADLINE_CONTINUE
        return 0

    return cb_type(on_tick), ctypes.CFUNCTYPE(None, ctypes.c_void_p)()  # NULL finalizer


def arm(store: wasmtime.Store, watch: Watch) -> None:
    """Install ``watch`` on ``store`` (before instantiation: a start function may loop)."""
    global _CALLBACK, _NO_FINALIZER
    with _LOCK:
        if _CALLBACK is None:
            _CALLBACK, _NO_FINALIZER = _make_callback()
        watch.id = next(_IDS)
        _WATCHES[watch.id] = watch
    h = bindings()  # short calls: the GIL stays (wasmscope.runtime.gil_calls)
    h.epoch_deadline_callback(store.ptr(), _CALLBACK, watch.id, _NO_FINALIZER)
    h.set_epoch_deadline(h.internals.store_context(store), 1)


def disarm(watch: Watch) -> None:
    _WATCHES.pop(watch.id, None)


class SigintGuard:
    """While a guest runs on the main thread with Python's default Ctrl-C handling,
    Ctrl-C marks the watch instead of raising ``KeyboardInterrupt`` wherever Python
    happens to check for signals (which is inside the tick callback, where wasmtime
    cannot take an exception). The guest stops at the next tick and the runner raises
    ``KeyboardInterrupt`` once the store is cleaned up. Elsewhere (other threads, a
    handler of the application's own) nothing changes."""

    __slots__ = ("_installed", "_prev", "watch")

    def __init__(self, watch: Watch) -> None:
        self.watch = watch
        self._installed = False
        self._prev: Any = None

    def _handler(self, signum: int, frame: Any) -> None:
        self.watch.interrupt()

    def __enter__(self) -> SigintGuard:
        if threading.current_thread() is threading.main_thread():
            try:
                # _signal's getsignal: signal.getsignal converts to an enum (~10 µs a run)
                if _signal.getsignal(signal.SIGINT) is signal.default_int_handler:
                    self._prev = signal.signal(signal.SIGINT, self._handler)
                    self._installed = True
            except (ValueError, OSError):  # not the main interpreter, or no signals here
                self._installed = False
        return self

    def __exit__(self, *exc: object) -> None:
        if self._installed:
            signal.signal(signal.SIGINT, self._prev)
            self._installed = False
