"""``wasmscope.profile(...)``: run a module instrumented, sampled, and get its profile.

::

    import wasmscope

    record, prof = wasmscope.profile("app.wasm", ["arg"], rate=1000)
    prof.calls["fib"]                       # exact, from the module's own counters
    prof.host_calls["wasi_snapshot_preview1.fd_write"]
    for row in prof.top(10): print(row.name, row.calls, f"{row.self_pct:.1f}%")
    open("app.speedscope.json", "wb").write(prof.dumps("speedscope"))
    open("app.svg", "w").write(prof.to_svg())
    record.call_counts, record.trap and record.trap.frames   # the whole stack on a trap
"""

from __future__ import annotations

import os
from collections.abc import Sequence
from dataclasses import replace
from typing import TYPE_CHECKING, Any

from wasmscope.errors import UsageError
from wasmscope.profile.model import Profile
from wasmscope.profile.sampler import Sampler
from wasmscope.profile.spans import DEFAULT_MAX_SPANS, SpanBuilder, execute_bounds
from wasmscope.runtime.options import RunOptions, with_changes

if TYPE_CHECKING:
    from wasmscope.runtime.record import InvocationRecord
    from wasmscope.runtime.runner import Runtime
    from wasmscope.telemetry.pipeline import SpanNode

__all__ = ["profile"]

Source = str | os.PathLike[str] | bytes | bytearray | memoryview


def profile(
    module: Source,
    args: Sequence[str] = (),
    options: RunOptions | None = None,
    *,
    invoke: str | None = None,
    rate: float = 1000.0,
    mode: str = "thread",
    spans_threshold: float | None = None,
    max_spans: int = DEFAULT_MAX_SPANS,
    runtime: Runtime | None = None,
    telemetry: Any = None,
    parent: str | None = None,
    **run_options: Any,
) -> tuple[InvocationRecord, Profile]:
    """Run ``module`` (a core module: WASI command, or ``invoke="FUNC"`` for an
    export) rewritten to keep its own shadow stack and call counters, sample that
    stack ``rate`` times a second (``mode``: ``"thread"`` or ``"epoch"``, see
    :mod:`wasmscope.profile.sampler`), and return its record and its :class:`Profile`.

    ``spans_threshold`` (seconds): span mode: the calls inferred to last at least
    that long become :class:`~wasmscope.telemetry.SpanNode` trees (``profile.spans``;
    approximate to one sampling interval, see :mod:`wasmscope.profile.spans`), sent
    under the invocation's ``execute`` span when there is telemetry: ``telemetry``
    (a :class:`~wasmscope.telemetry.Telemetry`; ``parent``: a W3C traceparent) or the
    ``runtime``'s own. ``runtime``: the :class:`~wasmscope.runtime.Runtime` to run in
    (default: the process-wide one, or a fresh one with ``telemetry``).
    ``options`` (a :class:`~wasmscope.runtime.options.RunOptions`) and ``run_options``
    (its fields as keywords): as for :meth:`Runtime.run`; ``invoke="FUNC"`` calls
    that export instead of ``_start``.

    Raises :class:`~wasmscope.errors.UsageError` for a component (not supported yet),
    a bad rate or mode, and what :meth:`Runtime.run` refuses."""
    if spans_threshold is not None and spans_threshold < 0:
        raise UsageError("spans_threshold must be >= 0 seconds")
    sampler = Sampler(rate, mode=mode)
    builder: SpanBuilder | None = None
    made: list[SpanNode] = []
    done = False
    if spans_threshold is not None:
        builder = SpanBuilder(round(spans_threshold * 1e9), 1e9 / rate)
        sampler.on_sample = builder.feed

        def spans_for(record: InvocationRecord) -> Sequence[SpanNode]:
            nonlocal done
            if not done and builder is not None:
                done = True
                made[:] = builder.span_nodes(
                    sampler.names, sampler.unix_ns, bounds=execute_bounds(record), max_spans=max_spans
                )
            return made

        sampler.spans_for = spans_for

    own: Runtime | None = None
    rt = runtime
    if rt is None:
        from wasmscope.runtime.runner import Runtime, default_runtime

        rt = own = Runtime(telemetry=telemetry) if telemetry is not None else None
        if rt is None:
            rt = default_runtime()
    opts = replace(with_changes(options, run_options), observer=sampler)
    try:
        if invoke is not None:
            rec = rt.invoke(module, invoke, list(args), opts)
        else:
            rec = rt.run(module, args, opts)
    finally:
        if own is not None:
            own.close()
    prof = Profile.from_run(rec, sampler)
    if sampler.spans_for is not None:
        prof.spans = list(sampler.spans_for(rec))
    if telemetry is not None and rt.telemetry is not telemetry:
        telemetry.record_invocation(rec, parent, spans=prof.spans)
    return rec, prof
