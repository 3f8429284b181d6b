"""Instrumented runs: a guest that keeps its own books, and what the runner reads there.

``Runtime.run(..., instrument=True)`` runs the module rewritten by
:func:`wasmscope.instrument.instrument_cached` (a shadow call stack and a call
counter per function in a memory of its own, ``wasmscope:books``), compiled and
cached like any module but identified as the original (its sha256, its name).
Around the guest call the runner:

- stores depth 0 before each call into the instance (after a trap the books keep
  the trapping stack; a fresh instance starts at 0 anyway);
- lets an observer (:class:`CountersObserver`, e.g. the profiler's sampler) read the
  books while the guest runs: :class:`GuestCounters` gives it the raw address and a
  ``memoryview`` over it (valid until the run ends: the store owns the memory);
- after the call (returned, exited or trapped) reads the counters into
  ``record.call_counts`` (defined functions) and ``record.host_calls`` (imports,
  ``"module.name"``), and, on a trap, replaces ``record.trap.frames`` with the whole
  shadow stack, innermost first: wasmtime keeps only the 20 innermost frames. The
  frames that wasmtime also reports keep its offset, mapped back to the original
  code (:mod:`wasmscope.runtime.codemap`), hence ``file:line`` from DWARF.

What the books cannot show (see :mod:`wasmscope.instrument.shadow_stack`): imports
called indirectly, functions left uninstrumented (too many locals), frames deeper
than the ring's capacity (``frames_truncated`` then says the outer ones are lost).
"""

from __future__ import annotations

import ctypes
import hashlib
import struct
import threading
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any, Protocol

from wasmscope.runtime.invocation import Invocation, InvocationObserver
from wasmscope.runtime.record import Frame, InvocationRecord, TrapInfo

if TYPE_CHECKING:
    import wasmtime

    from wasmscope.instrument import CountersLayout, Instrumented
    from wasmscope.runtime.identity import ModuleSource

__all__ = ["CountedRun", "CountersObserver", "CountersPlan", "GuestCounters", "function_names", "plan_for"]

TOP_FRAMES_WITH_LINES = 20  # wasmtime's own limit: the frames it reports


class GuestCounters:
    """The books memory of one running instance, read in place (no copy, no call
    into wasmtime): ``view`` covers the header, the stack and the counters.

    Plain loads and stores on the guest's side, so a reader on another thread sees
    values that may change between two reads (see :mod:`wasmscope.profile.sampler`
    for how a sampler copes)."""

    __slots__ = ("address", "engine", "layout", "names", "view")

    def __init__(self, layout: CountersLayout, address: int, engine: Any = None, names: list[str] | None = None) -> None:
        self.layout = layout
        self.address = address
        self.engine = engine  # the wasmtime.Engine running the guest (an epoch sampler ticks it)
        # A display name per original function index (imports as "module.name").
        self.names: list[str] = names if names is not None else [f"func[{i}]" for i in range(layout.n_functions)]
        self.view: memoryview = memoryview((ctypes.c_ubyte * layout.size).from_address(address)).cast("B")

    def reset(self) -> None:
        """Depth 0 and no slot set: what the host does before calling into the instance again."""
        struct.pack_into("<I", self.view, self.layout.depth_offset, 0)
        if self.layout.slots_offset is not None and self.layout.slots:
            struct.pack_into(f"<{self.layout.slots}I", self.view, self.layout.slots_offset, *([0] * self.layout.slots))

    def depth(self) -> int:
        return self.layout.read_depth(self.view)

    def stack(self) -> list[int]:
        """Original function indices, outermost first (the innermost ``stack_capacity``
        when deeper)."""
        return self.layout.read_stack(self.view)

    def counters(self) -> list[int]:
        return self.layout.read_counters(self.view)

    def close(self) -> None:
        self.view.release()


class CountersObserver(Protocol):
    """Something that watches the books while the guest runs (the profiler's sampler).

    The runner calls, on the guest's thread: ``attach(books)`` once the instance
    exists, ``start()`` right before the first call into it, ``stop()`` right after
    the last one returns or traps (also when the run fails or is interrupted; the
    books stay readable until ``stop`` returns, never after). ``tick``, when not
    None, is called on every epoch tick of the watchdog, on the guest's thread, with
    the guest paused at a safe point (see :mod:`wasmscope.runtime.watchdog`): a
    consistent view of the books, at the ticker's period."""

    tick: Callable[[], None] | None

    def attach(self, books: GuestCounters) -> None: ...

    def start(self) -> None: ...

    def stop(self) -> None: ...

    def spans(self, record: InvocationRecord) -> Sequence[Any]:
        """Extra telemetry spans for the invocation (``SpanNode``; under ``execute``),
        asked for once the run is over; may be empty."""
        ...


@dataclass(slots=True)
class CountersPlan:
    """An instrumented module ready to compile: where its books are, its compiled-cache
    key (the sha256 of the instrumented bytes) and, until compiled, the bytes."""

    layout: CountersLayout
    key: str
    cache_dir: Path | None = None  # the instrumentation cache (None: none)
    wasm: bytes | None = field(default=None, repr=False)

    def instrumented(self, source: ModuleSource) -> bytes:
        """The instrumented bytes (from the instrumentation cache once dropped)."""
        if self.wasm is not None:
            return self.wasm
        return _instrument(source.read_bytes(), self.cache_dir).wasm

    def drop_bytes(self) -> None:
        self.wasm = None


def _instrument(data: bytes, cache_dir: Path | None) -> Instrumented:
    from wasmscope.instrument import instrument, instrument_cached

    return instrument_cached(data, cache_dir) if cache_dir is not None else instrument(data)


_PLANS: dict[tuple[str, str | None], CountersPlan] = {}
_PLANS_LOCK = threading.Lock()
_PLANS_MAX = 16


def plan_for(source: ModuleSource, cache_dir: Path | None) -> CountersPlan:
    """The instrumented twin of ``source`` (a core module), through the on-disk
    instrumentation cache in ``cache_dir`` (None: no disk cache). Remembered per
    process by the original's sha256, so a warm Runtime neither reads nor rewrites
    the module again. Raises ``UsageError`` / ``DecodeError`` for what the pass refuses."""
    key = (source.sha256, str(cache_dir) if cache_dir is not None else None)
    with _PLANS_LOCK:
        plan = _PLANS.get(key)
    if plan is not None:
        return plan
    from wasmscope.instrument.instrumented_cache import cached_layout

    hit = cached_layout(source.sha256, cache_dir) if cache_dir is not None else None
    if hit is not None:  # the rewritten bytes are read only if they must be compiled
        plan = CountersPlan(hit[0], hit[1], cache_dir)
    else:
        result = _instrument(source.read_bytes(), cache_dir)
        plan = CountersPlan(result.layout, hashlib.sha256(result.wasm).hexdigest(), cache_dir, result.wasm)
    with _PLANS_LOCK:
        _PLANS[key] = plan
        while len(_PLANS) > _PLANS_MAX:
            _PLANS.pop(next(iter(_PLANS)))
    return plan


def function_names(source: ModuleSource, layout: CountersLayout) -> list[str]:
    """A display name per original function index: imports as ``module.name``, the
    rest from the name section, else ``func[N]``."""
    names = source.function_names()
    out = [names.get(i) or f"func[{i}]" for i in range(layout.n_functions)]
    module = source.core_module()
    if module is not None:
        from wasmscope.binary.types import ExternKind

        for i, imp in enumerate(module.imported(ExternKind.FUNC)):
            if i < len(out):
                out[i] = f"{imp.module}.{imp.name}"
    return out


def unique_names(names: list[str]) -> list[str]:
    """``names`` with the ones shared by several functions made unique: ``name#index``."""
    seen: dict[str, int] = {}
    for n in names:
        seen[n] = seen.get(n, 0) + 1
    return [n if seen[n] == 1 else f"{n}#{i}" for i, n in enumerate(names)]


class CountedRun(InvocationObserver):
    """One instrumented run: an observer of its invocation (all on the guest's thread).
    The books memory is ours, not the guest's: left out of the memory figures."""

    def __init__(self, plan: CountersPlan, source: ModuleSource, observer: CountersObserver | None) -> None:
        self.own_memories = (plan.layout.memory_export,)
        self.own_bytes = plan.layout.pages * 65536
        self.plan = plan
        self.source = source
        self.observer = observer
        self.books: GuestCounters | None = None
        self.started = False
        self._names: list[str] | None = None

    @property
    def names(self) -> list[str]:
        if self._names is None:
            self._names = function_names(self.source, self.plan.layout)
        return self._names

    # -- the invocation's hooks (wasmscope.runtime.invocation) -------------------------------------
    def after_instantiate(self, inv: Invocation, instance: Any) -> None:
        self.attach(inv.store, instance, inv.handle.engine)
        inv.watch.on_tick = self.tick

    def finish(self, inv: Invocation, rec: InvocationRecord) -> None:
        self.count(rec, inv.exc)

    # -- around the call ---------------------------------------------------------------------
    def attach(self, store: wasmtime.Store, instance: wasmtime.Instance, engine: Any) -> None:
        from wasmscope.runtime import _wasmtime_internals as internals
        from wasmscope.runtime.memory import exported_memories

        mems = exported_memories(store, instance, [self.plan.layout.memory_export])
        if not mems:
            raise RuntimeError(f"the instrumented module exports no {self.plan.layout.memory_export!r} memory")
        address, size = internals.memory_data(internals.store_context(store), mems[0])
        if size < self.plan.layout.size:
            raise RuntimeError("the books memory is smaller than its layout says")
        if not address:
            raise RuntimeError("the books memory has no address")
        self.books = GuestCounters(self.plan.layout, address, engine, self.names)
        if self.observer is not None:
            self.observer.attach(self.books)

    @property
    def tick(self) -> Callable[[], None] | None:
        return self.observer.tick if self.observer is not None else None

    def before_call(self, inv: Invocation | None = None) -> None:
        """Depth 0, then the observer starts (once)."""
        if self.books is not None:
            self.books.reset()
        if self.observer is not None and not self.started:
            self.started = True
            self.observer.start()

    def after_call(self, inv: Invocation | None = None) -> None:
        if self.observer is not None and self.started:
            self.started = False
            self.observer.stop()

    def spans(self, rec: InvocationRecord) -> Sequence[Any]:
        """The observer's telemetry spans (none when it fails: telemetry never fails a run)."""
        if self.observer is None:
            return ()
        try:
            return self.observer.spans(rec)
        except Exception:
            return ()

    def close(self, inv: Invocation | None = None) -> None:
        """Before the store goes: nothing may read the books afterwards."""
        self.after_call()
        if self.books is not None:
            self.books.close()
            self.books = None

    # -- after the call ----------------------------------------------------------------------
    def count(self, rec: InvocationRecord, exc: BaseException | None) -> None:
        """Counts into the record; on a trap, the whole shadow stack as its frames."""
        books = self.books
        if books is None:
            return
        layout = self.plan.layout
        names = unique_names(self.names)
        counts = books.counters()
        n_imp = layout.n_imported_functions
        calls = sorted(((names[i], c) for i, c in enumerate(counts) if c and i >= n_imp), key=lambda kv: -kv[1])
        hosts = sorted(((names[i], c) for i, c in enumerate(counts[:n_imp]) if c), key=lambda kv: -kv[1])
        rec.call_counts = dict(calls)
        rec.host_calls = dict(hosts)
        rec.attributes["wasm.instrumented"] = True
        if rec.trap is not None and exc is not None:
            depth = books.depth()
            stack = books.stack()
            self._trap_frames(rec.trap, exc, stack, depth)

    def _trap_frames(self, trap: TrapInfo, exc: BaseException, stack: list[int], depth: int) -> None:
        from wasmscope.runtime.trap import RawFrame, raw_frames, symbolize

        layout = self.plan.layout
        if not stack:
            return  # nothing on the shadow stack (a trap in a start function): keep wasmtime's
        raw = raw_frames(exc)
        mapped: list[RawFrame] = []
        codemap = self._codemap() if raw else None
        for f in raw[:TOP_FRAMES_WITH_LINES]:
            idx = layout.original_function(f.func_index)
            offset = None
            if codemap is not None and idx == f.func_index:
                offset = codemap.original_offset(f.func_index, f.module_offset)
            mapped.append(RawFrame(idx, offset if offset is not None else 2**64 - 1, None, f.module_name))
        detailed = symbolize(mapped, self.source)
        display = self.names
        frames: list[Frame] = []
        matching = True
        for k, idx in enumerate(reversed(stack)):
            if matching and k < len(detailed) and detailed[k].func_index == idx:
                frame = detailed[k]
                frame.func_name = display[idx] if idx < layout.n_imported_functions else (frame.func_name or display[idx])
                frames.append(frame)
                continue
            matching = False
            frames.append(Frame(func_index=idx, func_name=display[idx] if 0 <= idx < len(display) else None, module_offset=None))
        trap.frames = frames
        trap.frames_truncated = depth > layout.stack_capacity

    def _codemap(self) -> Any:
        from wasmscope.runtime.codemap import CodeMap

        try:
            wasm = self.plan.instrumented(self.source)
            return CodeMap(self.source.read_bytes(), wasm, self.plan.layout.original_function)
        except Exception:  # a trap report never fails for want of line numbers
            return None
