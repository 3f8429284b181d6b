"""OTLP export requests -> Arrow tables of the exporter's tables, column by column.

Each converter walks the parsed request (opentelemetry-proto on upb) once and appends
to one Python list per column, never building a dict per span; the lists become Arrow
arrays (maps and nested columns from flat keys, values and offsets), and a table's
rows are inserted in one statement. The values are those the OpenTelemetry Collector
``clickhouseexporter`` writes:

- ids as lowercase hex, "" for an empty or all-zero span/trace id (exemplar ids are
  always hex, 32 or 16 zeros when absent, as the exporter's ``hex.EncodeToString``);
- ``SpanKind`` as pdata names it (``Server``, ``Internal``, ``Client``, ``Producer``,
  ``Consumer``, ``Unspecified``), ``StatusCode`` ``Unset`` / ``Ok`` / ``Error``;
- every attribute value as pdata's ``Value.AsString``: strings as they are, ints in
  decimal, bools ``true``/``false``, doubles as Go's ES6-style shortest form (``1.5``,
  ``3``, ``1e+21``, ``1e-7``), bytes in standard base64, arrays and kvlists as compact
  JSON (object keys sorted, no HTML escaping, U+2028/U+2029 escaped), empty as "";
- ``ServiceName`` the resource's ``service.name`` (first one) as a string;
- ``Duration`` end minus start in uint64 nanoseconds (wrapping as the exporter's does);
- metric times as whole seconds (``DateTime``), a log's time its observed time when
  its own is 0.
"""

from __future__ import annotations

import base64
import json
import math
from collections.abc import Callable, Iterable
from typing import TYPE_CHECKING, Any

from wasmscope.collect.receiver.sink import Signal
from wasmscope.collect.store import schema
from wasmscope.errors import StoreError, UsageError

if TYPE_CHECKING:
    import pyarrow

__all__ = [
    "any_value_text",
    "logs_tables",
    "metrics_tables",
    "tables_of",
    "traces_tables",
]

_SPAN_KINDS = ("Unspecified", "Internal", "Server", "Client", "Producer", "Consumer")
_STATUS_CODES = ("Unset", "Ok", "Error")
_U64 = 0xFFFFFFFFFFFFFFFF
_ZERO_TRACE = bytes(16)
_ZERO_SPAN = bytes(8)


def _pa() -> Any:
    try:
        import pyarrow
    except ImportError:
        raise UsageError(
            "the store needs pyarrow: install wasmscope[collect] (pip install 'wasmscope[collect]')"
        ) from None
    return pyarrow


# -- AnyValue -> text, as pdata's Value.AsString --------------------------------------


def _go_float(f: float) -> str:
    """A double as Go's ``float64AsString`` (ES6 number to string): the shortest digits
    that round-trip, fixed notation unless ``abs < 1e-6`` or ``abs >= 1e21``."""
    if math.isnan(f):
        return "json: unsupported value: NaN"
    if math.isinf(f):
        return "json: unsupported value: " + ("+Inf" if f > 0 else "-Inf")
    a = abs(f)
    r = repr(f)
    if a != 0 and (a < 1e-6 or a >= 1e21):
        # Python's repr is already d.ddde±XX here; Go drops one leading exponent zero
        # of negative exponents (e-07 -> e-7) and keeps e+21.
        mantissa, _, exp = r.partition("e")
        if exp[0] == "-" and exp[1] == "0":
            exp = "-" + exp[2:]
        return f"{mantissa}e{exp}"
    if "e" not in r:
        return r[:-2] if r.endswith(".0") else r
    # Fixed notation of the shortest digits that repr printed in exponent form.
    mantissa, _, exp_text = r.partition("e")
    sign = ""
    if mantissa[0] == "-":
        sign, mantissa = "-", mantissa[1:]
    whole, _, frac = mantissa.partition(".")
    digits = whole + frac
    point = len(whole) + int(exp_text)
    if point >= len(digits):
        text = digits + "0" * (point - len(digits))
    elif point <= 0:
        text = "0." + "0" * (-point) + digits
    else:
        text = digits[:point] + "." + digits[point:]
    return sign + text


class _Unsupported(Exception):
    """A NaN or infinite double inside an array or kvlist: Go's JSON encoder fails."""


_JSON_STR = json.JSONEncoder(ensure_ascii=False).encode


def _json_string(s: str) -> str:
    # Go's encoder (HTML escaping off) escapes what Python's does, plus U+2028/U+2029.
    text = _JSON_STR(s)
    if "\u2028" in text or "\u2029" in text:
        text = text.replace("\u2028", "\\u2028").replace("\u2029", "\\u2029")
    return text


def _json(v: Any) -> str:
    """An AnyValue as Go's ``json.Marshal`` of pdata's ``AsRaw()``."""
    which = v.WhichOneof("value")
    if which == "string_value":
        return _json_string(v.string_value)
    if which == "int_value":
        return str(v.int_value)
    if which == "bool_value":
        return "true" if v.bool_value else "false"
    if which == "double_value":
        f = v.double_value
        if math.isnan(f) or math.isinf(f):
            raise _Unsupported
        return _go_float(f)
    if which == "bytes_value":
        return '"' + base64.b64encode(v.bytes_value).decode("ascii") + '"'
    if which == "array_value":
        return "[" + ",".join(_json(item) for item in v.array_value.values) + "]"
    if which == "kvlist_value":
        return _json_object(v.kvlist_value.values)
    return "null"


def _json_object(kvs: Iterable[Any]) -> str:
    # A Go map: a repeated key keeps its last value, keys come out sorted.
    members: dict[str, str] = {}
    for kv in kvs:
        members[kv.key] = _json(kv.value)
    return "{" + ",".join(_json_string(k) + ":" + members[k] for k in sorted(members)) + "}"


def any_value_text(v: Any) -> str:
    """An ``AnyValue`` as the text the exporter stores (pdata's ``Value.AsString``)."""
    which = v.WhichOneof("value")
    if which == "string_value":
        return v.string_value  # type: ignore[no-any-return]
    if which == "int_value":
        return str(v.int_value)
    if which == "bool_value":
        return "true" if v.bool_value else "false"
    if which == "double_value":
        return _go_float(v.double_value)
    if which is None:
        return ""
    if which == "bytes_value":
        return base64.b64encode(v.bytes_value).decode("ascii")
    try:
        if which == "array_value":
            return "[" + ",".join(_json(item) for item in v.array_value.values) + "]"
        return _json_object(v.kvlist_value.values)
    except _Unsupported:
        return ""


_text = any_value_text


def _trace_hex(b: bytes) -> str:
    return "" if not b or b == _ZERO_TRACE else b.hex()


def _span_hex(b: bytes) -> str:
    return "" if not b or b == _ZERO_SPAN else b.hex()


def _service_name(attributes: Iterable[Any]) -> str:
    for kv in attributes:
        if kv.key == "service.name":
            return _text(kv.value)
    return ""


class _Maps:
    """One Map column built flat: keys, values and row offsets."""

    __slots__ = ("keys", "offsets", "values")

    def __init__(self) -> None:
        self.keys: list[str] = []
        self.values: list[str] = []
        self.offsets: list[int] = [0]

    def add(self, attributes: Iterable[Any]) -> None:
        key_append, value_append = self.keys.append, self.values.append
        for kv in attributes:
            key_append(kv.key)
            v = kv.value
            # Most values are non-empty strings: one read instead of the general path.
            value_append(v.string_value or _text(v))
        self.offsets.append(len(self.keys))

    def array(self) -> pyarrow.Array:
        pa = _pa()
        return pa.MapArray.from_arrays(
            pa.array(self.offsets, pa.int32()),
            pa.array(self.keys, pa.string()),
            pa.array(self.values, pa.string()),
        )


def _list(offsets: list[int], values: pyarrow.Array) -> pyarrow.Array:
    pa = _pa()
    return pa.ListArray.from_arrays(pa.array(offsets, pa.int32()), values)


def _timestamps(values: list[int]) -> pyarrow.Array:
    pa = _pa()
    # fixed64 nanoseconds: beyond int64 they wrap, as Go's time conversion does.
    return pa.array(values, pa.uint64()).cast(pa.int64(), safe=False).cast(pa.timestamp("ns"))


def _seconds(values: list[int]) -> pyarrow.Array:
    pa = _pa()
    return pa.array([(v // 1_000_000_000) & 0xFFFFFFFF for v in values], pa.uint32())


def _take(per_group: pyarrow.Array, counts: list[int]) -> pyarrow.Array:
    """A per-resource (or per-scope) column repeated for each row of its group."""
    pa = _pa()
    index = [i for i, n in enumerate(counts) for _ in range(n)]
    return per_group.take(pa.array(index, pa.int32()))


# -- traces ----------------------------------------------------------------------------


def traces_tables(request: Any) -> list[tuple[str, pyarrow.Table]]:
    """``[("otel_traces", table)]`` for an ``ExportTraceServiceRequest`` (nothing when
    it holds no span)."""
    pa = _pa()
    ts: list[int] = []
    trace_ids: list[str] = []
    span_ids: list[str] = []
    parents: list[str] = []
    states: list[str] = []
    names: list[str] = []
    kinds: list[str] = []
    durations: list[int] = []
    codes: list[str] = []
    messages: list[str] = []
    scope_names: list[str] = []
    scope_versions: list[str] = []
    span_attrs = _Maps()
    ev_offsets = [0]
    ev_ts: list[int] = []
    ev_names: list[str] = []
    ev_attrs = _Maps()
    ln_offsets = [0]
    ln_trace: list[str] = []
    ln_span: list[str] = []
    ln_state: list[str] = []
    ln_attrs = _Maps()
    res_maps = _Maps()
    services: list[str] = []
    res_counts: list[int] = []
    kinds_n = len(_SPAN_KINDS)
    # Bound methods: the loop below runs once per span.
    ts_append, durations_append = ts.append, durations.append
    trace_ids_append, span_ids_append, parents_append = (
        trace_ids.append,
        span_ids.append,
        parents.append,
    )
    states_append, names_append, kinds_append = states.append, names.append, kinds.append
    codes_append, messages_append = codes.append, messages.append
    attr_keys = span_attrs.keys
    attr_key, attr_value = attr_keys.append, span_attrs.values.append
    attr_offsets_append = span_attrs.offsets.append
    ev_offsets_append, ln_offsets_append = ev_offsets.append, ln_offsets.append

    for rs in request.resource_spans:
        res_attributes = rs.resource.attributes
        res_maps.add(res_attributes)
        services.append(_service_name(res_attributes))
        before = len(ts)
        for ss in rs.scope_spans:
            scope = ss.scope
            spans = ss.spans
            count = len(spans)
            scope_names.extend([scope.name] * count)
            scope_versions.extend([scope.version] * count)
            for span in spans:
                start = span.start_time_unix_nano
                ts_append(start)
                durations_append((span.end_time_unix_nano - start) & _U64)
                b = span.trace_id
                trace_ids_append(b.hex() if b and b != _ZERO_TRACE else "")
                b = span.span_id
                span_ids_append(b.hex() if b and b != _ZERO_SPAN else "")
                b = span.parent_span_id
                parents_append(b.hex() if b and b != _ZERO_SPAN else "")
                states_append(span.trace_state)
                names_append(span.name)
                kind = span.kind
                kinds_append(_SPAN_KINDS[kind] if 0 <= kind < kinds_n else "")
                status = span.status
                code = status.code
                codes_append(_STATUS_CODES[code] if 0 <= code < 3 else "")
                messages_append(status.message)
                # The span's attributes inline (the bulk of the work: no call per span).
                for kv in span.attributes:
                    attr_key(kv.key)
                    v = kv.value
                    attr_value(v.string_value or _text(v))
                attr_offsets_append(len(attr_keys))
                events = span.events
                if events:
                    for ev in events:
                        ev_ts.append(ev.time_unix_nano)
                        ev_names.append(ev.name)
                        ev_attrs.add(ev.attributes)
                ev_offsets_append(len(ev_ts))
                links = span.links
                if links:
                    for link in links:
                        ln_trace.append(_trace_hex(link.trace_id))
                        ln_span.append(_span_hex(link.span_id))
                        ln_state.append(link.trace_state)
                        ln_attrs.add(link.attributes)
                ln_offsets_append(len(ln_trace))
        res_counts.append(len(ts) - before)

    if not ts:
        return []
    string = pa.string()
    table = pa.table(
        {
            "Timestamp": _timestamps(ts),
            "TraceId": pa.array(trace_ids, string),
            "SpanId": pa.array(span_ids, string),
            "ParentSpanId": pa.array(parents, string),
            "TraceState": pa.array(states, string),
            "SpanName": pa.array(names, string),
            "SpanKind": pa.array(kinds, string),
            "ServiceName": _take(pa.array(services, string), res_counts),
            "ResourceAttributes": _take(res_maps.array(), res_counts),
            "ScopeName": pa.array(scope_names, string),
            "ScopeVersion": pa.array(scope_versions, string),
            "SpanAttributes": span_attrs.array(),
            "Duration": pa.array(durations, pa.uint64()),
            "StatusCode": pa.array(codes, string),
            "StatusMessage": pa.array(messages, string),
            "Events.Timestamp": _list(ev_offsets, _timestamps(ev_ts)),
            "Events.Name": _list(ev_offsets, pa.array(ev_names, string)),
            "Events.Attributes": _list(ev_offsets, ev_attrs.array()),
            "Links.TraceId": _list(ln_offsets, pa.array(ln_trace, string)),
            "Links.SpanId": _list(ln_offsets, pa.array(ln_span, string)),
            "Links.TraceState": _list(ln_offsets, pa.array(ln_state, string)),
            "Links.Attributes": _list(ln_offsets, ln_attrs.array()),
        }
    )
    return [(schema.TRACES, table)]


# -- logs ------------------------------------------------------------------------------


def logs_tables(request: Any) -> list[tuple[str, pyarrow.Table]]:
    """``[("otel_logs", table)]`` for an ``ExportLogsServiceRequest``."""
    pa = _pa()
    ts: list[int] = []
    trace_ids: list[str] = []
    span_ids: list[str] = []
    flags: list[int] = []
    sev_text: list[str] = []
    sev_num: list[int] = []
    bodies: list[str] = []
    event_names: list[str] = []
    log_attrs = _Maps()
    res_maps = _Maps()
    services: list[str] = []
    res_urls: list[str] = []
    res_counts: list[int] = []
    scope_maps = _Maps()
    scope_names: list[str] = []
    scope_versions: list[str] = []
    scope_urls: list[str] = []
    scope_counts: list[int] = []

    for rl in request.resource_logs:
        res_attributes = rl.resource.attributes
        res_maps.add(res_attributes)
        services.append(_service_name(res_attributes))
        res_urls.append(rl.schema_url)
        before = len(ts)
        for sl in rl.scope_logs:
            scope = sl.scope
            scope_maps.add(scope.attributes)
            scope_names.append(scope.name)
            scope_versions.append(scope.version)
            scope_urls.append(sl.schema_url)
            scope_before = len(ts)
            for r in sl.log_records:
                t = r.time_unix_nano
                ts.append(t if t else r.observed_time_unix_nano)
                trace_ids.append(_trace_hex(r.trace_id))
                span_ids.append(_span_hex(r.span_id))
                flags.append(r.flags & 0xFF)
                sev_text.append(r.severity_text)
                sev_num.append(r.severity_number & 0xFF)
                bodies.append(_text(r.body))
                log_attrs.add(r.attributes)
                event_names.append(r.event_name)
            scope_counts.append(len(ts) - scope_before)
        res_counts.append(len(ts) - before)

    if not ts:
        return []
    string = pa.string()
    table = pa.table(
        {
            "Timestamp": _timestamps(ts),
            "TraceId": pa.array(trace_ids, string),
            "SpanId": pa.array(span_ids, string),
            "TraceFlags": pa.array(flags, pa.uint8()),
            "SeverityText": pa.array(sev_text, string),
            "SeverityNumber": pa.array(sev_num, pa.uint8()),
            "ServiceName": _take(pa.array(services, string), res_counts),
            "Body": pa.array(bodies, string),
            "ResourceSchemaUrl": _take(pa.array(res_urls, string), res_counts),
            "ResourceAttributes": _take(res_maps.array(), res_counts),
            "ScopeSchemaUrl": _take(pa.array(scope_urls, string), scope_counts),
            "ScopeName": _take(pa.array(scope_names, string), scope_counts),
            "ScopeVersion": _take(pa.array(scope_versions, string), scope_counts),
            "ScopeAttributes": _take(scope_maps.array(), scope_counts),
            "LogAttributes": log_attrs.array(),
            "EventName": pa.array(event_names, string),
        }
    )
    return [(schema.LOGS, table)]


# -- metrics ---------------------------------------------------------------------------


def _number(dp: Any) -> float:
    which = dp.WhichOneof("value")
    if which == "as_double":
        return float(dp.as_double)
    if which == "as_int":
        return float(dp.as_int)
    return 0.0


class _MetricRows:
    """The columns every metric table shares, plus its exemplars, row by row."""

    def __init__(self, table: str, extra: dict[str, list[Any]], exemplars: bool) -> None:
        self.table = table
        self.extra = extra
        self.res_index: list[int] = []
        self.scope_index: list[int] = []
        self.names: list[str] = []
        self.descriptions: list[str] = []
        self.units: list[str] = []
        self.attrs = _Maps()
        self.start: list[int] = []
        self.time: list[int] = []
        self.exemplars = exemplars
        self.ex_offsets = [0]
        self.ex_attrs = _Maps()
        self.ex_time: list[int] = []
        self.ex_value: list[float] = []
        self.ex_span: list[str] = []
        self.ex_trace: list[str] = []

    def add(self, res: int, scope: int, metric: Any, dp: Any) -> None:
        self.res_index.append(res)
        self.scope_index.append(scope)
        self.names.append(metric.name)
        self.descriptions.append(metric.description)
        self.units.append(metric.unit)
        self.attrs.add(dp.attributes)
        self.start.append(dp.start_time_unix_nano)
        self.time.append(dp.time_unix_nano)
        if self.exemplars:
            for ex in dp.exemplars:
                self.ex_attrs.add(ex.filtered_attributes)
                self.ex_time.append(ex.time_unix_nano)
                self.ex_value.append(_number(ex))
                span_id = ex.span_id
                trace_id = ex.trace_id
                self.ex_span.append(span_id.hex() if span_id else "0" * 16)
                self.ex_trace.append(trace_id.hex() if trace_id else "0" * 32)
            self.ex_offsets.append(len(self.ex_time))

    def table_of(self, shared: dict[str, pyarrow.Array], order: list[str]) -> pyarrow.Table:
        pa = _pa()
        string = pa.string()
        res = pa.array(self.res_index, pa.int32())
        scope = pa.array(self.scope_index, pa.int32())
        columns: dict[str, pyarrow.Array] = {
            "ResourceAttributes": shared["ResourceAttributes"].take(res),
            "ResourceSchemaUrl": shared["ResourceSchemaUrl"].take(res),
            "ScopeName": shared["ScopeName"].take(scope),
            "ScopeVersion": shared["ScopeVersion"].take(scope),
            "ScopeAttributes": shared["ScopeAttributes"].take(scope),
            "ScopeDroppedAttrCount": shared["ScopeDroppedAttrCount"].take(scope),
            "ScopeSchemaUrl": shared["ScopeSchemaUrl"].take(scope),
            "ServiceName": shared["ServiceName"].take(res),
            "MetricName": pa.array(self.names, string),
            "MetricDescription": pa.array(self.descriptions, string),
            "MetricUnit": pa.array(self.units, string),
            "Attributes": self.attrs.array(),
            "StartTimeUnix": _seconds(self.start),
            "TimeUnix": _seconds(self.time),
        }
        if self.exemplars:
            off = self.ex_offsets
            columns["Exemplars.FilteredAttributes"] = _list(off, self.ex_attrs.array())
            columns["Exemplars.TimeUnix"] = _list(off, _seconds(self.ex_time))
            columns["Exemplars.Value"] = _list(off, pa.array(self.ex_value, pa.float64()))
            columns["Exemplars.SpanId"] = _list(off, pa.array(self.ex_span, string))
            columns["Exemplars.TraceId"] = _list(off, pa.array(self.ex_trace, string))
        types = _EXTRA_TYPES[self.table]
        for name, values in self.extra.items():
            columns[name] = types[name](values)
        return pa.table({name: columns[name] for name in order if name in columns})


def _u64(values: list[int]) -> pyarrow.Array:
    return _pa().array(values, _pa().uint64())


def _i32(values: list[int]) -> pyarrow.Array:
    return _pa().array(values, _pa().int32())


def _u32(values: list[int]) -> pyarrow.Array:
    return _pa().array(values, _pa().uint32())


def _f64(values: list[float]) -> pyarrow.Array:
    return _pa().array(values, _pa().float64())


def _bool(values: list[bool]) -> pyarrow.Array:
    return _pa().array(values, _pa().bool_())


def _lists(element: Callable[[list[Any]], pyarrow.Array]) -> Callable[[list[Any]], pyarrow.Array]:
    def build(values: list[Any]) -> pyarrow.Array:
        offsets = [0]
        flat: list[Any] = []
        for v in values:
            flat.extend(v)
            offsets.append(len(flat))
        return _list(offsets, element(flat))

    return build


_EXTRA_TYPES: dict[str, dict[str, Callable[[list[Any]], pyarrow.Array]]] = {
    schema.METRICS_GAUGE: {"Value": _f64, "Flags": _u32},
    schema.METRICS_SUM: {
        "Value": _f64,
        "Flags": _u32,
        "AggregationTemporality": _i32,
        "IsMonotonic": _bool,
    },
    schema.METRICS_HISTOGRAM: {
        "Count": _u64,
        "Sum": _f64,
        "BucketCounts": _lists(_u64),
        "ExplicitBounds": _lists(_f64),
        "Flags": _u32,
        "Min": _f64,
        "Max": _f64,
        "AggregationTemporality": _i32,
    },
    schema.METRICS_EXP_HISTOGRAM: {
        "Count": _u64,
        "Sum": _f64,
        "Scale": _i32,
        "ZeroCount": _u64,
        "PositiveOffset": _i32,
        "PositiveBucketCounts": _lists(_u64),
        "NegativeOffset": _i32,
        "NegativeBucketCounts": _lists(_u64),
        "Flags": _u32,
        "Min": _f64,
        "Max": _f64,
        "AggregationTemporality": _i32,
    },
    schema.METRICS_SUMMARY: {
        "Count": _u64,
        "Sum": _f64,
        "ValueAtQuantiles.Quantile": _lists(_f64),
        "ValueAtQuantiles.Value": _lists(_f64),
        "Flags": _u32,
    },
}

_SHARED = [
    "ResourceAttributes",
    "ResourceSchemaUrl",
    "ScopeName",
    "ScopeVersion",
    "ScopeAttributes",
    "ScopeDroppedAttrCount",
    "ScopeSchemaUrl",
    "ServiceName",
    "MetricName",
    "MetricDescription",
    "MetricUnit",
    "Attributes",
    "StartTimeUnix",
    "TimeUnix",
]
_EXEMPLAR_COLUMNS = [
    "Exemplars.FilteredAttributes",
    "Exemplars.TimeUnix",
    "Exemplars.Value",
    "Exemplars.SpanId",
    "Exemplars.TraceId",
]
#: Each metric table's insert columns, in the order of its DDL.
METRIC_COLUMNS = {
    schema.METRICS_GAUGE: [*_SHARED, "Value", "Flags", *_EXEMPLAR_COLUMNS],
    schema.METRICS_SUM: [
        *_SHARED,
        "Value",
        "Flags",
        *_EXEMPLAR_COLUMNS,
        "AggregationTemporality",
        "IsMonotonic",
    ],
    schema.METRICS_HISTOGRAM: [
        *_SHARED,
        "Count",
        "Sum",
        "BucketCounts",
        "ExplicitBounds",
        *_EXEMPLAR_COLUMNS,
        "Flags",
        "Min",
        "Max",
        "AggregationTemporality",
    ],
    schema.METRICS_EXP_HISTOGRAM: [
        *_SHARED,
        "Count",
        "Sum",
        "Scale",
        "ZeroCount",
        "PositiveOffset",
        "PositiveBucketCounts",
        "NegativeOffset",
        "NegativeBucketCounts",
        *_EXEMPLAR_COLUMNS,
        "Flags",
        "Min",
        "Max",
        "AggregationTemporality",
    ],
    schema.METRICS_SUMMARY: [
        *_SHARED,
        "Count",
        "Sum",
        "ValueAtQuantiles.Quantile",
        "ValueAtQuantiles.Value",
        "Flags",
    ],
}


def _rows(table: str) -> _MetricRows:
    extra: dict[str, list[Any]] = {name: [] for name in _EXTRA_TYPES[table]}
    return _MetricRows(table, extra, exemplars=table != schema.METRICS_SUMMARY)


def metrics_tables(request: Any) -> list[tuple[str, pyarrow.Table]]:
    """One ``(table, rows)`` per metric kind present in an ``ExportMetricsServiceRequest``
    (one row per data point; a metric without data points adds none)."""
    pa = _pa()
    res_maps = _Maps()
    res_urls: list[str] = []
    services: list[str] = []
    scope_maps = _Maps()
    scope_names: list[str] = []
    scope_versions: list[str] = []
    scope_dropped: list[int] = []
    scope_urls: list[str] = []
    tables: dict[str, _MetricRows] = {}

    def rows(table: str) -> _MetricRows:
        found = tables.get(table)
        if found is None:
            found = tables[table] = _rows(table)
        return found

    res_i = -1
    scope_i = -1
    for rm in request.resource_metrics:
        res_i += 1
        res_attributes = rm.resource.attributes
        res_maps.add(res_attributes)
        services.append(_service_name(res_attributes))
        res_urls.append(rm.schema_url)
        for sm in rm.scope_metrics:
            scope_i += 1
            scope = sm.scope
            scope_maps.add(scope.attributes)
            scope_names.append(scope.name)
            scope_versions.append(scope.version)
            scope_dropped.append(scope.dropped_attributes_count)
            scope_urls.append(sm.schema_url)
            for metric in sm.metrics:
                kind = metric.WhichOneof("data")
                if kind == "gauge":
                    r = rows(schema.METRICS_GAUGE)
                    for dp in metric.gauge.data_points:
                        r.add(res_i, scope_i, metric, dp)
                        r.extra["Value"].append(_number(dp))
                        r.extra["Flags"].append(dp.flags)
                elif kind == "sum":
                    r = rows(schema.METRICS_SUM)
                    data = metric.sum
                    temporality = data.aggregation_temporality
                    monotonic = bool(data.is_monotonic)
                    for dp in data.data_points:
                        r.add(res_i, scope_i, metric, dp)
                        x = r.extra
                        x["Value"].append(_number(dp))
                        x["Flags"].append(dp.flags)
                        x["AggregationTemporality"].append(temporality)
                        x["IsMonotonic"].append(monotonic)
                elif kind == "histogram":
                    r = rows(schema.METRICS_HISTOGRAM)
                    temporality = metric.histogram.aggregation_temporality
                    for dp in metric.histogram.data_points:
                        r.add(res_i, scope_i, metric, dp)
                        x = r.extra
                        x["Count"].append(dp.count)
                        x["Sum"].append(dp.sum)
                        x["BucketCounts"].append(list(dp.bucket_counts))
                        x["ExplicitBounds"].append(list(dp.explicit_bounds))
                        x["Flags"].append(dp.flags)
                        x["Min"].append(dp.min)
                        x["Max"].append(dp.max)
                        x["AggregationTemporality"].append(temporality)
                elif kind == "exponential_histogram":
                    r = rows(schema.METRICS_EXP_HISTOGRAM)
                    temporality = metric.exponential_histogram.aggregation_temporality
                    for dp in metric.exponential_histogram.data_points:
                        r.add(res_i, scope_i, metric, dp)
                        x = r.extra
                        x["Count"].append(dp.count)
                        x["Sum"].append(dp.sum)
                        x["Scale"].append(dp.scale)
                        x["ZeroCount"].append(dp.zero_count)
                        x["PositiveOffset"].append(dp.positive.offset)
                        x["PositiveBucketCounts"].append(list(dp.positive.bucket_counts))
                        x["NegativeOffset"].append(dp.negative.offset)
                        x["NegativeBucketCounts"].append(list(dp.negative.bucket_counts))
                        x["Flags"].append(dp.flags)
                        x["Min"].append(dp.min)
                        x["Max"].append(dp.max)
                        x["AggregationTemporality"].append(temporality)
                elif kind == "summary":
                    r = rows(schema.METRICS_SUMMARY)
                    for dp in metric.summary.data_points:
                        r.add(res_i, scope_i, metric, dp)
                        x = r.extra
                        x["Count"].append(dp.count)
                        x["Sum"].append(dp.sum)
                        qv = dp.quantile_values
                        x["ValueAtQuantiles.Quantile"].append([q.quantile for q in qv])
                        x["ValueAtQuantiles.Value"].append([q.value for q in qv])
                        x["Flags"].append(dp.flags)

    out = []
    if tables:
        string = pa.string()
        shared = {
            "ResourceAttributes": res_maps.array(),
            "ResourceSchemaUrl": pa.array(res_urls, string),
            "ServiceName": pa.array(services, string),
            "ScopeName": pa.array(scope_names, string),
            "ScopeVersion": pa.array(scope_versions, string),
            "ScopeAttributes": scope_maps.array(),
            "ScopeDroppedAttrCount": pa.array(scope_dropped, pa.uint32()),
            "ScopeSchemaUrl": pa.array(scope_urls, string),
        }
        for table in schema.METRIC_TABLES:
            found = tables.get(table)
            if found is not None and found.names:
                out.append((table, found.table_of(shared, METRIC_COLUMNS[table])))
    return out


_CONVERTERS: dict[Signal, Callable[[Any], list[tuple[str, pyarrow.Table]]]] = {
    Signal.TRACES: traces_tables,
    Signal.LOGS: logs_tables,
    Signal.METRICS: metrics_tables,
}


def tables_of(signal: Signal, request: Any) -> list[tuple[str, pyarrow.Table]]:
    """The rows of ``request`` as ``(table, Arrow table)`` pairs, as the exporter maps them;
    StoreError if it cannot be converted (so a Sink raises only what its contract says)."""
    try:
        return _CONVERTERS[signal](request)
    except (AttributeError, TypeError, ValueError, OverflowError) as exc:
        raise StoreError(f"cannot convert the {signal.value} request: {exc}") from exc
