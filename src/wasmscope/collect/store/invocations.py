"""``wasmscope_invocations``: one typed row per Wasm invocation, beside the exporter's
tables (which stay exactly as the exporter makes them).

Why: the dashboard's aggregates (rate, errors, p50/p95/p99, cold starts, outcomes,
fuel and memory distributions) need ``faas.name``, ``wasm.outcome`` and the like,
which the exporter keeps in the ``SpanAttributes`` map; a map lookup reads the whole
map of every span (measured on 1M wasmscope spans in chDB: 727 ms for the function
table over one hour, against 24 ms on this table). A materialized view fills it from
every insert into ``otel_traces``, whoever inserts (our writer, or an OpenTelemetry
Collector's exporter writing into a store we created); :func:`backfill` fills it once
for spans that were there before. It costs about 4 bytes a span on disk.

Where the table cannot be made (``--no-receiver`` over a ClickHouse server we may only
read), :func:`source` gives the same rows as a subquery of ``otel_traces``: the same
queries run, only slower.
"""

from __future__ import annotations

from wasmscope.collect.store.schema import TRACES, SchemaOptions, ttl_clause

__all__ = [
    "COLUMNS",
    "INVOCATIONS",
    "INVOCATIONS_MV",
    "backfill_statement",
    "create_statements",
    "select",
    "source",
    "ttl_statements",
]

INVOCATIONS = "wasmscope_invocations"
INVOCATIONS_MV = "wasmscope_invocations_mv"

# An invocation span: kind SERVER with faas.invocation_id (semconv.py).
_WHERE = "SpanKind = 'Server' AND SpanAttributes['faas.invocation_id'] != ''"

# (column, type, expression over otel_traces); the order is the table's.
_COLUMNS: tuple[tuple[str, str, str], ...] = (
    ("Timestamp", "DateTime64(9) CODEC(Delta(8), ZSTD(1))", "Timestamp"),
    ("ServiceName", "LowCardinality(String) CODEC(ZSTD(1))", "ServiceName"),
    ("Function", "LowCardinality(String) CODEC(ZSTD(1))", "SpanAttributes['faas.name']"),
    ("ModuleSha256", "LowCardinality(String) CODEC(ZSTD(1))", "SpanAttributes['wasm.module.sha256']"),
    ("ModuleName", "LowCardinality(String) CODEC(ZSTD(1))", "SpanAttributes['wasm.module.name']"),
    ("Outcome", "LowCardinality(String) CODEC(ZSTD(1))", "SpanAttributes['wasm.outcome']"),
    ("TrapCode", "LowCardinality(String) CODEC(ZSTD(1))", "SpanAttributes['wasm.trap.code']"),
    ("ColdStart", "Bool CODEC(ZSTD(1))", "SpanAttributes['faas.coldstart'] = 'true'"),
    ("Duration", "UInt64 CODEC(T64, ZSTD(1))", "Duration"),
    ("Fuel", "UInt64 CODEC(T64, ZSTD(1))", "toUInt64OrZero(SpanAttributes['wasm.fuel.consumed'])"),
    ("FuelLimit", "UInt64 CODEC(T64, ZSTD(1))", "toUInt64OrZero(SpanAttributes['wasm.fuel.limit'])"),
    ("MemoryPeak", "UInt64 CODEC(T64, ZSTD(1))", "toUInt64OrZero(SpanAttributes['wasm.memory.peak'])"),
    ("MemoryLimit", "UInt64 CODEC(T64, ZSTD(1))", "toUInt64OrZero(SpanAttributes['faas.max_memory'])"),
    ("CpuTime", "Float64 CODEC(ZSTD(1))", "toFloat64OrZero(SpanAttributes['wasm.cpu.time'])"),
)

COLUMNS = tuple(name for name, _, _ in _COLUMNS)


def select(database: str) -> str:
    """The rows of the table, computed from ``otel_traces``."""
    exprs = ",\n       ".join(f"{expr} AS {name}" for name, _, expr in _COLUMNS)
    return f"SELECT {exprs}\nFROM {database}.{TRACES}\nWHERE {_WHERE}"


def source(database: str, materialized: bool) -> str:
    """What a query reads invocations ``FROM``: the table, or the same rows as a subquery."""
    return f"{database}.{INVOCATIONS}" if materialized else f"({select(database)})"


def create_statements(o: SchemaOptions) -> list[str]:
    """The table and the view that fills it (each ``IF NOT EXISTS``); after the exporter's."""
    columns = ",\n".join(f"    {name} {ty}" for name, ty, _ in _COLUMNS)
    engine = o.engine
    table = f"""\
CREATE TABLE IF NOT EXISTS {o.database}.{INVOCATIONS} {o.on_cluster} (
{columns}
) ENGINE = {engine}
PARTITION BY toDate(Timestamp)
ORDER BY (ServiceName, Function, toDateTime(Timestamp))
{ttl_clause(TRACES, o.ttl_seconds)}
SETTINGS index_granularity = 8192, ttl_only_drop_parts = 1"""
    view = f"""\
CREATE MATERIALIZED VIEW IF NOT EXISTS {o.database}.{INVOCATIONS_MV} {o.on_cluster}
TO {o.database}.{INVOCATIONS}
AS {select(o.database)}"""
    return [table, view]


def ttl_statements(o: SchemaOptions, engines: dict[str, str]) -> list[str]:
    """``MODIFY TTL`` / ``REMOVE TTL`` when the table exists with another retention (it
    keeps the spans' retention: its rows count from the same Timestamp)."""
    engine_full = engines.get(INVOCATIONS)
    if engine_full is None:
        return []
    want = ttl_clause(TRACES, o.ttl_seconds)
    target = f"{o.database}.{INVOCATIONS} {o.on_cluster}".rstrip()
    if want and want not in engine_full:
        return [f"ALTER TABLE {target} MODIFY {want}"]
    if not want and " TTL " in f" {engine_full} ":
        return [f"ALTER TABLE {target} REMOVE TTL"]
    return []


def backfill_statement(database: str) -> str:
    """Fills the table from spans stored before it existed (run once, when the table is
    new and ``otel_traces`` is not empty)."""
    return f"INSERT INTO {database}.{INVOCATIONS} ({', '.join(COLUMNS)}) {select(database)}"
