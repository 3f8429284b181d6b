"""chDB decoding the OTLP protobuf itself stores exactly the rows columns.py makes.

Every test inserts the same requests twice into real chDB: through ``Store.write``
(columns.py, the reference) into one database, and through :class:`NativeIngest` into
another, and compares every column of every row (and the trace id lookup table the
materialized view feeds). Requests the SQL cannot make must come back as ``fallback``,
and storing those through columns.py must complete the same rows.
"""

from __future__ import annotations

import math
import random
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from benchmarks._otlp_data import invocation_logs, invocation_requests
from opentelemetry.proto.collector.logs.v1.logs_service_pb2 import ExportLogsServiceRequest
from opentelemetry.proto.collector.trace.v1.trace_service_pb2 import ExportTraceServiceRequest
from opentelemetry.proto.common.v1.common_pb2 import AnyValue, ArrayValue, KeyValue, KeyValueList
from opentelemetry.proto.logs.v1.logs_pb2 import LogRecord
from opentelemetry.proto.trace.v1.trace_pb2 import Span, Status

from wasmscope.collect.receiver.sink import Signal
from wasmscope.collect.store.embedded import ChdbBackend
from wasmscope.collect.store.native import Ingested, NativeIngest, frame
from wasmscope.collect.store.store import Store
from wasmscope.errors import UsageError

T0 = 1_764_763_200_123_456_789


@pytest.fixture
def both(
    chdb_backend: ChdbBackend, database: str, tmp_path: Path
) -> Iterator[tuple[Store, Store, NativeIngest]]:
    """(reference store, native store, native ingest) in two fresh databases."""
    reference = Store(chdb_backend, database)
    reference.ensure_schema()
    native_db = database + "_n"
    native = Store(chdb_backend, native_db)
    native.ensure_schema()
    yield reference, native, NativeIngest(chdb_backend, native_db, tmp_path / "scratch")
    chdb_backend.command(f"DROP DATABASE IF EXISTS {native_db}")


def _rows(store: Store, table: str) -> list[tuple[Any, ...]]:
    result = store.backend.query(f"SELECT * FROM {store.database}.{table}")
    # Rows with equal ids ('' for absent ones) have no order: sort on everything.
    return sorted(result.rows, key=repr)


def _check_same(
    both: tuple[Store, Store, NativeIngest],
    signal: Signal,
    requests: list[Any],
    expect_fallback: list[int] | None = None,
) -> Ingested:
    reference, native, ingest = both
    for r in requests:
        reference.write(signal, r)
    bodies = [r.SerializeToString() for r in requests]
    if signal is Signal.TRACES:
        done = ingest.insert_traces(bodies)
        table = "otel_traces"
    else:
        done = ingest.insert_logs(bodies)
        table = "otel_logs"
    if expect_fallback is not None:
        assert done.fallback == expect_fallback
    # The caller converts what native ingest left out with columns.py.
    for i in done.fallback:
        native.write(signal, requests[i])
    want = _rows(reference, table)
    got = _rows(native, table)
    counted = len(want) - sum(_count(signal, requests[i]) for i in done.fallback)
    assert done.rows == counted
    assert len(got) == len(want)
    for w, g in zip(want, got, strict=True):
        assert _diff(g, w) == [] and g == w
    if signal is Signal.TRACES:
        # The view groups each insert's block: compare what the table means once merged.
        lookup = (
            "SELECT TraceId, min(Start), max(End) FROM {}.otel_traces_trace_id_ts GROUP BY TraceId"
        )
        assert sorted(native.backend.query(lookup.format(native.database)).rows) == sorted(
            reference.backend.query(lookup.format(reference.database)).rows
        )
    return done


def _diff(got: Any, want: Any, where: str = "") -> list[str]:
    """Where two rows differ, down to map keys (readable failures)."""
    if isinstance(want, dict) and isinstance(got, dict):
        keys = sorted(set(want) | set(got))
        return [
            f"{where}[{k!r}]: {got.get(k)!r} != {want.get(k)!r}"
            for k in keys
            if got.get(k) != want.get(k)
        ]
    if isinstance(want, list | tuple) and isinstance(got, list | tuple) and len(want) == len(got):
        return [
            d
            for i, (g, w) in enumerate(zip(got, want, strict=True))
            for d in _diff(g, w, f"{where}.{i}")
        ]
    return [] if got == want else [f"{where}: {got!r} != {want!r}"]


def _count(signal: Signal, request: Any) -> int:
    if signal is Signal.TRACES:
        return sum(len(ss.spans) for rs in request.resource_spans for ss in rs.scope_spans)
    return sum(len(sl.log_records) for rl in request.resource_logs for sl in rl.scope_logs)


def kv(key: str, value: AnyValue) -> KeyValue:
    return KeyValue(key=key, value=value)


def s(v: str) -> AnyValue:
    return AnyValue(string_value=v)


def arr(*values: AnyValue) -> AnyValue:
    return AnyValue(array_value=ArrayValue(values=list(values)))


def kvl(*pairs: tuple[str, AnyValue]) -> AnyValue:
    return AnyValue(kvlist_value=KeyValueList(values=[kv(k, v) for k, v in pairs]))


DOUBLES = [
    0.0,
    -0.0,
    0.1,
    1.5,
    3.0,
    -2.5,
    1e16,
    1e20,
    9.999999999999999e20,
    1e21,
    1e22,
    1e-6,
    9.99e-7,
    1e-7,
    -1.25e-10,
    5e-324,
    2.2250738585072014e-308,
    1.7976931348623157e308,
    123456789.123,
    1.2345678901234567e300,
    0.000123,
    100.0,
    1 / 3,
]
STRINGS = [
    "",
    "plain",
    'quote " and \\ backslash',
    "line\nbreak\ttab\rcr",
    "\x00\x01\x07\x08\x0c",
    "héllo wörld",
    "emoji 😀 𝄞",
    "\u2028\u2029",
    "<b>&amp;</b>",
    "\x7f",
    "/slash/",
]
INTS = [0, 1, -1, 42, 2**31, -(2**31) - 1, 2**53 + 1, 2**63 - 1, -(2**63)]

#: One value of each kind the SQL makes, as columns.any_value_text would.
SUPPORTED: list[AnyValue] = [
    *(s(x) for x in STRINGS),
    *(AnyValue(int_value=i) for i in INTS),
    AnyValue(bool_value=True),
    AnyValue(bool_value=False),
    *(AnyValue(double_value=d) for d in DOUBLES),
    AnyValue(double_value=math.nan),
    AnyValue(double_value=math.inf),
    AnyValue(double_value=-math.inf),
    AnyValue(bytes_value=b""),
    AnyValue(bytes_value=b"\x00\x01\xff"),
    AnyValue(bytes_value=bytes(range(256))),
    AnyValue(),
    arr(),
    arr(*(s(x) for x in STRINGS)),
    arr(AnyValue(int_value=1), s("a<b>&"), AnyValue(bool_value=True), AnyValue(bool_value=False)),
    arr(*(AnyValue(double_value=d) for d in DOUBLES)),
    arr(AnyValue(), AnyValue(bytes_value=b"hi"), arr(), kvl()),
    arr(AnyValue(double_value=1.0), AnyValue(double_value=math.nan)),
    arr(AnyValue(double_value=-math.inf)),
    kvl(),
    kvl(("b", AnyValue(int_value=1)), ("a", s('q"\n\t\x01\u2028é')), ("b", AnyValue(int_value=2))),
    kvl(("z", AnyValue()), ("é", s("x")), ("e", s("y")), ("Z", kvl()), ("a", arr())),
    kvl(('k\n"', AnyValue(double_value=1e21)), ("", AnyValue(bytes_value=b"\xfe"))),
    kvl(("x", AnyValue(double_value=math.nan))),
]

#: Values SQL cannot make: the requests holding them come back as fallback.
UNSUPPORTED: list[AnyValue] = [
    arr(arr(AnyValue(int_value=1))),
    arr(kvl(("a", AnyValue(int_value=1)))),
    kvl(("c", kvl(("z", AnyValue())))),
    kvl(("c", arr(s("x")))),
    arr(s("vertical\x0btab")),
    kvl(("esc\x1b", s("x"))),
    kvl(("k", s("\x1f"))),
]


def _span(i: int, attributes: list[KeyValue], **extra: Any) -> Span:
    return Span(
        trace_id=bytes([i % 256 + 1]) * 16,
        span_id=(i + 1).to_bytes(8, "big"),
        name=f"span {i}",
        kind=Span.SPAN_KIND_SERVER,
        start_time_unix_nano=T0 + i,
        end_time_unix_nano=T0 + i + 1000,
        attributes=attributes,
        **extra,
    )


def _traces(spans: list[Span], resource: list[KeyValue] | None = None) -> ExportTraceServiceRequest:
    r = ExportTraceServiceRequest()
    rs = r.resource_spans.add()
    rs.resource.attributes.extend(resource or [kv("service.name", s("svc"))])
    ss = rs.scope_spans.add()
    ss.scope.name = "scope"
    ss.scope.version = "1.0"
    ss.spans.extend(spans)
    return r


def test_every_supported_value_kind_in_every_attribute_place(
    both: tuple[Store, Store, NativeIngest],
) -> None:
    attrs = [kv(f"k{i}", v) for i, v in enumerate(SUPPORTED)]
    spans = [
        _span(0, attrs),
        _span(
            1,
            attrs[:5],
            events=[
                Span.Event(time_unix_nano=T0, name="e0", attributes=attrs),
                Span.Event(time_unix_nano=T0 + 1, name="empty"),
                Span.Event(time_unix_nano=T0 + 2, name="e2", attributes=attrs[10:20]),
            ],
            links=[
                Span.Link(
                    trace_id=b"\x01" * 16, span_id=b"\x02" * 8, trace_state="a=b", attributes=attrs
                ),
                Span.Link(trace_id=bytes(16), span_id=bytes(8)),
                Span.Link(trace_id=b"\xab" * 16, span_id=b"\xcd" * 8, attributes=attrs[30:]),
            ],
        ),
        _span(2, [], events=[Span.Event(name="only event", attributes=attrs[:3])]),
        _span(3, [], links=[Span.Link(attributes=attrs[3:9])]),
    ]
    request = _traces(spans, resource=[kv("service.name", s("svc")), *attrs])
    done = _check_same(both, Signal.TRACES, [request], expect_fallback=[])
    assert done.rows == 4
    assert both[2].lean_inserts == 0


def test_each_value_alone_as_the_only_attribute(both: tuple[Store, Store, NativeIngest]) -> None:
    requests = [_traces([_span(i, [kv("v", v)])]) for i, v in enumerate(SUPPORTED)]
    _check_same(both, Signal.TRACES, requests, expect_fallback=[])


def test_scalar_values_take_the_lean_sql(both: tuple[Store, Store, NativeIngest]) -> None:
    scalars = [v for v in SUPPORTED if v.WhichOneof("value") not in ("array_value", "kvlist_value")]
    attrs = [kv(f"k{i}", v) for i, v in enumerate(scalars)]
    spans = [
        _span(0, attrs, events=[Span.Event(name="e", attributes=attrs)]),
        _span(1, [], links=[Span.Link(attributes=attrs[::-1])]),
    ]
    requests = [
        _traces(spans, resource=attrs),
        *(_traces([_span(9, [kv("v", v)])]) for v in scalars),
    ]
    _check_same(both, Signal.TRACES, requests, expect_fallback=[])
    logs = ExportLogsServiceRequest()
    sl = logs.resource_logs.add().scope_logs.add()
    sl.scope.attributes.extend(attrs)
    sl.log_records.extend(LogRecord(body=v, attributes=attrs) for v in scalars)
    _check_same(both, Signal.LOGS, [logs], expect_fallback=[])
    assert both[2].lean_inserts == 2


def test_unsupported_values_come_back_to_the_caller(
    both: tuple[Store, Store, NativeIngest],
) -> None:
    fine = [_traces([_span(100 + i, [kv("ok", s("x"))])]) for i in range(3)]
    bad_span = [_traces([_span(i, [kv("bad", v)])]) for i, v in enumerate(UNSUPPORTED)]
    bad_places = [
        _traces([_span(50, [])], resource=[kv("service.name", s("s")), kv("bad", UNSUPPORTED[0])]),
        _traces(
            [_span(51, [], events=[Span.Event(name="e", attributes=[kv("b", UNSUPPORTED[2])])])]
        ),
        _traces([_span(52, [], links=[Span.Link(attributes=[kv("b", UNSUPPORTED[4])])])]),
    ]
    requests = [fine[0], *bad_span, fine[1], *bad_places, fine[2]]
    expected = [i for i, r in enumerate(requests) if r not in fine]
    done = _check_same(both, Signal.TRACES, requests, expect_fallback=expected)
    assert done.rows == 3
    assert both[2].fallback_requests == len(expected)


def test_a_batch_of_only_unsupported_requests_inserts_nothing(
    both: tuple[Store, Store, NativeIngest],
) -> None:
    done = _check_same(both, Signal.TRACES, [_traces([_span(0, [kv("bad", UNSUPPORTED[0])])])], [0])
    assert done.rows == 0


def test_ids_kinds_statuses_times_and_scopes(both: tuple[Store, Store, NativeIngest]) -> None:
    spans = [
        Span(),  # everything absent
        Span(trace_id=bytes(16), span_id=bytes(8), parent_span_id=bytes(8)),  # zero ids
        Span(trace_id=b"\x00" * 15 + b"\x01", span_id=b"\xff" * 8, parent_span_id=b"\x01" * 8),
        Span(trace_id=b"\x12\x34", span_id=b"\x56", name="odd lengths"),
        # Enum values beyond the known ones (proto3 enums are open).
        Span(span_id=b"\x01" * 8, kind=7, status=Status(code=5)),  # type: ignore[arg-type]
        Span(span_id=b"\x02" * 8, kind=Span.SPAN_KIND_CONSUMER, status=Status(code=1)),
        Span(span_id=b"\x03" * 8, kind=Span.SPAN_KIND_CLIENT, status=Status(code=2, message="é")),
        Span(span_id=b"\x04" * 8, start_time_unix_nano=T0, end_time_unix_nano=T0 - 5),  # wraps
        Span(span_id=b"\x05" * 8, start_time_unix_nano=2**63 + 5, end_time_unix_nano=2**64 - 1),
        Span(
            span_id=b"\x06" * 8,
            trace_state="k=v,x=y",
            name="ünïcode \x01 name",
            kind=Span.SPAN_KIND_PRODUCER,
            start_time_unix_nano=1,
            end_time_unix_nano=2,
        ),
        Span(span_id=b"\x07" * 8, events=[Span.Event(time_unix_nano=2**64 - 1)]),
    ]
    r = ExportTraceServiceRequest()
    for n, resource in enumerate(
        [
            [kv("service.name", s("first")), kv("service.name", s("second"))],
            [kv("service.name", AnyValue(int_value=7)), kv("dup", s("a")), kv("dup", s("b"))],
            [],
            [kv("other", s("x"))],
        ]
    ):
        rs = r.resource_spans.add()
        rs.resource.attributes.extend(resource)
        for m in range(3):
            ss = rs.scope_spans.add()
            if m:
                ss.scope.name = f"scope {n}.{m}"
                ss.scope.version = "v" * m
            ss.spans.extend(spans[(n + m) % 3 :: 2])
    r.resource_spans.add()  # a resource with no scope
    r.resource_spans[1].scope_spans.add()  # a scope with no span
    _check_same(both, Signal.TRACES, [r, ExportTraceServiceRequest()], expect_fallback=[])


def test_empty_batches_and_requests(both: tuple[Store, Store, NativeIngest]) -> None:
    assert both[2].insert_traces([]) == Ingested(0)
    assert both[2].insert_logs([]) == Ingested(0)
    _check_same(both, Signal.TRACES, [ExportTraceServiceRequest()] * 3, expect_fallback=[])
    _check_same(both, Signal.LOGS, [ExportLogsServiceRequest()], expect_fallback=[])


def test_realistic_invocations(both: tuple[Store, Store, NativeIngest]) -> None:
    requests = []
    for body in invocation_requests(3000, batch=400, seed=5, start_ns=T0):
        r = ExportTraceServiceRequest()
        r.ParseFromString(body)
        requests.append(r)
    done = _check_same(both, Signal.TRACES, requests, expect_fallback=[])
    assert done.rows == 3000


def test_realistic_logs(both: tuple[Store, Store, NativeIngest]) -> None:
    requests = []
    for body in invocation_logs(1500, batch=300, seed=6, start_ns=T0):
        r = ExportLogsServiceRequest()
        r.ParseFromString(body)
        requests.append(r)
    done = _check_same(both, Signal.LOGS, requests, expect_fallback=[])
    assert done.rows == 1500


def test_log_columns(both: tuple[Store, Store, NativeIngest]) -> None:
    attrs = [kv(f"k{i}", v) for i, v in enumerate(SUPPORTED)]
    records = [
        LogRecord(),
        LogRecord(time_unix_nano=0, observed_time_unix_nano=T0, body=s("observed time")),
        LogRecord(
            time_unix_nano=T0,
            observed_time_unix_nano=T0 + 5,
            severity_number=17,
            severity_text="ERROR",
            flags=0x101,
            trace_id=b"\x01" * 16,
            span_id=b"\x02" * 8,
            event_name="my.event",
            attributes=attrs,
        ),
        LogRecord(trace_id=bytes(16), span_id=bytes(8), severity_number=300),  # type: ignore
        LogRecord(time_unix_nano=2**64 - 1, severity_number=-1),  # type: ignore[arg-type]
        *(LogRecord(time_unix_nano=T0 + i, body=v) for i, v in enumerate(SUPPORTED)),
    ]
    r = ExportLogsServiceRequest()
    for n in range(3):
        rl = r.resource_logs.add()
        rl.schema_url = f"https://schema/{n}" if n else ""
        rl.resource.attributes.extend([kv("service.name", s(f"svc{n}")), *attrs[: n * 7]])
        for m in range(2):
            sl = rl.scope_logs.add()
            sl.schema_url = "https://scope" if m else ""
            sl.scope.name = f"scope {m}"
            sl.scope.version = "1" if m else ""
            sl.scope.attributes.extend(attrs[m * 10 : m * 10 + 12])
            sl.log_records.extend(records[(n + m) % 2 :: 2])
    _check_same(both, Signal.LOGS, [r], expect_fallback=[])


def test_unsupported_log_values(both: tuple[Store, Store, NativeIngest]) -> None:
    def logs(
        body: AnyValue, attrs: list[KeyValue], scope: list[KeyValue]
    ) -> ExportLogsServiceRequest:
        r = ExportLogsServiceRequest()
        sl = r.resource_logs.add().scope_logs.add()
        sl.scope.attributes.extend(scope)
        sl.log_records.add(body=body, attributes=attrs, time_unix_nano=T0)
        return r

    requests = [
        logs(s("fine"), [], []),
        logs(UNSUPPORTED[0], [], []),
        logs(s("x"), [kv("a", UNSUPPORTED[3])], []),
        logs(s("x"), [], [kv("a", UNSUPPORTED[5])]),
        logs(kvl(("a", s("b"))), [], []),
    ]
    _check_same(both, Signal.LOGS, requests, expect_fallback=[1, 2, 3])


def _random_value(rng: random.Random, depth: int = 0) -> AnyValue:
    kind = rng.randrange(9 if depth < 2 else 7)
    if kind == 0:
        return s(
            "".join(
                rng.choice(["a", "é", "\n", '"', "\\", "\x01", "😀", "\u2028", " "])
                for _ in range(rng.randrange(6))
            )
        )
    if kind == 1:
        return AnyValue(int_value=rng.randrange(-(2**63), 2**63))
    if kind == 2:
        return AnyValue(bool_value=rng.random() < 0.5)
    if kind == 3:
        return AnyValue(
            double_value=rng.choice(
                [rng.random() * 10 ** rng.randint(-30, 30), rng.choice(DOUBLES), -rng.random()]
            )
        )
    if kind == 4:
        return AnyValue(bytes_value=rng.randbytes(rng.randrange(5)))
    if kind in (5, 6):
        return AnyValue()
    if kind == 7:
        return arr(*(_random_value(rng, depth + 1) for _ in range(rng.randrange(4))))
    return kvl(
        *((rng.choice("abcé"), _random_value(rng, depth + 1)) for _ in range(rng.randrange(4)))
    )


def test_random_requests(both: tuple[Store, Store, NativeIngest]) -> None:
    rng = random.Random(11)
    requests = []
    for n in range(30):
        spans = []
        for i in range(rng.randrange(4)):
            attrs = [kv(f"a{j}", _random_value(rng)) for j in range(rng.randrange(5))]
            events = [
                Span.Event(
                    time_unix_nano=T0 + j, name=f"e{j}", attributes=[kv("x", _random_value(rng))]
                )
                for j in range(rng.randrange(3))
            ]
            spans.append(_span(n * 10 + i, attrs, events=events))
        requests.append(_traces(spans, resource=[kv("service.name", _random_value(rng))]))
    done = _check_same(both, Signal.TRACES, requests)
    # Some are nested deeper than SQL makes, most are not.
    assert 0 < len(done.fallback) < len(requests)


def _realistic(n: int) -> list[ExportTraceServiceRequest]:
    requests = []
    for body in invocation_requests(n, batch=300, seed=9, start_ns=T0):
        r = ExportTraceServiceRequest()
        r.ParseFromString(body)
        requests.append(r)
    return requests


@pytest.mark.parametrize("where", ["first pass", "insert"])
def test_bytes_our_proto_reads_otherwise_send_the_batch_back(
    both: tuple[Store, Store, NativeIngest], where: str
) -> None:
    # upb keeps a field of another wire type than the schema's as an unknown field and
    # serializes it again; chDB's Protobuf reader refuses it.
    if where == "first pass":
        # An attribute's value (a message) as a varint: the first pass reads values.
        value = KeyValue()
        value.ParseFromString(kv("a", s("b")).SerializeToString() + b"\x10\x01")
        odd = _traces([_span(0, [value])])
    else:
        # A span's name as a varint: only the insert reads names.
        span = Span()
        span.ParseFromString(_span(1, []).SerializeToString() + b"\x28\x01")
        odd = _traces([span])
    assert both[2].insert_traces([odd.SerializeToString()]) == Ingested(0, [0])
    # chDB's state after the failed read is cleared: the next query's result is whole.
    assert both[1].backend.query("SELECT 1 AS x").rows == [(1,)]
    requests = [*_realistic(1500), odd]
    done = _check_same(both, Signal.TRACES, requests)
    # Nothing was inserted natively (no row twice: _check_same compares every row).
    assert done.fallback == list(range(len(requests))) and done.rows == 0
    assert both[2].lean_inserts == 0


def test_frame_is_length_delimited_with_the_batch_index_merged_in() -> None:
    request = _traces([_span(0, [kv("a", s("b"))])])
    body = request.SerializeToString()
    data = frame([body, b""])
    assert data[0] == len(body) + 2 and data[1 : 1 + len(body)] == body
    assert data[1 + len(body) :] == b"\x78\x00\x02\x78\x01"
    # The appended field is one opentelemetry-proto does not know: the request is intact.
    parsed = ExportTraceServiceRequest()
    parsed.ParseFromString(data[1 : 1 + data[0]])
    assert parsed.resource_spans == request.resource_spans


def test_only_the_embedded_backend(tmp_path: Path) -> None:
    class Server:
        kind = "clickhouse"

    with pytest.raises(UsageError, match="embedded"):
        NativeIngest(Server(), "otel", tmp_path)  # type: ignore[arg-type]


def test_bad_names_are_refused(chdb_backend: ChdbBackend, tmp_path: Path) -> None:
    with pytest.raises(UsageError):
        NativeIngest(chdb_backend, "otel; DROP", tmp_path)
    with pytest.raises(UsageError):
        NativeIngest(chdb_backend, "otel", tmp_path / "it's")


def test_write_takes_parsed_requests_and_converts_the_fallback_itself(
    both: tuple[Store, Store, NativeIngest],
) -> None:
    from opentelemetry.proto.collector.metrics.v1.metrics_service_pb2 import (
        ExportMetricsServiceRequest,
    )

    reference, native, ingest = both
    traces = [
        _traces([_span(0, [kv("a", s("b"))])]),
        _traces([_span(1, [kv("bad", UNSUPPORTED[1])]), _span(2, [])]),
        ExportTraceServiceRequest(),
    ]
    metrics = ExportMetricsServiceRequest()
    metric = metrics.resource_metrics.add().scope_metrics.add().metrics.add(name="m")
    metric.gauge.data_points.add(as_int=3, time_unix_nano=T0)
    for signal, requests, table, rows in [
        (Signal.TRACES, traces, "otel_traces", 3),
        (Signal.METRICS, [metrics], "otel_metrics_gauge", 1),
    ]:
        for r in requests:
            reference.write(signal, r)
        assert ingest.write(signal, requests) == rows
        assert _rows(native, table) == _rows(reference, table)
    assert ingest.native_requests == 2 and ingest.fallback_requests == 1
