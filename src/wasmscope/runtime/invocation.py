"""One guest invocation's lifecycle: setup, accounting and teardown, for every kind of guest.

    with Invocation(rec, source, handle, lim, wasi, capture, memory_stats, sinks, observers) as inv:
        instance = inv.instantiate(lambda store: pre.instantiate(store))
        if instance is None:
            inv.end(inv.instantiate_failure())
        else:
            results = inv.call(lambda: func())
            inv.end(inv.classify())

Entering builds, in this order, what every run needs: a store (through the
GIL-keeping calls of :mod:`wasmscope.runtime.gil_calls`), the memory tracker, the
watchdog (timeout, output cap, Ctrl-C) and its SIGINT guard, the memory limit, fuel,
the guest's WASI world (before instantiating, see ``EngineHandle.linker``), the epoch
ticker and the output pump. :meth:`Invocation.end` puts the outcome in the record
and accounts fuel and memory; leaving tears everything down in reverse, frees the
store at once, and re-raises Ctrl-C as ``KeyboardInterrupt``. The core-module path
(:mod:`wasmscope.runtime.runner`) and the component path
(:mod:`wasmscope.runtime.command_component`) keep only their own part: instantiate, find the
entry, call it.

Observers (:class:`InvocationObserver`) follow a run without changing it. Their hooks,
called on the guest's thread in this order, each a no-op by default:

- ``before_instantiate(inv)``: the store is ready (limits, WASI, watchdog armed);
- ``after_instantiate(inv, instance)``: instantiation succeeded (the instance's
  exports may be read; ``inv.watch.on_tick`` may be set);
- ``before_call(inv)``: before each call into the instance (a reactor's
  ``_initialize``, then the entry);
- ``after_call(inv)``: once after the calls, returned or not;
- ``finish(inv, rec)``: the outcome is classified (``inv.exc`` holds what the guest
  raised); the observer adds what it knows to the record;
- ``close(inv)``: before the store goes, in every case: nothing may read the guest's
  memory afterwards.

An observer may own parts of the instance: ``own_memories`` (memory exports that are
not the guest's: left out of the sampled peak) and ``own_bytes`` (bytes of memory to
take off the exact peak). The instrumented run (:mod:`wasmscope.runtime.guest_counters`) is one
such observer; a host-call audit or a cost account plug in the same way.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Callable, Sequence
from typing import IO, TYPE_CHECKING, Any, TypeVar

from wasmscope.runtime import gil_calls, watchdog
from wasmscope.runtime.memory import (
    MemoryTracker,
    exported_memories,
    exported_memory_names,
    memory_sizes,
    tracking,
)
from wasmscope.runtime.record import InvocationRecord, Outcome, Phase, TrapInfo
from wasmscope.runtime.trap import COMPONENT_LINK_ERROR, Ending, cause, classify, link_error_message
from wasmscope.runtime.wasi import OutputCapture, WasiSpec, build_wasi_config

if TYPE_CHECKING:
    import wasmtime

    from wasmscope.runtime.engine import EngineHandle
    from wasmscope.runtime.identity import ModuleSource
    from wasmscope.runtime.limits import Limits

__all__ = ["Invocation", "InvocationObserver", "OutputPump", "cpu_since", "now"]

T = TypeVar("T")


def now() -> int:
    return time.time_ns()


def cpu_since(t0: float) -> float:
    """Seconds of this thread's CPU since ``t0``, to the microsecond: the digits below
    are float noise of the subtraction, and every store keeps them (about 6 bytes an
    invocation in ``collect``)."""
    return round(time.thread_time() - t0, 6)


class InvocationObserver:
    """Hooks into an invocation's lifecycle (see the module docstring); all no-ops."""

    own_memories: Sequence[str] = ()
    own_bytes: int = 0

    def before_instantiate(self, inv: Invocation) -> None:
        pass

    def after_instantiate(self, inv: Invocation, instance: Any) -> None:
        pass

    def before_call(self, inv: Invocation) -> None:
        pass

    def after_call(self, inv: Invocation) -> None:
        pass

    def finish(self, inv: Invocation, rec: InvocationRecord) -> None:
        pass

    def close(self, inv: Invocation) -> None:
        pass


class OutputPump(threading.Thread):
    """Copies what the guest writes to sinks while it runs (every 20 ms), up to the cap."""

    def __init__(
        self, capture: OutputCapture, sinks: tuple[IO[bytes] | None, IO[bytes] | None]
    ) -> None:
        super().__init__(name="wasmscope-output", daemon=True)
        self.capture = capture
        self.sinks = sinks
        self.offsets = [0, 0]
        self._stop_event = threading.Event()
        self.failed: BaseException | None = None

    def drain(self) -> None:
        for which in (0, 1):
            sink = self.sinks[which]
            if sink is None:
                continue
            data, _size, _trunc = self.capture.read(which, self.offsets[which])
            if data:
                self.offsets[which] += len(data)
                try:
                    sink.write(data)
                    sink.flush()
                except (OSError, ValueError) as exc:  # a closed pipe must not stop the guest
                    self.failed = exc
                    self.sinks = (None, None)
                    return

    def run(self) -> None:
        while not self._stop_event.wait(0.02):
            self.drain()

    def finish(self) -> None:
        self._stop_event.set()
        self.join()
        self.drain()


class Invocation:
    """One run of one guest in a fresh store (a context manager; see the module docstring)."""

    def __init__(
        self,
        rec: InvocationRecord,
        source: ModuleSource,
        handle: EngineHandle,
        lim: Limits,
        wasi: WasiSpec,
        capture: OutputCapture,
        memory_stats: str,
        sinks: tuple[IO[bytes] | None, IO[bytes] | None],
        observers: Sequence[InvocationObserver] = (),
        start_ns: int | None = None,
    ) -> None:
        self.rec = rec
        self.source = source
        self.handle = handle
        self.lim = lim
        self.wasi = wasi
        self.capture = capture
        self.memory_stats = memory_stats
        self.sinks = sinks
        self.observers = observers
        self.t0 = start_ns if start_ns is not None else now()
        self.exc: BaseException | None = None  # what the guest raised (a Trap, a WasmtimeError)
        self.instance: Any = None
        # What the record says when no memory is sampled (a component's are not reachable).
        self.unobserved_memory = "none (no exported memory)"
        self.tracker = MemoryTracker(
            memory_stats, limit=lim.memory_limit if memory_stats == "exact" else None
        )
        self.watch = watchdog.Watch(timeout=lim.timeout, capture=capture, tracker=self.tracker)
        self._guard = watchdog.SigintGuard(self.watch)
        self._pump = (
            OutputPump(capture, sinks) if sinks[0] is not None or sinks[1] is not None else None
        )
        self._ticking = False
        self.store: wasmtime.Store = gil_calls.new_store(handle.engine)  # short calls keep the GIL

    # -- setup and teardown --------------------------------------------------------------------
    def __enter__(self) -> Invocation:
        try:
            store, lim = self.store, self.lim
            if lim.memory_limit is not None and self.memory_stats != "exact":
                gil_calls.limit_memory(store, lim.memory_limit)
            if lim.fuel is not None:
                store.set_fuel(lim.fuel)
            gil_calls.set_wasi(store, build_wasi_config(self.wasi, self.capture))  # before instantiating
            watchdog.arm(store, self.watch)
            self._guard.__enter__()
            self.handle.ticker.acquire()
            self._ticking = True
            if self._pump is not None:
                self._pump.start()
            for o in self.observers:
                o.before_instantiate(self)
        except BaseException:
            self._teardown()
            raise
        return self

    def __exit__(self, exc_type: object, exc: object, tb: object) -> None:
        self._teardown()
        if exc_type is None and self.watch.reason == watchdog.INTERRUPTED:
            raise KeyboardInterrupt

    def _teardown(self) -> None:
        try:
            for o in self.observers:
                o.close(self)  # before the store (and the guest's memories) goes
        finally:
            self._guard.__exit__()
            if self._ticking:
                self.handle.ticker.release()
                self._ticking = False
            watchdog.disarm(self.watch)
            if self._pump is not None and self._pump.is_alive():
                self._pump.finish()
            rec, capture = self.rec, self.capture
            rec.stdout, rec.stdout_bytes, rec.stdout_truncated = capture.read(0)
            rec.stderr, rec.stderr_bytes, rec.stderr_truncated = capture.read(1)
            self.instance = None
            gil_calls.drop_store(self.store)  # frees the guest's memories now, not at some later GC

    # -- the guest's part ------------------------------------------------------------------------
    def instantiate(self, make: Callable[[wasmtime.Store], T]) -> T | None:
        """The instance ``make(store)`` returns (timed as the instantiate phase), or None
        with :attr:`exc` set when it trapped or was refused."""
        import wasmtime

        instance: T | None = None
        try:
            with tracking(self.tracker):
                instance = make(self.store)
        except (wasmtime.Trap, wasmtime.WasmtimeError) as e:
            self.exc = e
        self.rec.phases.append(Phase("instantiate", self.t0, now()))
        if instance is not None:
            self.instance = instance
            for o in self.observers:
                o.after_instantiate(self, instance)
        return instance

    def sample_exported_memories(self, names: list[str] | None) -> list[str]:
        """Watch the instance's exported memories (``names`` as a previous run found them,
        or None to look them up); the names, for the caller to keep."""
        if names is None:
            own = {n for o in self.observers for n in o.own_memories}
            names = [n for n in exported_memory_names(self.store, self.instance) if n not in own]
        self.watch.memories = exported_memories(self.store, self.instance, names)
        self.watch.sample(gil_calls.store_context(self.store))
        return names

    def call(self, calls: Sequence[Callable[[], T]]) -> T | None:
        """Run ``calls`` in turn (timed as the execute phase, with the thread's CPU); what
        the last one returned, or None with :attr:`exc` set when the guest trapped."""
        import wasmtime

        result: T | None = None
        t_exec0 = now()
        cpu0 = time.thread_time()
        try:
            for fn in calls:
                for o in self.observers:
                    o.before_call(self)
                result = fn()
        except (wasmtime.Trap, wasmtime.WasmtimeError) as e:
            self.exc = e
            result = None
        finally:
            for o in self.observers:
                o.after_call(self)
        self.rec.cpu_seconds = cpu_since(cpu0)
        self.rec.phases.append(Phase("execute", t_exec0, now()))
        return result

    # -- the outcome -------------------------------------------------------------------------------
    def classify(self) -> Ending:
        """How the call ended (returned, exited, trapped, stopped)."""
        if self.memory_stats == "sampled" and self.watch.memories:
            self.watch.sample(gil_calls.store_context(self.store))
        lim = self.lim
        return classify(
            self.exc, watch=self.watch, source=self.source, tracker=self.tracker, memory_limit=lim.memory_limit,
            fuel_limited=lim.fuel is not None,
        )  # fmt: skip

    def instantiate_failure(self) -> Ending:
        """The start function trapped or was stopped, or the store refused a memory."""
        exc = self.exc
        assert exc is not None
        message = str(exc)
        name = self.source.identity.name
        if (
            "has not been defined" in message
            or "incompatible import type" in message
            or COMPONENT_LINK_ERROR in message
        ):
            return Ending(Outcome.ERROR, error=f"{name}: {link_error_message(message)}")
        low = message.lower()
        if self.lim.memory_limit is not None and (
            "exceeds memory limits" in low or "exceeds the limit" in low
        ):
            return Ending(
                Outcome.OUT_OF_MEMORY,
                trap=TrapInfo(
                    "out_of_memory",
                    f"the module's initial memory exceeds the memory limit: {cause(message)}",
                ),
            )
        return classify(
            exc,
            watch=self.watch,
            source=self.source,
            tracker=self.tracker,
            memory_limit=self.lim.memory_limit,
        )

    def end(self, ending: Ending | None) -> None:
        """The outcome into the record (``ending``; None when the caller set an ERROR
        already), the observers' part, then fuel and memory."""
        rec = self.rec
        if ending is not None:
            rec.outcome, rec.exit_code, rec.trap, rec.error = (
                ending.outcome,
                ending.exit_code,
                ending.trap,
                ending.error,
            )
            for o in self.observers:
                o.finish(self, rec)
        self._account()

    def _account(self) -> None:
        import wasmtime

        rec, lim, tracker = self.rec, self.lim, self.tracker
        if lim.fuel is not None:
            try:
                rec.fuel_consumed = lim.fuel - self.store.get_fuel()
            except wasmtime.WasmtimeError:
                rec.fuel_consumed = lim.fuel
        rec.attributes["wasm.memory.grow_count_method"] = tracker.method
        if tracker.method == "exact":
            rec.peak_memory = tracker.peak_total
            rec.memory_grow_count = tracker.grow_count
            rec.attributes["wasm.memory.observed"] = "all"
            rec.attributes["wasm.memory.count"] = tracker.created
            if tracker.refused:
                rec.attributes["wasm.memory.grow_refused"] = tracker.refused
            own = sum(o.own_bytes for o in self.observers)
            if own and rec.peak_memory is not None:
                # The memory creator saw the observers' memories too: they are not the guest's.
                rec.peak_memory = max(0, rec.peak_memory - own)
                rec.attributes["wasm.memory.count"] = max(
                    0, tracker.created - sum(1 for o in self.observers if o.own_bytes)
                )
            return
        watch = self.watch
        if not watch.memories:
            rec.attributes["wasm.memory.observed"] = self.unobserved_memory
            return
        sizes = memory_sizes(gil_calls.store_context(self.store), watch.memories)
        for key, size in enumerate(sizes):
            tracker.set_size(key, size)
        rec.peak_memory = tracker.peak_total
        rec.memory_grow_count = tracker.grow_count
        defined = self.source.memory_count
        rec.attributes["wasm.memory.count"] = defined if defined is not None else len(sizes)
        rec.attributes["wasm.memory.observed"] = (
            "exported"
            if defined is None or defined <= len(sizes)
            else f"exported ({len(sizes)} of {defined})"
        )
