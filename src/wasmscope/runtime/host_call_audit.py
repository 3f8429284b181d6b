"""Audited runs: the runtime side of the host-call audit (``RunOptions.audit``).

``Runtime.run(..., audit=AuditSettings(...))`` runs the module rewritten by
:func:`wasmscope.instrument.audited_cache.audit_cached` (every direct call of a
WASI preview 1 import through a thunk that counts, decides and records it in a
memory of its own, ``wasmscope:audit``), compiled and cached like any module but
identified as the original. :class:`AuditRun`, an observer of the invocation:

- after instantiating, grows the audit memory to the ring asked for (what a memory
  limit refuses shrinks the ring, never fails the run), then writes the mode
  (record or count-only, timing), the action of each audited function, the budgets'
  limits, ``deny_errno``, ``over_budget`` and ``max_path``; when an action is
  CHECK, puts the Python function that asks ``AuditSettings.check`` in the
  module's ``wasmscope:audit_check`` table;
- drains the ring on every watchdog tick (the guest is paused at a safe point, on
  its thread): the records are copied out and the tail moves on, so only a burst
  faster than a tick's worth of the ring drops records (counted exactly);
- at the end drains what is left (a record the guest did not finish is a call
  that trapped or exited: ``errno`` None), reads the counters and sums, and puts the
  :class:`AuditLog` in ``record.audit``. Its records become :class:`HostCall`
  objects when first read: a run whose calls nobody reads (a clean serve request
  under a policy) pays for the copy only. A trap from a KILL action is reported as
  such: ``trap.kind`` ``"policy_kill"``, a message naming the call.

With ``instrument=True`` too, the counters pass runs first and this one after it
(see :mod:`wasmscope.instrument.wasi_audit`), so both observers share one module.

Components: not audited (their WASI calls go through the component model, not
core imports the pass can reroute): ``record.audit`` stays None. Calls a start
function makes run before the host wrote the tables: they are counted, allowed
and not recorded.
"""

from __future__ import annotations

import ctypes
import hashlib
import logging
import struct
import threading
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

from wasmscope.errors import UsageError
from wasmscope.instrument import audit_layout as L
from wasmscope.runtime.gil_calls import store_context
from wasmscope.runtime.guest_counters import CountersPlan
from wasmscope.runtime.host_calls import Action, AuditLog, AuditSettings, CallColumns, HostCall
from wasmscope.runtime.invocation import Invocation, InvocationObserver
from wasmscope.runtime.memory import exported_memories, exported_memory, memory_address
from wasmscope.runtime.record import InvocationRecord, Outcome, TrapInfo

if TYPE_CHECKING:
    from wasmscope.instrument.audit_layout import AuditLayout
    from wasmscope.instrument.audited_cache import AuditedModule
    from wasmscope.runtime.identity import ModuleSource

__all__ = ["AuditPlan", "AuditRun", "audit_plan_for"]

log = logging.getLogger("wasmscope.runtime.audit")

PAGE = 65536
_ALL_ONES = (1 << 64) - 1
_I64_MAX = (1 << 63) - 1
_RECORD = struct.Struct(f"<IIIIQQQQII{L.MAX_ARGS}Q")  # one record's fixed part (128 bytes)
_HEADER = struct.Struct("<QQQIIIIIIQQQqq")  # offsets 0..88
_FLAGS = struct.Struct("<I")
_AUDIT_NAME = L.AUDIT_EXPORT.encode()
_U64 = struct.Struct("<Q")


def _path_capacity(max_path: int) -> int:
    """The record's path room for ``max_path`` (one module per capacity: 256 covers
    the default and anything under it)."""
    return max(256, -(-max_path // 8) * 8)


@dataclass(slots=True)
class AuditPlan:
    """An audited module ready to compile (like :class:`CountersPlan`): its layouts,
    its compiled-cache key (the sha256 of the audited bytes) and, until compiled,
    the bytes. ``layout`` None: nothing to audit (no preview 1 import called directly)."""

    layout: AuditLayout | None
    key: str
    path_capacity: int
    counters: Any = None  # the CountersLayout when composed with the counters pass
    cache_dir: Path | None = None
    wasm: bytes | None = field(default=None, repr=False)
    guest_scratch: bool | None = None  # the guest's memory has the 8 bytes timing needs (learnt once)

    def instrumented(self, source: ModuleSource) -> bytes:
        if self.wasm is not None:
            return self.wasm
        return _audit(
            source.read_bytes(), self.cache_dir, self.path_capacity, self.counters is not None
        ).wasm

    def drop_bytes(self) -> None:
        self.wasm = None

    def counters_plan(self) -> CountersPlan:
        """The counters pass's plan over the same (audited) module, for :class:`CountedRun`."""
        return _ComposedCountersPlan(self.counters, self.key, self.cache_dir, None, audit=self)


@dataclass(slots=True)
class _ComposedCountersPlan(CountersPlan):
    audit: AuditPlan | None = None

    def instrumented(self, source: ModuleSource) -> bytes:
        assert self.audit is not None
        return self.audit.instrumented(source)


def _audit(data: bytes, cache_dir: Path | None, path_capacity: int, counted: bool) -> AuditedModule:
    from wasmscope.instrument.audited_cache import audit_cached, audit_module

    if cache_dir is not None:
        return audit_cached(data, cache_dir, path_capacity=path_capacity, counted=counted)
    return audit_module(data, path_capacity=path_capacity, counted=counted)


_PLANS: dict[tuple[str, Path | None, int, bool], AuditPlan] = {}
_PLANS_LOCK = threading.Lock()
_PLANS_MAX = 16


def audit_plan_for(
    source: ModuleSource, cache_dir: Path | None, settings: AuditSettings, counted: bool
) -> AuditPlan:
    """The audited twin of ``source`` (a core module), remembered per process and
    through the on-disk cache in ``cache_dir`` (None: none). Raises ``UsageError`` /
    ``DecodeError`` for what the pass refuses."""
    cap = _path_capacity(settings.max_path)
    key = (source.sha256, cache_dir, cap, counted)
    plan = _PLANS.get(key)  # a dict read is atomic; the lock keeps the writes' eviction whole
    if plan is not None:
        return plan
    result = _audit(source.read_bytes(), cache_dir, cap, counted)
    plan = AuditPlan(
        result.layout,
        hashlib.sha256(result.wasm).hexdigest(),
        cap,
        result.counters,
        cache_dir,
        result.wasm,
    )
    with _PLANS_LOCK:
        _PLANS[key] = plan
        while len(_PLANS) > _PLANS_MAX:
            _PLANS.pop(next(iter(_PLANS)))
    return plan


# (layout, the actions mapping) -> its table bytes, or None when all ALLOW. Both are
# kept in the value so that their ids stay theirs while cached; a guard session
# passes the same mapping to every run.
_TABLES: dict[tuple[int, int], tuple[AuditLayout, Mapping[str, Action], bytes | None]] = {}
_TABLES_MAX = 256


def _action_table(layout: AuditLayout, actions: Mapping[str, Action]) -> bytes | None:
    key = (id(layout), id(actions))
    found = _TABLES.get(key)
    if found is not None and found[0] is layout and found[1] is actions:
        return found[2]
    table = bytes(int(actions.get(f.name, Action.ALLOW)) for f in layout.funcs)
    value = table if any(table) else None
    if len(_TABLES) >= _TABLES_MAX:
        _TABLES.clear()
    _TABLES[key] = (layout, actions, value)
    return value


_CHECKED: dict[int, AuditSettings] = {}  # id -> settings found good (kept, so the id stays theirs)


def check_settings(settings: AuditSettings) -> None:
    """Refuse settings the thunks cannot apply (before anything runs). Settings are
    frozen: the same object is checked once."""
    if _CHECKED.get(id(settings)) is settings:
        return
    _check_settings(settings)
    if len(_CHECKED) >= _TABLES_MAX:
        _CHECKED.clear()
    _CHECKED[id(settings)] = settings


def _check_settings(settings: AuditSettings) -> None:
    ring = settings.ring_records
    if not isinstance(ring, int) or ring < 1 or ring & (ring - 1) or ring > 1 << 24:
        raise UsageError(f"ring_records must be a power of two from 1 to {1 << 24}, not {ring!r}")
    if not isinstance(settings.max_path, int) or not 0 <= settings.max_path <= 65536:
        raise UsageError(f"max_path must be from 0 to 65536, not {settings.max_path!r}")
    uses_check = settings.over_budget == Action.CHECK or any(
        a == Action.CHECK for a in settings.actions.values()
    )
    if uses_check and settings.check is None:
        raise UsageError("an action is CHECK but AuditSettings.check is not set")
    if settings.check_refused not in (Action.DENY, Action.KILL):
        raise UsageError(f"check_refused must be DENY or KILL, not {settings.check_refused!r}")
    if not 0 <= settings.deny_errno < 1 << 16:
        raise UsageError(f"deny_errno must be a WASI errno (0..65535), not {settings.deny_errno!r}")


class _Decoder:
    """Turns records into :class:`HostCall` (per call: kept cheap)."""

    __slots__ = ("args_of", "names", "paths")

    def __init__(self, layout: AuditLayout) -> None:
        self.names = [f.name for f in layout.funcs]
        self.args_of = [_args_builder(f.params) for f in layout.funcs]
        self.paths = [f.has_path for f in layout.funcs]

    def decode(self, v: bytes | memoryview, off: int) -> HostCall:
        t = _RECORD.unpack_from(v, off)
        k, flags = t[0], t[1]
        path = None
        truncated = False
        if self.paths[k]:
            start = off + L.R_PATH
            copied = t[8]
            path = bytes(v[start : start + copied]).decode("utf-8", "surrogateescape")
            truncated = copied < t[3]
        return HostCall(
            t[4],
            self.names[k],
            self.args_of[k](t),
            t[2] if flags & L.FLAG_ERRNO else None,
            t[5] if flags & L.FLAG_RESULT else None,
            path,
            truncated,
            t[7] if flags & L.FLAG_NBYTES else None,
            t[6] if flags & L.FLAG_DURATION else None,
            bool(flags & L.FLAG_DENIED),
            bool(flags & L.FLAG_OVER),
            bool(flags & L.FLAG_KILLED),
        )


def _args_builder(params: tuple[str, ...]) -> Callable[[tuple[Any, ...]], dict[str, int]]:
    """``t -> {params[0]: t[10], ...}`` for an unpacked record: a dict display, 4x
    faster than ``dict(zip(...))``. The names are written as literals (``repr``), so a
    layout read back from the cache can only name keys."""
    names = tuple(str(p) for p in params[: L.MAX_ARGS])
    body = ", ".join(f"{name!r}: t[{10 + i}]" for i, name in enumerate(names))
    return eval(f"lambda t: {{{body}}}", {"__builtins__": {}})  # type: ignore[no-any-return]


_DECODERS: dict[int, tuple[AuditLayout, _Decoder]] = {}


def _decoder_for(layout: AuditLayout) -> _Decoder:
    found = _DECODERS.get(id(layout))
    if found is not None and found[0] is layout:
        return found[1]
    decoder = _Decoder(layout)
    if len(_DECODERS) >= _PLANS_MAX * 4:
        _DECODERS.clear()
    _DECODERS[id(layout)] = (layout, decoder)
    return decoder


class _RingRecords:
    """The records a run left, copied out of its ring in order (``RecordedCalls``):
    decoded only when the log's reader asks."""

    __slots__ = ("count", "data", "decoder", "size")

    def __init__(self, data: bytes, size: int, decoder: _Decoder) -> None:
        self.data, self.size, self.decoder = data, size, decoder
        self.count = len(data) // size

    def __len__(self) -> int:
        return self.count

    def columns(self) -> CallColumns:
        step = self.size // 4
        words = memoryview(self.data).cast("I")
        names = self.decoder.names
        return CallColumns(
            [names[k] for k in words[L.R_FUNC // 4 :: step]],
            words[L.R_ARGS // 4 :: step].tolist(),  # the low half of the first argument: descriptors are i32
            any(f & _FLAGGED for f in words[L.R_FLAGS // 4 :: step]),
        )

    def flagged(self) -> bool:
        return any(f & _FLAGGED for f in memoryview(self.data).cast("I")[L.R_FLAGS // 4 :: self.size // 4])

    def decode(self, indices: Iterable[int] | None = None) -> list[HostCall]:
        data, size, decode = self.data, self.size, self.decoder.decode
        if indices is None:
            indices = range(self.count)
        return [decode(data, i * size) for i in indices]


_FLAGGED = L.FLAG_DENIED | L.FLAG_OVER | L.FLAG_KILLED


# (layout, settings, mask, mode) -> the bytes the host writes at MASK and at LIMITS, kept
# with the objects so that their ids stay theirs while cached.
_HEADS: dict[tuple[int, int, int, int], tuple[AuditLayout, AuditSettings, bytes, bytes]] = {}
_HEAD_MASK = struct.Struct("<IIIII")  # mask, mode, deny_errno, over_action, max_path
_HEAD_LIMITS = struct.Struct("<QQQq")


def _head(lay: AuditLayout, s: AuditSettings, mask: int, mode: int) -> tuple[bytes, bytes]:
    key = (id(lay), id(s), mask, mode)
    found = _HEADS.get(key)
    if found is not None and found[0] is lay and found[1] is s:
        return found[2], found[3]
    b = s.budgets
    limits = _HEAD_LIMITS.pack(
        _ALL_ONES if b.host_calls is None else b.host_calls,
        _ALL_ONES if b.random_bytes is None else b.random_bytes,
        _ALL_ONES if b.output_bytes is None else b.output_bytes,
        _I64_MAX if b.open_fds is None else b.open_fds,
    )
    head = _HEAD_MASK.pack(mask, mode, s.deny_errno, int(s.over_budget), s.max_path)
    if len(_HEADS) >= _TABLES_MAX:
        _HEADS.clear()
    _HEADS[key] = (lay, s, head, limits)
    return head, limits


class AuditRun(InvocationObserver):
    """One audited run: an observer of its invocation (all on the guest's thread).
    The audit memory is ours, not the guest's: left out of the memory figures."""

    own_memories = (L.AUDIT_EXPORT,)

    def __init__(self, plan: AuditPlan, settings: AuditSettings) -> None:
        assert plan.layout is not None
        self.plan = plan
        self.layout: AuditLayout = plan.layout
        self.settings = settings
        self.own_bytes = self.layout.pages * PAGE
        self.view: memoryview | None = None
        self.decoder = _decoder_for(self.layout)
        self.chunks: list[bytes] = []  # the records drained so far, copied out in order
        self.tail = 0
        self.mask = 0
        self._chained: Callable[[], None] | None = None
        self._check_func: Any = None

    # -- the invocation's hooks ------------------------------------------------------------------
    def after_instantiate(self, inv: Invocation, instance: Any) -> None:
        store = inv.store
        lay, s, plan = self.layout, self.settings, self.plan
        ring = s.ring_records if s.record else 1
        # The raw lookups cost a few µs; Instance.exports() builds every export (~40).
        ctx = store_context(store)
        raw = exported_memory(store, instance, _AUDIT_NAME)
        if raw is None:
            raise RuntimeError(f"the audited module exports no {L.AUDIT_EXPORT!r} memory")
        address, size = memory_address(ctx, raw)
        if ring > 1 and lay.ring_bytes(ring) > size:
            ring = self._grow(store, instance, ring)
            address, size = memory_address(ctx, raw)
        self.own_bytes = size
        if not address:
            raise RuntimeError("the audit memory has no address")
        view = memoryview((ctypes.c_ubyte * size).from_address(address)).cast("B")
        self.view = view
        self.mask = ring - 1
        mode = 0
        if s.record:
            mode |= L.MODE_RECORD
            if lay.timing:
                if plan.guest_scratch is None:  # the guest's first 8 bytes hold the thunk's clock
                    guest = exported_memories(store, instance, ["memory"])
                    plan.guest_scratch = bool(guest) and memory_address(ctx, guest[0])[1] >= 8
                if plan.guest_scratch:
                    mode |= L.MODE_TIMING
        head, limits = _head(lay, s, self.mask, mode)
        # Not the counters and sums (44..88): a start function's calls are in them already.
        view[L.MASK : L.MASK + len(head)] = head
        view[L.LIMITS : L.LIMITS + len(limits)] = limits
        timeout = inv.lim.timeout
        if timeout is not None and timeout > 0:  # a sleep past the timeout is cut to it
            _U64.pack_into(view, L.MAX_SLEEP, min(int(timeout * 1e9), _I64_MAX))
        table = _action_table(lay, s.actions)
        if table is not None:  # the memory starts zeroed: all ALLOW
            view[lay.actions_offset : lay.actions_offset + len(table)] = table
        if s.check is not None and ((table is not None and Action.CHECK in table) or s.over_budget == Action.CHECK):
            self._install_check(store, instance.exports(store))
        self._chained = inv.watch.on_tick
        inv.watch.on_tick = self.tick

    def _grow(self, store: Any, instance: Any, ring: int) -> int:
        """Grows the audit memory to hold a ring of ``ring`` records, or the largest
        ring the memory limit lets it have; the ring's size."""
        import wasmtime

        mem = instance.exports(store).get(L.AUDIT_EXPORT)
        lay = self.layout
        while ring > 1 and lay.ring_bytes(ring) > mem.data_len(store):
            try:
                mem.grow(store, -(-(lay.ring_bytes(ring) - mem.data_len(store)) // PAGE))
            except wasmtime.WasmtimeError:  # over the memory limit: a smaller ring
                ring //= 2
        return ring

    def _install_check(self, store: Any, exports: Any) -> None:
        import wasmtime

        check = self.settings.check
        assert check is not None and self.view is not None
        decode, view = self.decoder.decode, self.view
        refused = int(self.settings.check_refused)

        def ask(address: int, _k: int) -> int:  # the action the thunk takes
            try:
                return int(Action.ALLOW) if check(decode(view, address)) else refused
            except Exception as exc:  # a failing check denies, it never kills the guest
                log.warning("the audit check failed, the call is denied: %s", exc)
                return int(Action.DENY)

        i32 = wasmtime.ValType.i32()
        self._check_func = wasmtime.Func(store, wasmtime.FuncType([i32, i32], [i32]), ask)
        exports[L.CHECK_EXPORT].set(store, 0, self._check_func)

    def tick(self) -> None:
        self.drain(final=False)
        if self._chained is not None:
            self._chained()

    def finish(self, inv: Invocation, rec: InvocationRecord) -> None:
        view = self.view
        if view is None:
            return
        self.drain(final=True)
        lay = self.layout
        h = _HEADER.unpack_from(view, 0)
        dropped, killed = h[2], h[8]
        calls_total, random_b, output_b, open_peak = h[9], h[10], h[11], h[13]
        counts: dict[str, int] = {}
        names = self.decoder.names
        for name, n in zip(names, _counters_struct(lay).unpack_from(view, lay.counters_offset), strict=True):
            if n:
                counts[name] = counts.get(name, 0) + n
        records = None
        if self.settings.record:
            data = self.chunks[0] if len(self.chunks) == 1 else b"".join(self.chunks)
            records = _RingRecords(data, lay.record_size, self.decoder)
        audit = rec.audit = AuditLog(
            counts,
            None if records is not None else [],
            dropped,
            {
                "host_calls": calls_total,
                "random_bytes": random_b,
                "output_bytes": output_b,
                "open_fds_peak": open_peak,
            },
            records=records,
        )
        if rec.trap is not None and rec.trap.kind == "memory_out_of_bounds" and lay.stack_pointer:
            self._stack_overflow(inv, rec)
        if rec.trap is not None:  # a frame in a thunk is the import it stands for
            by_index = {f.import_index: f for f in lay.funcs}
            for frame in rec.trap.frames:
                imp = lay.thunks.get(frame.func_index) if frame.func_index is not None else None
                if imp is not None and imp in by_index:
                    frame.func_name = f"{by_index[imp].module}.{by_index[imp].name}"
        if killed and rec.outcome == Outcome.TRAP:
            name = lay.funcs[killed - 1].name
            last = next((c for c in reversed(audit.calls) if c.killed), None)
            what = f"{name}({last.path!r})" if last is not None and last.path is not None else name
            why = (
                "over a budget of the policy"
                if last is not None and last.over_budget
                else "which the policy does not allow"
            )
            rec.trap = TrapInfo(
                "policy_kill",
                f"killed by the host-call policy: the guest called {what}, {why}",
                rec.trap.frames if rec.trap is not None else [],
                rec.trap.frames_truncated if rec.trap is not None else False,
            )

    @staticmethod
    def _stack_overflow(inv: Invocation, rec: InvocationRecord) -> None:
        """A bounds trap with the C stack pointer below address 0 is the stack running
        out (C keeps its stack in linear memory, below the data), not a stray pointer."""
        assert rec.trap is not None
        try:
            sp = inv.instance.exports(inv.store)[L.STACK_POINTER_EXPORT].value(inv.store)
        except Exception:  # the instance or the global is gone: leave the trap as it is
            return
        if not isinstance(sp, int) or sp >= 0:
            return
        rec.outcome = Outcome.STACK_OVERFLOW
        rec.trap = TrapInfo(
            "stack_overflow",
            f"the guest's C stack ran out: its stack pointer went {-sp} bytes below address 0 "
            f"(the bounds trap was the next push: {rec.trap.message})",
            rec.trap.frames,
            rec.trap.frames_truncated,
        )

    def close(self, inv: Invocation) -> None:
        if self._check_func is not None:
            self._check_func = None
        if self.view is not None:
            self.view.release()
            self.view = None

    # -- the ring ------------------------------------------------------------------------------------
    def drain(self, *, final: bool) -> None:
        """Copy the records from the tail to the head out of the ring; while the guest
        runs, stop at the first one not done (the call in progress)."""
        view = self.view
        if view is None or not self.settings.record:
            return
        head = _U64.unpack_from(view, L.HEAD)[0]
        tail = self.tail
        if tail == head:
            return
        lay = self.layout
        ring, size, mask = lay.ring_offset, lay.record_size, self.mask
        n = head - tail  # at most the ring's size: the thunk drops a record rather than overwrite one
        first = tail & mask
        upto = min(n, mask + 1 - first)
        data = bytes(view[ring + first * size : ring + (first + upto) * size])
        if upto < n:  # wrapped around
            data += bytes(view[ring : ring + (n - upto) * size])
        if not final:
            for i, flags in enumerate(memoryview(data).cast("I")[L.R_FLAGS // 4 :: size // 4]):
                if not flags & L.FLAG_DONE:
                    n, data = i, data[: i * size]
                    break
        if data:
            self.chunks.append(data)
        self.tail = tail + n
        _U64.pack_into(view, L.TAIL, self.tail)


_COUNTERS: dict[int, tuple[AuditLayout, struct.Struct]] = {}


def _counters_struct(lay: AuditLayout) -> struct.Struct:
    """The struct of the layout's per-function counters."""
    found = _COUNTERS.get(id(lay))
    if found is not None and found[0] is lay:
        return found[1]
    counters = struct.Struct(f"<{len(lay.funcs)}Q")
    if len(_COUNTERS) >= _TABLES_MAX:
        _COUNTERS.clear()
    _COUNTERS[id(lay)] = (lay, counters)
    return counters
