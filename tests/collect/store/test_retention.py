"""Retention: the TTL in the DDL (and altered when it changes), and --max-disk dropping
the oldest partitions first."""

from __future__ import annotations

import datetime as dt
import threading
import time
from collections.abc import Callable

from opentelemetry.proto.collector.logs.v1.logs_service_pb2 import ExportLogsServiceRequest
from opentelemetry.proto.collector.metrics.v1.metrics_service_pb2 import (
    ExportMetricsServiceRequest,
)
from opentelemetry.proto.collector.trace.v1.trace_service_pb2 import ExportTraceServiceRequest
from opentelemetry.proto.metrics.v1 import metrics_pb2 as m
from opentelemetry.proto.trace.v1.trace_pb2 import Span

from wasmscope.collect.receiver.sink import Signal
from wasmscope.collect.store import schema
from wasmscope.collect.store.embedded import ChdbBackend
from wasmscope.collect.store.retention import Dropped, enforce_max_disk
from wasmscope.collect.store.store import Store

DAY = 86400 * 10**9
MONDAY = 1_762_128_000 * 10**9  # 2025-11-03 00:00 UTC


def wait_for(condition: Callable[[], bool]) -> None:
    deadline = time.monotonic() + 120  # a guard against a hang, not a measurement
    while not condition():
        if time.monotonic() > deadline:
            raise AssertionError("the writer never got there")
        time.sleep(0.005)


def create(backend: ChdbBackend, database: str, table: str) -> str:
    return str(backend.query(f"SHOW CREATE TABLE {database}.{table}").scalar())


def test_retention_is_a_ttl_and_follows_changes(chdb_backend: ChdbBackend, database: str) -> None:
    Store(chdb_backend, database, retention=dt.timedelta(days=7)).ensure_schema()
    assert "TTL toDateTime(Timestamp) + toIntervalDay(7)" in create(
        chdb_backend, database, "otel_traces"
    )
    assert "TTL toDateTime(Timestamp) + toIntervalDay(7)" in create(
        chdb_backend, database, "otel_logs"
    )
    assert "TTL toDateTime(Start) + toIntervalDay(7)" in create(
        chdb_backend, database, "otel_traces_trace_id_ts"
    )
    for table in schema.METRIC_TABLES:
        assert "TTL toDateTime(TimeUnix) + toIntervalDay(7)" in create(
            chdb_backend, database, table
        )

    again = Store(chdb_backend, database, retention=7 * 86400)
    engines = dict(
        chdb_backend.query(
            "SELECT name, engine_full FROM system.tables WHERE database = {db:String}",
            {"db": database},
        ).rows
    )
    assert schema.ttl_statements(again.options(), engines) == []  # a restart alters nothing

    Store(chdb_backend, database, retention=3600).ensure_schema()
    for table in schema.TABLES:
        text = create(chdb_backend, database, table)
        assert "+ toIntervalHour(1)" in text and "toIntervalDay" not in text

    Store(chdb_backend, database, retention=None).ensure_schema()
    for table in schema.TABLES:
        assert "TTL" not in create(chdb_backend, database, table)


def traces(day: int, first: int, n: int = 50) -> ExportTraceServiceRequest:
    r = ExportTraceServiceRequest()
    ss = r.resource_spans.add().scope_spans.add()
    for i in range(first, first + n):
        ss.spans.append(
            Span(
                trace_id=(i + 1).to_bytes(16, "big"),
                span_id=(i + 1).to_bytes(8, "big"),
                name="GET /x",
                start_time_unix_nano=MONDAY + day * DAY + i,
                end_time_unix_nano=MONDAY + day * DAY + i + 1000,
            )
        )
    return r


def logs(day: int) -> ExportLogsServiceRequest:
    r = ExportLogsServiceRequest()
    rec = r.resource_logs.add().scope_logs.add().log_records.add()
    rec.time_unix_nano = MONDAY + day * DAY
    rec.body.string_value = f"day {day}"
    return r


def gauge(day: int) -> ExportMetricsServiceRequest:
    r = ExportMetricsServiceRequest()
    sm = r.resource_metrics.add().scope_metrics.add()
    sm.metrics.append(
        m.Metric(
            name="g",
            gauge=m.Gauge(
                data_points=[m.NumberDataPoint(time_unix_nano=MONDAY + day * DAY, as_int=1)]
            ),
        )
    )
    return r


def partitions(store: Store) -> set[tuple[str, str]]:
    rows = store.backend.query(
        "SELECT DISTINCT table, partition FROM system.parts WHERE database = {db:String} AND active",
        {"db": store.database},
    ).rows
    return {(str(t), str(p)) for t, p in rows}


def fill(store: Store) -> None:
    for day in range(3):
        store.write(Signal.TRACES, traces(day, 100 * day))
        store.write(Signal.METRICS, gauge(day))
    store.write(Signal.LOGS, logs(0))
    store.write(Signal.LOGS, logs(2))


def test_max_disk_drops_the_oldest_partitions_first(store: Store) -> None:
    fill(store)
    before = store.size()
    assert enforce_max_disk(store.backend, store.database, before.bytes_on_disk) == []

    # Just under the current size: only the oldest day goes, in every table.
    dropped = enforce_max_disk(store.backend, store.database, before.bytes_on_disk - 1)
    assert dropped and all(isinstance(d, Dropped) for d in dropped)
    assert {d.partition for d in dropped} == {"2025-11-03"}
    assert store.size().bytes_on_disk < before.bytes_on_disk

    # A tiny bound: all but each table's newest partition (the one being written).
    dropped = enforce_max_disk(store.backend, store.database, 1)
    assert [d.partition for d in dropped] == sorted(d.partition for d in dropped)
    assert partitions(store) == {
        ("otel_traces", "2025-11-05"),
        ("otel_traces_trace_id_ts", "2025-11-02"),
        ("otel_logs", "2025-11-05"),
        ("otel_metrics_gauge", "2025-11-05"),
    }
    rows = store.backend.query(
        f"SELECT min(SpanId), count() FROM {store.database}.otel_traces"
    ).rows
    assert rows == [(f"{201:016x}", 50)]
    assert enforce_max_disk(store.backend, store.database, 1) == []  # nothing left to drop


def test_the_writer_enforces_max_disk(chdb_backend: ChdbBackend, database: str) -> None:
    store = Store(chdb_backend, database, max_disk=1)
    store.ensure_schema()
    fill(store)
    seen: list[list[Dropped]] = []
    got = threading.Event()

    def on_dropped(dropped: list[Dropped]) -> None:
        seen.append(dropped)
        got.set()

    writer = store.writer(on_dropped=on_dropped, retention_interval=3600.0)
    writer.deliver(Signal.TRACES, traces(2, 1000, n=5), 5)
    assert got.wait(30)
    assert writer.dropped_partitions == len(seen[0]) > 0
    assert {d.partition for d in seen[0]} == {"2025-11-03", "2025-11-04"}
    store.close()


def test_the_writer_checks_max_disk_again_after_its_interval(
    chdb_backend: ChdbBackend, database: str
) -> None:
    now = [1000.0]
    store = Store(chdb_backend, database, max_disk=1)
    store.ensure_schema()
    writer = store.writer(retention_interval=60.0, clock=lambda: now[0])
    writer.deliver(Signal.TRACES, traces(0, 0), 50)  # first check: nothing old yet
    fill(store)
    loops = writer.loops
    wait_for(lambda: writer.loops >= loops + 2)  # idle wake-ups: the check is not due
    assert writer.dropped_partitions == 0
    now[0] += 61
    wait_for(lambda: writer.dropped_partitions > 0)
    store.close()
