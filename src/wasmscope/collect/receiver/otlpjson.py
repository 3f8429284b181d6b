"""OTLP/JSON to opentelemetry-proto messages.

OTLP/JSON is the proto3 JSON mapping with OTLP's deviations: ``traceId``, ``spanId``
and ``parentSpanId`` are case-insensitive hex strings (not base64) in every message
that has them (span, link, log record, exemplar); unknown field names are ignored.
proto3 JSON's own leniencies are kept: 64-bit integers as strings or numbers, enum
names as well as integers (OTLP's MUST NOT binds the sender), the original field
names as well as lowerCamelCase, ``null`` for a default value.

The reference path is google.protobuf's ``json_format.ParseDict`` after the hex ids
are rewritten to base64. It is slow (about 4,000 spans/s with 25 attributes a
span), so spans and log records, the bulk of the traffic, take a fast path first:
their scalar fields and their attributes with scalar values are read here, and
anything less common (events, links, status, arrays, maps, bytes, strings for
numbers, enum names, ``null``, both spellings of a field) falls back to
``ParseDict`` for that one item or value, so that every request decodes exactly as
the reference path decodes it (the tests compare the two).
"""

from __future__ import annotations

import base64
import binascii
import json
import re
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from google.protobuf import json_format
from google.protobuf.message import Message
from opentelemetry.proto.collector.logs.v1.logs_service_pb2 import ExportLogsServiceRequest
from opentelemetry.proto.collector.metrics.v1.metrics_service_pb2 import ExportMetricsServiceRequest
from opentelemetry.proto.collector.trace.v1.trace_service_pb2 import ExportTraceServiceRequest
from opentelemetry.proto.common.v1.common_pb2 import KeyValue
from opentelemetry.proto.logs.v1.logs_pb2 import LogRecord
from opentelemetry.proto.trace.v1.trace_pb2 import Span

from wasmscope.collect.receiver.sink import Signal

__all__ = ["JsonError", "parse_reference", "parse_request"]

_REQUESTS: dict[Signal, type[Message]] = {
    Signal.TRACES: ExportTraceServiceRequest,
    Signal.METRICS: ExportMetricsServiceRequest,
    Signal.LOGS: ExportLogsServiceRequest,
}


class JsonError(ValueError):
    """The body is not a valid OTLP/JSON request (the message says why)."""


class _Fallback(Exception):
    """Something the fast path does not read: the reference path decides."""


# --- the reference path ------------------------------------------------------------------

def _b64_id(value: Any) -> Any:
    if not isinstance(value, str):
        return value  # not a string: the parser reports the wrong type
    return base64.b64encode(_unhex(value)).decode("ascii")


def _unhex(value: str) -> bytes:
    try:
        return binascii.unhexlify(value)
    except (binascii.Error, ValueError):
        raise JsonError(f"an id is not a hex string: {value[:80]!r}") from None


def _ids(obj: Any, names: tuple[str, ...]) -> None:
    if isinstance(obj, dict):
        for name in names:
            if name in obj:
                obj[name] = _b64_id(obj[name])


def _items(obj: Any, *keys: str) -> list[Any]:
    """The list under the first of ``keys`` in the object ``obj`` ([] when absent or
    not a list: the parser then reports what is wrong)."""
    if isinstance(obj, dict):
        for key in keys:
            value = obj.get(key)
            if isinstance(value, list):
                return value
    return []


_SPAN_IDS = ("traceId", "trace_id", "spanId", "span_id", "parentSpanId", "parent_span_id")
_PAIR_IDS = ("traceId", "trace_id", "spanId", "span_id")
_POINT_KINDS = ("gauge", "sum", "histogram", "exponentialHistogram", "exponential_histogram")


def _spans_hex_to_base64(span: Any) -> None:
    _ids(span, _SPAN_IDS)
    for link in _items(span, "links"):
        _ids(link, _PAIR_IDS)


def _hex_ids_to_base64(signal: Signal, doc: Any) -> None:
    """Rewrites, in place, OTLP/JSON's hex ids into proto3 JSON's base64."""
    if signal is Signal.TRACES:
        for rs in _items(doc, "resourceSpans", "resource_spans"):
            for ss in _items(rs, "scopeSpans", "scope_spans"):
                for span in _items(ss, "spans"):
                    _spans_hex_to_base64(span)
    elif signal is Signal.LOGS:
        for rl in _items(doc, "resourceLogs", "resource_logs"):
            for sl in _items(rl, "scopeLogs", "scope_logs"):
                for record in _items(sl, "logRecords", "log_records"):
                    _ids(record, _PAIR_IDS)
    else:
        for rm in _items(doc, "resourceMetrics", "resource_metrics"):
            for sm in _items(rm, "scopeMetrics", "scope_metrics"):
                for metric in _items(sm, "metrics"):
                    if not isinstance(metric, dict):
                        continue
                    for kind in _POINT_KINDS:
                        for point in _items(metric.get(kind), "dataPoints", "data_points"):
                            for exemplar in _items(point, "exemplars"):
                                _ids(exemplar, _PAIR_IDS)


def _parse_dict(doc: Any, message: Message) -> None:
    try:
        json_format.ParseDict(doc, message, ignore_unknown_fields=True)
    except (json_format.ParseError, ValueError, TypeError, RecursionError) as exc:
        raise JsonError(str(exc)) from None
    except SystemError as exc:
        # upb looks a lone surrogate up as a field name and fails with a bare
        # SystemError ("returned a result with an exception set").
        raise JsonError(f"a string is not valid Unicode: {exc}") from None


def parse_reference(signal: Signal, doc: Any) -> Message:
    """The reference decoding of a parsed JSON document (changed in place)."""
    if not isinstance(doc, dict):
        raise JsonError(f"an OTLP/JSON request is a JSON object, not {type(doc).__name__}")
    _hex_ids_to_base64(signal, doc)
    message = _REQUESTS[signal]()
    _parse_dict(doc, message)
    return message


# --- the fast path -----------------------------------------------------------------------

_DIGITS = re.compile(r"-?[0-9]+")
_I64 = (-(1 << 63), 1 << 63)
_U64 = (0, 1 << 64)
_U32 = (0, 1 << 32)
_I32 = (-(1 << 31), 1 << 31)


def _integer(value: Any, bounds: tuple[int, int]) -> int:
    if type(value) is int:
        n = value
    elif type(value) is str and _DIGITS.fullmatch(value):
        n = int(value)
    else:
        raise _Fallback
    if not bounds[0] <= n < bounds[1]:
        raise _Fallback
    return n


def _string(value: Any) -> str:
    if type(value) is not str:
        raise _Fallback
    return value


def _int64(v: Any) -> int:
    return _integer(v, _I64)


def _double(v: Any) -> float:
    if type(v) is float or type(v) is int:
        return float(v)
    raise _Fallback  # "NaN", "Infinity", "1.5": the reference parser reads those


def _bool(v: Any) -> bool:
    if type(v) is bool:
        return v
    raise _Fallback


_SCALARS: dict[str, tuple[str, Callable[[Any], Any]]] = {
    "stringValue": ("string_value", _string), "string_value": ("string_value", _string),
    "intValue": ("int_value", _int64), "int_value": ("int_value", _int64),
    "boolValue": ("bool_value", _bool), "bool_value": ("bool_value", _bool),
    "doubleValue": ("double_value", _double), "double_value": ("double_value", _double),
}  # fmt: skip


def _any_value(value: Any) -> Any:
    """A scalar AnyValue as constructor arguments (upb builds the message); anything
    else (arrays, maps, bytes) goes to the reference parser."""
    if type(value) is not dict or len(value) != 1:
        raise _Fallback
    ((kind, v),) = value.items()
    entry = _SCALARS.get(kind)
    if entry is None:
        raise _Fallback
    field, convert = entry
    return {field: convert(v)}


def _key_values(items: Any) -> list[Any]:
    """Attributes as a list of constructor arguments (a KeyValue message for one the
    reference parser had to read). The hottest loop of OTLP/JSON: string values are
    tested first, inline."""
    if type(items) is not list:
        raise _Fallback
    out: list[Any] = []
    append = out.append
    for item in items:
        if type(item) is not dict:
            raise _Fallback  # the reference parser reports it
        if len(item) == 2:
            key = item.get("key")
            value = item.get("value")
            if type(key) is str and type(value) is dict and len(value) == 1:
                ((kind, v),) = value.items()
                if kind == "stringValue" and type(v) is str:
                    append({"key": key, "value": {"string_value": v}})
                    continue
                entry = _SCALARS.get(kind)
                if entry is not None:
                    try:
                        append({"key": key, "value": {entry[0]: entry[1](v)}})
                        continue
                    except _Fallback:
                        pass
        kv = KeyValue()
        _parse_dict(item, kv)  # no ids below a KeyValue: nothing to rewrite
        append(kv)
    return out


def _id(value: Any) -> bytes:
    if type(value) is not str:
        raise _Fallback
    return _unhex(value)


def _u32(v: Any) -> int:
    return _integer(v, _U32)


def _u64(v: Any) -> int:
    return _integer(v, _U64)


def _enum(v: Any) -> int:
    if type(v) is not int:  # a name, or a string: the reference parser knows the names
        raise _Fallback
    return _integer(v, _I32)


_Convert = Callable[[Any], Any]
_Table = dict[str, tuple[str, _Convert]]


def _fields(table: _Table) -> _Table:
    """JSON key -> (proto field, converter), under both spellings of each field."""
    out = dict(table)
    for field, convert in table.values():
        out[field] = (field, convert)
    return out


def _kwargs(item: Any, table: _Table) -> dict[str, Any]:
    """The constructor arguments of the message in the JSON object ``item``; unknown
    keys ignored; :class:`_Fallback` for anything the table's converters do not read
    or a field given twice (both spellings)."""
    if type(item) is not dict:
        raise _Fallback
    kwargs: dict[str, Any] = {}
    for key, value in item.items():
        entry = table.get(key)
        if entry is None:
            continue  # an unknown field: ignored, as OTLP/JSON requires
        field, convert = entry
        if field in kwargs:
            raise _Fallback
        kwargs[field] = convert(value)
    return kwargs


def _messages(table: _Table) -> _Convert:
    def convert(items: Any) -> list[dict[str, Any]]:
        if type(items) is not list:
            raise _Fallback
        return [_kwargs(item, table) for item in items]

    return convert


def _message(table: _Table) -> _Convert:
    def convert(item: Any) -> dict[str, Any]:
        return _kwargs(item, table)

    return convert


_EVENT = _fields({
    "timeUnixNano": ("time_unix_nano", _u64), "name": ("name", _string),
    "attributes": ("attributes", _key_values), "droppedAttributesCount": ("dropped_attributes_count", _u32),
})  # fmt: skip
_LINK = _fields({
    "traceId": ("trace_id", _id), "spanId": ("span_id", _id), "traceState": ("trace_state", _string),
    "attributes": ("attributes", _key_values), "droppedAttributesCount": ("dropped_attributes_count", _u32),
    "flags": ("flags", _u32),
})  # fmt: skip
_STATUS = _fields({"message": ("message", _string), "code": ("code", _enum)})
_SPAN = _fields({
    "traceId": ("trace_id", _id), "spanId": ("span_id", _id), "parentSpanId": ("parent_span_id", _id),
    "traceState": ("trace_state", _string), "flags": ("flags", _u32), "name": ("name", _string),
    "kind": ("kind", _enum), "startTimeUnixNano": ("start_time_unix_nano", _u64),
    "endTimeUnixNano": ("end_time_unix_nano", _u64), "attributes": ("attributes", _key_values),
    "droppedAttributesCount": ("dropped_attributes_count", _u32),
    "events": ("events", _messages(_EVENT)), "droppedEventsCount": ("dropped_events_count", _u32),
    "links": ("links", _messages(_LINK)), "droppedLinksCount": ("dropped_links_count", _u32),
    "status": ("status", _message(_STATUS)),
})  # fmt: skip
_LOG = _fields({
    "timeUnixNano": ("time_unix_nano", _u64), "observedTimeUnixNano": ("observed_time_unix_nano", _u64),
    "severityNumber": ("severity_number", _enum), "severityText": ("severity_text", _string),
    "body": ("body", _any_value), "attributes": ("attributes", _key_values),
    "droppedAttributesCount": ("dropped_attributes_count", _u32), "flags": ("flags", _u32),
    "traceId": ("trace_id", _id), "spanId": ("span_id", _id), "eventName": ("event_name", _string),
})  # fmt: skip


def _span_for_reference(item: dict[str, Any]) -> dict[str, Any]:
    """A copy of a span object with base64 ids (the request document stays as it was,
    in case the whole request must go the reference path)."""
    out = dict(item)
    _ids(out, _SPAN_IDS)
    for key in ("links",):
        links = out.get(key)
        if isinstance(links, list):
            out[key] = [dict(link) if isinstance(link, dict) else link for link in links]
            for link in out[key]:
                _ids(link, _PAIR_IDS)
    return out


def _add_spans(target: Any, spans: Any) -> None:
    if type(spans) is not list:
        raise _Fallback
    for item in spans:
        if type(item) is not dict:
            raise _Fallback
        try:
            target.add(**_kwargs(item, _SPAN))
        except _Fallback:
            span = Span()
            _parse_dict(_span_for_reference(item), span)
            target.append(span)


def _add_logs(target: Any, records: Any) -> None:
    if type(records) is not list:
        raise _Fallback
    for item in records:
        if type(item) is not dict:
            raise _Fallback
        try:
            target.add(**_kwargs(item, _LOG))
        except _Fallback:
            copy = dict(item)
            _ids(copy, _PAIR_IDS)
            record = LogRecord()
            _parse_dict(copy, record)
            target.append(record)


@dataclass(frozen=True, slots=True)
class _Layout:
    """Where a fast signal's items sit: the JSON keys of the resource, scope and item
    lists (both spellings), the message fields of those lists, the item adder."""

    resources: tuple[str, str]
    scopes: tuple[str, str]
    items: tuple[str, str]
    fields: tuple[str, str, str]
    add: Callable[[Any, Any], None]


_LAYOUT = {
    Signal.TRACES: _Layout(("resourceSpans", "resource_spans"), ("scopeSpans", "scope_spans"), ("spans", "spans"),
                           ("resource_spans", "scope_spans", "spans"), _add_spans),
    Signal.LOGS: _Layout(("resourceLogs", "resource_logs"), ("scopeLogs", "scope_logs"),
                         ("logRecords", "log_records"), ("resource_logs", "scope_logs", "log_records"), _add_logs),
}


def _one_of(obj: dict[str, Any], keys: tuple[str, str]) -> Any:
    """The value under either spelling (None when absent); both spelled: fall back."""
    a, b = keys
    if a in obj:
        if b != a and b in obj:
            raise _Fallback
        return obj[a]
    return obj.get(b)


def _parse_fast(signal: Signal, doc: dict[str, Any]) -> Message:
    layout = _LAYOUT[signal]
    outer, middle, inner, fields, add = layout.resources, layout.scopes, layout.items, layout.fields, layout.add
    message = _REQUESTS[signal]()
    resources = _one_of(doc, outer)
    if resources is None:
        return message
    if type(resources) is not list:
        raise _Fallback
    for r in resources:
        if type(r) is not dict:
            raise _Fallback
        target = getattr(message, fields[0]).add()
        scopes = None
        rest = {}
        for key, value in r.items():
            if key in middle:
                if scopes is not None:
                    raise _Fallback
                scopes = value
            else:
                rest[key] = value  # resource, schemaUrl, unknown fields
        _parse_dict(rest, target)
        if scopes is None:
            continue
        if type(scopes) is not list:
            raise _Fallback
        for s in scopes:
            if type(s) is not dict:
                raise _Fallback
            scope_target = getattr(target, fields[1]).add()
            items = None
            rest = {}
            for key, value in s.items():
                if key in inner:
                    if items is not None:
                        raise _Fallback
                    items = value
                else:
                    rest[key] = value  # scope, schemaUrl, unknown fields
            _parse_dict(rest, scope_target)
            if items is not None:
                add(getattr(scope_target, fields[2]), items)
    return message


def parse_request(signal: Signal, data: bytes | bytearray) -> Message:
    """The ``Export*ServiceRequest`` of ``signal`` in the OTLP/JSON ``data``; raises
    :class:`JsonError`."""
    try:
        doc = json.loads(data)
    except (ValueError, RecursionError) as exc:  # JSONDecodeError and UnicodeDecodeError
        raise JsonError(f"the body is not JSON: {exc}") from None
    if not isinstance(doc, dict):
        raise JsonError(f"an OTLP/JSON request is a JSON object, not {type(doc).__name__}")
    if signal in _LAYOUT:
        try:
            return _parse_fast(signal, doc)
        except JsonError:
            raise
        except (_Fallback, TypeError, ValueError):
            # The fast path changed nothing in the document (it only reads it). A
            # TypeError/ValueError is upb refusing a value (a lone surrogate in a
            # string): the reference path gives its answer.
            pass
    return parse_reference(signal, doc)
