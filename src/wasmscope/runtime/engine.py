"""Engine settings, one shared wasmtime Engine per distinct settings, and the epoch ticker.

An Engine is expensive (its compiled code, signal handlers, the ticker thread), and a
compiled Module can only run on the Engine that compiled it, so engines are process-wide
and keyed by :class:`EngineSettings`: every :class:`~wasmscope.runtime.runner.Runtime`
with the same settings shares one (and its modules, linkers and ticker).

Epoch interruption is always on: it is how a timeout, the output cap and cancellation
stop a guest (see :mod:`wasmscope.runtime.watchdog`). The :class:`Ticker` is one thread
per engine that increments the epoch every ``TICK_SECONDS`` while at least one guest
runs on that engine, and sleeps otherwise; each store decides for itself what a tick
means (per-store callbacks), so concurrent stores never interrupt each other.
"""

from __future__ import annotations

import atexit
import contextlib
import hashlib
import json
import platform
import threading
import time
from dataclasses import asdict, dataclass, replace
from typing import TYPE_CHECKING, Any

from wasmscope.errors import UsageError
from wasmscope.runtime.limits import MAX_WASM_STACK_LIMIT, format_size
from wasmscope.runtime.requirement import RuntimeUnavailable, require_wasmtime, wasmtime_version

if TYPE_CHECKING:
    import wasmtime

__all__ = [
    "TICK_SECONDS",
    "EngineHandle",
    "EngineSettings",
    "Pooling",
    "RuntimeUnavailable",
    "engine_for",
    "require_wasmtime",
    "wasmtime_version",
]

TICK_SECONDS = 0.005


@dataclass(frozen=True, slots=True)
class Pooling:
    """Wasmtime's pooling instance allocator: memories, tables, instances and stacks are
    taken from pools reserved once per engine and reset for reuse, instead of mmap'd
    and unmapped per instance. For a server that instantiates per request: a C hello
    costs ~85 µs a request instead of ~130 (instantiate 16 -> 6 µs, drop 18 -> 7, and
    no page faults on the kept-resident first pages of its memory).

    The pools are virtual address space (each memory slot reserves 4 GiB plus guards,
    as with wasmtime's defaults); past ``instances`` live instances (or ``memories``
    memories...) an instantiation fails with wasmtime's message. Memory content never
    crosses instances: a slot is zeroed (or re-initialised from the module's image)
    before reuse. The per-store memory limit still applies."""

    instances: int = 1000  # core instances alive at once (also: stacks)
    memories: int = 1000
    tables: int = 1000
    max_memory_size: int = 4 << 30  # per linear memory, bytes
    max_memories_per_module: int = 4
    max_tables_per_module: int = 4
    table_elements: int = 200_000
    max_core_instance_size: int = 8 << 20  # bytes of one instance's VM context
    components: int = 1000
    max_core_instances_per_component: int = 64
    max_memories_per_component: int = 16
    max_tables_per_component: int = 16
    keep_resident: int = 1 << 20  # bytes of each memory reset in place (memset), not decommitted

    def reservation(self) -> int:
        """About the address space the pools take (bytes): a memory slot is 4 GiB (or
        ``max_memory_size``) plus a 32 MiB guard, a table slot 8 bytes an element."""
        slot = max(4 << 30, self.max_memory_size) + (32 << 20)
        return (
            self.memories * slot
            + self.tables * self.table_elements * 8
            + self.instances * self.max_core_instance_size
        )

    def available(self) -> bool:
        """Whether that much address space can be mapped here (an address-space limit,
        ``ulimit -v``, forbids it). wasmtime's C API aborts the process when it cannot
        map its pools, so this is asked first, with a mapping of the same size that
        reserves nothing (PROT_NONE, MAP_NORESERVE) and is unmapped at once."""
        import mmap

        flags = (
            mmap.MAP_PRIVATE
            | getattr(mmap, "MAP_ANONYMOUS", 0x20)
            | getattr(mmap, "MAP_NORESERVE", 0)
        )
        try:
            probe = mmap.mmap(-1, self.reservation(), flags=flags, prot=0)
        except (OSError, OverflowError, ValueError):
            return False
        probe.close()
        return True

    def apply(self, cfg: wasmtime.Config) -> None:
        from wasmscope.runtime import _wasmtime_internals as internals

        internals.apply_pooling(
            cfg,
            {
                "total_core_instances": self.instances,
                "total_stacks": self.instances,
                "total_memories": self.memories,
                "total_tables": self.tables,
                "total_component_instances": self.components,
                "max_memory_size": self.max_memory_size,
                "max_memories_per_module": self.max_memories_per_module,
                "max_tables_per_module": self.max_tables_per_module,
                "table_elements": self.table_elements,
                "max_core_instance_size": self.max_core_instance_size,
                "max_core_instances_per_component": self.max_core_instances_per_component,
                "max_memories_per_component": self.max_memories_per_component,
                "max_tables_per_component": self.max_tables_per_component,
                "linear_memory_keep_resident": self.keep_resident,
                "table_keep_resident": min(self.keep_resident, 1 << 16),
            },
        )


@dataclass(frozen=True, slots=True)
class EngineSettings:
    """Everything that changes how code is compiled or which Engine runs it.

    Part of the compiled-module cache key (:meth:`fingerprint`)."""

    consume_fuel: bool = False
    max_wasm_stack: int | None = None  # bytes; None = wasmtime's default (512 KiB)
    exact_memory: bool = False  # host memory creator (exact grow count); CoW init off
    cranelift_opt_level: str = "speed"  # "none", "speed", "speed_and_size"
    parallel_compilation: bool = True
    pooling: Pooling | None = None  # the pooling allocator (servers); None: on demand

    def __post_init__(self) -> None:
        if self.max_wasm_stack is not None and not 0 < self.max_wasm_stack <= MAX_WASM_STACK_LIMIT:
            raise UsageError(
                f"max wasm stack {format_size(self.max_wasm_stack)} is refused: above "
                f"{format_size(MAX_WASM_STACK_LIMIT)} wasmtime overflows the host stack and "
                "the whole process aborts instead of trapping"
            )
        if self.cranelift_opt_level not in ("none", "speed", "speed_and_size"):
            raise UsageError(f"unknown optimization level {self.cranelift_opt_level!r}")

    def fingerprint(self) -> str:
        """A short hash of the settings, the wasmtime version and the machine: two engines
        with the same fingerprint can load each other's serialized modules."""
        doc = {
            **asdict(self),
            "parallel_compilation": None,  # does not change the code
            "epoch_interruption": True,
            "wasmtime": wasmtime_version(),
            "machine": platform.machine(),
            "system": platform.system(),
        }
        blob = json.dumps(doc, sort_keys=True).encode()
        return hashlib.sha256(blob).hexdigest()[:16]

    def config(self) -> wasmtime.Config:
        require_wasmtime()
        import wasmtime

        cfg = wasmtime.Config()
        cfg.epoch_interruption = True
        cfg.wasm_component_model = True
        if self.consume_fuel:
            cfg.consume_fuel = True
        if self.max_wasm_stack is not None:
            cfg.max_wasm_stack = self.max_wasm_stack
        cfg.cranelift_opt_level = self.cranelift_opt_level
        cfg.parallel_compilation = self.parallel_compilation
        if self.pooling is not None:
            if self.exact_memory:
                raise UsageError(
                    "the pooling allocator and exact memory statistics exclude each other"
                )
            self.pooling.apply(cfg)
        if self.exact_memory:
            from wasmscope.runtime.memory import install_memory_creator

            install_memory_creator(cfg)  # also turns copy-on-write memory init off
        return cfg


class Ticker:
    """Increments one engine's epoch every ``period`` seconds while it has users.

    After the last user leaves it keeps ticking for ``linger`` seconds before it goes
    to sleep, so that back-to-back invocations (a server, a benchmark loop) do not wake
    the thread each time: waking it costs a GIL hand-off (~0.3 ms), a tick ~1 µs."""

    def __init__(
        self, engine: wasmtime.Engine, period: float = TICK_SECONDS, linger: float = 2.0
    ) -> None:
        self._engine = engine
        self._period = period
        self._linger = linger
        self._cond = threading.Condition()
        self._users = 0
        self._idle_since = 0.0
        self._sleeping = False
        self._stopped = False
        self._thread: threading.Thread | None = None

    def acquire(self) -> None:
        with self._cond:
            if self._stopped:
                return
            self._users += 1
            if self._thread is None:
                self._thread = threading.Thread(
                    target=self._loop, name="wasmscope-epoch", daemon=True
                )
                self._thread.start()
            elif self._sleeping:
                self._cond.notify()

    def release(self) -> None:
        with self._cond:
            self._users = max(0, self._users - 1)
            if self._users == 0:
                self._idle_since = time.monotonic()

    def stop(self) -> None:
        with self._cond:
            self._stopped = True
            self._cond.notify_all()
            thread = self._thread
        if thread is not None and thread is not threading.current_thread():
            thread.join(timeout=1.0)

    def _loop(self) -> None:
        cond, period, engine = self._cond, self._period, self._engine
        while True:
            with cond:
                while (
                    self._users == 0
                    and not self._stopped
                    and time.monotonic() - self._idle_since > self._linger
                ):
                    self._sleeping = True
                    cond.wait()
                    self._sleeping = False
                if self._stopped:
                    return
            time.sleep(period)
            engine.increment_epoch()


class EngineHandle:
    """A shared Engine, its settings, its ticker and its WASI linkers."""

    def __init__(self, settings: EngineSettings) -> None:
        require_wasmtime()
        import wasmtime

        self.settings = settings
        self.fingerprint = settings.fingerprint()
        self.engine: wasmtime.Engine = wasmtime.Engine(settings.config())
        self.ticker = Ticker(self.engine)
        self._lock = threading.Lock()
        self._linker: wasmtime.Linker | None = None
        self._component_linker: Any = None

    @property
    def linker(self) -> wasmtime.Linker:
        """The core-module linker with WASI preview 1. Every store instantiated through it
        must have ``set_wasi`` called first: without it wasmtime aborts the process."""
        with self._lock:
            if self._linker is None:
                import wasmtime

                linker = wasmtime.Linker(self.engine)
                linker.define_wasi()
                self._linker = linker
            return self._linker

    @property
    def component_linker(self) -> Any:
        """The component linker with WASI preview 2 (``wasi:cli`` and friends)."""
        with self._lock:
            if self._component_linker is None:
                from wasmtime import component

                linker = component.Linker(self.engine)
                linker.add_wasip2()
                self._component_linker = linker
            return self._component_linker

    def close(self) -> None:
        """Stop the ticker and free the linkers and the engine now (at exit: later, the
        interpreter's teardown would find wasmtime's bindings already gone). Modules and
        stores that still use the engine keep it alive inside wasmtime."""
        self.ticker.stop()
        with self._lock:
            for obj in (self._linker, self._component_linker, self.engine):
                close = getattr(obj, "close", None)
                if close is not None:
                    with contextlib.suppress(Exception):
                        close()
            self._linker = None
            self._component_linker = None


_ENGINES: dict[EngineSettings, EngineHandle] = {}
_ENGINES_LOCK = threading.Lock()


def engine_for(settings: EngineSettings) -> EngineHandle:
    """The process-wide engine for ``settings`` (created on first use)."""
    with _ENGINES_LOCK:
        handle = _ENGINES.get(settings)
        if handle is None:
            if settings.pooling is not None and not settings.pooling.available():
                import logging

                logging.getLogger("wasmscope.runtime").warning(
                    "the pooling allocator is not available here (its pools need %s of address "
                    "space, which cannot be mapped: ulimit -v?); instances are allocated on demand",
                    format_size(settings.pooling.reservation()),
                )
                handle = EngineHandle(replace(settings, pooling=None))
            else:
                handle = EngineHandle(settings)
            _ENGINES[settings] = handle
        return handle


@atexit.register
def _close_engines() -> None:
    # No epoch increments while the interpreter tears down, and wasmtime objects freed
    # while its bindings still exist.
    with _ENGINES_LOCK:
        handles = list(_ENGINES.values())
        _ENGINES.clear()
    for h in handles:
        h.close()
