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

from typing import IO, TYPE_CHECKING, Any

from wasmscope.runtime.invocation import Invocation, now
from wasmscope.runtime.record import InvocationRecord, Outcome, Phase
from wasmscope.runtime.trap import Ending

if TYPE_CHECKING:
    from wasmscope.runtime.engine import EngineHandle
    from wasmscope.runtime.identity import ModuleSource
    from wasmscope.runtime.limits import Limits
    from wasmscope.runtime.wasi import OutputCapture, WasiSpec

__all__ = ["find_run_export", "run_component"]


def find_run_export(source: ModuleSource) -> str | None:
    """The exported ``wasi:cli/run@VERSION`` instance name, if any (read at identification)."""
    return source.run_export


def run_component(
    rec: InvocationRecord,
    source: ModuleSource,
    handle: EngineHandle,
    comp: Any,
    lim: Limits,
    wasi: WasiSpec,
    capture: OutputCapture,
    memory_stats: str,
    sinks: tuple[IO[bytes] | None, IO[bytes] | None],
) -> None:
    """A command component: instantiate, find ``run``, call it (the rest is the Invocation's)."""
    t0 = now()
    iface = find_run_export(source)
    if iface is None:
        rec.phases.append(Phase("instantiate", t0, now()))
        rec.outcome = Outcome.ERROR
        rec.error = (
            f"{source.identity.name} is not a command component: it does not export wasi:cli/run"
        )
        return
    rec.entry = f"{iface}#run"
    with Invocation(rec, source, handle, lim, wasi, capture, memory_stats, sinks, (), t0) as inv:
        inv.unobserved_memory = "none (component memories are not reachable; use exact)"
        instance = inv.instantiate(lambda store: handle.component_linker.instantiate(store, comp))
        if instance is None:
            # As for a core module: a missing import names it, a memory above the limit is
            # out of memory, the rest (a trap in a start function, the timeout) is classified.
            inv.end(inv.instantiate_failure())
            return
        store = inv.store
        func = None
        idx = instance.get_export_index(store, iface)
        if idx is not None:
            fidx = instance.get_export_index(store, "run", idx)
            if fidx is not None:
                func = instance.get_func(store, fidx)
        if func is None:
            inv.end(
                Ending(Outcome.ERROR, error=f"{source.identity.name}: {iface} has no run function")
            )
            return

        def call() -> Any:
            result = func(store)
            func.post_return(store)
            return result

        result = inv.call([call])
        ending = inv.classify()
        if inv.exc is None and getattr(result, "tag", "ok") == "err":
            ending = Ending(Outcome.EXIT, exit_code=1)
        inv.end(ending)
