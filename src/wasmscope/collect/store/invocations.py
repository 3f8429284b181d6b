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
    "MINUTES",
    "MINUTES_MV",
    "backfill_statement",
    "create_statements",
    "minutes_backfill_statement",
    "minutes_select",
    "select",
    "source",
    "ttl_statements",
]

INVOCATIONS = "wasmscope_invocations"
INVOCATIONS_MV = "wasmscope_invocations_mv"
# Per function, module and minute: counts, outcomes and the duration digest, filled from
# wasmscope_invocations, so the function table over a range reads minutes, not rows.
MINUTES = "wasmscope_function_minutes"
MINUTES_MV = "wasmscope_function_minutes_mv"
OUTCOMES = ("ok", "exit", "trap", "timeout", "out_of_fuel", "out_of_memory", "stack_overflow",
            "output_limit", "error")  # fmt: skip
QUANTILES = "quantilesTDigest(0.5, 0.95, 0.99)"

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


def minutes_select(database: str) -> str:
    """The rows of the minutes table, aggregated from ``wasmscope_invocations``."""
    outcomes = ", ".join(f"countIf(Outcome = '{o}') AS O_{o}" for o in OUTCOMES)
    return f"""SELECT toStartOfMinute(Timestamp) AS Minute, ServiceName, Function, ModuleSha256,
       anyLast(ModuleName) AS ModuleName, count() AS N, countIf(Outcome NOT IN ('ok', '')) AS Errors,
       countIf(ColdStart) AS Cold, {outcomes},
       {QUANTILES.replace("(", "State(", 1)}(Duration) AS Durations, max(Timestamp) AS Last
FROM {database}.{INVOCATIONS}
GROUP BY Minute, ServiceName, Function, ModuleSha256"""


def _minutes_statements(o: SchemaOptions) -> list[str]:
    sums = "\n".join(f"    O_{out} SimpleAggregateFunction(sum, UInt64)," for out in OUTCOMES)
    ttl = ttl_clause(TRACES, o.ttl_seconds).replace("toDateTime(Timestamp)", "Minute")
    table = f"""\
CREATE TABLE IF NOT EXISTS {o.database}.{MINUTES} {o.on_cluster} (
    Minute DateTime CODEC(Delta(4), ZSTD(1)),
    ServiceName LowCardinality(String) CODEC(ZSTD(1)),
    Function LowCardinality(String) CODEC(ZSTD(1)),
    ModuleSha256 LowCardinality(String) CODEC(ZSTD(1)),
    ModuleName SimpleAggregateFunction(anyLast, LowCardinality(String)),
    N SimpleAggregateFunction(sum, UInt64),
    Errors SimpleAggregateFunction(sum, UInt64),
    Cold SimpleAggregateFunction(sum, UInt64),
{sums}
    Durations AggregateFunction({QUANTILES}, UInt64),
    Last SimpleAggregateFunction(max, DateTime64(9))
) ENGINE = {o.lookup_engine}
PARTITION BY toDate(Minute)
ORDER BY (ServiceName, Function, ModuleSha256, Minute)
{ttl}
{o.settings(MINUTES)}"""
    view = f"""\
CREATE MATERIALIZED VIEW IF NOT EXISTS {o.database}.{MINUTES_MV} {o.on_cluster}
TO {o.database}.{MINUTES}
AS {minutes_select(o.database)}"""
    return [table, view]


def create_statements(o: SchemaOptions) -> list[str]:
    """The tables and the views that fill them (each ``IF NOT EXISTS``); after the exporter's."""
    columns = ",\n".join(f"    {name} {ty}" for name, ty, _ in _COLUMNS)
    engine = o.engine
    table = f"""\
CREATE TABLE IF NOT EXISTS {o.database}.{INVOCATIONS} {o.on_cluster} (
{columns}
) ENGINE = {engine}
PARTITION BY toDate(Timestamp)
ORDER BY (ServiceName, Function, toDateTime(Timestamp))
{ttl_clause(TRACES, o.ttl_seconds)}
{o.settings(INVOCATIONS)}"""
    view = f"""\
CREATE MATERIALIZED VIEW IF NOT EXISTS {o.database}.{INVOCATIONS_MV} {o.on_cluster}
TO {o.database}.{INVOCATIONS}
AS {select(o.database)}"""
    return [table, view, *_minutes_statements(o)]


def ttl_statements(o: SchemaOptions, engines: dict[str, str]) -> list[str]:
    """``MODIFY TTL`` / ``REMOVE TTL`` when the table exists with another retention (it
    keeps the spans' retention: its rows count from the same Timestamp)."""
    out = []
    for table, column in ((INVOCATIONS, "toDateTime(Timestamp)"), (MINUTES, "Minute")):
        engine_full = engines.get(table)
        if engine_full is None:
            continue
        want = ttl_clause(TRACES, o.ttl_seconds).replace("toDateTime(Timestamp)", column)
        target = f"{o.database}.{table} {o.on_cluster}".rstrip()
        if want and want not in engine_full:
            out.append(f"ALTER TABLE {target} MODIFY {want}")
        elif not want and " TTL " in f" {engine_full} ":
            out.append(f"ALTER TABLE {target} REMOVE TTL")
    return out


def backfill_statement(database: str) -> str:
    """Fills the table from spans stored before it existed (run once, when the table is
    new and ``otel_traces`` is not empty); its view fills the minutes."""
    return f"INSERT INTO {database}.{INVOCATIONS} ({', '.join(COLUMNS)}) {select(database)}"


def minutes_backfill_statement(database: str) -> str:
    """Fills the minutes table from invocations stored before it existed."""
    return f"INSERT INTO {database}.{MINUTES} {minutes_select(database)}"
