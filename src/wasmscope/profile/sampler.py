"""The sampler: reads the shadow stack of a running guest, without calling into it.

An instrumented guest keeps its call stack in memory of its own (the *books*,
:mod:`wasmscope.instrument.counters_layout`). Wasm calls release the GIL, so a Python thread
can read that memory while the guest runs, through a raw pointer (about 0.1 µs a
read, no call into wasmtime): every ``1/rate`` seconds it reads the depth, then the
live stack entries, and counts the stack in a dict (stack tuple -> samples).

Two modes:

- ``"thread"`` (default): a sampler thread on its own clock (1 kHz by default). The
  guest never stops for it; the price is that a read is not atomic: the guest may
  push or pop between the read of the depth and the read of the entries. The
  sampler copes: the depth is clamped to the ring's capacity (deeper frames are
  marked lost, index :data:`LOST`), a depth that is not plausible (negative as an
  i32) or an entry that is not a function index drops the sample, and those are
  counted (:attr:`Sampler.bad`). A push writes the entry before the depth, so the
  entries below a depth just read are the frames of that moment, unless the guest
  returned below them and called again within the read (a few hundred ns).
  The slots are read last: the slot functions running then (leaves and other
  functions of bounded height, which do not touch the depth or the stack) are
  appended as the innermost frames.
- ``"epoch"``: the sample is taken by the watchdog's epoch callback on the guest's
  own thread (:mod:`wasmscope.runtime.watchdog`), the guest paused at a safe point
  (a function entry or a loop back-edge): the view is exactly consistent. A thread
  ticks the engine's epoch at ``rate`` (the runtime's own ticker adds a tick every
  5 ms). Wasmtime checks epochs in Wasm code only, so time spent inside a host call
  is seen at the next check after it returns (charged to the caller), not inside it.

Both give a sample the same weight; the profile's interval is the measured mean
(duration / samples), not the nominal one: a thread wakes up a little late.
"""

from __future__ import annotations

import struct
import threading
import time
from collections.abc import Callable, Sequence
from typing import TYPE_CHECKING, Any

from wasmscope.errors import UsageError

if TYPE_CHECKING:
    from wasmscope.runtime.guest_counters import GuestCounters
    from wasmscope.runtime.record import InvocationRecord

__all__ = ["LOST", "MODES", "Sampler"]

LOST = -1
"""Stack entry standing for the outer frames that the ring no longer holds."""

MODES = ("thread", "epoch")
MAX_RATE = 100_000.0

SampleHook = Callable[[int, tuple[int, ...]], None]


class Sampler:
    """A :class:`~wasmscope.runtime.guest_counters.CountersObserver` that samples the shadow stack.

    ``rate``: samples per second. ``mode``: ``"thread"`` or ``"epoch"`` (see the
    module docstring). ``on_sample(t_ns, stack)``: called for every kept sample
    (``time.perf_counter_ns()``, outermost frame first), e.g. by span mode.

    After the run: :attr:`samples` (stack -> count), :attr:`total` (kept samples,
    empty ones included), :attr:`empty` (depth 0: the guest between calls),
    :attr:`bad` (dropped torn reads), :attr:`lost` (samples deeper than the ring),
    :attr:`duration_ns` (from :meth:`start` to :meth:`stop`)."""

    def __init__(self, rate: float = 1000.0, *, mode: str = "thread", on_sample: SampleHook | None = None) -> None:
        if mode not in MODES:
            raise UsageError(f"sampler mode must be one of {', '.join(MODES)}, not {mode!r}")
        if not rate > 0 or rate > MAX_RATE:
            raise UsageError(f"sampling rate must be > 0 and at most {MAX_RATE:g} Hz, not {rate:g}")
        self.rate = float(rate)
        self.mode = mode
        self.on_sample = on_sample
        self.samples: dict[tuple[int, ...], int] = {}
        self.total = 0
        self.empty = 0
        self.bad = 0
        self.lost = 0
        self.start_ns = 0  # perf_counter_ns at start
        self.stop_ns = 0
        self.start_unix_ns = 0  # time.time_ns at start: perf_counter_ns + offset = unix ns
        self.books: GuestCounters | None = None
        self.names: list[str] = []
        self.n_imported = 0
        self.spans_for: Callable[[InvocationRecord], Sequence[Any]] | None = None
        self.tick: Callable[[], None] | None = self._sample if mode == "epoch" else None
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None
        self._read: Callable[[], None] | None = None
        self._running = False

    # -- the CountersObserver protocol ------------------------------------------------------------
    def attach(self, books: GuestCounters) -> None:
        self.books = books
        self.names = list(books.names)
        self.n_imported = books.layout.n_imported_functions

    def start(self) -> None:
        if self.books is None:
            raise RuntimeError("Sampler.start before attach")
        self._read = self._reader(self.books)
        self._stop.clear()
        self.start_unix_ns = time.time_ns()
        self.start_ns = time.perf_counter_ns()
        self._running = True
        target = self._run_thread if self.mode == "thread" else self._run_ticker
        self._thread = threading.Thread(target=target, name=f"wasmscope-sampler-{self.mode}", daemon=True)
        self._thread.start()

    def stop(self) -> None:
        if not self._running:
            return
        self._running = False
        self.stop_ns = time.perf_counter_ns()
        self._stop.set()
        if self._thread is not None:
            self._thread.join()
            self._thread = None
        self._read = None  # never read the books after stop: the store may go

    def spans(self, record: InvocationRecord) -> Sequence[Any]:
        return self.spans_for(record) if self.spans_for is not None else ()

    # -- results -------------------------------------------------------------------------------------
    @property
    def duration_ns(self) -> int:
        return max(0, self.stop_ns - self.start_ns)

    def unix_ns(self, perf_ns: int) -> int:
        """A ``perf_counter_ns`` time of this run as unix epoch nanoseconds."""
        return self.start_unix_ns + (perf_ns - self.start_ns)

    # -- sampling ------------------------------------------------------------------------------------
    def _reader(self, books: GuestCounters) -> Callable[[], None]:
        """The per-sample work, with everything it needs bound to locals."""
        layout = books.layout
        view = books.view
        cap = layout.stack_capacity
        mask = cap - 1
        n_functions = layout.n_functions
        stack_at = layout.stack_offset
        depth_at = layout.depth_offset
        slots_at = layout.slots_offset if layout.slots and layout.slots_offset is not None else None
        slots_base = slots_at or 0
        slots_fmt = f"<{layout.slots}I"
        unpack = struct.unpack_from
        samples = self.samples
        hook = self.on_sample
        clock = time.perf_counter_ns

        def slots() -> tuple[int, ...]:
            return tuple(v - 1 for v in reversed(unpack(slots_fmt, view, slots_base)) if v)

        def read() -> None:
            depth = unpack("<I", view, depth_at)[0]
            if depth == 0:
                entries0 = slots() if slots_at is not None else ()
                if not entries0:
                    self.total += 1
                    self.empty += 1
                    return
                if max(entries0) >= n_functions:
                    self.bad += 1
                    return
                self.total += 1
                samples[entries0] = samples.get(entries0, 0) + 1
                if hook is not None:
                    hook(clock(), entries0)
                return
            if depth >= 0x8000_0000:  # negative as an i32: not a depth
                self.bad += 1
                return
            n = depth if depth <= cap else cap
            start = (depth - n) & mask
            head = n if n <= cap - start else cap - start
            entries = unpack(f"<{head}I", view, stack_at + 4 * start)
            if head < n:
                entries += unpack(f"<{n - head}I", view, stack_at)
            if slots_at is not None:  # slot functions run: they are the innermost frames
                entries += slots()
            if max(entries) >= n_functions:
                self.bad += 1
                return
            if depth > cap:
                entries = (LOST, *entries)
                self.lost += 1
            self.total += 1
            samples[entries] = samples.get(entries, 0) + 1
            if hook is not None:
                hook(clock(), entries)

        return read

    def _sample(self) -> None:
        read = self._read
        if read is not None:
            read()

    def _run_thread(self) -> None:
        period = 1e9 / self.rate
        clock = time.perf_counter_ns
        wait = self._stop.wait
        read = self._read
        if read is None:
            return
        due = clock() + period
        while True:
            now = clock()
            if due > now and wait((due - now) / 1e9):
                return
            if self._stop.is_set():
                return
            read()
            due += period
            now = clock()
            if due < now:  # late (the GIL, a busy machine): skip, do not burst
                due = now + period

    def _run_ticker(self) -> None:
        books = self.books
        engine = books.engine if books is not None else None
        if engine is None:
            return
        period = 1.0 / self.rate
        wait = self._stop.wait
        while not wait(period):
            engine.increment_epoch()
