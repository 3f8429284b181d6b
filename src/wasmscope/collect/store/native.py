"""OTLP trace and log requests inserted by ClickHouse itself, decoding the protobuf.

The Python path (:mod:`.columns`) walks every attribute of the parsed request, and each
``kv.value`` makes a Python object: about 56k spans/s on wasmscope's server spans. Here
the serialized requests are written to one scratch file (the ``Protobuf`` format's
length-delimited messages: a varint length, then the bytes), and one
``INSERT INTO db.otel_traces SELECT ... FROM file(...)`` has chDB decode them with a
``.proto`` of our own and make the rows in SQL, exactly those :mod:`.columns` makes.

The ``.proto`` is opentelemetry-proto's field numbers with two changes:

- the values inside an array or kvlist (:class:`InnerValue`) declare their own
  ``array_value`` / ``kvlist_value`` as ``bytes`` (a nested message is length-delimited
  on the wire), so one level of arrays and kvlists is decoded and deeper ones arrive raw;
- each request gets a field 15 (``batch_index``) appended on the wire, its position in
  the batch: two concatenated messages merge, so the row of each request names itself.

``input_format_protobuf_oneof_presence`` adds a column per ``oneof`` telling which field
was set (its field number, 0 for none), so ``int_value: 0`` and an empty value differ.

Each batch is read up to three times: a first pass with the insert's own structure
(the rows, and whether any value is an array or kvlist; bytes our ``.proto`` reads
otherwise than opentelemetry-proto fail here, before anything is inserted, and the whole
batch goes back); when there is an array or kvlist, a narrow second pass finds what SQL
cannot make exactly (an array or kvlist holding a non-empty array or kvlist, or a JSON
string with a control character ClickHouse escapes in upper-case hex); then the insert,
with the lean SQL (scalar values only, half the SQL to analyze) when no array or kvlist
is left. Requests SQL cannot make are left out and handed back (``Ingested.fallback``):
:meth:`NativeIngest.write` converts them with :mod:`.columns` itself.

Each insert costs about 50 ms of query analysis whatever its size, then about 10 us a
span: the writer's batches should be large (tens of thousands of spans) to gain. Only
the embedded backend can read our scratch file: a ClickHouse server reads files on its
own machine.
"""

from __future__ import annotations

import itertools
import os
import re
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

from wasmscope.binary.leb128 import uleb  # a protobuf varint is an unsigned LEB128
from wasmscope.collect.receiver.sink import Signal
from wasmscope.collect.store import schema
from wasmscope.collect.store.columns import tables_of
from wasmscope.errors import StoreError, UsageError

if TYPE_CHECKING:
    from wasmscope.collect.store.backend import Backend

__all__ = ["LOG_COLUMNS", "PROTO", "TRACE_COLUMNS", "Ingested", "NativeIngest"]

#: Our .proto: opentelemetry-proto's messages as far as the exporter reads them.
PROTO = """\
syntax = "proto3";

message AnyValue {
  oneof value {
    string string_value = 1;
    bool bool_value = 2;
    int64 int_value = 3;
    double double_value = 4;
    ArrayValue array_value = 5;
    KeyValueList kvlist_value = 6;
    bytes bytes_value = 7;
  }
}
message InnerValue {
  oneof value {
    string string_value = 1;
    bool bool_value = 2;
    int64 int_value = 3;
    double double_value = 4;
    bytes array_value = 5;
    bytes kvlist_value = 6;
    bytes bytes_value = 7;
  }
}
message ArrayValue { repeated InnerValue values = 1; }
message InnerKeyValue { string key = 1; InnerValue value = 2; }
message KeyValueList { repeated InnerKeyValue values = 1; }
message KeyValue { string key = 1; AnyValue value = 2; }
message InstrumentationScope {
  string name = 1; string version = 2; repeated KeyValue attributes = 3;
  uint32 dropped_attributes_count = 4;
}
message Resource { repeated KeyValue attributes = 1; uint32 dropped_attributes_count = 2; }

message Status { string message = 2; int32 code = 3; }
message Event {
  fixed64 time_unix_nano = 1; string name = 2; repeated KeyValue attributes = 3;
  uint32 dropped_attributes_count = 4;
}
message Link {
  bytes trace_id = 1; bytes span_id = 2; string trace_state = 3; repeated KeyValue attributes = 4;
  uint32 dropped_attributes_count = 5; fixed32 flags = 6;
}
message Span {
  bytes trace_id = 1; bytes span_id = 2; string trace_state = 3; bytes parent_span_id = 4;
  fixed32 flags = 16; string name = 5; int32 kind = 6;
  fixed64 start_time_unix_nano = 7; fixed64 end_time_unix_nano = 8;
  repeated KeyValue attributes = 9; uint32 dropped_attributes_count = 10;
  repeated Event events = 11; uint32 dropped_events_count = 12;
  repeated Link links = 13; uint32 dropped_links_count = 14; Status status = 15;
}
message ScopeSpans {
  InstrumentationScope scope = 1; repeated Span spans = 2; string schema_url = 3;
}
message ResourceSpans {
  Resource resource = 1; repeated ScopeSpans scope_spans = 2; string schema_url = 3;
}
message ExportTraceServiceRequest {
  repeated ResourceSpans resource_spans = 1;
  uint32 batch_index = 15;
}

message LogRecord {
  fixed64 time_unix_nano = 1; fixed64 observed_time_unix_nano = 11;
  int32 severity_number = 2; string severity_text = 3; AnyValue body = 5;
  repeated KeyValue attributes = 6; uint32 dropped_attributes_count = 7; fixed32 flags = 8;
  bytes trace_id = 9; bytes span_id = 10; string event_name = 12;
}
message ScopeLogs {
  InstrumentationScope scope = 1; repeated LogRecord log_records = 2; string schema_url = 3;
}
message ResourceLogs {
  Resource resource = 1; repeated ScopeLogs scope_logs = 2; string schema_url = 3;
}
message ExportLogsServiceRequest {
  repeated ResourceLogs resource_logs = 1;
  uint32 batch_index = 15;
}
"""

#: The field number the batch index is appended with (free in both requests).
_INDEX_FIELD = 15

# -- the ClickHouse structure the file is read as ---------------------------------------

# ``value`` of each AnyValue tuple is the oneof presence column: the set field's number.
_INNER = (
    "Tuple(string_value String, bool_value Bool, int_value Int64, double_value Float64, "
    "array_value String, kvlist_value String, bytes_value String, value UInt8)"
)
_ANY = (
    "Tuple(string_value String, bool_value Bool, int_value Int64, double_value Float64, "
    f"bytes_value String, array_value Tuple(values Array({_INNER})), "
    f"kvlist_value Tuple(values Array(Tuple(key String, value {_INNER}))), value UInt8)"
)
_KVS = f"Array(Tuple(key String, value {_ANY}))"
_SCOPE = f"Tuple(name String, version String, attributes {_KVS})"
_RESOURCE = f"Tuple(attributes {_KVS})"

_TRACES_STRUCTURE = (
    f"batch_index UInt32, resource_spans Array(Tuple(resource {_RESOURCE}, "
    f"scope_spans Array(Tuple(scope {_SCOPE}, spans Array(Tuple("
    "trace_id String, span_id String, trace_state String, parent_span_id String, "
    "name String, kind Int32, start_time_unix_nano UInt64, end_time_unix_nano UInt64, "
    f"attributes {_KVS}, "
    f"events Array(Tuple(time_unix_nano UInt64, name String, attributes {_KVS})), "
    "links Array(Tuple(trace_id String, span_id String, trace_state String, "
    f"attributes {_KVS})), "
    "status Tuple(message String, code Int32)))))))"
)
_LOGS_STRUCTURE = (
    f"batch_index UInt32, resource_logs Array(Tuple(resource {_RESOURCE}, "
    f"schema_url String, scope_logs Array(Tuple(scope {_SCOPE}, schema_url String, "
    "log_records Array(Tuple(time_unix_nano UInt64, observed_time_unix_nano UInt64, "
    f"severity_number Int32, severity_text String, body {_ANY}, attributes {_KVS}, "
    "flags UInt32, trace_id String, span_id String, event_name String))))))"
)

# The narrow structures of the check pass: only what makes a request unsupported.
_INNER_CHECK = "Tuple(string_value String, array_value String, kvlist_value String)"
_ANY_CHECK = (
    f"Tuple(array_value Tuple(values Array({_INNER_CHECK})), "
    f"kvlist_value Tuple(values Array(Tuple(key String, value {_INNER_CHECK}))), value UInt8)"
)
_KVS_CHECK = f"Array(Tuple(value {_ANY_CHECK}))"
_TRACES_CHECK = (
    f"batch_index UInt32, resource_spans Array(Tuple(resource Tuple(attributes {_KVS_CHECK}), "
    f"scope_spans Array(Tuple(spans Array(Tuple(kind Int32, attributes {_KVS_CHECK}, "
    f"events Array(Tuple(attributes {_KVS_CHECK})), "
    f"links Array(Tuple(attributes {_KVS_CHECK}))))))))"
)
_LOGS_CHECK = (
    f"batch_index UInt32, resource_logs Array(Tuple(resource Tuple(attributes {_KVS_CHECK}), "
    f"scope_logs Array(Tuple(scope Tuple(attributes {_KVS_CHECK}), "
    f"log_records Array(Tuple(flags UInt32, body {_ANY_CHECK}, attributes {_KVS_CHECK}))))))"
)
#: The first pass reads only which kind each value is: without an array or kvlist in the
#: batch, nothing can be unsupported and the deeper check is skipped.
_TRACES_KINDS = _TRACES_CHECK.replace(_ANY_CHECK, "Tuple(value UInt8)")
_LOGS_KINDS = _LOGS_CHECK.replace(_ANY_CHECK, "Tuple(value UInt8)")

# -- SQL that makes the exporter's text of an AnyValue ---------------------------------

_names = itertools.count()


def _var() -> str:
    return f"x{next(_names)}"


def _get(expr: str, name: str) -> str:
    return f"tupleElement({expr}, '{name}')"


def _lit(text: str) -> str:
    """``text`` as a ClickHouse string literal (control characters as ``\\xHH``)."""
    out = []
    for ch in text:
        if ch in "\\'":
            out.append("\\" + ch)
        elif ord(ch) < 0x20:
            out.append(f"\\x{ord(ch):02x}")
        else:
            out.append(ch)
    return "'" + "".join(out) + "'"


def _go_double(d: str) -> str:
    """A finite double as Go's shortest form: ClickHouse prints the same shortest
    round-trip digits with the same fixed/exponent switch (1e21, 1e-7), only without
    the ``+`` of a positive exponent."""
    return f"replaceRegexpOne(toString({d}), 'e([0-9])', 'e+\\\\1')"


def _double_text(d: str) -> str:
    return (
        f"multiIf(isFinite({d}), {_go_double(d)}, isNaN({d}), 'json: unsupported value: NaN', "
        f"{d} > 0, 'json: unsupported value: +Inf', 'json: unsupported value: -Inf')"
    )


def _json_string(s: str) -> str:
    # ClickHouse's JSON string is Python's (and Go's, HTML escaping off), U+2028/U+2029
    # escaped, but for the case of some \\u00XX hex digits: the check pass refuses those.
    return f"toJSONString({s})"


#: Control characters ClickHouse escapes with upper-case hex digits (Go: lower case).
_UPPER_HEX = "[\\x0b\\x0e\\x0f\\x1a-\\x1f]"


def _inner_json(v: str) -> str:
    """JSON of an array's or kvlist's element (its own arrays and kvlists only empty:
    non-empty ones are refused by the check pass)."""
    p = _get(v, "value")
    d = _get(v, "double_value")
    return (
        f"multiIf({p} = 1, {_json_string(_get(v, 'string_value'))}, "
        f"{p} = 3, toString({_get(v, 'int_value')}), "
        f"{p} = 2, if({_get(v, 'bool_value')}, 'true', 'false'), "
        f"{p} = 4, {_go_double(d)}, "
        f"{p} = 7, concat('\"', base64Encode({_get(v, 'bytes_value')}), '\"'), "
        f"{p} = 5, '[]', {p} = 6, '{{}}', 'null')"
    )


def _not_finite(values: str) -> str:
    x = _var()
    return (
        f"arrayExists({x} -> {_get(x, 'value')} = 4 "
        f"AND NOT isFinite({_get(x, 'double_value')}), {values})"
    )


def _array_json(a: str) -> str:
    values = _get(a, "values")
    x = _var()
    items = f"arrayStringConcat(arrayMap({x} -> {_inner_json(x)}, {values}), ',')"
    # A NaN or infinity inside makes Go's encoder fail: the exporter stores "".
    return f"if({_not_finite(values)}, '', concat('[', {items}, ']'))"


def _kvlist_json(k: str) -> str:
    values = _get(k, "values")
    rev = f"arrayReverse({values})"
    x, i, y, z = _var(), _var(), _var(), _var()
    keys = f"arrayMap({y} -> {_get(y, 'key')}, {rev})"
    # A Go map: the last of a repeated key wins, keys come out sorted (bytewise).
    last = (
        f"arrayFilter(({x}, {i}) -> indexOf({keys}, {_get(x, 'key')}) = {i}, "
        f"{rev}, arrayEnumerate({rev}))"
    )
    ordered = f"arraySort({z} -> {_get(z, 'key')}, {last})"
    w = _var()
    member = f"concat({_json_string(_get(w, 'key'))}, ':', {_inner_json(_get(w, 'value'))})"
    items = f"arrayStringConcat(arrayMap({w} -> {member}, {ordered}), ',')"
    inner = f"arrayMap({y} -> {_get(y, 'value')}, {values})"
    return f"if({_not_finite(inner)}, '', concat('{{', {items}, '}}'))"


def _text(v: str, full: bool) -> str:
    """SQL of columns.any_value_text for the AnyValue tuple ``v``; without ``full``, for
    batches the check pass found no array or kvlist in (half the SQL to analyze)."""
    p = _get(v, "value")
    if not full:
        return (
            f"multiIf({p} = 1, {_get(v, 'string_value')}, "
            f"{p} = 3, toString({_get(v, 'int_value')}), "
            f"{p} = 2, if({_get(v, 'bool_value')}, 'true', 'false'), "
            f"{p} = 4, {_double_text(_get(v, 'double_value'))}, "
            f"{p} = 7, base64Encode({_get(v, 'bytes_value')}), '')"
        )
    return (
        f"multiIf({p} = 1, {_get(v, 'string_value')}, "
        f"{p} = 3, toString({_get(v, 'int_value')}), "
        f"{p} = 2, if({_get(v, 'bool_value')}, 'true', 'false'), "
        f"{p} = 4, {_double_text(_get(v, 'double_value'))}, "
        f"{p} = 7, base64Encode({_get(v, 'bytes_value')}), "
        f"{p} = 5, {_array_json(_get(v, 'array_value'))}, "
        f"{p} = 6, {_kvlist_json(_get(v, 'kvlist_value'))}, '')"
    )


_MAP_TYPE = "Map(LowCardinality(String), String)"


def _pairs(kvs: str, full: bool) -> str:
    x = _var()
    return f"arrayMap({x} -> ({_get(x, 'key')}, {_text(_get(x, 'value'), full)}), {kvs})"


def _map(kvs: str, full: bool) -> str:
    return f"CAST({_pairs(kvs, full)}, '{_MAP_TYPE}')"


def _service(m: str) -> str:
    """The first ``service.name`` of the map ``m`` ("" without one)."""
    k, v = _var(), _var()
    return f"arrayFirst(({v}, {k}) -> {k} = 'service.name', mapValues({m}), mapKeys({m}))"


def _trace_hex(b: str) -> str:
    return f"if({b} = '' OR {b} = repeat('\\0', 16), '', lower(hex({b})))"


def _span_hex(b: str) -> str:
    return f"if({b} = '' OR {b} = repeat('\\0', 8), '', lower(hex({b})))"


def _nanos(t: str) -> str:
    # fixed64 nanoseconds: beyond int64 they wrap, as Go's time conversion does.
    return f"fromUnixTimestamp64Nano(reinterpretAsInt64({t}), 'UTC')"


def _all(path: str) -> str:
    """Every string at ``path`` (tuple elements through nested arrays) in one string: no
    lambda runs, the request's columns are only walked."""
    return f"arrayStringConcat(arrayFlatten({path}))"


def _unsupported(values: str) -> str:
    """SQL true when an AnyValue at ``values`` (tuple-element path, of the check
    structure) is an array or kvlist holding a non-empty array or kvlist (given raw as
    bytes: SQL cannot recurse), or a string or key with a control character ClickHouse's
    JSON writes with upper-case hex digits."""
    items = _path(values, "array_value", "values")
    members = _path(values, "kvlist_value", "values")
    inner = [items, _get(members, "value")]
    deep = " OR ".join(
        f"{_all(_get(i, field))} != ''" for i in inner for field in ("array_value", "kvlist_value")
    )
    texts = [
        _get(items, "string_value"),
        _get(members, "key"),
        _path(members, "value", "string_value"),
    ]
    hexes = " OR ".join(f"match({_all(t)}, '{_UPPER_HEX}')" for t in texts)
    return f"({deep} OR {hexes})"


TRACE_COLUMNS = (
    "Timestamp",
    "TraceId",
    "SpanId",
    "ParentSpanId",
    "TraceState",
    "SpanName",
    "SpanKind",
    "ServiceName",
    "ResourceAttributes",
    "ScopeName",
    "ScopeVersion",
    "SpanAttributes",
    "Duration",
    "StatusCode",
    "StatusMessage",
    "Events.Timestamp",
    "Events.Name",
    "Events.Attributes",
    "Links.TraceId",
    "Links.SpanId",
    "Links.TraceState",
    "Links.Attributes",
)

LOG_COLUMNS = (
    "Timestamp",
    "TraceId",
    "SpanId",
    "TraceFlags",
    "SeverityText",
    "SeverityNumber",
    "ServiceName",
    "Body",
    "ResourceSchemaUrl",
    "ResourceAttributes",
    "ScopeSchemaUrl",
    "ScopeName",
    "ScopeVersion",
    "ScopeAttributes",
    "LogAttributes",
    "EventName",
)


def _path(expr: str, *names: str) -> str:
    for name in names:
        expr = _get(expr, name)
    return expr


def _flat(
    top: str,
    middle: str,
    leaf: str,
    per_resource: dict[str, tuple[str, ...]],
    per_scope: dict[str, tuple[str, ...]],
    transform: dict[str, str],
) -> str:
    """The request's rows as parallel arrays, one element per span (or log record), and
    one ARRAY JOIN of them all. Only paths of tuple elements reach into the request
    (``tupleElement`` of an array of tuples is that element's array, not a copy): nested
    ARRAY JOINs, or lambdas over the resource or scope tuples, copy every span again.
    ``per_resource``/``per_scope`` map an alias to a path in the resource or scope
    tuple, ``transform`` an alias to SQL of ``{v}`` (the value at that path)."""
    r, v, c, y = _var(), _var(), _var(), _var()
    per_scope_items = _path(top, middle, leaf)  # [resource][scope][item]
    parts = [
        f"arrayFlatten({per_scope_items}) AS items",
        # arrayFlatten flattens every level: count inside, then flatten the counts.
        f"arrayFlatten(arrayMap({r} -> arrayMap({c} -> length({c}), {r}), {per_scope_items})) "
        "AS scope_counts",
        f"arrayMap({r} -> arraySum({c} -> length({c}), {r}), {per_scope_items}) AS res_counts",
    ]

    def repeat(values: str, counts: str) -> str:
        return (
            f"arrayFlatten(arrayMap(({y}, {c}) -> arrayWithConstant({c}, {y}), {values}, {counts}))"
        )

    for alias, path in per_scope.items():
        t = transform.get(alias, "{v}").replace("{v}", v)
        values = (
            f"arrayFlatten(arrayMap({r} -> arrayMap({v} -> {t}, {r}), {_path(top, middle, *path)}))"
        )
        parts.append(f"{repeat(values, 'scope_counts')} AS {alias}_")
    for alias, path in per_resource.items():
        t = transform.get(alias, "{v}").replace("{v}", v)
        values = f"arrayMap({v} -> {t}, {_path(top, *path)})"
        parts.append(f"{repeat(values, 'res_counts')} AS {alias}_")
    joins = ", ".join(["items AS it", *(f"{a}_ AS {a}" for a in (*per_scope, *per_resource))])
    select = ",\n    ".join(parts)
    return f"(\n  SELECT\n    {select}\n  FROM {{source}}\n  {{where}}\n) ARRAY JOIN {joins}"


def _traces_select(full: bool) -> str:
    sp = "it"
    ev, ln, o, n = _var(), _var(), _var(), _var()
    events = _get(sp, "events")
    links = _get(sp, "links")
    kind = _get(sp, "kind")
    code = _get(_get(sp, "status"), "code")
    kinds = "['Unspecified', 'Internal', 'Server', 'Client', 'Producer', 'Consumer']"
    start = _get(sp, "start_time_unix_nano")
    end = _get(sp, "end_time_unix_nano")
    # The span's, its events' and its links' attributes are made text in one pass (one
    # copy of the long AnyValue expression to analyze, not three), then sliced apart.
    ev_lens = f"arrayMap({n} -> length({n}), {_get(events, 'attributes')})"
    ln_lens = f"arrayMap({n} -> length({n}), {_get(links, 'attributes')})"
    n_span = f"length({_get(sp, 'attributes')})"
    ev_starts = (
        f"arrayMap(({o}, {n}) -> {o} - {n} + 1 + {n_span}, arrayCumSum({ev_lens}), {ev_lens})"
    )
    ln_base = f"{n_span} + arraySum({ev_lens})"
    ln_starts = (
        f"arrayMap(({o}, {n}) -> {o} - {n} + 1 + {ln_base}, arrayCumSum({ln_lens}), {ln_lens})"
    )

    def maps(starts: str, lens: str) -> str:
        cast = f"CAST(arraySlice(pairs, {o}, {n}), '{_MAP_TYPE}')"
        return f"arrayMap(({o}, {n}) -> {cast}, {starts}, {lens})"

    columns = [
        _nanos(start),
        _trace_hex(_get(sp, "trace_id")),
        _span_hex(_get(sp, "span_id")),
        _span_hex(_get(sp, "parent_span_id")),
        _get(sp, "trace_state"),
        _get(sp, "name"),
        f"transform({kind}, [0, 1, 2, 3, 4, 5], {kinds}, '')",
        _service("resource_map"),
        "resource_map",
        "scope_name",
        "scope_version",
        f"CAST(arraySlice(pairs, 1, {n_span}), '{_MAP_TYPE}')",
        # UInt64 minus UInt64 is Int64 in ClickHouse; the exporter's subtraction wraps.
        f"reinterpretAsUInt64(minus({end}, {start}))",
        f"transform({code}, [0, 1, 2], ['Unset', 'Ok', 'Error'], '')",
        _get(_get(sp, "status"), "message"),
        f"arrayMap({ev} -> {_nanos(ev)}, {_get(events, 'time_unix_nano')})",
        _get(events, "name"),
        maps(ev_starts, ev_lens),
        f"arrayMap({ln} -> {_trace_hex(ln)}, {_get(links, 'trace_id')})",
        f"arrayMap({ln} -> {_span_hex(ln)}, {_get(links, 'span_id')})",
        _get(links, "trace_state"),
        maps(ln_starts, ln_lens),
    ]
    all_attrs = (
        f"arrayConcat({_get(sp, 'attributes')}, arrayFlatten({_get(events, 'attributes')}), "
        f"arrayFlatten({_get(links, 'attributes')}))"
    )
    attrs = ("resource", "attributes")
    source = _flat(
        "resource_spans",
        "scope_spans",
        "spans",
        {"resource_map": attrs},
        {"scope_name": ("scope", "name"), "scope_version": ("scope", "version")},
        {"resource_map": _map("{v}", full)},
    )
    select = ",\n  ".join(columns)
    return (
        f"SELECT\n  {select}\nFROM (\nSELECT it, resource_map, scope_name, scope_version, "
        f"{_pairs(all_attrs, full)} AS pairs\nFROM {source}\n)"
    )


def _logs_select(full: bool) -> str:
    r = "it"
    t = _get(r, "time_unix_nano")
    columns = [
        _nanos(f"if({t} != 0, {t}, {_get(r, 'observed_time_unix_nano')})"),
        _trace_hex(_get(r, "trace_id")),
        _span_hex(_get(r, "span_id")),
        f"toUInt8(bitAnd({_get(r, 'flags')}, 255))",
        _get(r, "severity_text"),
        f"toUInt8(bitAnd({_get(r, 'severity_number')}, 255))",
        _service("resource_map"),
        _text(_get(r, "body"), full),
        "resource_url",
        "resource_map",
        "scope_url",
        "scope_name",
        "scope_version",
        "scope_map",
        _map(_get(r, "attributes"), full),
        _get(r, "event_name"),
    ]
    attrs = ("resource", "attributes")
    source = _flat(
        "resource_logs",
        "scope_logs",
        "log_records",
        {"resource_map": attrs, "resource_url": ("schema_url",)},
        {
            "scope_url": ("schema_url",),
            "scope_name": ("scope", "name"),
            "scope_version": ("scope", "version"),
            "scope_map": ("scope", "attributes"),
        },
        {"resource_map": _map("{v}", full), "scope_map": _map("{v}", full)},
    )
    select = ",\n  ".join(columns)
    return f"SELECT\n  {select}\nFROM {source}"


def _traces_check() -> tuple[str, str]:
    spans = _path("resource_spans", "scope_spans", "spans")
    lists = [
        _path("resource_spans", "resource", "attributes"),
        _get(spans, "attributes"),
        _path(spans, "events", "attributes"),
        _path(spans, "links", "attributes"),
    ]
    values = [_get(kvs, "value") for kvs in lists]
    return _check_select(f"length(arrayFlatten({_get(spans, 'kind')}))", values)


def _logs_check() -> tuple[str, str]:
    records = _path("resource_logs", "scope_logs", "log_records")
    lists = [
        _path("resource_logs", "resource", "attributes"),
        _path("resource_logs", "scope_logs", "scope", "attributes"),
        _get(records, "attributes"),
    ]
    values = [_get(records, "body"), *(_get(kvs, "value") for kvs in lists)]
    return _check_select(f"length(arrayFlatten({_get(records, 'flags')}))", values)


def _check_select(count: str, values: list[str]) -> tuple[str, str]:
    """The first pass (one row: the rows, whether any value is an array or kvlist) and
    the second (the rows the supported requests make, the unsupported ones' indexes, and
    whether a supported one holds an array or kvlist, else the lean SQL makes them)."""
    bad = " OR ".join(_unsupported(v) for v in values)
    nested = " OR ".join(f"hasAny(arrayFlatten({_get(v, 'value')}), [5, 6])" for v in values)
    first = f"SELECT sum({count}), max({nested}) FROM {{source}}"
    second = (
        "SELECT sumIf(n, NOT bad), groupArrayIf(batch_index, bad), maxIf(nested, NOT bad) FROM "
        f"(SELECT batch_index, {count} AS n, {bad} AS bad, {nested} AS nested FROM {{source}})"
    )
    return first, second


@dataclass(frozen=True)
class _Kind:
    table: str
    message: str
    structure: str
    check_structure: str
    kinds_structure: str
    columns: tuple[str, ...]
    #: The SELECT for batches with arrays or kvlists, and the lean one for the others.
    select: str
    lean_select: str
    check: tuple[str, str]


_TRACES = _Kind(
    schema.TRACES,
    "ExportTraceServiceRequest",
    _TRACES_STRUCTURE,
    _TRACES_CHECK,
    _TRACES_KINDS,
    TRACE_COLUMNS,
    _traces_select(full=True),
    _traces_select(full=False),
    _traces_check(),
)
_LOGS = _Kind(
    schema.LOGS,
    "ExportLogsServiceRequest",
    _LOGS_STRUCTURE,
    _LOGS_CHECK,
    _LOGS_KINDS,
    LOG_COLUMNS,
    _logs_select(full=True),
    _logs_select(full=False),
    _logs_check(),
)


@dataclass(frozen=True, slots=True)
class Ingested:
    """What one native insert did: ``rows`` inserted, and the positions in the batch of
    the requests it left out (``fallback``) for the caller to convert with
    :mod:`.columns` (their rows are not in ``rows``)."""

    rows: int
    fallback: list[int] = field(default_factory=list)


#: Requests in one insert at most: the file must be read as one chunk (see _insert).
_MAX_BATCH = 60_000
#: How chDB tells a message our .proto cannot read.
_PARSE_ERROR = "Protobuf messages are corrupted"

_SAFE_PATH = re.compile(r"^/[A-Za-z0-9_./-]+$")
_TOKEN = re.compile(r"^[A-Za-z0-9_-]+$")
_INDEX_TAG = uleb(_INDEX_FIELD << 3)  # wire type 0: varint


def frame(bodies: Sequence[bytes]) -> bytes:
    """The scratch file of ``bodies``: each request with its batch index appended
    (field 15, merged into the message), length-delimited."""
    parts = []
    for i, body in enumerate(bodies):
        tail = _INDEX_TAG + uleb(i)
        parts.append(uleb(len(body) + len(tail)))
        parts.append(body)
        parts.append(tail)
    return b"".join(parts)


class NativeIngest:
    """Insert serialized OTLP trace and log requests into ``database`` of the embedded
    ``backend``, decoded by chDB (the store's schema must exist). ``scratch_dir`` holds
    our ``.proto`` and one scratch file per call: a tmpfs (``/dev/shm``) keeps them off
    the disk. Not for concurrent use: the store's writer thread calls it."""

    def __init__(
        self, backend: Backend, database: str, scratch_dir: str | os.PathLike[str]
    ) -> None:
        if getattr(backend, "kind", None) != "chdb":
            raise UsageError("native ingest needs the embedded (chDB) store")
        self.backend = backend
        self.database = schema.check_identifier(database)
        self.scratch_dir = Path(scratch_dir).absolute()
        self.scratch_dir.mkdir(parents=True, exist_ok=True)
        if not _SAFE_PATH.match(str(self.scratch_dir)):
            raise UsageError(f"the scratch directory must be a plain path: {self.scratch_dir}")
        self._proto = self.scratch_dir / "wasmscope_otlp.proto"
        self._proto.write_text(PROTO)
        # One file per ingest object: two stores of a process may share the directory.
        self._data = self.scratch_dir / f"wasmscope_otlp_{os.getpid()}_{id(self):x}.bin"
        #: Requests inserted here and left to the caller, since this object was made.
        self.native_requests = 0
        self.fallback_requests = 0
        #: Inserts made by the lean SQL (no array or kvlist in the batch).
        self.lean_inserts = 0
        #: (position, error) of the requests of the last write_bodies that neither chDB nor
        #: columns.py could convert: the caller sets them aside.
        self.unconvertible: list[tuple[int, str]] = []

    def write(self, signal: Signal, requests: Sequence[Any]) -> int:
        """Insert parsed trace or log requests (opentelemetry-proto messages): natively,
        and those native ingest hands back through columns.py, as ``Store.write`` would.
        Returns the rows inserted. Metrics requests all go through columns.py."""
        if signal is Signal.METRICS:
            fallback = list(range(len(requests)))
            rows = 0
        else:
            bodies = [r.SerializeToString() for r in requests]
            insert = self.insert_traces if signal is Signal.TRACES else self.insert_logs
            done = insert(bodies)
            rows, fallback = done.rows, done.fallback
        for i in fallback:
            for table, data in tables_of(signal, requests[i]):
                self.backend.insert(f"{self.database}.{table}", data.column_names, data)
                rows += data.num_rows
        return rows

    def write_bodies(self, signal: Signal, bodies: Sequence[bytes], token: str | None = None) -> int:
        """:meth:`write` for serialized trace or log requests (the write-ahead log's),
        every insert deduplicated by a token made from ``token``: the native one
        ``TOKEN``, those of the requests handed back ``TOKEN-fb-TABLE``."""
        from wasmscope.collect.receiver.decode import request_class

        done = self._insert(_TRACES if signal is Signal.TRACES else _LOGS, bodies, token)
        rows = done.rows
        self.unconvertible = []
        if done.fallback:
            by_table: dict[str, list[Any]] = {}
            for i in done.fallback:
                try:
                    tables = tables_of(signal, request_class(signal).FromString(bodies[i]))
                except StoreError as exc:  # the same every time: set aside, not retried
                    self.unconvertible.append((i, str(exc)))
                    continue
                for table, data in tables:
                    by_table.setdefault(table, []).append(data)
            import pyarrow as pa

            for table, parts in by_table.items():
                data = pa.concat_tables(parts)
                self.backend.insert(f"{self.database}.{table}", data.column_names, data,
                                    None if token is None else f"{token}-fb-{table}")  # fmt: skip
                rows += data.num_rows
        return rows

    def insert_traces(self, bodies: Sequence[bytes]) -> Ingested:
        """Insert the spans of these ``ExportTraceServiceRequest`` bodies."""
        return self._insert(_TRACES, bodies)

    def insert_logs(self, bodies: Sequence[bytes]) -> Ingested:
        """Insert the log records of these ``ExportLogsServiceRequest`` bodies."""
        return self._insert(_LOGS, bodies)

    def _source(self, structure: str) -> str:
        return f"file('{self._data}', 'Protobuf', '{structure}')"

    def _settings(self, kind: _Kind) -> str:
        return (
            f"SETTINGS format_schema = '{self._proto}:{kind.message}', "
            "input_format_protobuf_oneof_presence = 1, "
            # toJSONString escapes "/" by default; Go's encoder does not.
            "output_format_json_escape_forward_slashes = 0"
        )

    def _insert(self, kind: _Kind, bodies: Sequence[bytes], token: str | None = None) -> Ingested:
        if token is not None and not _TOKEN.match(token):
            raise ValueError(f"invalid deduplication token {token!r}")
        dedup = (
            f", insert_deduplicate = 1, insert_deduplication_token = '{token}',"
            " deduplicate_blocks_in_dependent_materialized_views = 1"
            if token is not None else ""
        )  # fmt: skip
        if not bodies:
            return Ingested(0)
        if len(bodies) > _MAX_BATCH:
            raise UsageError(f"at most {_MAX_BATCH} requests in one native insert")
        self._data.write_bytes(frame(bodies))
        try:
            try:
                rows, fallback, nested = self._check(kind)
            except StoreError as exc:
                if _PARSE_ERROR not in str(exc):
                    raise
                self._recover()
                rows, fallback, nested = 0, list(range(len(bodies))), False
            if len(fallback) < len(bodies):
                where = ""
                params = None
                if fallback:
                    where = "WHERE batch_index NOT IN {fallback:Array(UInt32)}"
                    params = {"fallback": fallback}
                select = kind.select if nested else kind.lean_select
                select = select.replace("{source}", self._source(kind.structure))
                names = ", ".join(f"`{c}`" for c in kind.columns)
                try:
                    self.backend.command(
                        f"INSERT INTO {self.database}.{kind.table} ({names})\n"
                        f"{select.replace('{where}', where)}\n{self._settings(kind)}, "
                        # The whole file is one chunk, so a message that fails to parse
                        # fails the insert before any row is written.
                        f"max_block_size = {_MAX_BATCH}, input_format_max_block_size_bytes = 0{dedup}",
                        params,
                    )
                except StoreError as exc:
                    if _PARSE_ERROR not in str(exc):
                        raise
                    # Bytes our .proto reads otherwise than opentelemetry-proto (a field
                    # of another wire type than ours, kept by upb as unknown): nothing
                    # was inserted, the whole batch goes the Python way.
                    self._recover()
                    rows, fallback = 0, list(range(len(bodies)))
                else:
                    self.lean_inserts += not nested
        finally:
            self._data.unlink(missing_ok=True)
        self.native_requests += len(bodies) - len(fallback)
        self.fallback_requests += len(fallback)
        return Ingested(rows, fallback)

    def _recover(self) -> None:
        # chDB 4.4: after a failed read of a file's format, the next query's Arrow result
        # is an empty IPC message (pyarrow raises); one query in between clears that.
        self.backend.command("SELECT 1")

    def _check(self, kind: _Kind) -> tuple[int, list[int], bool]:
        """The rows of the supported requests, the unsupported ones' positions, and
        whether a supported one holds an array or kvlist."""
        first, second = kind.check
        sql = first.replace("{source}", self._source(kind.kinds_structure))
        result = self.backend.query(f"{sql}\n{self._settings(kind)}")
        if not result.rows:
            raise StoreError("the native check returned nothing")
        rows, nested = result.rows[0]
        if not nested:
            return int(rows or 0), [], False
        sql = second.replace("{source}", self._source(kind.check_structure))
        result = self.backend.query(f"{sql}\n{self._settings(kind)}")
        if not result.rows:
            raise StoreError("the native check returned nothing")
        rows, bad, nested = result.rows[0]
        return int(rows or 0), sorted(int(i) for i in bad or []), bool(nested)
