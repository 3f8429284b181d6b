"""Running guests under wasmtime with limits, and observing them.

This is the only package that imports ``wasmtime``, and only when something runs:
``import wasmscope.runtime`` (and the record, the limits) stays light, so telemetry
and reports can use :class:`InvocationRecord` without wasmtime installed.

    from wasmscope.runtime import Runtime, Limits
    with Runtime() as rt:
        record = rt.run("app.wasm", ["arg"], limits=Limits(timeout=2.0))

Modules, one concept each: ``limits`` (Limits, size/duration parsing), ``engine``
(settings, shared engines, epoch ticker), ``compiled_cache`` (compiled modules on disk
and in memory), ``identity`` (sha256, name, producers, symbols), ``wasi`` (the guest's
world, captured output), ``watchdog`` (timeout, output cap, Ctrl-C per store),
``memory`` (peak memory and grow counts), ``calls`` (raw fast calls), ``gil_calls``
(short C calls that keep the GIL), ``guest_counters`` (instrumented runs: the counters
the guest keeps itself), ``trap``
(outcome and symbolized frames), ``invocation`` (one guest run's lifecycle and
its observers), ``options`` (RunOptions), ``command_component``
(wasi:cli/run components), ``runner`` (Runtime, run),
``record`` (the InvocationRecord contract), ``requirement`` (the supported wasmtime-py),
``_wasmtime_internals`` (wasmtime-py's private layer, in one place).
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from wasmscope._lazy import lazy_exports

if TYPE_CHECKING:
    from wasmscope.runtime.engine import EngineSettings, RuntimeUnavailable
    from wasmscope.runtime.limits import Limits, parse_duration, parse_size
    from wasmscope.runtime.options import RunOptions
    from wasmscope.runtime.record import (
        Frame,
        InvocationRecord,
        ModuleIdentity,
        Outcome,
        Phase,
        TrapInfo,
    )
    from wasmscope.runtime.runner import Runtime, run
    from wasmscope.runtime.wasi import DirSpec

__all__ = [
    "DirSpec",
    "EngineSettings",
    "Frame",
    "InvocationRecord",
    "Limits",
    "ModuleIdentity",
    "Outcome",
    "Phase",
    "RunOptions",
    "Runtime",
    "RuntimeUnavailable",
    "TrapInfo",
    "parse_duration",
    "parse_size",
    "run",
]

_LAZY = {
    "DirSpec": "wasmscope.runtime.wasi",
    "EngineSettings": "wasmscope.runtime.engine",
    "RuntimeUnavailable": "wasmscope.runtime.requirement",
    "Frame": "wasmscope.runtime.record",
    "InvocationRecord": "wasmscope.runtime.record",
    "ModuleIdentity": "wasmscope.runtime.record",
    "Outcome": "wasmscope.runtime.record",
    "Phase": "wasmscope.runtime.record",
    "TrapInfo": "wasmscope.runtime.record",
    "Limits": "wasmscope.runtime.limits",
    "parse_duration": "wasmscope.runtime.limits",
    "parse_size": "wasmscope.runtime.limits",
    "RunOptions": "wasmscope.runtime.options",
    "Runtime": "wasmscope.runtime.runner",
    "run": "wasmscope.runtime.runner",
}

__getattr__, __dir__ = lazy_exports(__name__, _LAZY, __all__)
