"""The per-request telemetry of ``wasmscope serve``, without the OpenTelemetry SDK's
per-span objects.

The SDK costs ~70-100 µs of Python per span made and encoded; a serve request costs
~200-400 µs in all, so serve's spans and log records are plain data here:

- :class:`RequestSpan`: the HTTP server span of one request, opened by
  :meth:`DirectPipeline.start_request` (W3C trace context in, the sampler's decision,
  fresh ids: a few µs) or :meth:`DirectPipeline.open_request` (serve's middleware: its
  name and attributes are made later, with the encoding), ended by
  :meth:`DirectPipeline.end_request`. The invocation record that
  :meth:`~wasmscope.telemetry.Telemetry.record_invocation` gets for the span (or its
  ``traceparent``) is folded into it (``faas.*`` and ``wasm.*`` attributes:
  the FaaS conventions put them on the server span of an HTTP-triggered function),
  and becomes its children ``instantiate`` and ``execute`` (``load`` and ``compile``
  too on a cold start, or when the invocation failed there).
- The guest's stderr lines become log records with the trace and span ids; stdout is
  the HTTP response and is not logged.
- Finished requests wait in a bounded queue (full: dropped and counted, the request
  never waits) for a background thread that sends them as OTLP/HTTP protobuf
  (:mod:`wasmscope.telemetry.wire`, with ``http.client`` on a kept-alive connection)
  or JSON lines, in batches. For OTLP they are encoded before, 32 at a time on a
  request's thread (the exporter thread would have to take the GIL from the request
  threads), their metrics counted then too. The console and in-memory outputs get
  them at once, on the request's thread.
- Metrics: :class:`ServeMetrics` aggregates the invocation metrics of
  :data:`semconv.METRICS` in plain counters and bucket arrays (a few µs per
  request), handed to the SDK's metric readers at each collection.
"""

from __future__ import annotations

import bisect
import gzip
import http.client
import logging
import os
import random
import ssl
import struct
import threading
import time
import urllib.parse
from collections import deque
from collections.abc import Callable, Collection, Iterator, Mapping, Sequence
from typing import IO, TYPE_CHECKING, Any

from wasmscope.telemetry import mapping, wire
from wasmscope.telemetry import semconv as sc

if TYPE_CHECKING:
    from wasmscope.runtime.record import InvocationRecord, Phase
    from wasmscope.telemetry.exporters import Destination, JsonlWriter

__all__ = [
    "DirectPipeline",
    "LogData",
    "RequestSpan",
    "ServeMetrics",
    "SpanData",
    "make_sampler",
    "parse_traceparent",
]

log = logging.getLogger("wasmscope.telemetry")

DEFAULT_MAX_QUEUE = 4096  # finished requests waiting for the exporter thread
DEFAULT_BATCH = 256  # requests per export batch
DEFAULT_DELAY = 1.0  # seconds between two exports when the batch is not full
_YIELD_EVERY = 32  # requests encoded between two GIL releases of the exporter thread
_ENCODE_BATCH = 32  # finished requests encoded together on a request's thread (OTLP only)
_sleep = time.sleep
_getrandbits = random.getrandbits
_time_ns = time.time_ns
_KIND_NAMES = {wire.KIND_INTERNAL: "INTERNAL", wire.KIND_SERVER: "SERVER"}
_STATUS_NAMES = {wire.STATUS_UNSET: "UNSET", wire.STATUS_OK: "OK", wire.STATUS_ERROR: "ERROR"}
SEVERITY_WARN = 13  # SeverityNumber.WARN
_SPAN_PHASES = ("instantiate", "execute")  # child spans of every invocation; the others when cold or failed


# --- trace context ----------------------------------------------------------------------------
def parse_traceparent(value: str | None) -> tuple[int, int, int] | None:
    """``(trace_id, parent_span_id, flags)`` of a valid W3C ``traceparent``; None otherwise."""
    if not value:
        return None
    parts = value.strip().split("-")
    if len(parts) < 4 or len(parts[0]) != 2 or len(parts[1]) != 32 or len(parts[2]) != 16 or len(parts[3]) != 2:
        return None
    if parts[0] == "ff" or (parts[0] == "00" and len(parts) != 4):
        return None
    try:
        trace_id, span_id, flags = int(parts[1], 16), int(parts[2], 16), int(parts[3], 16)
        int(parts[0], 16)
    except ValueError:
        return None
    if not trace_id or not span_id:
        return None
    return trace_id, span_id, flags


def make_sampler(name: str | None = None, arg: str | None = None) -> Callable[[int, int | None], bool]:
    """``sampled(trace_id, parent_flags_or_None)`` per ``OTEL_TRACES_SAMPLER`` /
    ``OTEL_TRACES_SAMPLER_ARG`` (the SDK's samplers; default ``parentbased_always_on``)."""
    name = (name if name is not None else os.environ.get("OTEL_TRACES_SAMPLER", "")).strip().lower() or "parentbased_always_on"
    raw = arg if arg is not None else os.environ.get("OTEL_TRACES_SAMPLER_ARG")
    try:
        rate = min(max(float(raw), 0.0), 1.0) if raw else 1.0
    except ValueError:
        rate = 1.0
    bound = round(rate * (1 << 64))

    def ratio(trace_id: int) -> bool:
        return (trace_id & 0xFFFFFFFFFFFFFFFF) < bound

    root: Callable[[int], bool]
    if name.endswith("always_off"):
        root = lambda _t: False  # noqa: E731
    elif name.endswith("traceidratio"):
        root = ratio
    else:
        root = lambda _t: True  # noqa: E731
    if not name.startswith("parentbased"):
        return lambda trace_id, _flags: root(trace_id)
    return lambda trace_id, flags: root(trace_id) if flags is None else bool(flags & 1)


# --- plain data ---------------------------------------------------------------------------------
_fixed64 = struct.Struct("<Q").pack
_NAMES: dict[str, bytes] = {}  # span name -> its encoded field
_KINDS = {k: b"\x30" + bytes([k]) for k in (wire.KIND_INTERNAL, wire.KIND_SERVER)}
# flags = 16 (fixed32): sampled, has-is-remote, and is-remote for a remote parent
_times = struct.Struct("<BQBQ").pack  # start_time_unix_nano = 7, end_time_unix_nano = 8 (fixed64)
_CHILD_PARTS: dict[str, tuple[bytes, bytes]] = {}  # phase -> (name and kind, wasm.phase and flags) of its span
_FLAGS_LOCAL = b"\x85\x01" + struct.pack("<I", wire.FLAGS_HAS_IS_REMOTE | 1)
_FLAGS_REMOTE = b"\x85\x01" + struct.pack("<I", wire.FLAGS_HAS_IS_REMOTE | wire.FLAGS_IS_REMOTE | 1)


class SpanData:
    """A finished span, as plain data."""

    __slots__ = (
        "attrs", "end_ns", "events", "kind", "name", "parent_span_id", "remote_parent", "span_id",
        "start_ns", "static", "status_code", "status_message", "trace_id", "trace_state",
    )  # fmt: skip

    def __init__(
        self, trace_id: int, span_id: int, parent_span_id: int, name: str, kind: int, start_ns: int, end_ns: int,
        attrs: dict[str, Any], *, events: Sequence[tuple[str, int, Mapping[str, Any]]] = (), status_code: int = 0,
        status_message: str = "", trace_state: str = "", remote_parent: bool = False,
        static: Sequence[tuple[Mapping[str, Any], bytes]] = (),
    ) -> None:  # fmt: skip
        self.trace_id = trace_id
        self.span_id = span_id
        self.parent_span_id = parent_span_id
        self.name = name
        self.kind = kind
        self.start_ns = start_ns
        self.end_ns = end_ns
        self.attrs = attrs
        self.events = events
        self.status_code = status_code
        self.status_message = status_message
        self.trace_state = trace_state
        self.remote_parent = remote_parent
        self.static = static  # blocks of attributes shared by many spans: (as a dict, encoded once)

    def encode(self) -> bytes:
        """The OTLP ``Span`` message (see :func:`wire.span`; inlined: this runs for every span)."""
        out = [b"\x0a\x10", self.trace_id.to_bytes(16, "big"), b"\x12\x08", self.span_id.to_bytes(8, "big")]
        if self.trace_state:
            ts = self.trace_state.encode("latin-1", "replace")
            out += (b"\x1a", wire.varint(len(ts)), ts)
        if self.parent_span_id:
            out += (b"\x22\x08", self.parent_span_id.to_bytes(8, "big"))
        out += (_name_field(self.name), _KINDS[self.kind], b"\x39", _fixed64(self.start_ns), b"\x41", _fixed64(self.end_ns))
        for block in self.static:
            out.append(block[1])
        wire.attributes(b"\x4a", self.attrs, out)
        for n, t, a in self.events:
            ev = wire.span_event(n, t, a)
            out += (b"\x5a", wire.varint(len(ev)), ev)
        if self.status_code or self.status_message:
            out.append(_status_field(self.status_code, self.status_message))
        out.append(_FLAGS_REMOTE if self.remote_parent else _FLAGS_LOCAL)
        return b"".join(out)

    def to_json(self, resource: dict[str, Any], scope: str) -> dict[str, Any]:
        """The JSONL view (the same shape as :func:`exporters.span_to_json`)."""
        return {
            "signal": "span",
            "name": self.name,
            "trace_id": f"{self.trace_id:032x}",
            "span_id": f"{self.span_id:016x}",
            "parent_span_id": f"{self.parent_span_id:016x}" if self.parent_span_id else None,
            "kind": _KIND_NAMES.get(self.kind, "INTERNAL"),
            "start_ns": self.start_ns,
            "end_ns": self.end_ns,
            "status": {"code": _STATUS_NAMES[self.status_code], "description": self.status_message or None},
            "attributes": _json_attrs(_merged(self.static, self.attrs)),
            "events": [{"name": n, "time_ns": t, "attributes": _json_attrs(a)} for n, t, a in self.events],
            "resource": resource,
            "scope": scope,
        }


class LogData:
    """A log record, as plain data."""

    __slots__ = ("attrs", "body", "observed_ns", "sampled", "severity_number", "severity_text", "span_id", "time_ns", "trace_id")

    def __init__(
        self, time_ns: int, observed_ns: int, severity_number: int, severity_text: str, body: str,
        attrs: dict[str, Any], trace_id: int, span_id: int, sampled: bool,
    ) -> None:  # fmt: skip
        self.time_ns = time_ns
        self.observed_ns = observed_ns
        self.severity_number = severity_number
        self.severity_text = severity_text
        self.body = body
        self.attrs = attrs
        self.trace_id = trace_id
        self.span_id = span_id
        self.sampled = sampled

    def encode(self) -> bytes:
        return wire.log_record(
            time_ns=self.time_ns,
            observed_ns=self.observed_ns,
            severity_number=self.severity_number,
            severity_text=self.severity_text,
            body=self.body,
            attrs=self.attrs,
            trace_id=self.trace_id.to_bytes(16, "big") if self.trace_id else b"",
            span_id=self.span_id.to_bytes(8, "big") if self.span_id else b"",
            flags=1 if self.sampled else 0,
        )

    def to_json(self, resource: dict[str, Any], scope: str) -> dict[str, Any]:
        return {
            "signal": "log",
            "time_ns": self.time_ns,
            "observed_time_ns": self.observed_ns,
            "severity_text": self.severity_text,
            "severity_number": self.severity_number,
            "body": self.body,
            "trace_id": f"{self.trace_id:032x}" if self.trace_id else None,
            "span_id": f"{self.span_id:016x}" if self.span_id else None,
            "attributes": _json_attrs(self.attrs),
            "resource": resource,
            "scope": scope,
        }


def _merged(blocks: Sequence[tuple[Mapping[str, Any], bytes]], attrs: Mapping[str, Any]) -> dict[str, Any]:
    out: dict[str, Any] = {}
    for block in blocks:
        out.update(block[0])
    out.update(attrs)
    return out


def _json_attrs(attrs: Mapping[str, Any]) -> dict[str, Any]:
    return {k: list(v) if isinstance(v, tuple) else v for k, v in attrs.items() if v is not None}


class RequestSpan:
    """The open HTTP server span of one request (see :meth:`DirectPipeline.start_request`)."""

    __slots__ = (
        "attrs", "base", "context", "describe", "end_ns", "error", "exception", "name", "parent_span_id", "record",
        "sampled", "span_id", "start_ns", "status", "trace_id", "trace_state", "traceparent",
    )  # fmt: skip

    def __init__(
        self, trace_id: int, span_id: int, parent_span_id: int, sampled: bool, trace_state: str, name: str,
        attrs: dict[str, Any], base: tuple[Mapping[str, Any], bytes] | None = None,
    ) -> None:  # fmt: skip
        self.trace_id = trace_id
        self.span_id = span_id
        self.parent_span_id = parent_span_id
        self.sampled = sampled
        self.trace_state = trace_state
        self.name = name
        self.attrs = attrs  # this request's own attributes
        self.base = base  # attributes shared with other requests (a dict made once, encoded once)
        self.start_ns = _time_ns()
        self.end_ns = 0
        self.record: InvocationRecord | None = None
        self.status = 0  # the HTTP status sent, 0 before
        self.error = False  # status ERROR
        self.exception: BaseException | None = None
        self.traceparent = f"00-{trace_id:032x}-{span_id:016x}-{'01' if sampled else '00'}"
        # set by the opener to name the span and set its attributes later, from
        # ``context``, when the span is encoded (off the request's path)
        self.describe: Callable[[RequestSpan], None] | None = None
        self.context: Any = None

    @property
    def trace_hex(self) -> str:
        return self.traceparent[3:35]


# --- records -> spans and logs -------------------------------------------------------------------
_PHASE_BLOCKS: dict[str, tuple[Mapping[str, Any], bytes]] = {}  # phase name -> its wasm.phase attribute


def _phases_sent(rec: InvocationRecord, fail: mapping.Failure | None) -> Iterator[tuple[Phase, bool, tuple[Mapping[str, Any], bytes]]]:
    """The phases that become child spans (``_SPAN_PHASES``, all of them on a cold start,
    the last one of a failed run), whether each is where the run failed, and its
    encoded ``wasm.phase`` attribute."""
    phases = rec.phases
    last = len(phases) - 1
    cold = rec.cold_start or rec.cache != "memory"
    for i, p in enumerate(phases):
        failed_here = fail is not None and i == last
        if p.name not in _SPAN_PHASES and not cold and not failed_here:
            continue
        block = _PHASE_BLOCKS.get(p.name)
        if block is None:
            enc: list[bytes] = []
            wire.attributes(b"\x4a", {sc.WASM_PHASE: p.name}, enc)
            block = _PHASE_BLOCKS[p.name] = ({sc.WASM_PHASE: p.name}, b"".join(enc))
        yield p, failed_here, block


def _phase_spans(
    rec: InvocationRecord, trace_id: int, parent: int, fail: mapping.Failure | None, out: list[SpanData]
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
            out.append(SpanData(trace_id, _getrandbits(64) or 1, parent, p.name, wire.KIND_INTERNAL, p.start_ns, max(p.end_ns, p.start_ns), attrs, static=(block,)))


def _stderr_logs(
    rec: InvocationRecord, trace_id: int, span_id: int, sampled: bool, max_lines: int, max_bytes: int, out: list[LogData]
) -> None:
    if not rec.stderr and not rec.stderr_truncated:
        return
    g = mapping.guest_lines("stderr", rec.stderr, max_lines=max_lines, max_bytes=max_bytes, capped=rec.stderr_truncated)
    if not g.lines and not g.truncated:
        return
    execute = rec.phase("execute")
    at = execute.end_ns if execute is not None else (rec.end_ns or _time_ns())
    now = _time_ns()
    base = {sc.LOG_IOSTREAM: "stderr", sc.FAAS_INVOCATION_ID: rec.invocation_id}
    n = len(g.lines) + (1 if g.truncated else 0)
    for i, line in enumerate(g.lines):
        out.append(LogData(at - (n - i), now, SEVERITY_WARN, "WARN", line, base, trace_id, span_id, sampled))
    if g.truncated:
        body, attrs = g.truncation_notice(base)
        out.append(LogData(at - 1, now, SEVERITY_WARN, "WARN", body, attrs, trace_id, span_id, sampled))


_STATIC: dict[tuple[Any, ...], tuple[dict[str, Any], bytes]] = {}


def _static_attrs(rec: InvocationRecord, trigger: str) -> tuple[dict[str, Any], bytes]:
    """The attributes that stay the same from one invocation of a module version to
    the next (its identity, entry and limits), as a dict and encoded, made once."""
    m = rec.module
    key = (trigger, m.sha256, m.name, m.size, m.kind, rec.entry, rec.memory_limit, rec.timeout, rec.fuel_limit)
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


def _invocation_attrs(rec: InvocationRecord, attrs: dict[str, Any], fail: mapping.Failure | None) -> None:
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


def _invocation_fields(rec: InvocationRecord, fail: mapping.Failure | None, out: list[bytes]) -> None:
    """Append the attributes of :func:`_invocation_attrs` to ``out``, encoded. A run
    that did not fail repeats them from one request to the next but for its invocation
    id, CPU time and fuel: the rest is one cached block."""
    if fail is not None or rec.trap is not None or rec.call_counts is not None or rec.host_calls is not None:
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


def _extra_attrs(rec: InvocationRecord, taken: Collection[str], base: Mapping[str, Any]) -> tuple[Mapping[str, Any], bytes] | None:
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


def request_items(req: RequestSpan, max_lines: int, max_bytes: int) -> tuple[list[SpanData], list[LogData]]:
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
        exc = req.exception
        events.append((sc.EXCEPTION_EVENT, req.end_ns, {sc.EXCEPTION_TYPE: type(exc).__qualname__, sc.EXCEPTION_MESSAGE: str(exc)}))
        message = message or f"{type(exc).__name__}: {exc}"
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
        _stderr_logs(rec, req.trace_id, req.span_id, req.sampled, max_lines, max_bytes, logs)
    return spans, logs


def _name_field(name: str) -> bytes:
    field = _NAMES.get(name)
    if field is None:
        nb = name.encode("utf-8", "replace")
        field = b"\x2a" + wire.varint(len(nb)) + nb
        if len(_NAMES) < 4096:
            _NAMES[name] = field
    return field


def _status_field(code: int, message: str) -> bytes:
    st = b""
    if message:
        mb = message.encode("utf-8", "replace")
        st += b"\x12" + wire.varint(len(mb)) + mb
    if code:
        st += b"\x18" + bytes([code])
    return b"\x7a" + wire.varint(len(st)) + st


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
    out += (_name_field(req.name), _KINDS[wire.KIND_SERVER], _times(0x39, req.start_ns, 0x41, req.end_ns))
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
            attrs = {k: v for k, v in attrs.items() if k != sc.ERROR_TYPE}  # the record's error.type wins
        _invocation_fields(rec, fail, out)
    wire.attributes(b"\x4a", attrs, out)
    if req.exception is not None:
        exc = req.exception
        events.append((sc.EXCEPTION_EVENT, req.end_ns, {sc.EXCEPTION_TYPE: type(exc).__qualname__, sc.EXCEPTION_MESSAGE: str(exc)}))
        message = message or f"{type(exc).__name__}: {exc}"
    for n, t, a in events:
        ev = wire.span_event(n, t, a)
        out += (b"\x5a", wire.varint(len(ev)), ev)
    if req.error or message:
        out.append(_status_field(wire.STATUS_ERROR if req.error else 0, message))
    out.append(_FLAGS_REMOTE if req.parent_span_id else _FLAGS_LOCAL)
    spans = [b"".join(out)]
    if rec is None:
        return spans
    head = b"\x0a\x10" + tid + b"\x12\x08"
    parent = b"\x22\x08" + sid
    for p, failed_here, block in _phases_sent(rec, fail):
        if not failed_here and not p.attributes:  # the usual child: all but ids and times made once
            parts = _CHILD_PARTS.get(p.name)
            if parts is None:
                parts = _CHILD_PARTS[p.name] = (_name_field(p.name) + _KINDS[wire.KIND_INTERNAL], block[1] + _FLAGS_LOCAL)
            sid_child = (_getrandbits(64) or 1).to_bytes(8, "big")
            spans.append(b"".join((head, sid_child, parent, parts[0], _times(0x39, p.start_ns, 0x41, max(p.end_ns, p.start_ns)), parts[1])))
            continue
        child = [
            head, (_getrandbits(64) or 1).to_bytes(8, "big"), parent, _name_field(p.name), _KINDS[wire.KIND_INTERNAL],
            b"\x39", _fixed64(p.start_ns), b"\x41", _fixed64(max(p.end_ns, p.start_ns)), block[1],
        ]  # fmt: skip
        if p.attributes:
            pa = mapping.clean_attributes(p.attributes)
            pa.pop(sc.WASM_PHASE, None)
            wire.attributes(b"\x4a", pa, child)
        if failed_here:
            child.append(_status_field(wire.STATUS_ERROR, fail.description if fail is not None else ""))
        child.append(_FLAGS_LOCAL)
        spans.append(b"".join(child))
    return spans


class Invocation:
    """An invocation recorded outside of a request span (a Gateway without the tracing
    middleware): its own SERVER span, as ``wasmscope run`` makes it."""

    __slots__ = ("parent_span_id", "record", "sampled", "span_id", "trace_id", "trace_state", "trigger")

    def __init__(self, record: InvocationRecord, trace_id: int, span_id: int, parent_span_id: int, sampled: bool, trace_state: str, trigger: str) -> None:
        self.record = record
        self.trace_id = trace_id
        self.span_id = span_id
        self.parent_span_id = parent_span_id
        self.sampled = sampled
        self.trace_state = trace_state
        self.trigger = trigger


def invocation_items(inv: Invocation, max_lines: int, max_bytes: int) -> tuple[list[SpanData], list[LogData]]:
    from wasmscope.telemetry.otel import _bounds

    rec = inv.record
    spans: list[SpanData] = []
    logs: list[LogData] = []
    fail = mapping.failure(rec)
    if inv.sampled:
        start, end = _bounds(rec)
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
    _stderr_logs(rec, inv.trace_id, inv.span_id, inv.sampled, max_lines, max_bytes, logs)
    return spans, logs


class _Encoded:
    """A request already encoded for OTLP (the queue's item when OTLP is the only batch output)."""

    __slots__ = ("logs", "spans")

    def __init__(self, spans: list[bytes], logs: list[LogData]) -> None:
        self.spans = spans
        self.logs = logs

    sampled = True
    record = None


Item = RequestSpan | Invocation | _Encoded


def _span_count(item: Item) -> int:
    if isinstance(item, _Encoded):
        return len(item.spans)
    if not item.sampled:
        return 0
    rec = item.record
    if rec is None:
        return 1
    if rec.cold_start or rec.cache != "memory":
        return 1 + len(rec.phases)
    kept = sum(1 for p in rec.phases if p.name in _SPAN_PHASES)
    if rec.failed and rec.phases and rec.phases[-1].name not in _SPAN_PHASES:
        kept += 1
    return 1 + kept


# --- sinks -----------------------------------------------------------------------------------------
class Sink:
    """One output of the direct pipeline; ``deliver`` never raises (failures are counted)."""

    def __init__(self, dest: Destination) -> None:
        self.dest = dest

    def deliver(self, spans: Sequence[SpanData], logs: Sequence[LogData]) -> None:
        try:
            self._deliver(spans, logs)
        except Exception as exc:
            if spans:
                self.dest.fail("spans", len(spans), exc)
            if logs:
                self.dest.fail("logs", len(logs), exc)
            return
        if spans:
            self.dest.ok("spans", len(spans))
        if logs:
            self.dest.ok("logs", len(logs))

    def _deliver(self, spans: Sequence[SpanData], logs: Sequence[LogData]) -> None:
        raise NotImplementedError

    def close(self) -> None:
        pass


class MemorySink(Sink):
    def __init__(self, dest: Destination, resource: dict[str, Any], scope: str) -> None:
        super().__init__(dest)
        self.resource = resource
        self.scope = scope
        self.spans: list[dict[str, Any]] = []
        self.logs: list[dict[str, Any]] = []
        self._lock = threading.Lock()

    def _deliver(self, spans: Sequence[SpanData], logs: Sequence[LogData]) -> None:
        with self._lock:
            self.spans.extend(s.to_json(self.resource, self.scope) for s in spans)
            self.logs.extend(r.to_json(self.resource, self.scope) for r in logs)

    def clear(self) -> None:
        with self._lock:
            self.spans.clear()
            self.logs.clear()


class JsonlSink(Sink):
    def __init__(self, dest: Destination, writer: JsonlWriter, resource: dict[str, Any], scope: str) -> None:
        super().__init__(dest)
        self.writer = writer.acquire()
        self.resource = resource
        self.scope = scope
        self._closed = False

    def _deliver(self, spans: Sequence[SpanData], logs: Sequence[LogData]) -> None:
        self.writer.write([*(s.to_json(self.resource, self.scope) for s in spans), *(r.to_json(self.resource, self.scope) for r in logs)])

    def close(self) -> None:
        if not self._closed:
            self._closed = True
            self.writer.release()


class ConsoleSink(Sink):
    def __init__(self, dest: Destination, stream: IO[str] | None) -> None:
        super().__init__(dest)
        from wasmscope.telemetry.exporters import _Stream

        self._out = _Stream(stream)

    def _deliver(self, spans: Sequence[SpanData], logs: Sequence[LogData]) -> None:
        from wasmscope.telemetry.exporters import _CONSOLE_ATTRS, _short

        lines = []
        for s in spans:
            line = f"span   {s.name}  {(s.end_ns - s.start_ns) / 1e6:.3f} ms  {_STATUS_NAMES[s.status_code]}  trace={f'{s.trace_id:032x}'[:8]}"
            extra = [f"{k}={s.attrs[k]!s}" for k in ("http.response.status_code", *_CONSOLE_ATTRS) if k in s.attrs]
            if extra:
                line += "  " + " ".join(extra)
            if s.status_code == wire.STATUS_ERROR and s.status_message:
                line += f"  ({_short(s.status_message, 100)})"
            lines.append(line)
        for r in logs:
            where = str(r.attrs.get(sc.LOG_IOSTREAM, ""))
            prefix = f"{where}: " if where else ""
            lines.append(f"log    {r.severity_text:<5} {prefix}{_short(r.body)}  trace={f'{r.trace_id:032x}'[:8]}")
        if lines:
            self._out.write_lines(lines)


def _env(signal: str, name: str) -> str | None:
    return os.environ.get(f"OTEL_EXPORTER_OTLP_{signal}_{name}") or os.environ.get(f"OTEL_EXPORTER_OTLP_{name}")


def _env_headers(signal: str) -> dict[str, str]:
    raw = _env(signal, "HEADERS") or ""
    out: dict[str, str] = {}
    for item in raw.split(","):
        key, sep, value = item.partition("=")
        if sep and key.strip():
            out[urllib.parse.unquote(key.strip()).lower()] = urllib.parse.unquote(value.strip())
    return out


class OtlpSink(Sink):
    """OTLP/HTTP protobuf to ``traces_url`` and ``logs_url`` with ``http.client`` on a
    kept-alive connection; one retry after a connection error or a 429/502/503/504
    within ``timeout``. Headers, compression and certificates: ``headers`` (else
    ``OTEL_EXPORTER_OTLP_[TRACES_|LOGS_]HEADERS``), ``OTEL_EXPORTER_OTLP_*COMPRESSION``
    (gzip), ``OTEL_EXPORTER_OTLP_*CERTIFICATE`` / ``CLIENT_CERTIFICATE`` / ``CLIENT_KEY``."""

    def __init__(
        self, dest: Destination, *, traces_url: str, logs_url: str, resource_msg: bytes, scope_msg: bytes,
        timeout: float = 10.0, headers: Mapping[str, str] | None = None,
    ) -> None:  # fmt: skip
        super().__init__(dest)
        self.traces_url = traces_url
        self.logs_url = logs_url
        self.timeout = timeout
        self._resource = resource_msg
        self._scope = scope_msg
        self._headers = {
            signal: {
                "Content-Type": "application/x-protobuf",
                "User-Agent": "wasmscope-otlp",
                **({k.lower(): v for k, v in headers.items()} if headers is not None else _env_headers(signal)),
            }
            for signal in ("TRACES", "LOGS")
        }
        self._gzip = {s: (_env(s, "COMPRESSION") or "").strip().lower() == "gzip" for s in ("TRACES", "LOGS")}
        for s, on in self._gzip.items():
            if on:
                self._headers[s]["Content-Encoding"] = "gzip"
        self._conns: dict[tuple[str, str, int], http.client.HTTPConnection] = {}

    # the exporter thread only: no lock
    def _conn(self, url: urllib.parse.SplitResult, signal: str) -> http.client.HTTPConnection:
        key = (url.scheme, url.hostname or "localhost", url.port or (443 if url.scheme == "https" else 80))
        conn = self._conns.get(key)
        if conn is None:
            if url.scheme == "https":
                ctx = ssl.create_default_context(cafile=_env(signal, "CERTIFICATE") or None)
                cert = _env(signal, "CLIENT_CERTIFICATE")
                if cert:
                    ctx.load_cert_chain(cert, _env(signal, "CLIENT_KEY") or None)
                conn = http.client.HTTPSConnection(key[1], key[2], timeout=self.timeout, context=ctx)
            else:
                conn = http.client.HTTPConnection(key[1], key[2], timeout=self.timeout)
            self._conns[key] = conn
        return conn

    def _drop_conn(self, url: urllib.parse.SplitResult) -> None:
        for key, conn in list(self._conns.items()):
            if key[1] == (url.hostname or "localhost"):
                conn.close()
                del self._conns[key]

    def post(self, url_text: str, signal: str, body: bytes) -> None:
        """POST one export request; raises ``OSError`` / ``RuntimeError`` when it failed."""
        url = urllib.parse.urlsplit(url_text)
        path = (url.path or "/") + (f"?{url.query}" if url.query else "")
        if self._gzip[signal]:
            body = gzip.compress(body, compresslevel=5)
        deadline = time.monotonic() + self.timeout
        for attempt in (0, 1):
            try:
                conn = self._conn(url, signal)
                conn.timeout = max(deadline - time.monotonic(), 0.05)
                conn.request("POST", path, body, self._headers[signal])
                resp = conn.getresponse()
                resp.read()
                if 200 <= resp.status < 300:
                    return
                error: Exception = RuntimeError(f"HTTP {resp.status} {resp.reason} from {url_text}")
                retry = resp.status in (429, 502, 503, 504)
                if resp.will_close:
                    self._drop_conn(url)
            except (OSError, http.client.HTTPException) as exc:
                self._drop_conn(url)
                error, retry = exc, True
            if not retry or attempt or time.monotonic() + 0.5 >= deadline:
                raise error
            time.sleep(0.5)

    def _deliver(self, spans: Sequence[SpanData], logs: Sequence[LogData]) -> None:
        raise NotImplementedError  # deliver() is overridden: spans and logs fail apart

    def deliver(self, spans: Sequence[SpanData], logs: Sequence[LogData]) -> None:
        self.deliver_encoded([s.encode() for s in spans], logs)

    def deliver_encoded(self, spans: Sequence[bytes], logs: Sequence[LogData]) -> None:
        """``spans``: OTLP ``Span`` messages already encoded."""
        if spans:
            try:
                self.post(self.traces_url, "TRACES", wire.export_trace_request(self._resource, self._scope, spans))
            except Exception as exc:
                self.dest.fail("spans", len(spans), exc)
            else:
                self.dest.ok("spans", len(spans))
        if logs:
            try:
                self.post(self.logs_url, "LOGS", wire.export_logs_request(self._resource, self._scope, [r.encode() for r in logs]))
            except Exception as exc:
                self.dest.fail("logs", len(logs), exc)
            else:
                self.dest.ok("logs", len(logs))

    def close(self) -> None:
        for conn in self._conns.values():
            conn.close()
        self._conns.clear()


# --- metrics -------------------------------------------------------------------------------------
class _Hist:
    __slots__ = ("bounds", "count", "counts", "max", "min", "sum")

    def __init__(self, bounds: tuple[float, ...]) -> None:
        self.bounds = bounds
        self.counts = [0] * (len(bounds) + 1)
        self.count = 0
        self.sum = 0.0
        self.min = float("inf")
        self.max = float("-inf")

    def add(self, value: float) -> None:
        self.counts[_bisect(self.bounds, value)] += 1
        self.count += 1
        self.sum += value
        if value < self.min:
            self.min = value
        if value > self.max:
            self.max = value


_bisect = bisect.bisect_left


class _Series:
    """Everything measured for one set of metric attributes."""

    __slots__ = ("coldstarts", "cpu", "errors", "fuel", "init", "invocations", "invoke", "mem", "peak", "timeouts")

    def __init__(self) -> None:
        self.invocations = 0
        self.errors: dict[str, int] = {}
        self.timeouts = 0
        self.coldstarts = 0
        self.fuel = 0
        self.peak: int | None = None
        self.invoke = _Hist(sc.DURATION_BUCKETS)
        self.init = _Hist(sc.DURATION_BUCKETS)
        self.mem = _Hist(sc.MEMORY_BUCKETS)
        self.cpu = _Hist(sc.DURATION_BUCKETS)


_INIT = frozenset(mapping.INIT_PHASES)


def _error_type(rec: InvocationRecord) -> str:
    fail = mapping.failure(rec)
    return fail.error_type if fail is not None else str(rec.outcome)


class ServeMetrics:
    """The invocation metrics of :data:`semconv.METRICS` (same names, units, buckets and
    attributes as the SDK path), aggregated here: cumulative, per (faas.trigger,
    faas.name, wasm.outcome). The SDK observes the counters and the gauge
    (:meth:`observe`); :meth:`histograms` makes the SDK ``Metric`` objects that the
    metric exporters get with the SDK's own metrics."""

    def __init__(self, trigger: str) -> None:
        self.trigger = trigger
        self.start_ns = _time_ns()
        self._series: dict[tuple[str, str], _Series] = {}
        self._lock = threading.Lock()

    def record(self, rec: InvocationRecord) -> None:
        key = (rec.module.name or rec.module.sha256[:12] or "wasm", rec.outcome)
        execute = init = 0
        has_execute = has_init = False
        for p in rec.phases:
            if p.name == "execute":
                execute, has_execute = p.end_ns - p.start_ns, True
            elif p.name in _INIT:
                init += p.end_ns - p.start_ns
                has_init = True
        ok = rec.outcome == "ok"
        error_type = "" if ok else _error_type(rec)
        with self._lock:
            s = self._series.get(key)
            if s is None:
                s = self._series[key] = _Series()
            if ok:
                s.invocations += 1
            else:
                s.errors[error_type] = s.errors.get(error_type, 0) + 1
                if rec.outcome == "timeout":
                    s.timeouts += 1
            if rec.cold_start:
                s.coldstarts += 1
            if has_execute:
                s.invoke.add(execute / 1e9)
            elif rec.outcome != "error":
                s.invoke.add(max(rec.duration_seconds, 0.0))
            if has_init:
                s.init.add(init / 1e9)
            if rec.peak_memory is not None:
                s.mem.add(rec.peak_memory)
                s.peak = rec.peak_memory
            if rec.cpu_seconds is not None:
                s.cpu.add(rec.cpu_seconds)
            if rec.fuel_consumed is not None:
                s.fuel += rec.fuel_consumed

    def observe(self, metric: str) -> list[tuple[int, dict[str, Any]]]:
        """``(value, attributes)`` of the counter or gauge ``metric`` (cumulative), for
        the SDK's observable instruments."""
        out: list[tuple[int, dict[str, Any]]] = []
        with self._lock:
            for (name, outcome), s in self._series.items():
                attrs = {sc.FAAS_TRIGGER: self.trigger, sc.FAAS_NAME: name, sc.WASM_OUTCOME: outcome}
                if metric == sc.M_FAAS_ERRORS.name:
                    out += [(n, {**attrs, sc.ERROR_TYPE: et}) for et, n in s.errors.items()]
                    continue
                value = {
                    sc.M_FAAS_INVOCATIONS.name: s.invocations,
                    sc.M_FAAS_TIMEOUTS.name: s.timeouts,
                    sc.M_FAAS_COLDSTARTS.name: s.coldstarts,
                    sc.M_WASM_FUEL_CONSUMED.name: s.fuel,
                    sc.M_WASM_MEMORY_PEAK.name: s.peak,
                }.get(metric)
                if value:
                    out.append((value, attrs))
        return out

    def histograms(self) -> list[Any]:
        """SDK ``Metric`` objects of the histograms (cumulative) that have points."""
        from opentelemetry.sdk.metrics.export import (
            AggregationTemporality,
            Histogram,
            HistogramDataPoint,
            Metric,
        )

        now = _time_ns()
        points: dict[str, list[Any]] = {}
        with self._lock:
            for (name, outcome), s in self._series.items():
                attrs = {sc.FAAS_TRIGGER: self.trigger, sc.FAAS_NAME: name, sc.WASM_OUTCOME: outcome}
                for spec, h in (
                    (sc.M_FAAS_INVOKE_DURATION, s.invoke),
                    (sc.M_FAAS_INIT_DURATION, s.init),
                    (sc.M_FAAS_MEM_USAGE, s.mem),
                    (sc.M_FAAS_CPU_USAGE, s.cpu),
                ):
                    if h.count:
                        points.setdefault(spec.name, []).append(
                            HistogramDataPoint(
                                attributes=attrs, start_time_unix_nano=self.start_ns, time_unix_nano=now, count=h.count,
                                sum=h.sum, bucket_counts=tuple(h.counts), explicit_bounds=h.bounds, min=h.min, max=h.max,
                            )
                        )  # fmt: skip
        return [
            Metric(
                name=spec.name, description=spec.description, unit=spec.unit,
                data=Histogram(data_points=points[spec.name], aggregation_temporality=AggregationTemporality.CUMULATIVE),
            )
            for spec in sc.METRICS
            if spec.name in points
        ]


def merge_metrics(data: Any, extra: list[Any], resource: Any, scope: Any) -> Any:
    """``data`` (an SDK ``MetricsData`` or None) with ``extra`` metrics added under
    ``scope`` (an ``InstrumentationScope``)."""
    from opentelemetry.sdk.metrics.export import MetricsData, ResourceMetrics, ScopeMetrics

    if not extra:
        return data
    sm = ScopeMetrics(scope=scope, metrics=extra, schema_url="")
    if data is None or not data.resource_metrics:
        return MetricsData(resource_metrics=[ResourceMetrics(resource=resource, scope_metrics=[sm], schema_url="")])
    first = data.resource_metrics[0]
    scopes = list(first.scope_metrics)
    for i, other in enumerate(scopes):
        if other.scope.name == scope.name:  # one ScopeMetrics per scope (the OTLP encoder keys by scope)
            scopes[i] = ScopeMetrics(scope=other.scope, metrics=[*other.metrics, *extra], schema_url=other.schema_url)
            break
    else:
        scopes.append(sm)
    merged = ResourceMetrics(resource=first.resource, scope_metrics=scopes, schema_url=first.schema_url)
    return MetricsData(resource_metrics=[merged, *data.resource_metrics[1:]])


# --- the pipeline ----------------------------------------------------------------------------------
class DirectPipeline:
    """Request spans in, spans and log records out to the sinks (see the module doc).

    ``sync_sinks`` get each request on the thread that ends it (console, memory);
    ``batch_sinks`` get batches on the exporter thread (OTLP, JSONL), through a queue of
    at most ``max_queue`` requests: past it requests are dropped and counted as failed
    spans of every batch sink, and logged once per burst."""

    def __init__(
        self, *, sync_sinks: Sequence[Sink], batch_sinks: Sequence[Sink], trigger: str = sc.TRIGGER_HTTP,
        max_log_lines: int, max_log_bytes: int, max_queue: int = DEFAULT_MAX_QUEUE, batch: int = DEFAULT_BATCH,
        delay: float = DEFAULT_DELAY, sampler: Callable[[int, int | None], bool] | None = None,
    ) -> None:  # fmt: skip
        self.sync_sinks = list(sync_sinks)
        self.batch_sinks = list(batch_sinks)
        self.trigger = trigger
        self.max_log_lines = max_log_lines
        self.max_log_bytes = max_log_bytes
        self.max_queue = max_queue
        self.batch = batch
        self.delay = delay
        self.sampler = sampler or make_sampler()
        self.metrics = ServeMetrics(trigger)
        self.pending: dict[str, RequestSpan] = {}  # traceparent -> open request span
        self._otlp_only = bool(self.batch_sinks) and all(isinstance(x, OtlpSink) for x in self.batch_sinks)
        self._bases: dict[int, tuple[Mapping[str, Any], bytes]] = {}  # id(base) -> (base, encoded)
        self.dropped = 0
        self.export_cpu = 0.0  # CPU seconds of the exporter thread (encoding and sending)
        self.exported_items = 0  # requests and invocations it handled
        self._dropping = False
        self._queue: deque[Item | threading.Event] = deque()
        self._raw: deque[RequestSpan] = deque()  # finished, not yet encoded (OTLP only)
        self._wake = threading.Event()
        self._flush_requested = False
        self._stop = False
        self._thread: threading.Thread | None = None
        self._thread_lock = threading.Lock()

    # --- the request path --------------------------------------------------------------------
    def start_request(
        self, name: str, attrs: dict[str, Any], traceparent: str | None = None, tracestate: str | None = None,
        base: Mapping[str, Any] | None = None,
    ) -> RequestSpan:  # fmt: skip
        """Open the server span of a request (under ``traceparent`` when valid);
        ``record_invocation(rec, parent=span.traceparent)`` folds an invocation in.
        ``base``: more attributes, in a dict that the caller hands again for other
        requests (never changed afterwards): encoded once."""
        req = self._span(name, attrs, traceparent, tracestate, self.base_block(base) if base is not None else None)
        self.pending[req.traceparent] = req
        return req

    def open_request(
        self, traceparent: str | None, tracestate: str | None, describe: Callable[[RequestSpan], None], context: Any
    ) -> RequestSpan:
        """Open the server span of a request whose name and attributes come later:
        ``describe(span)`` sets them (``name``, ``attrs``, ``base`` through
        :meth:`base_block`) from ``span.context`` when the span is encoded, in a batch
        of requests. Fold the invocation in with :meth:`attach_request`."""
        req = self._span("", {}, traceparent, tracestate, None)
        req.describe = describe
        req.context = context
        return req

    def _span(
        self, name: str, attrs: dict[str, Any], traceparent: str | None, tracestate: str | None,
        block: tuple[Mapping[str, Any], bytes] | None,
    ) -> RequestSpan:  # fmt: skip
        """A child of ``traceparent`` when it is valid, else the root of a new trace."""
        parent = parse_traceparent(traceparent) if traceparent else None
        if parent is None:
            trace_id = _getrandbits(128) or 1
            return RequestSpan(trace_id, _getrandbits(64) or 1, 0, self.sampler(trace_id, None), "", name, attrs, block)
        sampled = self.sampler(parent[0], parent[2])
        return RequestSpan(parent[0], _getrandbits(64) or 1, parent[1], sampled, (tracestate or "").strip(), name, attrs, block)

    def base_block(self, base: Mapping[str, Any]) -> tuple[Mapping[str, Any], bytes]:
        """``base`` (attributes in a dict that the caller hands again for other requests
        and never changes) and its encoding, made once per dict."""
        block = self._bases.get(id(base))
        if block is None or block[0] is not base:
            out: list[bytes] = []
            wire.attributes(b"\x4a", base, out)
            if len(self._bases) >= 1024:
                self._bases.clear()
            block = self._bases[id(base)] = (base, b"".join(out))
        return block

    def end_request(self, req: RequestSpan) -> None:
        req.end_ns = _time_ns()
        if self.pending:
            self.pending.pop(req.traceparent, None)
        self._submit(req)

    def attach(self, traceparent: str, record: InvocationRecord) -> str | None:
        """Fold ``record`` into the open request span of ``traceparent``: its trace id,
        or None when no request span has this traceparent."""
        req = self.pending.get(traceparent)
        if req is None:
            return None
        return self.attach_request(req, record)

    def attach_request(self, req: RequestSpan, record: InvocationRecord) -> str:
        """Fold ``record`` into the open request span ``req``: its trace id."""
        req.record = record
        if not self._otlp_only:  # else counted with the encoding (see _encode_raw)
            self.metrics.record(record)
        return req.trace_hex

    def invocation(self, record: InvocationRecord, traceparent: str | None, tracestate: str | None = None) -> tuple[str, str]:
        """An invocation outside of a request span: its own SERVER span. Its trace id
        and span id (hex)."""
        parent = parse_traceparent(traceparent)
        if parent is None:
            trace_id = _getrandbits(128) or 1
            inv = Invocation(record, trace_id, _getrandbits(64) or 1, 0, self.sampler(trace_id, None), "", self.trigger)
        else:
            sampled = self.sampler(parent[0], parent[2])
            inv = Invocation(record, parent[0], _getrandbits(64) or 1, parent[1], sampled, (tracestate or "").strip(), self.trigger)
        self.metrics.record(record)
        self._submit(inv)
        return f"{inv.trace_id:032x}", f"{inv.span_id:016x}"

    def _submit(self, item: Item) -> None:
        if self.sync_sinks:
            spans, logs = self._items(item)
            if spans or logs:
                for sink in self.sync_sinks:
                    sink.deliver(spans, logs)
        if not self.batch_sinks:
            return
        if self._stop:
            return
        if self._otlp_only and isinstance(item, RequestSpan):
            # Encoded on the request's thread, a few at a time (in a tight loop the work
            # costs about half what it costs between two guest runs), and let go:
            # the queue holds bytes. The exporter thread, which must take the GIL
            # from the request threads, only sends (and encodes what is left when
            # traffic is low). _encode_raw counts every request, then drops it if
            # the queue is full.
            self._raw.append(item)
            if len(self._raw) >= _ENCODE_BATCH:
                self._encode_raw()
        elif len(self._queue) >= self.max_queue:
            self._drop(item)
            return
        else:
            self._queue.append(item)
        if self._thread is None:
            self._start_thread()
        if len(self._queue) >= self.batch and not self._wake.is_set():
            self._wake.set()

    def settle(self) -> None:
        """Count and encode the finished requests that wait to be (before a flush, so
        that the metrics and the export have them)."""
        if self._raw:
            self._encode_raw()

    def _encode_raw(self) -> None:
        """Count (metrics) and encode the finished requests waiting in ``_raw`` into
        the export queue (any thread; each request is taken by one)."""
        raw, queue, metrics = self._raw, self._queue, self.metrics
        while raw:
            try:
                item = raw.popleft()
            except IndexError:  # another thread took the last one
                return
            if item.record is not None:
                metrics.record(item.record)
            if len(queue) >= self.max_queue:
                self._drop(item)
                continue
            try:
                rec = item.record
                records: list[LogData] = []
                if rec is not None and (rec.stderr or rec.stderr_truncated):
                    _stderr_logs(rec, item.trace_id, item.span_id, item.sampled, self.max_log_lines, self.max_log_bytes, records)
                queue.append(_Encoded(encode_request(item) if item.sampled else [], records))
            except Exception as exc:  # a bug or a bad record: counted, never raised
                for sink in self.batch_sinks:
                    sink.dest.fail("spans", _span_count(item), exc)

    def _items(self, item: Item) -> tuple[list[SpanData], list[LogData]]:
        if isinstance(item, _Encoded):
            raise TypeError("an encoded request only goes to OTLP outputs")
        if isinstance(item, RequestSpan):
            return request_items(item, self.max_log_lines, self.max_log_bytes)
        return invocation_items(item, self.max_log_lines, self.max_log_bytes)

    def _drop(self, item: Item) -> None:
        n = _span_count(item)
        self.dropped += 1
        for sink in self.batch_sinks:
            sink.dest.counter.fail(sink.dest.name, "spans", n, f"{sink.dest.name}: telemetry queue full")
            with sink.dest._lock:
                sink.dest.lost += n
        if not self._dropping:
            self._dropping = True
            log.warning(
                "telemetry: the export queue is full (%d requests): dropping the telemetry of requests "
                "until the exporter catches up (counted in the stats)", self.max_queue,
            )  # fmt: skip

    # --- the exporter thread ------------------------------------------------------------------
    def _start_thread(self) -> None:
        with self._thread_lock:
            if self._thread is None and not self._stop:
                self._thread = threading.Thread(target=self._run, name="wasmscope-telemetry-export", daemon=True)
                self._thread.start()

    def _run(self) -> None:
        while True:
            woke = self._wake.wait(self.delay)
            self._wake.clear()
            flush, self._flush_requested = self._flush_requested, False
            if not woke or flush:  # low traffic: what the request threads left
                self._encode_raw()
            # woken by a full batch: export full batches only (each export is one POST:
            # the requests that arrive meanwhile wait for the next full batch or the delay)
            self._drain(full_only=woke and not flush and not self._stop)
            if self._stop:
                self._encode_raw()
                self._drain()
                return

    def _drain(self, full_only: bool = False) -> None:
        q = self._queue
        while q and (not full_only or len(q) >= self.batch):
            items: list[Item] = []
            marker: threading.Event | None = None
            while q and len(items) < self.batch:
                x = q.popleft()
                if isinstance(x, threading.Event):
                    marker = x
                    break
                items.append(x)
            if items:
                self._export(items)
            if marker is not None:
                marker.set()
        if self._dropping and len(q) < self.max_queue // 2:
            self._dropping = False

    def _export(self, items: list[Item]) -> None:
        t0 = time.thread_time()
        try:
            self._export_batch(items)
        finally:
            self.export_cpu += time.thread_time() - t0
            self.exported_items += len(items)

    def _export_batch(self, items: list[Item]) -> None:
        otlp = [s for s in self.batch_sinks if isinstance(s, OtlpSink)]
        others = [s for s in self.batch_sinks if not isinstance(s, OtlpSink)]
        if others:
            spans: list[SpanData] = []
            logs: list[LogData] = []
            for n, item in enumerate(items, 1):
                if not n % _YIELD_EVERY:
                    _sleep(0)
                try:
                    s, lg = self._items(item)
                except Exception as exc:  # a bug or a bad record: counted, never raised
                    for sink in others:
                        sink.dest.fail("spans", _span_count(item), exc)
                    continue
                spans += s
                logs += lg
            for sink in others:
                sink.deliver(spans, logs)
        if otlp:
            encoded: list[bytes] = []
            records: list[LogData] = []
            for n, item in enumerate(items, 1):
                if not n % _YIELD_EVERY:
                    _sleep(0)  # let the request threads have the GIL: encoding a batch takes milliseconds
                try:
                    if isinstance(item, _Encoded):
                        encoded += item.spans
                        records += item.logs
                    elif isinstance(item, RequestSpan):
                        if item.sampled:
                            encoded += encode_request(item)
                        if item.record is not None:
                            _stderr_logs(item.record, item.trace_id, item.span_id, item.sampled, self.max_log_lines, self.max_log_bytes, records)
                    else:
                        s, lg = self._items(item)
                        encoded += [x.encode() for x in s]
                        records += lg
                except Exception as exc:  # a bug or a bad record: counted, never raised
                    for sink in otlp:
                        sink.dest.fail("spans", _span_count(item), exc)
            for sink in otlp:
                sink.deliver_encoded(encoded, records)

    # --- lifecycle ----------------------------------------------------------------------------
    def force_flush(self, timeout: float) -> bool:
        if not self.batch_sinks or self._thread is None:
            return True
        self.settle()  # before the marker: what ended before the flush is in it
        marker = threading.Event()
        self._queue.append(marker)
        self._flush_requested = True
        self._wake.set()
        return marker.wait(timeout)

    def shutdown(self, timeout: float) -> bool:
        done = True
        if self._thread is not None:
            self._stop = True
            self._wake.set()
            self._thread.join(timeout)
            done = not self._thread.is_alive()
        else:
            self._stop = True
        for sink in (*self.sync_sinks, *self.batch_sinks):
            try:
                sink.close()
            except Exception as exc:
                log.debug("telemetry: closing %s failed: %s", sink.dest.name, exc)
        return done
