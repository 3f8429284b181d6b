"""``wasmscope_invocations``: filled by its view from every insert into otel_traces, and
backfilled once from spans stored before it existed (real chDB)."""

from __future__ import annotations

import os

import pytest
from opentelemetry.proto.collector.trace.v1.trace_service_pb2 import ExportTraceServiceRequest
from opentelemetry.proto.trace.v1.trace_pb2 import Span

from tests.collect.dashboard.data import kv
from wasmscope.collect.receiver.sink import Signal
from wasmscope.collect.store import invocations
from wasmscope.collect.store.embedded import ChdbBackend
from wasmscope.collect.store.store import Store

T0 = 1_790_000_000 * 10**9


def _request(n: int, *, start: int = T0, step: int = 10**6, spread: int = 0) -> ExportTraceServiceRequest:
    """``n`` invocations ``step`` ns apart, each 5 us long (plus ``spread`` ns times its index)."""
    req = ExportTraceServiceRequest()
    rs = req.resource_spans.add()
    rs.resource.attributes.append(kv("service.name", "edge"))
    ss = rs.scope_spans.add()
    for i in range(n):
        trace, span = os.urandom(16), os.urandom(8)
        outcome = "trap" if i % 4 == 3 else "ok"
        attrs = [
            kv("faas.invocation_id", os.urandom(16).hex()), kv("faas.name", f"fn{i % 2}"),
            kv("faas.coldstart", i == 0), kv("wasm.module.sha256", "ab" * 32),
            kv("wasm.module.name", "fn.wasm"), kv("wasm.outcome", outcome),
            kv("wasm.fuel.consumed", 1000 + i), kv("wasm.fuel.limit", 10**6),
            kv("wasm.memory.peak", 65536 * (i + 1)), kv("faas.max_memory", 2**26),
            kv("wasm.cpu.time", 0.25),
        ]  # fmt: skip
        if outcome == "trap":
            attrs.append(kv("wasm.trap.code", "unreachable"))
        ss.spans.append(Span(trace_id=trace, span_id=span, name=f"fn{i % 2}", kind=Span.SPAN_KIND_SERVER,
                             start_time_unix_nano=start + i * step, end_time_unix_nano=start + i * step + 5000 + spread * i,
                             attributes=attrs))  # fmt: skip
        # A child span and a server span without an invocation id: not invocations.
        ss.spans.append(Span(trace_id=trace, span_id=os.urandom(8), parent_span_id=span, name="execute",
                             kind=Span.SPAN_KIND_INTERNAL, start_time_unix_nano=start, end_time_unix_nano=start + 1))  # fmt: skip
    ss.spans.append(Span(trace_id=os.urandom(16), span_id=os.urandom(8), name="GET /x", kind=Span.SPAN_KIND_SERVER,
                         start_time_unix_nano=start, end_time_unix_nano=start + 1))  # fmt: skip
    return req


def _rows(backend: ChdbBackend, database: str) -> list[tuple[object, ...]]:
    cols = ", ".join(c for c in invocations.COLUMNS if c != "Timestamp")
    return backend.query(f"SELECT {cols} FROM {database}.{invocations.INVOCATIONS} ORDER BY Fuel").rows


def test_the_view_fills_one_typed_row_per_invocation(chdb_backend: ChdbBackend, database: str) -> None:
    store = Store(chdb_backend, database)
    store.ensure_schema()
    store.write(Signal.TRACES, _request(4))
    rows = _rows(chdb_backend, database)
    assert rows == [
        ("edge", "fn0", "ab" * 32, "fn.wasm", "ok", "", True, 5000, 1000, 10**6, 65536, 2**26, 0.25),
        ("edge", "fn1", "ab" * 32, "fn.wasm", "ok", "", False, 5000, 1001, 10**6, 131072, 2**26, 0.25),
        ("edge", "fn0", "ab" * 32, "fn.wasm", "ok", "", False, 5000, 1002, 10**6, 196608, 2**26, 0.25),
        ("edge", "fn1", "ab" * 32, "fn.wasm", "trap", "unreachable", False, 5000, 1003, 10**6, 262144, 2**26, 0.25),
    ]


def test_spans_stored_before_the_table_are_backfilled_once(chdb_backend: ChdbBackend, database: str) -> None:
    store = Store(chdb_backend, database)
    store.ensure_schema()
    chdb_backend.command(f"DROP VIEW {database}.{invocations.INVOCATIONS_MV}")
    chdb_backend.command(f"DROP TABLE {database}.{invocations.INVOCATIONS}")
    store.write(Signal.TRACES, _request(3))  # as an older wasmscope (or the exporter) stored them
    store.ensure_schema()
    assert len(_rows(chdb_backend, database)) == 3
    store.ensure_schema()  # a restart: no second backfill
    store.write(Signal.TRACES, _request(2))
    assert len(_rows(chdb_backend, database)) == 5


def test_the_subquery_source_gives_the_table_rows(chdb_backend: ChdbBackend, database: str) -> None:
    store = Store(chdb_backend, database)
    store.ensure_schema()
    store.write(Signal.TRACES, _request(5))
    cols = ", ".join(invocations.COLUMNS)
    from_table = chdb_backend.query(f"SELECT {cols} FROM {invocations.source(database, True)} ORDER BY Fuel").rows
    from_spans = chdb_backend.query(f"SELECT {cols} FROM {invocations.source(database, False)} ORDER BY Fuel").rows
    assert from_table == from_spans and len(from_table) == 5


def test_the_retention_applies_to_the_table_too(chdb_backend: ChdbBackend, database: str) -> None:
    Store(chdb_backend, database, retention=7 * 86400).ensure_schema()
    Store(chdb_backend, database, retention=2 * 86400).ensure_schema()
    create = str(chdb_backend.query(f"SHOW CREATE TABLE {database}.{invocations.INVOCATIONS}").scalar())
    assert "toIntervalDay(2)" in create
    Store(chdb_backend, database).ensure_schema()
    create = str(chdb_backend.query(f"SHOW CREATE TABLE {database}.{invocations.INVOCATIONS}").scalar())
    assert " TTL " not in create.replace("\n", " ")


def test_the_function_table_from_minutes_equals_the_one_from_rows(chdb_backend: ChdbBackend, database: str) -> None:
    """Whole minutes come from wasmscope_function_minutes, the partial ones at each end of
    the range from the rows: the counts are the same, the quantiles the same digest's."""
    from wasmscope.collect.dashboard import queries
    from wasmscope.collect.dashboard.context import Db
    from wasmscope.collect.dashboard.filters import Filters

    store = Store(chdb_backend, database)
    store.ensure_schema()
    # 3 minutes of invocations, 1 every 0.4 s, written in two requests.
    store.write(Signal.TRACES, _request(200, step=400_000_000, spread=997))
    store.write(Signal.TRACES, _request(250, start=T0 + 200 * 400_000_000, step=400_000_000, spread=991))
    t0, t1 = (T0 + 17 * 10**9) / 1e9, (T0 + 163 * 10**9) / 1e9  # not on minute bounds
    f = Filters.parse({"range": ["abs"], "from": [f"{t0}"], "to": [f"{t1}"]}, t1)
    fast = queries.functions_table(Db(chdb_backend, database, fast=True, minutes=True), f)
    rows = queries.functions_table(Db(chdb_backend, database, fast=True, minutes=False), f)
    def counts(table: list[dict[str, object]]) -> list[dict[str, object]]:
        return [{k: v for k, v in r.items() if k not in ("p50", "p95", "p99")} for r in table]

    assert counts(fast) == counts(rows) and sum(int(r["n"]) for r in fast) == 365
    for a, b in zip(fast, rows, strict=True):
        assert a["p50"] == pytest.approx(b["p50"], rel=0.1)
