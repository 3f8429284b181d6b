"""Invocation records and request spans -> OTLP spans and log records (plain data, or
encoded straight to OTLP ``Span`` messages: the exporter's per-request work)."""

from __future__ import annotations

import random
import time
from collections.abc import Collection, Iterator, Mapping
from typing import TYPE_CHECKING, Any

from wasmscope.telemetry import mapping, wire
from wasmscope.telemetry import semconv as sc
from wasmscope.telemetry._span_data import (
    FLAGS_LOCAL,
    FLAGS_REMOTE,
    KINDS,
    SEVERITY_WARN,
    SPAN_PHASES,
    Invocation,
    LogData,
    RequestSpan,
    SpanData,
    fixed64,
    invocation_bounds,
    name_field,
    status_field,
    times,
)

if TYPE_CHECKING:
    from wasmscope.runtime.record import InvocationRecord, Phase

__all__ = ["encode_request", "invocation_items", "request_items", "stderr_logs"]

_getrandbits = random.getrandbits
_time_ns = time.time_ns
_CHILD_PARTS: dict[
    str, tuple[bytes, bytes]
] = {}  # phase -> (name and kind, wasm.phase and flags) of its span


# --- records -> spans and logs -------------------------------------------------------------------
_PHASE_BLOCKS: dict[
    str, tuple[Mapping[str, Any], bytes]
] = {}  # phase name -> its wasm.phase attribute


def _phases_sent(
    rec: InvocationRecord, fail: mapping.Failure | None
) -> Iterator[tuple[Phase, bool, tuple[Mapping[str, Any], bytes]]]:
    """The phases that become child spans (``SPAN_PHASES``, all of them on a cold start,
    the last one of a failed run), whether each is where the run failed, and its
    encoded ``wasm.phase`` attribute."""
    phases = rec.phases
    last = len(phases) - 1
    cold = rec.cold_start or rec.cache != "memory"
    for i, p in enumerate(phases):
        failed_here = fail is not None and i == last
        if p.name not in SPAN_PHASES and not cold and not failed_here:
            continue
        block = _PHASE_BLOCKS.get(p.name)
        if block is None:
            enc: list[bytes] = []
            wire.attributes(b"\x4a", {sc.WASM_PHASE: p.name}, enc)
            block = _PHASE_BLOCKS[p.name] = ({sc.WASM_PHASE: p.name}, b"".join(enc))
        yield p, failed_here, block


def _phase_spans(
    rec: InvocationRecord,
    trace_id: int,
    parent: int,
    fail: mapping.Failure | None,
    out: list[SpanData],
) -> None:
    for p, failed_here, block in _phases_sent(rec, fail):
        attrs = mapping.clean_attributes(p.attributes) if p.attributes else {}
        attrs.pop(sc.WASM_PHASE, None)
        if failed_here:
            out.append(
                SpanData(
                    trace_id, _getrandbits(64) or 1, parent, p.name, wire.KIND_INTERNAL, p.start_ns, max(p.end_ns, p.start_ns),
                    attrs, static=(block,), status_code=wire.STATUS_ERROR,
                    status_message=fail.description if fail is not None else "",
                )
            )  # fmt: skip
        else:
            out.append(
                SpanData(
                    trace_id,
                    _getrandbits(64) or 1,
                    parent,
                    p.name,
                    wire.KIND_INTERNAL,
                    p.start_ns,
                    max(p.end_ns, p.start_ns),
                    attrs,
                    static=(block,),
                )
            )


def stderr_logs(
    rec: InvocationRecord,
    trace_id: int,
    span_id: int,
    sampled: bool,
    max_lines: int,
    max_bytes: int,
    out: list[LogData],
    sanitize: bool = False,
) -> None:
    if not rec.stderr and not rec.stderr_truncated:
        return
    g = mapping.guest_lines(
        "stderr", rec.stderr, max_lines=max_lines, max_bytes=max_bytes, capped=rec.stderr_truncated,
        sanitize=sanitize,
    )
    if not g.lines and not g.truncated:
        return
    execute = rec.phase("execute")
    at = execute.end_ns if execute is not None else (rec.end_ns or _time_ns())
    now = _time_ns()
    base = {sc.LOG_IOSTREAM: "stderr", sc.FAAS_INVOCATION_ID: rec.invocation_id}
    n = len(g.lines) + (1 if g.truncated else 0)
    for i, line in enumerate(g.lines):
        out.append(
            LogData(
                at - (n - i), now, SEVERITY_WARN, "WARN", line, base, trace_id, span_id, sampled
            )
        )
    if g.truncated:
        body, attrs = g.truncation_notice(base)
        out.append(
            LogData(at - 1, now, SEVERITY_WARN, "WARN", body, attrs, trace_id, span_id, sampled)
        )


_STATIC: dict[tuple[Any, ...], tuple[dict[str, Any], bytes]] = {}


def _static_attrs(rec: InvocationRecord, trigger: str) -> tuple[dict[str, Any], bytes]:
    """The attributes that stay the same from one invocation of a module version to
    the next (its identity, entry and limits), as a dict and encoded, made once."""
    m = rec.module
    key = (
        trigger,
        m.sha256,
        m.name,
        m.size,
        m.kind,
        rec.entry,
        rec.memory_limit,
        rec.timeout,
        rec.fuel_limit,
    )
    hit = _STATIC.get(key)
    if hit is None:
        attrs: dict[str, Any] = {
            sc.FAAS_TRIGGER: trigger,
            sc.FAAS_NAME: mapping.span_name(rec),
            sc.WASM_MODULE_SHA256: m.sha256,
            sc.WASM_MODULE_NAME: m.name,
            sc.WASM_MODULE_SIZE: m.size,
            sc.WASM_MODULE_KIND: m.kind,
            sc.WASM_ENTRY: rec.entry,
        }
        if rec.memory_limit is not None:
            attrs[sc.FAAS_MAX_MEMORY] = rec.memory_limit
        if rec.fuel_limit is not None:
            attrs[sc.WASM_FUEL_LIMIT] = rec.fuel_limit
        if rec.timeout is not None:
            attrs[sc.WASM_TIMEOUT] = float(rec.timeout)
        out: list[bytes] = []
        wire.attributes(b"\x4a", attrs, out)
        if len(_STATIC) >= 256:
            _STATIC.clear()
        hit = _STATIC[key] = (attrs, b"".join(out))
    return hit


_EMPTY: Mapping[str, Any] = {}
# every attribute that the server span gets from the record or the HTTP request:
# extra attributes of the same name are left out (the conventions win)
_TAKEN = frozenset({
    sc.FAAS_TRIGGER, sc.FAAS_NAME, sc.FAAS_INVOCATION_ID, sc.FAAS_COLDSTART, sc.FAAS_MAX_MEMORY, sc.ERROR_TYPE,
    sc.WASM_MODULE_SHA256, sc.WASM_MODULE_NAME, sc.WASM_MODULE_SIZE, sc.WASM_MODULE_KIND, sc.WASM_ENTRY,
    sc.WASM_OUTCOME, sc.WASM_CACHE, sc.WASM_STDOUT_BYTES, sc.WASM_STDERR_BYTES, sc.WASM_EXIT_CODE,
    sc.WASM_FUEL_CONSUMED, sc.WASM_FUEL_LIMIT, sc.WASM_MEMORY_PEAK, sc.WASM_MEMORY_GROW_COUNT, sc.WASM_TIMEOUT,
    sc.WASM_CPU_TIME, sc.WASM_STDOUT_TRUNCATED, sc.WASM_STDERR_TRUNCATED, sc.WASM_TRAP_CODE,
    sc.WASM_TRAP_FRAMES_TRUNCATED, sc.WASM_CALLS_TOTAL, sc.WASM_CALLS_TOP, sc.WASM_HOST_CALLS_TOTAL, sc.WASM_HOST_CALLS,
    "http.response.status_code", "client.address", "client.port", "url.query",
})  # fmt: skip


def _invocation_attrs(
    rec: InvocationRecord, attrs: dict[str, Any], fail: mapping.Failure | None
) -> None:
    """The per-invocation attributes of :func:`mapping.span_attributes` (without the
    static ones), into ``attrs`` (the server span's: its keys win, but ``error.type``)."""
    attrs[sc.FAAS_INVOCATION_ID] = rec.invocation_id
    attrs[sc.FAAS_COLDSTART] = bool(rec.cold_start)
    attrs[sc.WASM_OUTCOME] = rec.outcome
    attrs[sc.WASM_CACHE] = rec.cache
    attrs[sc.WASM_STDOUT_BYTES] = rec.stdout_bytes
    attrs[sc.WASM_STDERR_BYTES] = rec.stderr_bytes
    if rec.exit_code is not None:
        attrs[sc.WASM_EXIT_CODE] = rec.exit_code
    if rec.fuel_consumed is not None:
        attrs[sc.WASM_FUEL_CONSUMED] = rec.fuel_consumed
    if rec.peak_memory is not None:
        attrs[sc.WASM_MEMORY_PEAK] = rec.peak_memory
    if rec.memory_grow_count is not None:
        attrs[sc.WASM_MEMORY_GROW_COUNT] = rec.memory_grow_count
    if rec.cpu_seconds is not None:
        attrs[sc.WASM_CPU_TIME] = rec.cpu_seconds
    if rec.stdout_truncated:
        attrs[sc.WASM_STDOUT_TRUNCATED] = True
    if rec.stderr_truncated:
        attrs[sc.WASM_STDERR_TRUNCATED] = True
    if rec.trap is not None:
        attrs[sc.WASM_TRAP_CODE] = rec.trap.kind
        if rec.trap.frames_truncated:
            attrs[sc.WASM_TRAP_FRAMES_TRUNCATED] = True
    if rec.call_counts is not None or rec.host_calls is not None:
        for k, v in mapping.span_attributes(rec).items():
            if k.startswith(("wasm.calls.", "wasm.host_calls")):
                attrs[k] = v
    if fail is not None:
        attrs[sc.ERROR_TYPE] = fail.error_type  # the trap code says more than "500"


_INVOCATION_BLOCKS: dict[tuple[Any, ...], bytes] = {}
_ONCE_PER_INVOCATION = (sc.FAAS_INVOCATION_ID, sc.WASM_CPU_TIME, sc.WASM_FUEL_CONSUMED)


def _invocation_fields(
    rec: InvocationRecord, fail: mapping.Failure | None, out: list[bytes]
) -> None:
    """Append the attributes of :func:`_invocation_attrs` to ``out``, encoded. A run
    that did not fail repeats them from one request to the next but for its invocation
    id, CPU time and fuel: the rest is one cached block."""
    if (
        fail is not None
        or rec.trap is not None
        or rec.call_counts is not None
        or rec.host_calls is not None
    ):
        attrs: dict[str, Any] = {}
        _invocation_attrs(rec, attrs, fail)
        wire.attributes(b"\x4a", attrs, out)
        return
    key = (
        rec.cold_start, rec.outcome, rec.cache, rec.stdout_bytes, rec.stderr_bytes, rec.exit_code, rec.peak_memory,
        rec.memory_grow_count, rec.stdout_truncated, rec.stderr_truncated,
    )  # fmt: skip
    block = _INVOCATION_BLOCKS.get(key)
    if block is None:
        attrs = {}
        _invocation_attrs(rec, attrs, None)
        for k in _ONCE_PER_INVOCATION:
            attrs.pop(k, None)
        enc: list[bytes] = []
        wire.attributes(b"\x4a", attrs, enc)
        if len(_INVOCATION_BLOCKS) >= 1024:
            _INVOCATION_BLOCKS.clear()
        block = _INVOCATION_BLOCKS[key] = b"".join(enc)
    out.append(wire.string_attribute(b"\x4a", sc.FAAS_INVOCATION_ID, rec.invocation_id))
    out.append(block)
    if rec.fuel_consumed is not None:
        wire.attributes(b"\x4a", ((sc.WASM_FUEL_CONSUMED, rec.fuel_consumed),), out)
    if rec.cpu_seconds is not None:
        out.append(wire.double_attribute(b"\x4a", sc.WASM_CPU_TIME, rec.cpu_seconds))


_EXTRAS: dict[tuple[Any, ...], tuple[Mapping[str, Any], bytes]] = {}


def _extra_attrs(
    rec: InvocationRecord, taken: Collection[str], base: Mapping[str, Any]
) -> tuple[Mapping[str, Any], bytes] | None:
    """The caller's and the runtime's extra attributes of the record (``wasm.runtime``,
    ``wasm.engine.fingerprint``, ``wasm.memory.*``, the gateway's ``http.*``...), those
    not already set: they repeat from one invocation of a route to the next, so they
    are encoded once per distinct set (None when there are none). The cache is keyed
    by the record's attributes alone: ``taken`` is always the same set, and the keys of
    ``base`` that the record also has (the gateway's ``http.request.method``,
    ``http.route``, ``url.path``) are in every request's ``base``."""
    if not rec.attributes:
        return None
    try:
        key: tuple[Any, ...] = tuple(rec.attributes.items())
        hit = _EXTRAS.get(key)
    except TypeError:  # an unhashable value: no cache
        key, hit = (), None
    if hit is not None:
        return hit
    attrs: dict[str, Any] = {}
    for k, v in rec.attributes.items():
        if k not in taken and k not in base:
            clean = mapping._clean_value(v)
            if clean is not None:
                attrs[str(k)] = clean
    out: list[bytes] = []
    wire.attributes(b"\x4a", attrs, out)
    block = (attrs, b"".join(out))
    if key:
        if len(_EXTRAS) >= 256:
            _EXTRAS.clear()
        _EXTRAS[key] = block
    return block


def _described(req: RequestSpan) -> None:
    describe = req.describe
    if describe is not None:
        req.describe = None
        describe(req)
        req.context = None


def request_items(
    req: RequestSpan, max_lines: int, max_bytes: int, sanitize: bool = False
) -> tuple[list[SpanData], list[LogData]]:
    """The spans (the server span first) and stderr log records of a finished request."""
    _described(req)
    spans: list[SpanData] = []
    logs: list[LogData] = []
    attrs = req.attrs
    events: list[tuple[str, int, Mapping[str, Any]]] = []
    status_code = wire.STATUS_ERROR if req.error else 0
    message = ""
    rec = req.record
    static: list[tuple[Mapping[str, Any], bytes]] = [req.base] if req.base is not None else []
    fail = None
    if rec is not None:
        fail = mapping.failure(rec)
        static.append(_static_attrs(rec, sc.TRIGGER_HTTP))
        _invocation_attrs(rec, attrs, fail)
        extras = _extra_attrs(rec, _TAKEN, req.base[0] if req.base is not None else _EMPTY)
        if extras is not None:
            static.append(extras)
        if fail is not None:
            events.append((sc.EXCEPTION_EVENT, rec.end_ns or req.end_ns, fail.exception))
            if req.error:
                message = fail.description
    if req.exception is not None:
        message = _add_request_exception(req.exception, req.end_ns, events, message)
    if req.sampled:
        spans.append(
            SpanData(
                req.trace_id, req.span_id, req.parent_span_id, req.name, wire.KIND_SERVER, req.start_ns, req.end_ns, attrs,
                events=events, status_code=status_code, status_message=message, trace_state=req.trace_state,
                remote_parent=bool(req.parent_span_id), static=static,
            )
        )  # fmt: skip
        if rec is not None:
            _phase_spans(rec, req.trace_id, req.span_id, fail, spans)
    if rec is not None:
        stderr_logs(rec, req.trace_id, req.span_id, req.sampled, max_lines, max_bytes, logs, sanitize)
    return spans, logs


def encode_request(req: RequestSpan) -> list[bytes]:
    """The OTLP ``Span`` messages of a sampled, finished request: the same bytes as
    :func:`request_items` then :meth:`SpanData.encode`, in one pass without the
    intermediate objects (this is the OTLP exporter's per-request work)."""
    _described(req)
    rec = req.record
    tid = req.trace_id.to_bytes(16, "big")
    sid = req.span_id.to_bytes(8, "big")
    out = [b"\x0a\x10", tid, b"\x12\x08", sid]
    if req.trace_state:
        ts = req.trace_state.encode("latin-1", "replace")
        out += (b"\x1a", wire.varint(len(ts)), ts)
    if req.parent_span_id:
        out += (b"\x22\x08", req.parent_span_id.to_bytes(8, "big"))
    out += (
        name_field(req.name),
        KINDS[wire.KIND_SERVER],
        times(0x39, req.start_ns, 0x41, req.end_ns),
    )
    base = req.base
    if base is not None:
        out.append(base[1])
    attrs = req.attrs
    fail = None
    message = ""
    events: list[tuple[str, int, Mapping[str, Any]]] = []
    if rec is not None:
        fail = mapping.failure(rec)
        out.append(_static_attrs(rec, sc.TRIGGER_HTTP)[1])
        extras = _extra_attrs(rec, _TAKEN, base[0] if base is not None else _EMPTY)
        if extras is not None:
            out.append(extras[1])
        if fail is not None:
            events.append((sc.EXCEPTION_EVENT, rec.end_ns or req.end_ns, fail.exception))
            if req.error:
                message = fail.description
            attrs = {
                k: v for k, v in attrs.items() if k != sc.ERROR_TYPE
            }  # the record's error.type wins
        _invocation_fields(rec, fail, out)
    wire.attributes(b"\x4a", attrs, out)
    if req.exception is not None:
        message = _add_request_exception(req.exception, req.end_ns, events, message)
    for n, t, a in events:
        ev = wire.span_event(n, t, a)
        out += (b"\x5a", wire.varint(len(ev)), ev)
    if req.error or message:
        out.append(status_field(wire.STATUS_ERROR if req.error else 0, message))
    out.append(FLAGS_REMOTE if req.parent_span_id else FLAGS_LOCAL)
    spans = [b"".join(out)]
    if rec is None:
        return spans
    head = b"\x0a\x10" + tid + b"\x12\x08"
    parent = b"\x22\x08" + sid
    for p, failed_here, block in _phases_sent(rec, fail):
        if not failed_here and not p.attributes:  # the usual child: all but ids and times made once
            parts = _CHILD_PARTS.get(p.name)
            if parts is None:
                parts = _CHILD_PARTS[p.name] = (
                    name_field(p.name) + KINDS[wire.KIND_INTERNAL],
                    block[1] + FLAGS_LOCAL,
                )
            sid_child = (_getrandbits(64) or 1).to_bytes(8, "big")
            spans.append(
                b"".join(
                    (
                        head,
                        sid_child,
                        parent,
                        parts[0],
                        times(0x39, p.start_ns, 0x41, max(p.end_ns, p.start_ns)),
                        parts[1],
                    )
                )
            )
            continue
        child = [
            head, (_getrandbits(64) or 1).to_bytes(8, "big"), parent, name_field(p.name), KINDS[wire.KIND_INTERNAL],
            b"\x39", fixed64(p.start_ns), b"\x41", fixed64(max(p.end_ns, p.start_ns)), block[1],
        ]  # fmt: skip
        if p.attributes:
            pa = mapping.clean_attributes(p.attributes)
            pa.pop(sc.WASM_PHASE, None)
            wire.attributes(b"\x4a", pa, child)
        if failed_here:
            child.append(
                status_field(wire.STATUS_ERROR, fail.description if fail is not None else "")
            )
        child.append(FLAGS_LOCAL)
        spans.append(b"".join(child))
    return spans


def invocation_items(
    inv: Invocation, max_lines: int, max_bytes: int, sanitize: bool = False
) -> tuple[list[SpanData], list[LogData]]:
    rec = inv.record
    spans: list[SpanData] = []
    logs: list[LogData] = []
    fail = mapping.failure(rec)
    if inv.sampled:
        start, end = invocation_bounds(rec)
        events = [(sc.EXCEPTION_EVENT, end, fail.exception)] if fail is not None else []
        spans.append(
            SpanData(
                inv.trace_id, inv.span_id, inv.parent_span_id, mapping.span_name(rec), wire.KIND_SERVER, start, end,
                dict(mapping.span_attributes(rec, inv.trigger)), events=events,
                status_code=wire.STATUS_ERROR if fail is not None else 0,
                status_message=fail.description if fail is not None else "",
                trace_state=inv.trace_state, remote_parent=bool(inv.parent_span_id),
            )
        )  # fmt: skip
        _phase_spans(rec, inv.trace_id, inv.span_id, fail, spans)
    stderr_logs(rec, inv.trace_id, inv.span_id, inv.sampled, max_lines, max_bytes, logs, sanitize)
    return spans, logs


def _add_request_exception(
    exc: BaseException, end_ns: int, events: list[Any], message: str
) -> str:
    """Add the ``exception`` event of an exception the request itself raised (not the
    guest's); the status message it gives, unless one is set already."""
    events.append(
        (
            sc.EXCEPTION_EVENT,
            end_ns,
            {sc.EXCEPTION_TYPE: type(exc).__qualname__, sc.EXCEPTION_MESSAGE: str(exc)},
        )
    )
    return message or f"{type(exc).__name__}: {exc}"
