"""Running a ``wasi:cli/run`` command component (WASI preview 2), into the same record.

``wasmtime.component`` with ``Linker.add_wasip2()``: the store gets the same WasiConfig
as a core module (arguments, environment, dirs, stdin, captured output), the same
watchdog (timeout, output cap, Ctrl-C) and limits. ``run`` returns ``result``:
``ok`` is exit code 0, ``err`` exit code 1 (as ``wasmtime run``); ``wasi:cli/exit``
ends with its code.

Memory: the component's core memories are not reachable through wasmtime-py, so the
``sampled`` method records no peak for components; ``exact`` (the memory creator) sees
them all.
"""

from __future__ import annotations

import time
from collections.abc import Mapping, Sequence
from typing import IO, TYPE_CHECKING, Any

from wasmscope.runtime import watchdog
from wasmscope.runtime.memory import MemoryTracker, tracking
from wasmscope.runtime.record import InvocationRecord, Outcome, Phase
from wasmscope.runtime.trap import Ending, classify
from wasmscope.runtime.wasi import DirSpec, Stdin, WasiSpec, build_wasi_config

if TYPE_CHECKING:
    from wasmscope.runtime.engine import EngineHandle
    from wasmscope.runtime.identity import ModuleSource
    from wasmscope.runtime.limits import Limits
    from wasmscope.runtime.runner import Runtime

__all__ = ["find_run_export", "run_component"]


def find_run_export(source: ModuleSource) -> str | None:
    """The exported ``wasi:cli/run@VERSION`` instance name, if any (read at identification)."""
    return source.run_export


def run_component(
    runtime: Runtime,
    rec: InvocationRecord,
    source: ModuleSource,
    handle: EngineHandle,
    comp: Any,
    lim: Limits,
    argv0: str | None,
    args: Sequence[Any],
    env: Mapping[str, str] | None,
    dirs: Sequence[DirSpec],
    stdin: Stdin,
    sinks: tuple[IO[bytes] | None, IO[bytes] | None],
) -> None:
    import wasmtime

    from wasmscope.runtime.runner import _cpu_since, _now, _Pump

    t0 = _now()
    iface = find_run_export(source)
    if iface is None:
        rec.phases.append(Phase("instantiate", t0, _now()))
        rec.outcome = Outcome.ERROR
        rec.error = f"{source.identity.name} is not a command component: it does not export wasi:cli/run"
        return
    rec.entry = f"{iface}#run"
    program = argv0 if argv0 is not None else source.identity.name
    capture = runtime._capture(lim.max_output)
    store = wasmtime.Store(handle.engine)
    tracker = MemoryTracker(runtime.memory_stats, limit=lim.memory_limit if runtime.memory_stats == "exact" else None)
    watch = watchdog.Watch(timeout=lim.timeout, capture=capture, tracker=tracker)
    guard = watchdog.SigintGuard(watch)
    pump = _Pump(capture, sinks) if sinks[0] is not None or sinks[1] is not None else None
    ticking = False
    exc: BaseException | None = None
    result: Any = None
    instance = None
    try:
        if lim.memory_limit is not None and runtime.memory_stats != "exact":
            store.set_limits(memory_size=lim.memory_limit)
        if lim.fuel is not None:
            store.set_fuel(lim.fuel)
        store.set_wasi(build_wasi_config(WasiSpec([program, *map(str, args)], env, dirs, stdin), capture))
        watchdog.arm(store, watch)
        guard.__enter__()
        handle.ticker.acquire()
        ticking = True
        if pump is not None:
            pump.start()
        try:
            with tracking(tracker):
                instance = handle.component_linker.instantiate(store, comp)
        except (wasmtime.Trap, wasmtime.WasmtimeError) as e:
            exc = e
        rec.phases.append(Phase("instantiate", t0, _now()))
        if instance is None:
            assert exc is not None
            # As for a core module: a missing import names it, a memory above the limit is
            # out of memory, the rest (a trap in a start function, the timeout) is classified.
            ending = runtime._instantiate_failure(exc, watch, source, tracker, lim)
        else:
            func = None
            idx = instance.get_export_index(store, iface)
            if idx is not None:
                fidx = instance.get_export_index(store, "run", idx)
                if fidx is not None:
                    func = instance.get_func(store, fidx)
            if func is None:
                ending = Ending(Outcome.ERROR, error=f"{source.identity.name}: {iface} has no run function")
            else:
                t_exec0 = _now()
                cpu0 = time.thread_time()
                try:
                    result = func(store)
                    func.post_return(store)
                except (wasmtime.Trap, wasmtime.WasmtimeError) as e:
                    exc = e
                rec.cpu_seconds = _cpu_since(cpu0)
                rec.phases.append(Phase("execute", t_exec0, _now()))
                ending = classify(
                    exc, watch=watch, source=source, tracker=tracker, memory_limit=lim.memory_limit,
                    fuel_limited=lim.fuel is not None,
                )
                if exc is None and getattr(result, "tag", "ok") == "err":
                    ending = Ending(Outcome.EXIT, exit_code=1)
        rec.outcome, rec.exit_code, rec.trap, rec.error = ending.outcome, ending.exit_code, ending.trap, ending.error
        if lim.fuel is not None:
            try:
                rec.fuel_consumed = lim.fuel - store.get_fuel()
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
        else:
            rec.attributes["wasm.memory.observed"] = "none (component memories are not reachable; use exact)"
    finally:
        guard.__exit__()
        if ticking:
            handle.ticker.release()
        watchdog.disarm(watch)
        if pump is not None and pump.is_alive():
            pump.finish()
        runtime._collect_output(rec, capture)
        del instance
        del store
    if watch.reason == watchdog.INTERRUPTED:
        raise KeyboardInterrupt
