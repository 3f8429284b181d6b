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
from dataclasses import asdict, dataclass
from typing import TYPE_CHECKING, Any

from wasmscope.errors import UsageError, WasmscopeError
from wasmscope.runtime.limits import MAX_WASM_STACK_LIMIT, format_size

if TYPE_CHECKING:
    import wasmtime

__all__ = [
    "TICK_SECONDS",
    "EngineHandle",
    "EngineSettings",
    "RuntimeUnavailable",
    "engine_for",
    "require_wasmtime",
    "wasmtime_version",
]

TICK_SECONDS = 0.005
WASMTIME_REQUIREMENT = "wasmtime==50.0.1"


class RuntimeUnavailable(WasmscopeError):
    """wasmtime (the ``runtime`` extra) is not installed, or is not the version we need."""


_WASMTIME_VERSION: str | None = None


def wasmtime_version() -> str:
    global _WASMTIME_VERSION
    if _WASMTIME_VERSION is None:
        from importlib.metadata import PackageNotFoundError, version

        try:
            _WASMTIME_VERSION = version("wasmtime")
        except PackageNotFoundError:
            _WASMTIME_VERSION = "unknown"
    return _WASMTIME_VERSION


def require_wasmtime() -> Any:
    """The ``wasmtime`` module, or :class:`RuntimeUnavailable` with the install hint."""
    try:
        import wasmtime
    except ImportError as exc:
        raise RuntimeUnavailable(
            f"running modules needs wasmtime ({exc}): pip install 'wasmscope[runtime]'"
        ) from None
    major = wasmtime_version().split(".")[0]
    if major.isdigit() and int(major) < 50:
        raise RuntimeUnavailable(
            f"wasmtime {wasmtime_version()} is too old (need {WASMTIME_REQUIREMENT}): "
            "pip install 'wasmscope[runtime]'"
        )
    return wasmtime


@dataclass(frozen=True, slots=True)
class EngineSettings:
    """Everything that changes how code is compiled or which Engine runs it.

    Part of the compiled-module cache key (:meth:`fingerprint`)."""

    consume_fuel: bool = False
    max_wasm_stack: int | None = None  # bytes; None = wasmtime's default (512 KiB)
    exact_memory: bool = False  # host memory creator (exact grow count); CoW init off
    cranelift_opt_level: str = "speed"  # "none", "speed", "speed_and_size"
    parallel_compilation: bool = True

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
        if self.exact_memory:
            from wasmscope.runtime.memory import install_memory_creator

            install_memory_creator(cfg)  # also turns copy-on-write memory init off
        return cfg


class Ticker:
    """Increments one engine's epoch every ``period`` seconds while it has users.

    After the last user leaves it keeps ticking for ``linger`` seconds before it goes
    to sleep, so that back-to-back invocations (a server, a benchmark loop) do not wake
    the thread each time: waking it costs a GIL hand-off (~0.3 ms), a tick ~1 µs."""

    def __init__(self, engine: wasmtime.Engine, period: float = TICK_SECONDS, linger: float = 2.0) -> None:
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
                self._thread = threading.Thread(target=self._loop, name="wasmscope-epoch", daemon=True)
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
