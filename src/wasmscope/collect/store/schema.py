"""The DDL of the OpenTelemetry Collector ``clickhouseexporter`` schema.

The tables, columns, types, codecs, indexes, partitioning, sort keys and settings are
those of the exporter's current templates (``internal/sqltemplates/*_table.sql`` and
``traces_id_ts_lookup_mv.sql``: logs as of v0.152, metrics as of v0.160), written here
as our own statements, so that queries and dashboards made for that schema work on ours
and ours on theirs. As the exporter does, the skip indexes are ``text`` indexes on a
ClickHouse of 26.2 or later (chDB 4.4 is 26.9) and bloom filters before.

On the embedded store two storage settings differ (:meth:`SchemaOptions.settings`): they
change how the bytes lie on disk, not a column, a type or an answer.

What the exporter's configuration decides is a parameter here: the cluster (``ON CLUSTER
NAME`` on every statement and the replicated engines, ``ReplicatedMergeTree()`` and
``ReplicatedAggregatingMergeTree()`` for the trace id lookup table) and the retention
(``TTL toDateTime(Timestamp) + toIntervalDay(N)``, with the largest whole unit the
exporter would pick).
"""

from __future__ import annotations

import re
from collections.abc import Iterable
from dataclasses import dataclass

from wasmscope.errors import UsageError

__all__ = [
    "LOGS",
    "METRICS_EXP_HISTOGRAM",
    "METRICS_GAUGE",
    "METRICS_HISTOGRAM",
    "METRICS_SUM",
    "METRICS_SUMMARY",
    "METRIC_TABLES",
    "TABLES",
    "TRACES",
    "TRACES_ID_TS",
    "TRACES_ID_TS_MV",
    "SchemaOptions",
    "check_identifier",
    "create_statements",
    "ttl_clause",
    "ttl_column",
    "ttl_statements",
]

TRACES = "otel_traces"
TRACES_ID_TS = "otel_traces_trace_id_ts"
TRACES_ID_TS_MV = "otel_traces_trace_id_ts_mv"
LOGS = "otel_logs"
METRICS_GAUGE = "otel_metrics_gauge"
METRICS_SUM = "otel_metrics_sum"
METRICS_HISTOGRAM = "otel_metrics_histogram"
METRICS_EXP_HISTOGRAM = "otel_metrics_exponential_histogram"
METRICS_SUMMARY = "otel_metrics_summary"
METRIC_TABLES = (
    METRICS_GAUGE,
    METRICS_SUM,
    METRICS_HISTOGRAM,
    METRICS_EXP_HISTOGRAM,
    METRICS_SUMMARY,
)
#: Every table that holds rows (the materialized view holds none).
TABLES = (TRACES, TRACES_ID_TS, LOGS, *METRIC_TABLES)

_IDENT = re.compile(r"^[A-Za-z_][A-Za-z0-9_]*$")

#: The column the TTL counts from, per table, as the exporter writes it.
_TTL_COLUMN = {
    TRACES: "toDateTime(Timestamp)",
    TRACES_ID_TS: "toDateTime(Start)",
    LOGS: "toDateTime(Timestamp)",
    **{table: "toDateTime(TimeUnix)" for table in METRIC_TABLES},
}


def check_identifier(name: str) -> str:
    """``name`` if it is a plain SQL identifier (database, table, cluster), else UsageError."""
    if not _IDENT.match(name):
        raise UsageError(f"not a valid ClickHouse identifier: {name!r} (letters, digits, _)")
    return name


@dataclass(frozen=True, slots=True)
class SchemaOptions:
    """What the exporter's configuration decides: cluster, retention, index flavour."""

    database: str = "otel"
    cluster: str | None = None
    #: Retention in whole seconds; None or 0 keeps rows for ever.
    ttl_seconds: int | None = None
    #: ``text`` indexes (ClickHouse >= 26.2) instead of bloom filters.
    full_text: bool = True
    #: The embedded store's storage settings (its engine version is known); a server
    #: keeps the exporter's. Neither changes a column, a type or a query's answer.
    tuned: bool = False

    def __post_init__(self) -> None:
        check_identifier(self.database)
        if self.cluster is not None:
            check_identifier(self.cluster)
        if self.ttl_seconds is not None and self.ttl_seconds < 0:
            raise UsageError("the retention must be positive")

    def settings(self, table: str) -> str:
        """The ``SETTINGS`` clause of ``table``: the exporter's, or, tuned, with string
        lengths inline (ClickHouse 25.x moved them into a UInt64 stream of their own:
        9 bytes a span on disk, measured on wasmscope spans) and 1024-row granules
        where a trace's rows are looked up by id (a trace by id reads 3 granules of
        each column: 8192 rows each made it 1.5x slower)."""
        granularity = 1024 if self.tuned and table in (TRACES, LOGS) else 8192
        tuned = ", string_serialization_version = 'single_stream'" if self.tuned else ""
        return f"SETTINGS index_granularity = {granularity}, ttl_only_drop_parts = 1{tuned}"

    @property
    def on_cluster(self) -> str:
        return f"ON CLUSTER {self.cluster}" if self.cluster else ""

    @property
    def engine(self) -> str:
        return "ReplicatedMergeTree()" if self.cluster else "MergeTree()"

    @property
    def lookup_engine(self) -> str:
        return "ReplicatedAggregatingMergeTree()" if self.cluster else "AggregatingMergeTree()"


def ttl_column(table: str) -> str:
    """The expression the TTL of ``table`` counts from."""
    return _TTL_COLUMN[table]


def ttl_clause(table: str, seconds: int | None) -> str:
    """``TTL <time> + toIntervalDay(N)`` (or Hour, Minute, Second: the largest whole unit,
    as the exporter picks it), or "" without a retention."""
    if not seconds:
        return ""
    for unit, size in (("Day", 86400), ("Hour", 3600), ("Minute", 60)):
        if seconds % size == 0:
            return f"TTL {_TTL_COLUMN[table]} + toInterval{unit}({seconds // size})"
    return f"TTL {_TTL_COLUMN[table]} + toIntervalSecond({seconds})"


_MAP = "Map(LowCardinality(String), String)"

_ATTR_INDEXES_BLOOM = """\
    INDEX idx_res_attr_key mapKeys(ResourceAttributes) TYPE bloom_filter(0.01) GRANULARITY 1,
    INDEX idx_res_attr_value mapValues(ResourceAttributes) TYPE bloom_filter(0.01) GRANULARITY 1,
    INDEX idx_scope_attr_key mapKeys(ScopeAttributes) TYPE bloom_filter(0.01) GRANULARITY 1,
    INDEX idx_scope_attr_value mapValues(ScopeAttributes) TYPE bloom_filter(0.01) GRANULARITY 1,
    INDEX idx_attr_key mapKeys(Attributes) TYPE bloom_filter(0.01) GRANULARITY 1,
    INDEX idx_attr_value mapValues(Attributes) TYPE bloom_filter(0.01) GRANULARITY 1,
    INDEX idx_time_minmax TimeUnix TYPE minmax GRANULARITY 1"""

_METRIC_HEAD = f"""\
    ResourceAttributes {_MAP} CODEC(ZSTD(1)),
    ResourceSchemaUrl String CODEC(ZSTD(1)),
    ScopeName String CODEC(ZSTD(1)),
    ScopeVersion String CODEC(ZSTD(1)),
    ScopeAttributes {_MAP} CODEC(ZSTD(1)),
    ScopeDroppedAttrCount UInt32 CODEC(ZSTD(1)),
    ScopeSchemaUrl String CODEC(ZSTD(1)),
    ServiceName LowCardinality(String) CODEC(ZSTD(1)),
    MetricName LowCardinality(String) CODEC(ZSTD(1)),
    MetricDescription String CODEC(ZSTD(1)),
    MetricUnit String CODEC(ZSTD(1)),
    Attributes {_MAP} CODEC(ZSTD(1)),
    StartTimeUnix DateTime CODEC(Delta, ZSTD(1)),
    TimeUnix DateTime CODEC(Delta, ZSTD(1)),"""

_EXEMPLARS = f"""\
    Exemplars Nested (
        FilteredAttributes {_MAP},
        TimeUnix DateTime,
        Value Float64,
        SpanId String,
        TraceId String
    ) CODEC(ZSTD(1)),"""

#: The columns of each metric table after the common head, in the exporter's order.
_METRIC_BODY = {
    METRICS_GAUGE: f"""\
    Value Float64 CODEC(ZSTD(1)),
    Flags UInt32 CODEC(ZSTD(1)),
{_EXEMPLARS}""",
    METRICS_SUM: f"""\
    Value Float64 CODEC(ZSTD(1)),
    Flags UInt32 CODEC(ZSTD(1)),
{_EXEMPLARS}
    AggregationTemporality Int32 CODEC(ZSTD(1)),
    IsMonotonic Boolean CODEC(Delta, ZSTD(1)),""",
    METRICS_HISTOGRAM: f"""\
    Count UInt64 CODEC(Delta, ZSTD(1)),
    Sum Float64 CODEC(ZSTD(1)),
    BucketCounts Array(UInt64) CODEC(ZSTD(1)),
    ExplicitBounds Array(Float64) CODEC(ZSTD(1)),
{_EXEMPLARS}
    Flags UInt32 CODEC(ZSTD(1)),
    Min Float64 CODEC(ZSTD(1)),
    Max Float64 CODEC(ZSTD(1)),
    AggregationTemporality Int32 CODEC(ZSTD(1)),""",
    METRICS_EXP_HISTOGRAM: f"""\
    Count UInt64 CODEC(Delta, ZSTD(1)),
    Sum Float64 CODEC(ZSTD(1)),
    Scale Int32 CODEC(ZSTD(1)),
    ZeroCount UInt64 CODEC(ZSTD(1)),
    PositiveOffset Int32 CODEC(ZSTD(1)),
    PositiveBucketCounts Array(UInt64) CODEC(ZSTD(1)),
    NegativeOffset Int32 CODEC(ZSTD(1)),
    NegativeBucketCounts Array(UInt64) CODEC(ZSTD(1)),
{_EXEMPLARS}
    Flags UInt32 CODEC(ZSTD(1)),
    Min Float64 CODEC(ZSTD(1)),
    Max Float64 CODEC(ZSTD(1)),
    AggregationTemporality Int32 CODEC(ZSTD(1)),""",
    METRICS_SUMMARY: """\
    Count UInt64 CODEC(Delta, ZSTD(1)),
    Sum Float64 CODEC(ZSTD(1)),
    ValueAtQuantiles Nested (
        Quantile Float64,
        Value Float64
    ) CODEC(ZSTD(1)),
    Flags UInt32 CODEC(ZSTD(1)),""",
}


def _traces(o: SchemaOptions) -> str:
    if o.full_text:
        indexes = """\
    INDEX idx_trace_id TraceId TYPE text(tokenizer = 'array'),
    INDEX idx_res_attr_key mapKeys(ResourceAttributes) TYPE text(tokenizer = 'array'),
    INDEX idx_res_attr_items ResourceAttributeItems TYPE text(tokenizer = 'array'),
    INDEX idx_span_attr_key mapKeys(SpanAttributes) TYPE text(tokenizer = 'array'),
    INDEX idx_span_attr_items SpanAttributeItems TYPE text(tokenizer = 'array'),"""
    else:
        indexes = """\
    INDEX idx_trace_id TraceId TYPE bloom_filter(0.001) GRANULARITY 1,
    INDEX idx_res_attr_key mapKeys(ResourceAttributes) TYPE bloom_filter(0.01) GRANULARITY 1,
    INDEX idx_res_attr_value mapValues(ResourceAttributes) TYPE bloom_filter(0.01) GRANULARITY 1,
    INDEX idx_span_attr_key mapKeys(SpanAttributes) TYPE bloom_filter(0.01) GRANULARITY 1,
    INDEX idx_span_attr_value mapValues(SpanAttributes) TYPE bloom_filter(0.01) GRANULARITY 1,"""
    return f"""\
CREATE TABLE IF NOT EXISTS {o.database}.{TRACES} {o.on_cluster} (
    Timestamp DateTime64(9) CODEC(Delta(8), ZSTD(1)),
    TraceId String CODEC(ZSTD(1)),
    SpanId String CODEC(ZSTD(1)),
    ParentSpanId String CODEC(ZSTD(1)),
    TraceState String CODEC(ZSTD(1)),
    SpanName LowCardinality(String) CODEC(ZSTD(1)),
    SpanKind LowCardinality(String) CODEC(ZSTD(1)),
    ServiceName LowCardinality(String) CODEC(ZSTD(1)),
    ResourceAttributes {_MAP} CODEC(ZSTD(1)),
    ScopeName String CODEC(ZSTD(1)),
    ScopeVersion String CODEC(ZSTD(1)),
    SpanAttributes {_MAP} CODEC(ZSTD(1)),
    Duration UInt64 CODEC(T64, ZSTD(1)),
    StatusCode LowCardinality(String) CODEC(ZSTD(1)),
    StatusMessage String CODEC(ZSTD(1)),
    Events Nested (
        Timestamp DateTime64(9),
        Name LowCardinality(String),
        Attributes {_MAP}
    ) CODEC(ZSTD(1)),
    Links Nested (
        TraceId String,
        SpanId String,
        TraceState String,
        Attributes {_MAP}
    ) CODEC(ZSTD(1)),
    ResourceAttributeItems Array(String) ALIAS arrayMap(kv -> concat(kv.1, '=', kv.2), \
CAST(ResourceAttributes, 'Array(Tuple(String, String))')),
    SpanAttributeItems Array(String) ALIAS arrayMap(kv -> concat(kv.1, '=', kv.2), \
CAST(SpanAttributes, 'Array(Tuple(String, String))')),
{indexes}
    INDEX idx_duration Duration TYPE minmax GRANULARITY 1,
    INDEX idx_lower_span_name lower(SpanName) TYPE tokenbf_v1(32768, 3, 0) GRANULARITY 8
) ENGINE = {o.engine}
PARTITION BY toDate(Timestamp)
PRIMARY KEY (ServiceName, SpanName, toDateTime(Timestamp))
ORDER BY (ServiceName, SpanName, toDateTime(Timestamp), Timestamp)
{ttl_clause(TRACES, o.ttl_seconds)}
{o.settings(TRACES)}"""


def _trace_id_ts(o: SchemaOptions) -> str:
    return f"""\
CREATE TABLE IF NOT EXISTS {o.database}.{TRACES_ID_TS} {o.on_cluster} (
    TraceId String CODEC(ZSTD(1)),
    Start SimpleAggregateFunction(min, DateTime) CODEC(ZSTD(1)),
    End SimpleAggregateFunction(max, DateTime) CODEC(ZSTD(1))
) ENGINE = {o.lookup_engine}
PARTITION BY toStartOfWeek(Start)
ORDER BY (TraceId)
{ttl_clause(TRACES_ID_TS, o.ttl_seconds)}
{o.settings(TRACES_ID_TS)}"""


def _trace_id_ts_mv(o: SchemaOptions) -> str:
    return f"""\
CREATE MATERIALIZED VIEW IF NOT EXISTS {o.database}.{TRACES_ID_TS_MV} {o.on_cluster}
TO {o.database}.{TRACES_ID_TS}
AS SELECT
    TraceId,
    min(Timestamp) AS Start,
    max(Timestamp) AS End
FROM {o.database}.{TRACES}
WHERE TraceId != ''
GROUP BY TraceId"""


_MATERIALIZED_RESOURCE_KEYS = (
    "k8s.cluster.name",
    "k8s.container.name",
    "k8s.deployment.name",
    "k8s.namespace.name",
    "k8s.node.name",
    "k8s.pod.name",
    "k8s.pod.uid",
    "deployment.environment.name",
)

_LOG_COMMENTS = {
    "Timestamp": "Event timestamp with nanosecond precision",
    "TraceId": "W3C trace identifier",
    "SpanId": "W3C span identifier",
    "TraceFlags": "W3C trace flags",
    "SeverityText": "Log severity as text",
    "SeverityNumber": "Log severity as number (1-24)",
    "ServiceName": "Service that emitted the log",
    "Body": "Log message body",
    "ResourceSchemaUrl": "Schema URL for the resource",
    "ResourceAttributes": "Resource attributes as key-value pairs",
    "ScopeSchemaUrl": "Schema URL for the instrumentation scope",
    "ScopeName": "Instrumentation scope name",
    "ScopeVersion": "Instrumentation scope version",
    "ScopeAttributes": "Instrumentation scope attributes",
    "LogAttributes": "Log record attributes",
    "EventName": "Event name for log records representing events",
}

_LOG_COLUMNS = (
    ("Timestamp", "DateTime64(9)", "Delta(8), ZSTD(1)"),
    ("TraceId", "String", "ZSTD(1)"),
    ("SpanId", "String", "ZSTD(1)"),
    ("TraceFlags", "UInt8", None),
    ("SeverityText", "LowCardinality(String)", "ZSTD(1)"),
    ("SeverityNumber", "UInt8", None),
    ("ServiceName", "LowCardinality(String)", "ZSTD(1)"),
    ("Body", "String", "ZSTD(1)"),
    ("ResourceSchemaUrl", "LowCardinality(String)", "ZSTD(1)"),
    ("ResourceAttributes", _MAP, "ZSTD(1)"),
    ("ScopeSchemaUrl", "LowCardinality(String)", "ZSTD(1)"),
    ("ScopeName", "String", "ZSTD(1)"),
    ("ScopeVersion", "LowCardinality(String)", "ZSTD(1)"),
    ("ScopeAttributes", _MAP, "ZSTD(1)"),
    ("LogAttributes", _MAP, "ZSTD(1)"),
    ("EventName", "String", "ZSTD(1)"),
)


def _logs(o: SchemaOptions) -> str:
    lines = []
    for name, type_, codec in _LOG_COLUMNS:
        tail = f" CODEC({codec})" if codec else ""
        lines.append(f"    `{name}` {type_} COMMENT '{_LOG_COMMENTS[name]}'{tail},")
    for key in _MATERIALIZED_RESOURCE_KEYS:
        lines.append(
            f"    `__otel_materialized_{key}` LowCardinality(String) "
            f"MATERIALIZED ResourceAttributes['{key}'] CODEC(ZSTD(1)),"
        )
    if o.full_text:
        kind = "TYPE text(tokenizer = 'array')"
        body = "INDEX idx_lower_body lower(Body) TYPE text(tokenizer = 'splitByNonAlpha')"
        attr_indexes = [
            f"INDEX idx_trace_id TraceId {kind}",
            *(
                f"INDEX idx_{short}_attr_{part} map{part.title()}s({column}) {kind}"
                for short, column in (
                    ("res", "ResourceAttributes"),
                    ("scope", "ScopeAttributes"),
                    ("log", "LogAttributes"),
                )
                for part in ("key", "value")
            ),
        ]
    else:
        bloom = "TYPE bloom_filter(0.01) GRANULARITY 1"
        body = "INDEX idx_lower_body lower(Body) TYPE tokenbf_v1(32768, 3, 0) GRANULARITY 8"
        attr_indexes = [
            "INDEX idx_trace_id TraceId TYPE bloom_filter(0.001) GRANULARITY 1",
            *(
                f"INDEX idx_{short}_attr_{part} map{part.title()}s({column}) {bloom}"
                for short, column in (
                    ("res", "ResourceAttributes"),
                    ("scope", "ScopeAttributes"),
                    ("log", "LogAttributes"),
                )
                for part in ("key", "value")
            ),
        ]
    lines.extend(f"    {index}," for index in attr_indexes)
    lines.append(f"    {body}")
    columns = "\n".join(lines)
    return f"""\
CREATE TABLE IF NOT EXISTS {o.database}.{LOGS} {o.on_cluster} (
{columns}
) ENGINE = {o.engine}
PARTITION BY toDate(Timestamp)
ORDER BY (toStartOfFiveMinutes(Timestamp), ServiceName, Timestamp)
{ttl_clause(LOGS, o.ttl_seconds)}
{o.settings(LOGS)}"""


def _metric(o: SchemaOptions, table: str) -> str:
    return f"""\
CREATE TABLE IF NOT EXISTS {o.database}.{table} {o.on_cluster} (
{_METRIC_HEAD}
{_METRIC_BODY[table]}
{_ATTR_INDEXES_BLOOM}
) ENGINE = {o.engine}
PARTITION BY toDate(TimeUnix)
ORDER BY (ServiceName, MetricName, toStartOfHour(TimeUnix), cityHash64(Attributes), TimeUnix)
{ttl_clause(table, o.ttl_seconds)}
{o.settings(table)}"""


def create_statements(options: SchemaOptions) -> list[str]:
    """Every statement that makes the schema, in order (each ``IF NOT EXISTS``)."""
    o = options
    return [
        f"CREATE DATABASE IF NOT EXISTS {o.database} {o.on_cluster}".rstrip(),
        _traces(o),
        _trace_id_ts(o),
        _trace_id_ts_mv(o),
        _logs(o),
        *(_metric(o, table) for table in METRIC_TABLES),
    ]


def ttl_statements(
    options: SchemaOptions, current: dict[str, str], tables: Iterable[str] = TABLES
) -> list[str]:
    """The ``ALTER TABLE ... MODIFY TTL`` (or ``REMOVE TTL``) statements that bring
    existing tables to ``options.ttl_seconds``, given each table's ``engine_full``
    (``current``); none for a table already right, so a restart rewrites nothing."""
    out = []
    for table in tables:
        engine_full = current.get(table)
        if engine_full is None:
            continue
        want = ttl_clause(table, options.ttl_seconds)
        has_ttl = " TTL " in f" {engine_full} "
        target = f"{options.database}.{table} {options.on_cluster}".rstrip()
        if want and want not in engine_full:
            out.append(f"ALTER TABLE {target} MODIFY {want}")
        elif not want and has_ttl:
            out.append(f"ALTER TABLE {target} REMOVE TTL")
    return out
