"""The plain data of serve's direct pipeline (no OpenTelemetry object): finished spans
and log records, the open server span of a request, an invocation outside of a
request, and the span tree a profiler hands to :meth:`Telemetry.record_invocation`."""

from __future__ import annotations

import struct
import time
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from wasmscope.telemetry import wire

if TYPE_CHECKING:
    from wasmscope.runtime.record import InvocationRecord

__all__ = [
    "SEVERITY_WARN", "SPAN_PHASES", "Encoded", "Invocation", "Item", "LogData", "RequestSpan", "SpanData", "SpanNode",
    "invocation_bounds", "name_field", "span_count", "status_field",
]  # fmt: skip

_time_ns = time.time_ns
_KIND_NAMES = {wire.KIND_INTERNAL: "INTERNAL", wire.KIND_SERVER: "SERVER"}
STATUS_NAMES = {wire.STATUS_UNSET: "UNSET", wire.STATUS_OK: "OK", wire.STATUS_ERROR: "ERROR"}
SEVERITY_WARN = 13  # SeverityNumber.WARN
SPAN_PHASES = (
    "instantiate",
    "execute",
)  # child spans of every invocation; the others when cold or failed


@dataclass(slots=True)
class SpanNode:
    """A span to emit under an invocation, with its own children (e.g. one guest
    function call from the profiler). Times are unix epoch nanoseconds."""

    name: str
    start_ns: int
    end_ns: int
    attributes: dict[str, Any] | None = None
    children: Sequence[SpanNode] = ()
    error: str | None = None  # status ERROR with this description


def invocation_bounds(record: InvocationRecord) -> tuple[int, int]:
    """Start and end of the invocation in unix ns; from the phases or now when unset."""
    start, end = record.start_ns, record.end_ns
    if not start and record.phases:
        start = min(p.start_ns for p in record.phases)
    if not end and record.phases:
        end = max(p.end_ns for p in record.phases)
    if not end:
        end = time.time_ns()
    if not start:
        start = end
    return start, max(end, start)


# --- plain data ---------------------------------------------------------------------------------
fixed64 = struct.Struct("<Q").pack
_NAMES: dict[str, bytes] = {}  # span name -> its encoded field
KINDS = {k: b"\x30" + bytes([k]) for k in (wire.KIND_INTERNAL, wire.KIND_SERVER)}
# flags = 16 (fixed32): sampled, has-is-remote, and is-remote for a remote parent
times = struct.Struct("<BQBQ").pack  # start_time_unix_nano = 7, end_time_unix_nano = 8 (fixed64)
_CHILD_PARTS: dict[
    str, tuple[bytes, bytes]
] = {}  # phase -> (name and kind, wasm.phase and flags) of its span
FLAGS_LOCAL = b"\x85\x01" + struct.pack("<I", wire.FLAGS_HAS_IS_REMOTE | 1)
FLAGS_REMOTE = b"\x85\x01" + struct.pack("<I", wire.FLAGS_HAS_IS_REMOTE | wire.FLAGS_IS_REMOTE | 1)


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
        out = [
            b"\x0a\x10",
            self.trace_id.to_bytes(16, "big"),
            b"\x12\x08",
            self.span_id.to_bytes(8, "big"),
        ]
        if self.trace_state:
            ts = self.trace_state.encode("latin-1", "replace")
            out += (b"\x1a", wire.varint(len(ts)), ts)
        if self.parent_span_id:
            out += (b"\x22\x08", self.parent_span_id.to_bytes(8, "big"))
        out += (
            name_field(self.name),
            KINDS[self.kind],
            b"\x39",
            fixed64(self.start_ns),
            b"\x41",
            fixed64(self.end_ns),
        )
        for block in self.static:
            out.append(block[1])
        wire.attributes(b"\x4a", self.attrs, out)
        for n, t, a in self.events:
            ev = wire.span_event(n, t, a)
            out += (b"\x5a", wire.varint(len(ev)), ev)
        if self.status_code or self.status_message:
            out.append(status_field(self.status_code, self.status_message))
        out.append(FLAGS_REMOTE if self.remote_parent else FLAGS_LOCAL)
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
            "status": {
                "code": STATUS_NAMES[self.status_code],
                "description": self.status_message or None,
            },
            "attributes": _json_attrs(_merged(self.static, self.attrs)),
            "events": [
                {"name": n, "time_ns": t, "attributes": _json_attrs(a)} for n, t, a in self.events
            ],
            "resource": resource,
            "scope": scope,
        }


class LogData:
    """A log record, as plain data."""

    __slots__ = (
        "attrs",
        "body",
        "event_name",
        "observed_ns",
        "sampled",
        "severity_number",
        "severity_text",
        "span_id",
        "time_ns",
        "trace_id",
    )

    def __init__(
        self, time_ns: int, observed_ns: int, severity_number: int, severity_text: str, body: str,
        attrs: Mapping[str, Any], trace_id: int, span_id: int, sampled: bool, event_name: str = "",
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
        self.event_name = event_name  # the LogRecord EventName field ("": none)

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
            event_name=self.event_name,
        )

    def to_json(self, resource: dict[str, Any], scope: str) -> dict[str, Any]:
        out = {
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
        if self.event_name:
            out["event_name"] = self.event_name
        return out


def _merged(
    blocks: Sequence[tuple[Mapping[str, Any], bytes]], attrs: Mapping[str, Any]
) -> dict[str, Any]:
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


def name_field(name: str) -> bytes:
    field = _NAMES.get(name)
    if field is None:
        nb = name.encode("utf-8", "replace")
        field = b"\x2a" + wire.varint(len(nb)) + nb
        if len(_NAMES) < 4096:
            _NAMES[name] = field
    return field


def status_field(code: int, message: str) -> bytes:
    st = b""
    if message:
        mb = message.encode("utf-8", "replace")
        st += b"\x12" + wire.varint(len(mb)) + mb
    if code:
        st += b"\x18" + bytes([code])
    return b"\x7a" + wire.varint(len(st)) + st


class Invocation:
    """An invocation recorded outside of a request span (a Gateway without the tracing
    middleware): its own SERVER span, as ``wasmscope run`` makes it."""

    __slots__ = (
        "parent_span_id",
        "record",
        "sampled",
        "span_id",
        "trace_id",
        "trace_state",
        "trigger",
    )

    def __init__(
        self,
        record: InvocationRecord,
        trace_id: int,
        span_id: int,
        parent_span_id: int,
        sampled: bool,
        trace_state: str,
        trigger: str,
    ) -> None:
        self.record = record
        self.trace_id = trace_id
        self.span_id = span_id
        self.parent_span_id = parent_span_id
        self.sampled = sampled
        self.trace_state = trace_state
        self.trigger = trigger


class Encoded:
    """A request already encoded for OTLP (the queue's item when OTLP is the only batch output)."""

    __slots__ = ("logs", "spans")

    def __init__(self, spans: list[bytes], logs: list[LogData]) -> None:
        self.spans = spans
        self.logs = logs

    sampled = True
    record = None


Item = RequestSpan | Invocation | Encoded


def span_count(item: Item) -> int:
    if isinstance(item, Encoded):
        return len(item.spans)
    if not item.sampled:
        return 0
    rec = item.record
    if rec is None:
        return 1
    if rec.cold_start or rec.cache != "memory":
        return 1 + len(rec.phases)
    kept = sum(1 for p in rec.phases if p.name in SPAN_PHASES)
    if rec.failed and rec.phases and rec.phases[-1].name not in SPAN_PHASES:
        kept += 1
    return 1 + kept
