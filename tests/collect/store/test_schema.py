"""The DDL contract: our statements make exactly the clickhouseexporter's tables.

The expected (column, type) lists below are written from the exporter's templates
(``exporter/clickhouseexporter/internal/sqltemplates/*_table.sql``: traces and the
trace id lookup table as of the text-index templates, logs as of v0.152, metrics as of
v0.160), not from our module, and compared with what ClickHouse reports in
``system.columns`` after our DDL ran.
"""

from __future__ import annotations

import pytest

from wasmscope.collect.store import schema
from wasmscope.collect.store.embedded import ChdbBackend
from wasmscope.collect.store.store import Store
from wasmscope.errors import UsageError

MAP = "Map(LowCardinality(String), String)"
LC = "LowCardinality(String)"

TRACES = [
    ("Timestamp", "DateTime64(9)"),
    ("TraceId", "String"),
    ("SpanId", "String"),
    ("ParentSpanId", "String"),
    ("TraceState", "String"),
    ("SpanName", LC),
    ("SpanKind", LC),
    ("ServiceName", LC),
    ("ResourceAttributes", MAP),
    ("ScopeName", "String"),
    ("ScopeVersion", "String"),
    ("SpanAttributes", MAP),
    ("Duration", "UInt64"),
    ("StatusCode", LC),
    ("StatusMessage", "String"),
    ("Events.Timestamp", "Array(DateTime64(9))"),
    ("Events.Name", f"Array({LC})"),
    ("Events.Attributes", f"Array({MAP})"),
    ("Links.TraceId", "Array(String)"),
    ("Links.SpanId", "Array(String)"),
    ("Links.TraceState", "Array(String)"),
    ("Links.Attributes", f"Array({MAP})"),
    ("ResourceAttributeItems", "Array(String)"),
    ("SpanAttributeItems", "Array(String)"),
]
TRACE_ID_TS = [
    ("TraceId", "String"),
    ("Start", "SimpleAggregateFunction(min, DateTime)"),
    ("End", "SimpleAggregateFunction(max, DateTime)"),
]
TRACE_ID_TS_MV = [("TraceId", "String"), ("Start", "DateTime64(9)"), ("End", "DateTime64(9)")]
LOGS = [
    ("Timestamp", "DateTime64(9)"),
    ("TraceId", "String"),
    ("SpanId", "String"),
    ("TraceFlags", "UInt8"),
    ("SeverityText", LC),
    ("SeverityNumber", "UInt8"),
    ("ServiceName", LC),
    ("Body", "String"),
    ("ResourceSchemaUrl", LC),
    ("ResourceAttributes", MAP),
    ("ScopeSchemaUrl", LC),
    ("ScopeName", "String"),
    ("ScopeVersion", LC),
    ("ScopeAttributes", MAP),
    ("LogAttributes", MAP),
    ("EventName", "String"),
    ("__otel_materialized_k8s.cluster.name", LC),
    ("__otel_materialized_k8s.container.name", LC),
    ("__otel_materialized_k8s.deployment.name", LC),
    ("__otel_materialized_k8s.namespace.name", LC),
    ("__otel_materialized_k8s.node.name", LC),
    ("__otel_materialized_k8s.pod.name", LC),
    ("__otel_materialized_k8s.pod.uid", LC),
    ("__otel_materialized_deployment.environment.name", LC),
]
METRIC_HEAD = [
    ("ResourceAttributes", MAP),
    ("ResourceSchemaUrl", "String"),
    ("ScopeName", "String"),
    ("ScopeVersion", "String"),
    ("ScopeAttributes", MAP),
    ("ScopeDroppedAttrCount", "UInt32"),
    ("ScopeSchemaUrl", "String"),
    ("ServiceName", LC),
    ("MetricName", LC),
    ("MetricDescription", "String"),
    ("MetricUnit", "String"),
    ("Attributes", MAP),
    ("StartTimeUnix", "DateTime"),
    ("TimeUnix", "DateTime"),
]
EXEMPLARS = [
    ("Exemplars.FilteredAttributes", f"Array({MAP})"),
    ("Exemplars.TimeUnix", "Array(DateTime)"),
    ("Exemplars.Value", "Array(Float64)"),
    ("Exemplars.SpanId", "Array(String)"),
    ("Exemplars.TraceId", "Array(String)"),
]
GAUGE = [*METRIC_HEAD, ("Value", "Float64"), ("Flags", "UInt32"), *EXEMPLARS]
SUM = [
    *METRIC_HEAD,
    ("Value", "Float64"),
    ("Flags", "UInt32"),
    *EXEMPLARS,
    ("AggregationTemporality", "Int32"),
    ("IsMonotonic", "Bool"),
]
HISTOGRAM = [
    *METRIC_HEAD,
    ("Count", "UInt64"),
    ("Sum", "Float64"),
    ("BucketCounts", "Array(UInt64)"),
    ("ExplicitBounds", "Array(Float64)"),
    *EXEMPLARS,
    ("Flags", "UInt32"),
    ("Min", "Float64"),
    ("Max", "Float64"),
    ("AggregationTemporality", "Int32"),
]
EXP_HISTOGRAM = [
    *METRIC_HEAD,
    ("Count", "UInt64"),
    ("Sum", "Float64"),
    ("Scale", "Int32"),
    ("ZeroCount", "UInt64"),
    ("PositiveOffset", "Int32"),
    ("PositiveBucketCounts", "Array(UInt64)"),
    ("NegativeOffset", "Int32"),
    ("NegativeBucketCounts", "Array(UInt64)"),
    *EXEMPLARS,
    ("Flags", "UInt32"),
    ("Min", "Float64"),
    ("Max", "Float64"),
    ("AggregationTemporality", "Int32"),
]
SUMMARY = [
    *METRIC_HEAD,
    ("Count", "UInt64"),
    ("Sum", "Float64"),
    ("ValueAtQuantiles.Quantile", "Array(Float64)"),
    ("ValueAtQuantiles.Value", "Array(Float64)"),
    ("Flags", "UInt32"),
]
EXPECTED = {
    "otel_traces": TRACES,
    "otel_traces_trace_id_ts": TRACE_ID_TS,
    "otel_traces_trace_id_ts_mv": TRACE_ID_TS_MV,
    "otel_logs": LOGS,
    "otel_metrics_gauge": GAUGE,
    "otel_metrics_sum": SUM,
    "otel_metrics_histogram": HISTOGRAM,
    "otel_metrics_exponential_histogram": EXP_HISTOGRAM,
    "otel_metrics_summary": SUMMARY,
}


def _columns(backend: ChdbBackend, database: str) -> dict[str, list[tuple[str, str]]]:
    result = backend.query(
        "SELECT table, name, type FROM system.columns WHERE database = {db:String}"
        " ORDER BY table, position",
        {"db": database},
    )
    out: dict[str, list[tuple[str, str]]] = {}
    for table, name, type_ in result.rows:
        out.setdefault(table, []).append((name, type_))
    return out


@pytest.mark.parametrize("full_text", [False, True])
def test_ddl_makes_exactly_the_exporters_columns(
    chdb_backend: ChdbBackend, database: str, full_text: bool
) -> None:
    Store(chdb_backend, database, full_text=full_text).ensure_schema()
    # Our own wasmscope_* tables stand beside the exporter's (tests/collect/store/test_invocations.py).
    exporter = {t: c for t, c in _columns(chdb_backend, database).items() if not t.startswith("wasmscope_")}
    assert exporter == EXPECTED


def test_tables_keys_and_settings_are_the_exporters(store: Store) -> None:
    result = store.backend.query(
        "SELECT name, engine, partition_key, sorting_key, primary_key FROM system.tables"
        " WHERE database = {db:String} ORDER BY name",
        {"db": store.database},
    )
    tables = {row[0]: row[1:] for row in result.rows}
    assert tables["otel_traces"] == (
        "MergeTree",
        "toDate(Timestamp)",
        "ServiceName, SpanName, toDateTime(Timestamp), Timestamp",
        "ServiceName, SpanName, toDateTime(Timestamp)",
    )
    assert tables["otel_traces_trace_id_ts"] == (
        "AggregatingMergeTree",
        "toStartOfWeek(Start)",
        "(TraceId)",
        "(TraceId)",
    )
    assert tables["otel_traces_trace_id_ts_mv"][0] == "MaterializedView"
    assert tables["otel_logs"][:3] == (
        "MergeTree",
        "toDate(Timestamp)",
        "toStartOfFiveMinutes(Timestamp), ServiceName, Timestamp",
    )
    for table in schema.METRIC_TABLES:
        assert tables[table][:3] == (
            "MergeTree",
            "toDate(TimeUnix)",
            "ServiceName, MetricName, toStartOfHour(TimeUnix), cityHash64(Attributes), TimeUnix",
        )
    create = store.backend.query(f"SHOW CREATE TABLE {store.database}.otel_traces").scalar()
    # The embedded store's tuning (SchemaOptions.settings); a server gets the exporter's.
    tuned = "ttl_only_drop_parts = 1, string_serialization_version = 'single_stream'"
    assert f"SETTINGS index_granularity = 1024, {tuned}" in create
    lookup = store.backend.query(f"SHOW CREATE TABLE {store.database}.otel_traces_trace_id_ts").scalar()
    assert f"SETTINGS index_granularity = 8192, {tuned}" in lookup
    assert "INDEX idx_trace_id TraceId TYPE bloom_filter(0.001) GRANULARITY 1" in create
    assert (
        "INDEX idx_lower_span_name lower(SpanName) TYPE tokenbf_v1(32768, 3, 0) GRANULARITY 8"
        in create
    )
    codecs = store.backend.query(
        "SELECT table, name, compression_codec FROM system.columns WHERE database = {db:String}",
        {"db": store.database},
    )
    codec = {(t, n): c for t, n, c in codecs.rows}
    assert codec["otel_traces", "Timestamp"] == "CODEC(Delta(8), ZSTD(1))"
    assert codec["otel_traces", "Duration"] == "CODEC(T64, ZSTD(1))"
    assert codec["otel_traces", "Events.Attributes"] == "CODEC(ZSTD(1))"
    assert codec["otel_logs", "Timestamp"] == "CODEC(Delta(8), ZSTD(1))"
    assert codec["otel_logs", "SeverityNumber"] == ""
    assert codec["otel_metrics_sum", "TimeUnix"] == "CODEC(Delta(4), ZSTD(1))"
    assert codec["otel_metrics_sum", "IsMonotonic"] == "CODEC(Delta(1), ZSTD(1))"
    assert codec["otel_metrics_histogram", "Count"] == "CODEC(Delta(8), ZSTD(1))"
    indexes = store.backend.query(
        "SELECT table, name, type FROM system.data_skipping_indices WHERE database = {db:String}",
        {"db": store.database},
    )
    by_table: dict[str, set[str]] = {}
    for table, name, _ in indexes.rows:
        by_table.setdefault(table, set()).add(name)
    assert by_table["otel_traces"] == {
        "idx_trace_id",
        "idx_res_attr_key",
        "idx_res_attr_value",
        "idx_span_attr_key",
        "idx_span_attr_value",
        "idx_duration",
        "idx_lower_span_name",
    }
    assert by_table["otel_logs"] == {
        "idx_trace_id",
        "idx_res_attr_key",
        "idx_res_attr_value",
        "idx_scope_attr_key",
        "idx_scope_attr_value",
        "idx_log_attr_key",
        "idx_log_attr_value",
        "idx_lower_body",
    }


def test_text_index_flavour_when_asked(chdb_backend: ChdbBackend, database: str) -> None:
    Store(chdb_backend, database, full_text=True).ensure_schema()
    create = chdb_backend.query(f"SHOW CREATE TABLE {database}.otel_traces").scalar()
    assert "INDEX idx_span_attr_items SpanAttributeItems TYPE text(tokenizer = 'array')" in create
    assert "bloom_filter" not in create


def test_ensure_schema_is_idempotent(store: Store) -> None:
    store.ensure_schema()
    store.ensure_schema()
    count = store.backend.query(
        "SELECT count() FROM system.tables WHERE database = {db:String}", {"db": store.database}
    ).scalar()
    assert count == 9 + 4  # the exporter's, and wasmscope_invocations and _function_minutes with their views


def test_a_server_gets_the_exporters_settings() -> None:
    for statement in schema.create_statements(schema.SchemaOptions(full_text=False)):
        if statement.startswith("CREATE TABLE"):
            assert statement.endswith("SETTINGS index_granularity = 8192, ttl_only_drop_parts = 1"), statement


def test_cluster_ddl_is_on_cluster_and_replicated() -> None:
    statements = schema.create_statements(
        schema.SchemaOptions(database="otel", cluster="prod", ttl_seconds=3 * 86400)
    )
    assert statements[0] == "CREATE DATABASE IF NOT EXISTS otel ON CLUSTER prod"
    for statement in statements[1:]:
        assert "ON CLUSTER prod" in statement.splitlines()[0]
    tables = [s for s in statements if s.startswith("CREATE TABLE")]
    assert len(tables) == 8
    lookup = [s for s in tables if "otel_traces_trace_id_ts " in s]
    assert "ENGINE = ReplicatedAggregatingMergeTree()" in lookup[0]
    assert "TTL toDateTime(Start) + toIntervalDay(3)" in lookup[0]
    for statement in tables:
        if statement is not lookup[0]:
            assert "ENGINE = ReplicatedMergeTree()" in statement


@pytest.mark.parametrize(
    ("seconds", "clause"),
    [
        (7 * 86400, "TTL toDateTime(Timestamp) + toIntervalDay(7)"),
        (5 * 3600, "TTL toDateTime(Timestamp) + toIntervalHour(5)"),
        (90 * 60, "TTL toDateTime(Timestamp) + toIntervalMinute(90)"),
        (61, "TTL toDateTime(Timestamp) + toIntervalSecond(61)"),
        (None, ""),
    ],
)
def test_ttl_clause_picks_the_exporters_unit(seconds: int | None, clause: str) -> None:
    assert schema.ttl_clause("otel_traces", seconds) == clause


@pytest.mark.parametrize("bad", ["otel;drop", "1db", "a b", "", "x`y"])
def test_identifiers_are_validated(bad: str) -> None:
    with pytest.raises(UsageError):
        schema.SchemaOptions(database=bad)
    with pytest.raises(UsageError):
        schema.SchemaOptions(cluster=bad)
