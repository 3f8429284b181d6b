"""Running a guest and recording what happened: :class:`Runtime` and :func:`run`.

    with Runtime() as rt:
        rec = rt.run("app.wasm", ["arg"], env={"K": "V"}, dirs=["data::/data:ro"],
                     limits=Limits(timeout=2.0, memory_limit=64 << 20))
        rec.outcome, rec.exit_code, rec.stdout, rec.seconds("execute")
        rt.invoke("lib.wasm", "add", [1, 2]).results      # [3]

One :class:`Runtime` is meant to live long and run many guests, from several threads
at once: it keeps identified sources, compiled modules (in memory, and on disk
through :mod:`wasmscope.runtime.compiled_cache`) and ``InstancePre`` objects, so a repeated
run costs a store, an instantiation (~20 µs + data segments) and the call. Engines
and their epoch tickers are process-wide (:mod:`wasmscope.runtime.engine`).

Every run returns an :class:`InvocationRecord` (never raises for what the guest
does); :class:`UsageError` is raised for what the caller asked wrongly (a missing
file, a refused setting, a bad ``--dir``). Things that stop a module from starting
(malformed, unsatisfiable import, legacy exceptions) are records with
``Outcome.ERROR`` and a one-line ``error``. Ctrl-C stops the guest at the next epoch
tick and is re-raised as ``KeyboardInterrupt`` once the store is cleaned up.
"""

from __future__ import annotations

import atexit
import logging
import os
import threading
import time
import weakref
from collections import OrderedDict
from collections.abc import Callable, Sequence
from typing import IO, TYPE_CHECKING, Any, Protocol

from wasmscope.errors import DecodeError, UsageError
from wasmscope.runtime.calls import RawFunc, Signature, export_func, func_signature, parse_value
from wasmscope.runtime.command_component import run_component
from wasmscope.runtime.compiled_cache import CacheResult, CompiledCache, DiskCache
from wasmscope.runtime.engine import (
    EngineHandle,
    EngineSettings,
    Pooling,
    engine_for,
    require_wasmtime,
    wasmtime_version,
)
from wasmscope.runtime.guest_counters import CountedRun, CountersPlan, plan_for
from wasmscope.runtime.host_call_audit import AuditPlan, AuditRun, audit_plan_for, check_settings
from wasmscope.runtime.host_calls import AuditLog, AuditSettings
from wasmscope.runtime.identity import ModuleSource, SourceCache
from wasmscope.runtime.invocation import Invocation, InvocationObserver, now
from wasmscope.runtime.limits import Limits
from wasmscope.runtime.memory import METHODS
from wasmscope.runtime.options import RunOptions, with_changes
from wasmscope.runtime.record import InvocationRecord, Outcome, Phase
from wasmscope.runtime.trap import cause, link_error_message
from wasmscope.runtime.wasi import (
    DirSpec,
    OutputCapture,
    WasiSpec,
    describe_dirs,
)

if TYPE_CHECKING:
    from pathlib import Path

    import wasmtime

__all__ = ["RunOptions", "Runtime", "TelemetrySink", "run"]

log = logging.getLogger("wasmscope.runtime")

# A ModuleSource is taken as is: already identified, its bytes kept by the caller (the
# gateway pins each route to the version it compiled, whatever is on disk now).
Source = str | os.PathLike[str] | bytes | bytearray | memoryview | ModuleSource


class _Rewritten(Protocol):
    """A rewritten module to compile in place of the source (instrumented, audited)."""

    @property
    def key(self) -> str: ...

    def instrumented(self, source: ModuleSource) -> bytes: ...

    def drop_bytes(self) -> None: ...


class TelemetrySink(Protocol):
    def record_invocation(self, record: InvocationRecord) -> Any: ...


def new_invocation_id() -> str:
    """16 hex digits: as unique as a span id, and half the bytes of a UUID in every
    span and log line that carries ``faas.invocation_id``."""
    return os.urandom(8).hex()


class _Prepared:
    """A module ready to instantiate, and what the first instance taught us about it
    (its exported memories, the signatures of the functions called), so that later
    runs skip those lookups."""

    __slots__ = ("memory_names", "pre", "signatures")

    def __init__(self, pre: Any) -> None:
        self.pre = pre
        self.memory_names: list[str] | None = None
        self.signatures: dict[str, Signature] = {}

    def signature(self, store: wasmtime.Store, func: wasmtime.Func, name: str) -> Signature:
        sig = self.signatures.get(name)
        if sig is None:
            sig = self.signatures[name] = func_signature(store, func)
        return sig


class _ThreadCapture:
    """Held in a thread-local: dropped (and its capture released) when the thread ends."""

    __slots__ = ("__weakref__", "capture")

    def __init__(self, capture: OutputCapture) -> None:
        self.capture = capture


def _release_capture(captures: list[OutputCapture], lock: threading.Lock, capture: OutputCapture) -> None:
    with lock:
        if capture not in captures:  # Runtime.close() released it already
            return
        captures.remove(capture)
    capture.close()


class Runtime:
    """Runs modules and command components under wasmtime; reusable and thread-safe.

    ``cache``: use the on-disk compiled-module cache (in ``cache_dir``, default
    :func:`~wasmscope.runtime.compiled_cache.default_cache_dir`). ``limits``: the default
    limits of every run (each run may pass its own). ``memory_stats``: ``"sampled"``
    (default) or ``"exact"`` (see :mod:`wasmscope.runtime.memory`). ``telemetry``: an
    object with ``record_invocation(record)`` (e.g. ``wasmscope.telemetry.Telemetry``),
    called after every run; its failures are logged and counted in
    :attr:`telemetry_errors`, never raised. ``pooling``: instances from wasmtime's
    pooling allocator (:class:`~wasmscope.runtime.engine.Pooling`; for servers that
    instantiate per request)."""

    def __init__(
        self,
        *,
        cache: bool = True,
        cache_dir: str | os.PathLike[str] | None = None,
        limits: Limits | None = None,
        memory_stats: str = "sampled",
        telemetry: TelemetrySink | None = None,
        capacity: int = 16,
        opt_level: str = "speed",
        pooling: Pooling | None = None,
    ) -> None:
        require_wasmtime()
        # Import the decoder now, so a run's "load" phase measures loading, not imports.
        import wasmscope.binary.component
        import wasmscope.binary.module  # noqa: F401

        if memory_stats not in METHODS:
            raise UsageError(f"memory_stats must be one of {', '.join(METHODS)}, not {memory_stats!r}")
        self.limits = limits if limits is not None else Limits()
        self.memory_stats = memory_stats
        self.opt_level = opt_level
        if pooling is not None and memory_stats == "exact":
            raise UsageError("the pooling allocator and memory_stats='exact' exclude each other")
        self.pooling = pooling
        self.telemetry = telemetry
        self.telemetry_errors = 0
        self.disk = DiskCache(cache_dir) if cache else None
        self.compiled = CompiledCache(self.disk, capacity=capacity)
        self.sources = SourceCache()
        self._audit_dir: Path | None = None  # where audited modules are cached (made once)
        self._pres: OrderedDict[tuple[str, str], _Prepared] = OrderedDict()
        self._pre_lock = threading.Lock()
        self._capacity = capacity
        self._local = threading.local()
        self._captures: list[OutputCapture] = []
        self._captures_lock = threading.Lock()
        self._closed = False
        _LIVE.add(self)

    # -- lifecycle -----------------------------------------------------------------------
    def close(self) -> None:
        """Release captures and caches (idempotent). Engines stay: they are shared."""
        if self._closed:
            return
        self._closed = True
        with self._captures_lock:
            for c in self._captures:
                c.close()
            self._captures.clear()
        with self._pre_lock:
            self._pres.clear()
        self.compiled.clear()

    def __enter__(self) -> Runtime:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def _check_open(self) -> None:
        if self._closed:
            raise UsageError("this Runtime is closed")

    # -- pieces ------------------------------------------------------------------------------
    def engine_settings(self, limits: Limits) -> EngineSettings:
        return EngineSettings(
            consume_fuel=limits.fuel is not None,
            max_wasm_stack=limits.max_wasm_stack,
            exact_memory=self.memory_stats == "exact",
            cranelift_opt_level=self.opt_level,
            pooling=self.pooling,
        )

    def _capture(self, cap: int | None) -> OutputCapture:
        """This thread's output capture (reused run after run), closed when the
        thread ends: servers retire worker threads, their files must not stay open."""
        held: _ThreadCapture | None = getattr(self._local, "held", None)
        if held is None:
            held = _ThreadCapture(OutputCapture(cap))
            self._local.held = held
            with self._captures_lock:
                self._captures.append(held.capture)
            weakref.finalize(held, _release_capture, self._captures, self._captures_lock, held.capture)
        else:
            held.capture.reset(cap)
        return held.capture

    def compile(self, source: ModuleSource, handle: EngineHandle) -> CacheResult:
        """The compiled module or component (cached). Raises ``WasmtimeError`` if wasmtime
        refuses it."""
        import wasmtime

        if source.kind == "component":
            from wasmtime import component

            return self.compiled.get(
                handle.fingerprint,
                source.sha256,
                "component",
                compile=lambda: component.Component(handle.engine, source.read_bytes()),
                deserialize=lambda path: component.Component.deserialize_file(handle.engine, path),
                serialize=lambda c: c.serialize(),
            )
        return self.compiled.get(
            handle.fingerprint,
            source.sha256,
            "module",
            compile=lambda: wasmtime.Module(handle.engine, source.read_bytes()),
            deserialize=lambda path: wasmtime.Module.deserialize_file(handle.engine, path),
            serialize=lambda m: m.serialize(),
        )

    def _instance_pre(self, handle: EngineHandle, sha256: str, module: wasmtime.Module) -> _Prepared:
        key = (handle.fingerprint, sha256)
        with self._pre_lock:
            prepared = self._pres.get(key)
            if prepared is not None:
                self._pres.move_to_end(key)
                return prepared
        prepared = _Prepared(handle.linker.instantiate_pre(module))
        with self._pre_lock:
            self._pres[key] = prepared
            while len(self._pres) > self._capacity:
                self._pres.popitem(last=False)
        return prepared

    # -- the public calls -------------------------------------------------------------------
    def run(
        self, module: Source, args: Sequence[str] = (), options: RunOptions | None = None, **changes: Any
    ) -> InvocationRecord:
        """Run a WASI preview 1 command module (``_start``) or a ``wasi:cli/run`` command
        component, as ``wasmtime run`` would. ``module``: a file, the bytes, or a
        :class:`~wasmscope.runtime.identity.ModuleSource` (run as is, never re-read from
        its file: it keeps its bytes). ``options``: a :class:`RunOptions`; ``changes``:
        fields of it as keywords (over ``options``, see :mod:`wasmscope.runtime.options`).
        With ``instrument`` (or an ``observer``) the record gains exact ``call_counts``
        and ``host_calls``, and a trap the whole shadow stack."""
        return self._invoke(module, None, args, with_changes(options, changes))

    def invoke(
        self,
        module: Source,
        func: str,
        args: Sequence[str | int | float] = (),
        options: RunOptions | None = None,
        **changes: Any,
    ) -> InvocationRecord:
        """Call the exported function ``func`` of a core module with numeric arguments
        (strings are parsed by the parameter types); ``record.results`` holds what it
        returned. A reactor's ``_initialize`` is called first, as ``wasmtime run --invoke``
        does. ``options`` and ``changes``: as for :meth:`run` (``argv0`` is not used)."""
        return self._invoke(module, func, list(args), with_changes(options, changes))

    # -- the pipeline ----------------------------------------------------------------------------
    def _invoke(self, module: Source, func: str | None, args: Sequence[Any], opts: RunOptions) -> InvocationRecord:
        self._check_open()
        lim = opts.limits if opts.limits is not None else self.limits
        dir_specs = [d if isinstance(d, DirSpec) else DirSpec.parse(d) for d in opts.dirs]
        settings = self.engine_settings(lim)  # refuses bad settings before any work
        start = now()
        if isinstance(module, ModuleSource):
            source = module
        else:
            source, _hit = self.sources.load(module)
            if source.path is None and isinstance(module, str | os.PathLike):
                source.path = os.fspath(module)
        rec = InvocationRecord(
            invocation_id=new_invocation_id(),
            module=source.identity,
            entry=func if func is not None else ("wasi:cli/run#run" if source.kind == "component" else "_start"),
            args=[str(a) for a in args],
            start_ns=start,
            memory_limit=lim.memory_limit,
            timeout=lim.timeout,
            fuel_limit=lim.fuel,
        )
        if opts.attributes:
            rec.attributes.update(opts.attributes)
        rec.attributes["wasm.runtime"] = f"wasmtime {wasmtime_version()}"
        if dir_specs:
            rec.attributes["wasm.wasi.dirs"] = describe_dirs(dir_specs)
        load_end = now()
        rec.phases.append(Phase("load", start, load_end, {"wasm.module.size": source.size}))
        sinks = (opts.stdout, opts.stderr)
        session: CountedRun | None = None
        audit_run: AuditRun | None = None
        rewritten: _Rewritten | None = None
        try:
            handle = engine_for(settings)
            rec.attributes["wasm.engine.fingerprint"] = handle.fingerprint
            if opts.instrumented and source.kind == "component":
                raise UsageError(
                    f"{source.identity.name} is a component: instrumented runs (profile) take core modules only, "
                    "components are not supported yet"
                )
            if opts.audit is not None and source.kind != "component":  # components: rec.audit stays None
                check_settings(opts.audit)
                aplan = self._audit_plan(rec, source, opts.audit, opts.instrumented)
                if aplan is None:
                    return self._finish(rec)
                rewritten = aplan
                if aplan.layout is not None:
                    audit_run = AuditRun(aplan, opts.audit)
                else:
                    rec.audit = AuditLog()  # nothing to audit: no preview 1 import called directly
                if opts.instrumented:
                    session = CountedRun(aplan.counters_plan(), source, opts.observer)
            elif opts.instrumented:
                plan = self._plan(rec, source)
                if plan is None:
                    return self._finish(rec)
                session = CountedRun(plan, source, opts.observer)
                rewritten = plan
            compiled = self._compile_phase(rec, source, handle, rewritten)
            if compiled is None:
                return self._finish(rec, session)
            program = opts.argv0 if opts.argv0 is not None and func is None else source.identity.name
            if source.kind == "component":
                if func is not None:
                    raise UsageError("--invoke works on core modules; this is a component (it runs wasi:cli/run)")
                wasi = WasiSpec([program, *map(str, args)], opts.env, dir_specs, opts.stdin)
                run_component(rec, source, handle, compiled, lim, wasi, self._capture(lim.max_output), self.memory_stats, sinks)
            else:
                wasi = WasiSpec([program, *map(str, args)] if func is None else [program], opts.env, dir_specs, opts.stdin)
                observers: tuple[InvocationObserver, ...] = () if audit_run is None else (audit_run,)
                if session is not None:
                    observers = (session, *observers)
                key = rewritten.key if rewritten is not None else source.sha256
                self._run_module(rec, source, handle, compiled, lim, func, wasi, args, sinks, observers, key)
        finally:
            if source.path is not None and source is not module:  # the caller's source keeps its bytes
                source.drop_bytes()
        return self._finish(rec, session)

    def _plan(self, rec: InvocationRecord, source: ModuleSource) -> CountersPlan | None:
        """The instrumented twin (timed as the ``instrument`` attribute of the compile
        phase); None and an ERROR record when the pass refuses the module."""
        from pathlib import Path

        from wasmscope.errors import DecodeError

        t0 = time.perf_counter()
        cache_dir = Path(self.disk.root) / "instrumented" if self.disk is not None else None
        try:
            plan = plan_for(source, cache_dir)
        except (DecodeError, UsageError) as exc:
            rec.outcome = Outcome.ERROR
            rec.error = f"{source.identity.name} cannot be instrumented: {exc}"
            return None
        rec.attributes["wasm.instrument_seconds"] = time.perf_counter() - t0
        return plan

    def _audit_plan(
        self, rec: InvocationRecord, source: ModuleSource, settings: AuditSettings, counted: bool
    ) -> AuditPlan | None:
        """The audited twin (timed as ``wasm.audit_seconds``); None and an ERROR record
        when the pass refuses the module."""
        t0 = time.perf_counter()
        cache_dir = self._audit_dir
        if cache_dir is None and self.disk is not None:
            from pathlib import Path  # once per Runtime: an import statement costs µs a run

            cache_dir = self._audit_dir = Path(self.disk.root) / "instrumented"
        try:
            plan = audit_plan_for(source, cache_dir, settings, counted)
        except (DecodeError, UsageError) as exc:
            rec.outcome = Outcome.ERROR
            rec.error = f"{source.identity.name} cannot be audited: {exc}"
            return None
        rec.attributes["wasm.audit_seconds"] = time.perf_counter() - t0
        return plan

    def _compile_phase(
        self, rec: InvocationRecord, source: ModuleSource, handle: EngineHandle, plan: _Rewritten | None = None
    ) -> Any:
        """The compiled module or component; None (and an ERROR record) if refused."""
        import wasmtime

        t0 = now()
        try:
            if plan is None:
                result = self.compile(source, handle)
            else:
                result = self.compiled.get(
                    handle.fingerprint,
                    plan.key,
                    "module",
                    compile=lambda: wasmtime.Module(handle.engine, plan.instrumented(source)),
                    deserialize=lambda path: wasmtime.Module.deserialize_file(handle.engine, path),
                    serialize=lambda m: m.serialize(),
                )
                plan.drop_bytes()
        except wasmtime.WasmtimeError as exc:
            rec.phases.append(Phase("compile", t0, now(), {"wasm.cache": "none"}))
            rec.cache = "none"
            rec.outcome = Outcome.ERROR
            rec.error = self._compile_error(source, str(exc))
            return None
        attrs: dict[str, Any] = {"wasm.cache": result.source}
        if result.compile_seconds is not None:
            attrs["wasm.compile_seconds"] = result.compile_seconds
        if result.note:
            attrs["wasm.cache.note"] = result.note
            rec.attributes["wasm.cache.note"] = result.note
        rec.phases.append(Phase("compile", t0, now(), attrs))
        rec.cache = result.source
        rec.cold_start = result.source in ("miss", "none")
        if result.entry:
            rec.attributes["wasm.cache.entry"] = result.entry
        return result.compiled

    @staticmethod
    def _compile_error(source: ModuleSource, message: str) -> str:
        where = source.identity.name
        if "legacy_exceptions" in message or "legacy exception" in message.lower():
            return (
                f"{where} uses legacy exception handling (try/catch/rethrow/delegate), which "
                f"wasmtime cannot run ({cause(message)}); rebuild it with the standard exception "
                "handling proposal (exnref, try_table)"
            )
        if source.decode_error is not None and ("magic" in source.decode_error or "version" in source.decode_error):
            return f"{where} is not a WebAssembly module: {source.decode_error}"
        return f"{where} is not a valid WebAssembly {source.kind}: {cause(message)}"

    def _run_module(
        self,
        rec: InvocationRecord,
        source: ModuleSource,
        handle: EngineHandle,
        module: wasmtime.Module,
        lim: Limits,
        func: str | None,
        wasi: WasiSpec,
        args: Sequence[Any],
        sinks: tuple[IO[bytes] | None, IO[bytes] | None],
        observers: tuple[InvocationObserver, ...] = (),
        key: str | None = None,
    ) -> None:
        """A core module: instantiate, find the entry, call it (the rest is the Invocation's).
        ``key``: the sha256 of the bytes compiled (the rewritten ones for observers)."""
        import wasmtime

        t0 = now()
        try:
            prepared = self._instance_pre(handle, key if key is not None else source.sha256, module)
        except wasmtime.WasmtimeError as link_error:
            rec.phases.append(Phase("instantiate", t0, now()))
            rec.outcome = Outcome.ERROR
            rec.error = f"{source.identity.name}: {link_error_message(str(link_error))}"
            return
        capture = self._capture(lim.max_output)
        with Invocation(rec, source, handle, lim, wasi, capture, self.memory_stats, sinks, observers, t0) as inv:
            instance = inv.instantiate(prepared.pre.instantiate)
            if instance is None:
                inv.end(inv.instantiate_failure())
                return
            store = inv.store
            if self.memory_stats == "sampled":
                prepared.memory_names = inv.sample_exported_memories(prepared.memory_names)
            name = func if func is not None else "_start"
            target = export_func(store, instance, name)
            if target is None:
                if func is not None:
                    raise UsageError(f"{source.identity.name} exports no function named {func!r}")
                rec.outcome = Outcome.ERROR
                rec.error = f"{source.identity.name} is not a command: it exports no _start function (use --invoke FUNC)"
                inv.end(None)
                return
            raw = RawFunc(store, target, name, prepared.signature(store, target, name))
            calls: list[Callable[[], list[int | float]]] = [raw]
            if func is not None:
                for a, ty in zip(args, raw.params, strict=False):
                    parse_value(a, ty)  # usage errors before running anything
                if len(args) != len(raw.params):
                    raise UsageError(
                        f"{name} takes {len(raw.params)} argument(s) ({', '.join(raw.params) or 'none'}), got {len(args)}"
                    )
                init = export_func(store, instance, "_initialize")
                calls = [lambda: raw(*args)]
                if init is not None:
                    calls.insert(0, RawFunc(store, init, "_initialize", prepared.signature(store, init, "_initialize")))
            results = inv.call(calls)
            inv.end(inv.classify())
            if func is not None and results is not None and inv.exc is None:
                rec.results = results

    def _finish(self, rec: InvocationRecord, session: CountedRun | None = None) -> InvocationRecord:
        rec.end_ns = now()
        if self.telemetry is not None:
            try:
                spans = session.spans(rec) if session is not None else ()
                if spans:  # a sink that takes no spans still works for plain runs
                    self.telemetry.record_invocation(rec, spans=spans)  # type: ignore[call-arg]
                else:
                    self.telemetry.record_invocation(rec)
            except Exception as exc:  # telemetry never fails a run
                self.telemetry_errors += 1
                log.warning("telemetry failed for invocation %s: %s", rec.invocation_id, exc)
        return rec


_DEFAULT: Runtime | None = None
_DEFAULT_LOCK = threading.Lock()
_LIVE: weakref.WeakSet[Runtime] = weakref.WeakSet()


@atexit.register
def _close_runtimes() -> None:
    # Registered after the engine module's hook, so it runs first: the compiled modules
    # and InstancePre objects go while wasmtime's bindings still exist.
    for rt in list(_LIVE):
        rt.close()


def default_runtime() -> Runtime:
    """The process-wide Runtime behind :func:`run` (disk cache on, default limits)."""
    global _DEFAULT
    with _DEFAULT_LOCK:
        if _DEFAULT is None or _DEFAULT._closed:
            _DEFAULT = Runtime()
        return _DEFAULT


def run(
    module: Source,
    args: Sequence[str] = (),
    options: RunOptions | None = None,
    *,
    invoke: str | None = None,
    **changes: Any,
) -> InvocationRecord:
    """Run a module or component once and return its :class:`InvocationRecord`.

    ``invoke="FUNC"`` calls that export with ``args`` instead of running ``_start``;
    ``options`` and ``changes`` as for :meth:`Runtime.run`. Shares one process-wide
    :class:`Runtime` (and its caches) across calls."""
    rt = default_runtime()
    opts = with_changes(options, changes)
    if invoke is not None:
        return rt.invoke(module, invoke, args, opts)
    return rt.run(module, args, opts)
