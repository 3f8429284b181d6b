"""Peak linear memory and memory.grow counts: two methods, chosen per engine.

``sampled`` (the default)
    Linear memories never shrink, so the *peak* is exact: the final size of each
    memory, read after the run. Only exported memories are reachable that way (the C API
    has no handle on the others); the record says how many were not observed. The
    *grow count* is sampled: the watchdog reads the sizes on every epoch tick (5 ms) on
    the guest's own thread, and counts the ticks at which a memory had grown, so it is a
    lower bound (several grows within one tick count once). Out-of-memory is inferred:
    a run that fails with a memory within one observed grow of the limit.
    Cost: nothing measurable (a few µs per tick).

``exact``
    wasmtime's host memory creator (``wasmtime_config_host_memory_creator_set``): every
    linear memory of the engine is mmap'ed here, so every grow is seen, exported or not,
    and the memory limit is enforced here too, so a refused grow is known exactly.
    Cost: copy-on-write memory initialisation must be off (wasmtime panics otherwise),
    which makes instantiation copy the data segments (yosys: ~3 ms -> ~6.5 ms), and each
    grow costs a few Python callbacks (~5 µs each; yosys: ~300 grows, ~2,400 callbacks a
    run). Measured on the yosys run: 0-5% slower than ``sampled``, within noise (see the
    README). Opt in with ``Runtime(memory_stats="exact")`` / ``--memory-stats exact``.
"""

from __future__ import annotations

import ctypes
import itertools
import mmap
import sys
import threading
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

from wasmscope.runtime.gil_calls import bindings

if TYPE_CHECKING:
    import wasmtime

__all__ = [
    "METHODS",
    "MemoryTracker",
    "current_tracker",
    "exported_memories",
    "exported_memory",
    "exported_memory_names",
    "install_memory_creator",
    "memory_sizes",
]

METHODS = ("sampled", "exact")

_PAGE = mmap.PAGESIZE
_DYNAMIC_RESERVATION = 1 << 32  # when wasmtime lets the memory move: start with 4 GiB


def _round_up(n: int) -> int:
    return (n + _PAGE - 1) // _PAGE * _PAGE


@dataclass(slots=True)
class MemoryTracker:
    """What one invocation's memories did. Filled by the creator (``exact``) or by the
    watchdog's samples and the final sizes (``sampled``)."""

    method: str
    limit: int | None = None  # bytes per memory, enforced by the creator in exact mode
    grow_count: int = 0
    refused: int = 0  # grows refused at the limit (exact mode)
    largest_grow: int = 0  # bytes, the largest single grow seen (a sample in sampled mode)
    sizes: dict[int, int] = field(default_factory=dict)  # memory key -> current bytes
    peaks: dict[int, int] = field(default_factory=dict)
    created: int = 0

    def grew(self, key: int, old: int, new: int) -> None:
        self.grow_count += 1
        self.largest_grow = max(self.largest_grow, new - old)
        self.sizes[key] = new
        if new > self.peaks.get(key, 0):
            self.peaks[key] = new

    def set_size(self, key: int, size: int) -> None:
        self.sizes[key] = size
        if size > self.peaks.get(key, 0):
            self.peaks[key] = size

    @property
    def peak_total(self) -> int:
        return sum(self.peaks.values())


# -- the exact method: a host memory creator --------------------------------------------------

_tls = threading.local()


def current_tracker() -> MemoryTracker | None:
    return getattr(_tls, "tracker", None)


class _TrackerScope:
    """``with tracking(tracker):`` around an instantiation: memories created meanwhile on
    this thread belong to ``tracker``."""

    __slots__ = ("prev", "tracker")

    def __init__(self, tracker: MemoryTracker | None) -> None:
        self.tracker = tracker
        self.prev: MemoryTracker | None = None

    def __enter__(self) -> None:
        self.prev = current_tracker()
        _tls.tracker = self.tracker

    def __exit__(self, *exc: object) -> None:
        _tls.tracker = self.prev


def tracking(tracker: MemoryTracker | None) -> _TrackerScope:
    return _TrackerScope(tracker)


class _Mem:
    __slots__ = ("base", "fixed", "maximum", "reservation", "size", "total", "tracker")

    def __init__(
        self,
        base: int,
        size: int,
        maximum: int,
        reservation: int,
        total: int,
        fixed: bool,
        tracker: MemoryTracker | None,
    ) -> None:
        self.base = base
        self.size = size
        self.maximum = maximum
        self.reservation = reservation
        self.total = total
        self.fixed = fixed
        self.tracker = tracker


class _Libc:
    PROT_NONE = 0
    PROT_RW = 0x1 | 0x2
    MAP_PRIVATE = 0x02
    MAP_ANONYMOUS = 0x20
    MAP_NORESERVE = 0x4000
    MAP_FAILED = ctypes.c_void_p(-1).value

    def __init__(self) -> None:
        libc = ctypes.CDLL(None, use_errno=True)
        self.mmap = libc.mmap
        self.mmap.restype = ctypes.c_void_p
        self.mmap.argtypes = [
            ctypes.c_void_p,
            ctypes.c_size_t,
            ctypes.c_int,
            ctypes.c_int,
            ctypes.c_int,
            ctypes.c_long,
        ]
        self.mprotect = libc.mprotect
        self.mprotect.restype = ctypes.c_int
        self.mprotect.argtypes = [ctypes.c_void_p, ctypes.c_size_t, ctypes.c_int]
        self.munmap = libc.munmap
        self.munmap.restype = ctypes.c_int
        self.munmap.argtypes = [ctypes.c_void_p, ctypes.c_size_t]

    def reserve(self, total: int) -> int | None:
        addr = self.mmap(
            None,
            total,
            self.PROT_NONE,
            self.MAP_PRIVATE | self.MAP_ANONYMOUS | self.MAP_NORESERVE,
            -1,
            0,
        )
        if addr is None or addr == self.MAP_FAILED:
            return None
        return int(addr)

    def commit(self, base: int, size: int) -> bool:
        return size == 0 or self.mprotect(base, _round_up(size), self.PROT_RW) == 0


class _Creator:
    """Process-wide: the ctypes callbacks must outlive every engine that uses them."""

    def __init__(self) -> None:
        from wasmscope.runtime import _wasmtime_internals as internals

        self.error_address = internals.error_address
        self.libc = _Libc()
        self.mems: dict[int, _Mem] = {}
        self.ids = itertools.count(1)
        self.c = internals.memory_creator(self._new, self._get, self._grow, self._finalize)

    def _error(self, message: str) -> int:
        return self.error_address(message.encode())

    # new_memory(env, ty, minimum, maximum, reserved_size_in_bytes, guard_size_in_bytes, ret)
    def _new(
        self, env: Any, ty: Any, minimum: int, maximum: int, reserved: int, guard: int, ret: Any
    ) -> int:
        try:
            tracker = current_tracker()
            if tracker is not None and tracker.limit is not None and minimum > tracker.limit:
                tracker.refused += 1
                return self._error(
                    f"memory minimum of {minimum} bytes exceeds the limit of {tracker.limit} bytes"
                )
            fixed = reserved > 0
            reservation = _round_up(
                reserved if fixed else max(minimum, min(maximum, _DYNAMIC_RESERVATION))
            )
            total = reservation + _round_up(guard)
            base = self.libc.reserve(total)
            if base is None:
                return self._error(
                    f"cannot reserve {total} bytes of address space for a linear memory"
                )
            if not self.libc.commit(base, minimum):
                self.libc.munmap(base, total)
                return self._error(f"cannot commit {minimum} bytes of linear memory")
            key = next(self.ids)
            self.mems[key] = _Mem(base, minimum, maximum, reservation, total, fixed, tracker)
            if tracker is not None:
                tracker.created += 1
                tracker.set_size(key, minimum)
            self.c.fill(ret[0], key)
            return 0
        except BaseException as exc:  # never let an exception unwind into wasmtime
            return self._error(f"wasmscope memory creator failed: {exc!r}")

    def _get(self, env: Any, size_p: Any, max_p: Any) -> int:
        m = self.mems[env or 0]
        size_p[0] = m.size
        max_p[0] = m.maximum
        return m.base

    def _grow(self, env: Any, new_size: int) -> int:
        try:
            key = env or 0
            m = self.mems[key]
            tracker = m.tracker
            if tracker is not None and tracker.limit is not None and new_size > tracker.limit:
                tracker.refused += 1
                return self._error(
                    f"memory.grow to {new_size} bytes refused: limit is {tracker.limit} bytes"
                )
            if new_size > m.maximum:
                return self._error("memory.grow beyond the memory's maximum")
            if new_size > m.reservation:
                if m.fixed or not self._move(m, new_size):
                    if tracker is not None:
                        tracker.refused += 1
                    return self._error(f"cannot grow linear memory to {new_size} bytes")
            elif not self.libc.commit(m.base, new_size):
                return self._error(f"cannot commit {new_size} bytes of linear memory")
            old = m.size
            m.size = new_size
            if tracker is not None:
                tracker.grew(key, old, new_size)
            return 0
        except BaseException as exc:
            return self._error(f"wasmscope memory creator failed: {exc!r}")

    def _move(self, m: _Mem, new_size: int) -> bool:
        """Dynamic memories only (wasmtime said they may move): a bigger reservation."""
        reservation = _round_up(min(max(new_size, m.reservation * 2), m.maximum))
        guard = m.total - m.reservation
        total = reservation + guard
        base = self.libc.reserve(total)
        if base is None:
            return False
        if not self.libc.commit(base, new_size):
            self.libc.munmap(base, total)
            return False
        ctypes.memmove(base, m.base, m.size)
        self.libc.munmap(m.base, m.total)
        m.base, m.reservation, m.total = base, reservation, total
        return True

    def _finalize(self, env: Any) -> None:
        try:
            m = self.mems.pop(env or 0, None)
            if m is not None and not sys.is_finalizing():
                self.libc.munmap(m.base, m.total)
        except BaseException:
            pass


_CREATOR: _Creator | None = None
_CREATOR_LOCK = threading.Lock()


def install_memory_creator(cfg: wasmtime.Config) -> None:
    """Route every linear memory of engines built from ``cfg`` through our creator.

    Turns copy-on-write memory initialisation off: with a host memory creator and CoW
    on, wasmtime 50 panics (aborting the process) on the first instantiation."""
    global _CREATOR
    with _CREATOR_LOCK:
        if _CREATOR is None:
            _CREATOR = _Creator()
        creator = _CREATOR
    cfg.memory_init_cow = False
    creator.c.install(cfg)


def live_memories() -> int:
    """Memories currently allocated by the creator (for tests)."""
    return 0 if _CREATOR is None else len(_CREATOR.mems)


# -- the sampled method: exported memories ------------------------------------------------------


def exported_memory_names(store: wasmtime.Store, instance: wasmtime.Instance) -> list[str]:
    """The export names of the instance's memories, one name per memory (a memory
    exported under several names counts once)."""
    internals = bindings().internals
    names: list[str] = []
    seen: set[bytes] = set()
    for name, kind, item in internals.instance_exports(store, instance):
        if kind == internals.EXTERN_MEMORY:
            ident = ctypes.string_at(
                ctypes.addressof(item.of.memory), ctypes.sizeof(item.of.memory)
            )
            if ident not in seen:
                seen.add(ident)
                names.append(name.decode("utf-8", "replace"))
    return names


def exported_memories(
    store: wasmtime.Store, instance: wasmtime.Instance, names: Sequence[str] | None = None
) -> list[Any]:
    """Raw ``wasmtime_memory_t`` of the instance's exported memories (by ``names``, from
    :func:`exported_memory_names`, which a caller may keep per module)."""
    if names is None:
        names = exported_memory_names(store, instance)
    out = [exported_memory(store, instance, name.encode()) for name in names]  # the GIL stays
    return [m for m in out if m is not None]


def exported_memory(store: wasmtime.Store, instance: wasmtime.Instance, name: bytes) -> Any:
    """The raw ``wasmtime_memory_t`` of the instance's memory export ``name`` (UTF-8), or
    None (one lookup, the GIL kept: what a per-request observer asks)."""
    h = bindings()
    internals = h.internals
    item = internals.extern()
    if h.instance_export_get(*internals.export_get_args(store, instance, name, item)) and (
        int(item.kind) == internals.EXTERN_MEMORY
    ):
        return internals.memory_copy(item)
    return None


def memory_address(ctx: Any, mem: Any) -> tuple[int, int]:
    """(address, byte size) of a raw memory, through the store context ``ctx``; the GIL
    stays (two short C calls)."""
    h = bindings()
    ref = ctypes.byref(mem)
    return h.memory_address(ctx, ref) or 0, int(h.memory_data_size(ctx, ref))


def memory_sizes(ctx: Any, mems: Sequence[Any]) -> list[int]:
    """Byte sizes of raw memories, through the store context ``ctx``."""
    size = bindings().memory_data_size  # the GIL stays (wasmscope.runtime.gil_calls)
    return [int(size(ctx, ctypes.byref(m))) for m in mems]
