"""OTLP messages in, rows out: what we store is what the clickhouseexporter writes.

Each test sends a real opentelemetry-proto message through ``Store.write`` into chDB
and reads the rows back. The expected values are written from the exporter's Go code
(pdata ``Value.AsString``: Go's ``strconv`` for numbers, ``encoding/json`` without
HTML escaping for arrays and maps, standard base64 for bytes; ``SpanKind.String()``,
``StatusCode.String()``, ``TraceIDToHexOrEmptyString``).
"""

from __future__ import annotations

import math
from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from opentelemetry.proto.collector.logs.v1.logs_service_pb2 import ExportLogsServiceRequest
from opentelemetry.proto.collector.metrics.v1.metrics_service_pb2 import (
    ExportMetricsServiceRequest,
)
from opentelemetry.proto.collector.trace.v1.trace_service_pb2 import ExportTraceServiceRequest
from opentelemetry.proto.common.v1.common_pb2 import AnyValue, ArrayValue, KeyValue, KeyValueList
from opentelemetry.proto.metrics.v1 import metrics_pb2 as m
from opentelemetry.proto.trace.v1.trace_pb2 import Span, Status

from wasmscope.collect.receiver.sink import Signal
from wasmscope.collect.store.columns import any_value_text
from wasmscope.collect.store.store import Store

T0 = 1_764_763_200_123_456_789  # 2025-12-03 12:00:00.123456789 UTC


def kv(key: str, value: AnyValue) -> KeyValue:
    return KeyValue(key=key, value=value)


def s(v: str) -> AnyValue:
    return AnyValue(string_value=v)


# (AnyValue, what the exporter stores for it)
ANY_VALUES: list[tuple[str, AnyValue, str]] = [
    ("string", s('héllo <b>&amp; "q" \\'), 'héllo <b>&amp; "q" \\'),
    ("empty string", s(""), ""),
    ("int", AnyValue(int_value=-42), "-42"),
    ("int max", AnyValue(int_value=2**63 - 1), "9223372036854775807"),
    ("bool true", AnyValue(bool_value=True), "true"),
    ("bool false", AnyValue(bool_value=False), "false"),
    ("double", AnyValue(double_value=1.5), "1.5"),
    ("double whole", AnyValue(double_value=3.0), "3"),
    ("double zero", AnyValue(double_value=0.0), "0"),
    ("double negative zero", AnyValue(double_value=-0.0), "-0"),
    ("double tenth", AnyValue(double_value=0.1), "0.1"),
    ("double 1e16", AnyValue(double_value=1e16), "10000000000000000"),
    ("double 1e20", AnyValue(double_value=1e20), "100000000000000000000"),
    ("double 1e21", AnyValue(double_value=1e21), "1e+21"),
    ("double 1e-6", AnyValue(double_value=1e-6), "0.000001"),
    ("double 1e-7", AnyValue(double_value=1e-7), "1e-7"),
    ("double 1.25e-10", AnyValue(double_value=-1.25e-10), "-1.25e-10"),
    ("double big", AnyValue(double_value=1.2345678901234567e300), "1.2345678901234567e+300"),
    ("double nan", AnyValue(double_value=math.nan), "json: unsupported value: NaN"),
    ("double inf", AnyValue(double_value=math.inf), "json: unsupported value: +Inf"),
    ("double -inf", AnyValue(double_value=-math.inf), "json: unsupported value: -Inf"),
    ("bytes", AnyValue(bytes_value=b"\x00\x01\xff"), "AAH/"),
    ("bytes empty", AnyValue(bytes_value=b""), ""),
    ("empty", AnyValue(), ""),
    (
        "array",
        AnyValue(
            array_value=ArrayValue(
                values=[
                    AnyValue(int_value=1),
                    s("a<b>&"),
                    AnyValue(bool_value=True),
                    AnyValue(double_value=2.5),
                    AnyValue(double_value=1e21),
                    AnyValue(),
                    AnyValue(bytes_value=b"hi"),
                    AnyValue(array_value=ArrayValue()),
                    AnyValue(kvlist_value=KeyValueList()),
                ]
            )
        ),
        '[1,"a<b>&",true,2.5,1e+21,null,"aGk=",[],{}]',
    ),
    ("array empty", AnyValue(array_value=ArrayValue()), "[]"),
    (
        "kvlist",
        AnyValue(
            kvlist_value=KeyValueList(
                values=[
                    kv("b", AnyValue(int_value=1)),
                    kv("a", s('q"\n\t\x01\u2028é')),
                    kv("c", AnyValue(kvlist_value=KeyValueList(values=[kv("z", AnyValue())]))),
                    kv("b", AnyValue(int_value=2)),
                ]
            )
        ),
        '{"a":"q\\"\\n\\t\\u0001\\u2028é","b":2,"c":{"z":null}}',
    ),
    (
        "array with nan",
        AnyValue(array_value=ArrayValue(values=[AnyValue(double_value=math.nan)])),
        "",
    ),
]


@pytest.mark.parametrize(
    ("value", "text"), [(v, t) for _, v, t in ANY_VALUES], ids=[n for n, _, _ in ANY_VALUES]
)
def test_any_value_text_is_pdata_as_string(value: AnyValue, text: str) -> None:
    assert any_value_text(value) == text


def server_span(**fields: Any) -> Span:
    base: dict[str, Any] = {
        "trace_id": bytes(range(1, 17)),
        "span_id": bytes(range(1, 9)),
        "name": "GET /hello",
        "kind": Span.SPAN_KIND_SERVER,
        "start_time_unix_nano": T0,
        "end_time_unix_nano": T0 + 1500,
    }
    base.update(fields)
    return Span(**base)


def trace_request(*spans: Span, resource: list[KeyValue] | None = None) -> ExportTraceServiceRequest:
    request = ExportTraceServiceRequest()
    rs = request.resource_spans.add()
    rs.resource.attributes.extend(
        resource if resource is not None else [kv("service.name", s("svc"))]
    )
    ss = rs.scope_spans.add()
    ss.scope.name = "wasmscope"
    ss.scope.version = "0.1.0"
    ss.spans.extend(spans)
    return request


def test_every_any_value_kind_round_trips_in_span_attributes(store: Store) -> None:
    attrs = [kv(name, value) for name, value, _ in ANY_VALUES]
    store.write(Signal.TRACES, trace_request(server_span(attributes=attrs)))
    row = store.backend.query(f"SELECT SpanAttributes FROM {store.database}.otel_traces").scalar()
    assert row == {name: text for name, _, text in ANY_VALUES}


def test_span_columns_are_the_exporters(store: Store) -> None:
    spans = [
        server_span(
            trace_state="k=v",
            parent_span_id=bytes(8),  # all zero: no parent
            status=Status(code=Status.STATUS_CODE_ERROR, message="wasm trap: unreachable"),
            events=[
                Span.Event(
                    time_unix_nano=T0 + 10,
                    name="exception",
                    attributes=[
                        kv("exception.type", s("wasm.trap")),
                        kv("n", AnyValue(int_value=7)),
                    ],
                )
            ],
            links=[
                Span.Link(
                    trace_id=b"\xab" * 16,
                    span_id=b"\xcd" * 8,
                    trace_state="x=y",
                    attributes=[kv("l", AnyValue(bool_value=True))],
                )
            ],
        ),
        server_span(
            span_id=b"\x02" * 8,
            parent_span_id=bytes(range(1, 9)),
            kind=Span.SPAN_KIND_INTERNAL,
            name="execute",
            status=Status(code=Status.STATUS_CODE_OK),
        ),
        server_span(span_id=b"\x03" * 8, kind=Span.SPAN_KIND_CLIENT, name="c"),
        server_span(span_id=b"\x04" * 8, kind=Span.SPAN_KIND_PRODUCER, name="p"),
        server_span(span_id=b"\x05" * 8, kind=Span.SPAN_KIND_CONSUMER, name="q"),
        server_span(
            span_id=b"\x06" * 8,
            kind=Span.SPAN_KIND_UNSPECIFIED,
            name="u",
            trace_id=bytes(16),
            end_time_unix_nano=T0 - 1,
        ),
    ]
    resource = [
        kv("service.name", s("svc")),
        kv("host.name", s("h")),
        kv("n", AnyValue(int_value=3)),
    ]
    store.write(Signal.TRACES, trace_request(*spans, resource=resource))
    rows = store.backend.query(
        "SELECT toUnixTimestamp64Nano(Timestamp), TraceId, SpanId, ParentSpanId, TraceState,"
        " SpanName, SpanKind, ServiceName, ResourceAttributes, ScopeName, ScopeVersion,"
        " Duration, StatusCode, StatusMessage,"
        " arrayMap(t -> toUnixTimestamp64Nano(t), Events.Timestamp), Events.Name,"
        " Events.Attributes, Links.TraceId, Links.SpanId, Links.TraceState, Links.Attributes"
        f" FROM {store.database}.otel_traces ORDER BY SpanId"
    ).rows
    first = rows[0]
    assert first[:14] == (
        T0,
        "0102030405060708090a0b0c0d0e0f10",
        "0102030405060708",
        "",
        "k=v",
        "GET /hello",
        "Server",
        "svc",
        {"service.name": "svc", "host.name": "h", "n": "3"},
        "wasmscope",
        "0.1.0",
        1500,
        "Error",
        "wasm trap: unreachable",
    )
    assert first[14:17] == ([T0 + 10], ["exception"], [{"exception.type": "wasm.trap", "n": "7"}])
    assert first[17:] == (["ab" * 16], ["cd" * 8], ["x=y"], [{"l": "true"}])
    by_name = {r[5]: r for r in rows}
    assert by_name["execute"][3] == "0102030405060708"
    assert by_name["execute"][12] == "Ok"
    assert by_name["execute"][14:] == ([], [], [], [], [], [], [])
    assert {r[5]: r[6] for r in rows} == {
        "GET /hello": "Server",
        "execute": "Internal",
        "c": "Client",
        "p": "Producer",
        "q": "Consumer",
        "u": "Unspecified",
    }
    assert by_name["c"][12] == "Unset"
    # An all-zero trace id is "", and end before start wraps in uint64 as Go's does.
    assert by_name["u"][1] == ""
    assert by_name["u"][11] == 2**64 - 1
    lookup = store.backend.query(
        f"SELECT TraceId, toUnixTimestamp(Start) FROM {store.database}.otel_traces_trace_id_ts"
    ).rows
    assert lookup == [("0102030405060708090a0b0c0d0e0f10", T0 // 10**9)]


def test_service_name_is_the_first_service_name_as_text(store: Store) -> None:
    request = trace_request(
        server_span(), resource=[kv("service.name", AnyValue(int_value=42)), kv("service.name", s("b"))]
    )
    rs = request.resource_spans.add()  # a resource without service.name
    rs.scope_spans.add().spans.append(server_span(span_id=b"\x09" * 8))
    store.write(Signal.TRACES, request)
    rows = store.backend.query(
        f"SELECT SpanId, ServiceName, ScopeName FROM {store.database}.otel_traces ORDER BY SpanId"
    ).rows
    assert rows == [("0102030405060708", "42", "wasmscope"), ("0909090909090909", "", "")]


def test_log_columns_are_the_exporters(store: Store) -> None:
    request = ExportLogsServiceRequest()
    rl = request.resource_logs.add()
    rl.schema_url = "https://opentelemetry.io/schemas/1.26.0"
    rl.resource.attributes.extend([kv("service.name", s("svc")), kv("k8s.pod.name", s("pod-1"))])
    sl = rl.scope_logs.add()
    sl.schema_url = "scope-url"
    sl.scope.name = "wasmscope"
    sl.scope.version = "1"
    sl.scope.attributes.append(kv("sa", AnyValue(int_value=1)))
    first = sl.log_records.add()
    first.time_unix_nano = T0
    first.observed_time_unix_nano = T0 + 5
    first.severity_number = 17
    first.severity_text = "ERROR"
    first.body.string_value = "panicked at src/lib.rs:42"
    first.trace_id = bytes(range(1, 17))
    first.span_id = bytes(range(1, 9))
    first.flags = 0x101  # the exporter keeps the low byte (uint8)
    first.event_name = "wasmscope.profile"
    first.attributes.extend([kv("log.iostream", s("stderr")), kv("faas.invocation_id", s("abc"))])
    second = sl.log_records.add()
    second.observed_time_unix_nano = T0 + 7  # no time: the observed time is the row's
    second.body.kvlist_value.values.extend([kv("b", AnyValue(double_value=2.0)), kv("a", s("x"))])
    store.write(Signal.LOGS, request)
    rows = store.backend.query(
        "SELECT toUnixTimestamp64Nano(Timestamp), TraceId, SpanId, TraceFlags, SeverityText,"
        " SeverityNumber, ServiceName, Body, ResourceSchemaUrl, ResourceAttributes,"
        " ScopeSchemaUrl, ScopeName, ScopeVersion, ScopeAttributes, LogAttributes, EventName,"
        " `__otel_materialized_k8s.pod.name`"
        f" FROM {store.database}.otel_logs ORDER BY Timestamp"
    ).rows
    resource = {"service.name": "svc", "k8s.pod.name": "pod-1"}
    assert rows == [
        (
            T0,
            "0102030405060708090a0b0c0d0e0f10",
            "0102030405060708",
            1,
            "ERROR",
            17,
            "svc",
            "panicked at src/lib.rs:42",
            "https://opentelemetry.io/schemas/1.26.0",
            resource,
            "scope-url",
            "wasmscope",
            "1",
            {"sa": "1"},
            {"log.iostream": "stderr", "faas.invocation_id": "abc"},
            "wasmscope.profile",
            "pod-1",
        ),
        (
            T0 + 7,
            "",
            "",
            0,
            "",
            0,
            "svc",
            '{"a":"x","b":2}',
            "https://opentelemetry.io/schemas/1.26.0",
            resource,
            "scope-url",
            "wasmscope",
            "1",
            {"sa": "1"},
            {},
            "",
            "pod-1",
        ),
    ]


def _metrics() -> ExportMetricsServiceRequest:
    request = ExportMetricsServiceRequest()
    rm = request.resource_metrics.add()
    rm.schema_url = "res-url"
    rm.resource.attributes.append(kv("service.name", s("svc")))
    sm = rm.scope_metrics.add()
    sm.schema_url = "scope-url"
    sm.scope.name = "wasmscope"
    sm.scope.version = "0.1.0"
    sm.scope.dropped_attributes_count = 2
    sm.scope.attributes.append(kv("sa", s("1")))
    ex = m.Exemplar(
        filtered_attributes=[kv("f", AnyValue(int_value=1))],
        time_unix_nano=T0,
        as_int=5,
        span_id=bytes(range(1, 9)),
        trace_id=bytes(range(1, 17)),
    )
    attrs = [kv("route", s("/a")), kv("code", AnyValue(int_value=200))]
    sm.metrics.append(
        m.Metric(
            name="wasm.memory.peak",
            description="peak",
            unit="By",
            gauge=m.Gauge(
                data_points=[
                    m.NumberDataPoint(
                        attributes=attrs,
                        start_time_unix_nano=T0 - 10**9,
                        time_unix_nano=T0,
                        as_int=65536,
                        exemplars=[ex],
                        flags=1,
                    ),
                    m.NumberDataPoint(time_unix_nano=T0 + 10**9, as_double=0.5),
                ]
            ),
        )
    )
    sm.metrics.append(
        m.Metric(
            name="invocations",
            unit="{invocation}",
            sum=m.Sum(
                aggregation_temporality=m.AGGREGATION_TEMPORALITY_CUMULATIVE,
                is_monotonic=True,
                data_points=[
                    m.NumberDataPoint(
                        attributes=attrs,
                        time_unix_nano=T0,
                        as_double=12.0,
                        exemplars=[m.Exemplar(time_unix_nano=T0, as_double=1.5)],
                    )
                ],
            ),
        )
    )
    sm.metrics.append(
        m.Metric(
            name="duration",
            unit="s",
            histogram=m.Histogram(
                aggregation_temporality=m.AGGREGATION_TEMPORALITY_DELTA,
                data_points=[
                    m.HistogramDataPoint(
                        attributes=attrs,
                        start_time_unix_nano=T0 - 10**9,
                        time_unix_nano=T0,
                        count=6,
                        sum=1.25,
                        bucket_counts=[1, 2, 3],
                        explicit_bounds=[0.1, 1.0],
                        min=0.01,
                        max=2.5,
                        flags=0,
                    ),
                    m.HistogramDataPoint(time_unix_nano=T0, count=0),
                ],
            ),
        )
    )
    sm.metrics.append(
        m.Metric(
            name="duration.exp",
            exponential_histogram=m.ExponentialHistogram(
                aggregation_temporality=m.AGGREGATION_TEMPORALITY_CUMULATIVE,
                data_points=[
                    m.ExponentialHistogramDataPoint(
                        attributes=attrs,
                        time_unix_nano=T0,
                        count=7,
                        sum=3.5,
                        scale=-2,
                        zero_count=1,
                        positive=m.ExponentialHistogramDataPoint.Buckets(
                            offset=-3, bucket_counts=[1, 2]
                        ),
                        negative=m.ExponentialHistogramDataPoint.Buckets(
                            offset=4, bucket_counts=[3]
                        ),
                        min=-1.0,
                        max=9.0,
                    )
                ],
            ),
        )
    )
    sm.metrics.append(
        m.Metric(
            name="latency.summary",
            summary=m.Summary(
                data_points=[
                    m.SummaryDataPoint(
                        attributes=attrs,
                        time_unix_nano=T0,
                        count=10,
                        sum=4.0,
                        quantile_values=[
                            m.SummaryDataPoint.ValueAtQuantile(quantile=0.5, value=0.3),
                            m.SummaryDataPoint.ValueAtQuantile(quantile=0.99, value=0.9),
                        ],
                        flags=1,
                    )
                ],
            ),
        )
    )
    sm.metrics.append(m.Metric(name="no.data"))  # neither kind nor points: no row
    return request


HEAD = (
    "ResourceAttributes, ResourceSchemaUrl, ScopeName, ScopeVersion, ScopeAttributes,"
    " ScopeDroppedAttrCount, ScopeSchemaUrl, ServiceName, MetricName, MetricDescription,"
    " MetricUnit, Attributes, toUnixTimestamp(StartTimeUnix), toUnixTimestamp(TimeUnix)"
)
EXEMPLARS = (
    "Exemplars.FilteredAttributes, arrayMap(t -> toUnixTimestamp(t), Exemplars.TimeUnix),"
    " Exemplars.Value, Exemplars.SpanId, Exemplars.TraceId"
)
RES = ({"service.name": "svc"}, "res-url", "wasmscope", "0.1.0", {"sa": "1"}, 2, "scope-url", "svc")
ATTRS = {"route": "/a", "code": "200"}
SEC = T0 // 10**9


def test_every_metric_kind_round_trips(store: Store) -> None:
    store.write(Signal.METRICS, _metrics())
    db = store.database

    def rows(table: str, columns: str) -> list[tuple[Any, ...]]:
        return store.backend.query(
            f"SELECT {HEAD}, {columns} FROM {db}.{table} ORDER BY TimeUnix, Flags, toString(Attributes)"
        ).rows

    gauge = rows("otel_metrics_gauge", f"Value, Flags, {EXEMPLARS}")
    assert gauge == [
        (
            *RES,
            "wasm.memory.peak",
            "peak",
            "By",
            ATTRS,
            SEC - 1,
            SEC,
            65536.0,
            1,
            [{"f": "1"}],
            [SEC],
            [5.0],
            ["0102030405060708"],
            ["0102030405060708090a0b0c0d0e0f10"],
        ),
        (*RES, "wasm.memory.peak", "peak", "By", {}, 0, SEC + 1, 0.5, 0, [], [], [], [], []),
    ]
    total = rows(
        "otel_metrics_sum", f"Value, Flags, {EXEMPLARS}, AggregationTemporality, IsMonotonic"
    )
    assert total == [
        (
            *RES,
            "invocations",
            "",
            "{invocation}",
            ATTRS,
            0,
            SEC,
            12.0,
            0,
            [{}],
            [SEC],
            [1.5],
            ["0" * 16],
            ["0" * 32],
            2,
            True,
        ),
    ]
    histogram = rows(
        "otel_metrics_histogram",
        f"Count, Sum, BucketCounts, ExplicitBounds, {EXEMPLARS}, Flags, Min, Max, AggregationTemporality",
    )
    assert histogram == [
        (
            *RES,
            "duration",
            "",
            "s",
            ATTRS,
            SEC - 1,
            SEC,
            6,
            1.25,
            [1, 2, 3],
            [0.1, 1.0],
            [],
            [],
            [],
            [],
            [],
            0,
            0.01,
            2.5,
            1,
        ),
        (*RES, "duration", "", "s", {}, 0, SEC, 0, 0.0, [], [], [], [], [], [], [], 0, 0.0, 0.0, 1),
    ]
    exp = rows(
        "otel_metrics_exponential_histogram",
        "Count, Sum, Scale, ZeroCount, PositiveOffset, PositiveBucketCounts, NegativeOffset,"
        f" NegativeBucketCounts, {EXEMPLARS}, Flags, Min, Max, AggregationTemporality",
    )
    assert exp == [
        (
            *RES,
            "duration.exp",
            "",
            "",
            ATTRS,
            0,
            SEC,
            7,
            3.5,
            -2,
            1,
            -3,
            [1, 2],
            4,
            [3],
            [],
            [],
            [],
            [],
            [],
            0,
            -1.0,
            9.0,
            2,
        ),
    ]
    summary = rows(
        "otel_metrics_summary",
        "Count, Sum, ValueAtQuantiles.Quantile, ValueAtQuantiles.Value, Flags",
    )
    assert summary == [
        (*RES, "latency.summary", "", "", ATTRS, 0, SEC, 10, 4.0, [0.5, 0.99], [0.3, 0.9], 1),
    ]


def test_an_empty_request_writes_nothing(store: Store) -> None:
    store.write(Signal.TRACES, ExportTraceServiceRequest())
    store.write(Signal.LOGS, ExportLogsServiceRequest())
    store.write(Signal.METRICS, ExportMetricsServiceRequest())
    assert store.size().total_rows == 0


@settings(max_examples=500, deadline=None)
@given(st.floats(allow_nan=False, allow_infinity=False))
def test_doubles_are_go_shortest_round_trip_text(x: float) -> None:
    text = any_value_text(AnyValue(double_value=x))
    assert float(text) == x  # the shortest digits that give x back
    assert ("e" in text) == (x != 0 and not 1e-6 <= abs(x) < 1e21)
    assert not text.endswith(".0") and "e-0" not in text and "E" not in text
    if "e" not in text and "." in text:
        assert not text.endswith("0")
