"""The dashboard's SQL, over the OpenTelemetry ``clickhouseexporter`` tables.

Every value is a bound ``{name:Type}`` parameter; the only text formatted into
SQL is the validated database name (``{db}``, see :class:`~.context.Db`) and
constant fragments of this module. Each function runs one query (or a few small
ones) and returns plain Python values for a template or a JSON endpoint.

Invocation spans are the SERVER spans that carry ``faas.invocation_id``.
"""

from __future__ import annotations

import json
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

from wasmscope.collect.dashboard.context import Db
from wasmscope.collect.dashboard.filters import NS, Filters
from wasmscope.collect.store import invocations
from wasmscope.guard.findings import EventName

__all__ = ["OUTCOMES", "InvocationSearch", "SecuritySearch"]

OUTCOMES = ("ok", "exit", "trap", "timeout", "out_of_fuel", "out_of_memory", "stack_overflow",
            "output_limit", "error")  # fmt: skip
INVOCATION = "SpanKind = 'Server' AND SpanAttributes['faas.invocation_id'] != ''"
OUTCOME = "SpanAttributes['wasm.outcome']"
FAILED = f"{OUTCOME} NOT IN ('ok', '')"
COLD = "SpanAttributes['faas.coldstart'] = 'true'"
EVENT_NAME = "LogAttributes['event.name']"
METRIC_TABLES = {
    "gauge": "otel_metrics_gauge",
    "sum": "otel_metrics_sum",
    "histogram": "otel_metrics_histogram",
    "exponential_histogram": "otel_metrics_exponential_histogram",
    "summary": "otel_metrics_summary",
}


@dataclass(frozen=True, slots=True)
class Src:
    """Column expressions of the invocation aggregates over the store's
    ``wasmscope_invocations`` (typed columns, filled by a view from ``otel_traces``;
    :mod:`wasmscope.collect.store.invocations`)."""

    inv: str = "1"
    fn: str = "Function"
    sha: str = "ModuleSha256"
    module: str = "ModuleName"
    outcome: str = "Outcome"
    cold: str = "ColdStart"
    fuel: str = "if(Fuel > 0 OR FuelLimit > 0, toFloat64(Fuel), NULL)"
    fuel_limit: str = "FuelLimit"
    memory: str = "if(MemoryPeak > 0, toFloat64(MemoryPeak), NULL)"
    max_memory: str = "MemoryLimit"

    @property
    def failed(self) -> str:
        return f"{self.outcome} NOT IN ('ok', '')"

    def outcome_counts(self) -> str:
        return ", ".join(f"countIf({self.outcome} = '{o}') AS o_{o}" for o in OUTCOMES)


FAST = Src()
#: What ``top_traps`` filters ``otel_traces`` with (the events are only there).
RAW_FN = "SpanAttributes['faas.name']"
RAW_SHA = "SpanAttributes['wasm.module.sha256']"


def src_of(db: Db) -> Src:
    return FAST


def _outcomes(row: dict[str, Any]) -> dict[str, int]:
    return {o: int(row.pop(f"o_{o}")) for o in OUTCOMES}


def _where(src: Src, f: Filters, sha256: str = "") -> tuple[str, dict[str, Any]]:
    where, params = f.where(function_column=src.fn)
    if sha256:
        where += f" AND {src.sha} = {{sha:String}}"
        params["sha"] = sha256
    return where, params


# --- Functions ---------------------------------------------------------------------------------
def _minutes_table(db: Db, f: Filters, limit: int) -> list[dict[str, Any]] | None:
    """:func:`functions_table` from the per-minute aggregates for the whole minutes of
    the range, and from the invocations for its partial minutes at each end (None when
    the range holds no whole minute)."""
    m0 = -(-f.start_ns // (60 * NS)) * 60  # seconds: the first whole minute
    m1 = f.end_ns // (60 * NS) * 60
    if m1 <= m0:
        return None
    filters, params = f.where(function_column="Function", time=False)
    outcomes = ", ".join(f"sum(O_{o}) AS o_{o}" for o in OUTCOMES)
    edge_outcomes = ", ".join(f"countIf(Outcome = '{o}') AS O_{o}" for o in OUTCOMES)
    sums = ", ".join(f"O_{o}" for o in OUTCOMES)
    state = invocations.QUANTILES.replace("(", "State(", 1)
    merge = invocations.QUANTILES.replace("(", "Merge(", 1)
    return db.query(
        f"""
        SELECT Function AS function, ModuleSha256 AS sha256, anyLast(ModuleName) AS module,
               any(ServiceName) AS service, sum(N) AS n, sum(Errors) AS errors, sum(Cold) AS cold,
               {merge}(Durations) AS q, toUnixTimestamp64Nano(max(Last)) AS last_ns, {outcomes}
        FROM (
            SELECT ServiceName, Function, ModuleSha256, ModuleName, N, Errors, Cold, {sums}, Durations, Last
            FROM {{db}}.{invocations.MINUTES}
            WHERE Minute >= toDateTime({{m0:UInt32}}) AND Minute < toDateTime({{m1:UInt32}}) AND {filters}
            UNION ALL
            SELECT ServiceName, Function, ModuleSha256, anyLast(ModuleName) AS ModuleName, count() AS N,
                   countIf(Outcome NOT IN ('ok', '')) AS Errors, countIf(ColdStart) AS Cold, {edge_outcomes},
                   {state}(Duration) AS Durations, max(Timestamp) AS Last
            FROM {{db}}.{invocations.INVOCATIONS}
            WHERE ((Timestamp >= fromUnixTimestamp64Nano({{t0:Int64}}) AND Timestamp < toDateTime64({{m0:UInt32}}, 9))
                   OR (Timestamp >= toDateTime64({{m1:UInt32}}, 9) AND Timestamp < fromUnixTimestamp64Nano({{t1:Int64}})))
              AND {filters}
            GROUP BY ServiceName, Function, ModuleSha256
        )
        GROUP BY function, sha256
        ORDER BY n DESC, function
        LIMIT {{limit:UInt32}}
        """,
        {**params, "m0": m0, "m1": m1, "t0": f.start_ns, "t1": f.end_ns, "limit": limit},
    ).dicts()


def functions_table(db: Db, f: Filters, limit: int = 500) -> list[dict[str, Any]]:
    """One row per (faas.name, wasm.module.sha256): counts, quantiles, outcomes."""
    src = src_of(db)
    if db.fast and db.minutes:
        rows = _minutes_table(db, f, limit)
        if rows is not None:
            for row in rows:
                row["outcomes"] = _outcomes(row)
                row["p50"], row["p95"], row["p99"] = row.pop("q")
            return rows
    where, params = _where(src, f)
    rows = db.query(
        f"""
        SELECT {src.fn} AS function, {src.sha} AS sha256, any({src.module}) AS module,
               any(ServiceName) AS service, count() AS n, countIf({src.failed}) AS errors,
               countIf({src.cold}) AS cold, quantilesTDigest(0.5, 0.95, 0.99)(Duration) AS q,
               toUnixTimestamp64Nano(max(Timestamp)) AS last_ns, {src.outcome_counts()}
        FROM {db.invocations}
        WHERE {src.inv} AND {where}
        GROUP BY function, sha256
        ORDER BY n DESC, function
        LIMIT {{limit:UInt32}}
        """,
        {**params, "limit": limit},
    ).dicts()
    for row in rows:
        row["outcomes"] = _outcomes(row)
        row["p50"], row["p95"], row["p99"] = row.pop("q")
    return rows


def functions_series(db: Db, f: Filters, sha256: str = "") -> dict[str, Any]:
    """Invocations over time (rate of successes and failures, p50/p95/p99, cold
    starts) in ``f.step`` buckets covering the whole range."""
    src = src_of(db)
    step = f.step
    where, params = _where(src, f, sha256)
    rows = db.query(
        f"""
        SELECT intDiv(toUnixTimestamp(Timestamp), {{step:UInt32}}) * {{step:UInt32}} AS t,
               count() AS n, countIf({src.failed}) AS errors, countIf({src.cold}) AS cold,
               quantilesTDigest(0.5, 0.95, 0.99)(Duration) AS q
        FROM {db.invocations}
        WHERE {src.inv} AND {where}
        GROUP BY t ORDER BY t
        """,
        {**params, "step": step},
    ).rows
    by_t = {int(r[0]): r for r in rows}
    t0 = (f.start_ns // NS) // step * step
    xs = list(range(t0, f.end_ns // NS + 1, step))
    n = [by_t[t][1] if t in by_t else 0 for t in xs]
    errors = [by_t[t][2] if t in by_t else 0 for t in xs]
    cold = [by_t[t][3] if t in by_t else 0 for t in xs]
    q = [by_t[t][4] if t in by_t else None for t in xs]

    def ms(i: int) -> list[float | None]:
        return [None if v is None else round(v[i] / 1e6, 4) for v in q]

    return {
        "step": step,
        "x": xs,
        "rate": {"ok": [round((a - b) / step, 6) for a, b in zip(n, errors, strict=True)],
                 "errors": [round(b / step, 6) for b in errors]},
        "latency": {"p50": ms(0), "p95": ms(1), "p99": ms(2)},
        "cold": [round(c / step, 6) for c in cold],
        "total": sum(n),
    }


# --- Function detail ---------------------------------------------------------------------------
def function_summary(db: Db, f: Filters, sha256: str) -> dict[str, Any]:
    """Cold against warm invocations and the limits seen (fuel, memory)."""
    src = src_of(db)
    where, params = _where(src, f, sha256)
    rows = db.query(
        f"""
        SELECT {src.cold} AS cold, count() AS n, countIf({src.failed}) AS errors,
               quantilesTDigest(0.5, 0.95, 0.99)(Duration) AS q, avg(Duration) AS mean
        FROM {db.invocations} WHERE {src.inv} AND {where}
        GROUP BY cold ORDER BY cold DESC
        """,
        params,
    ).dicts()
    split = {}
    for row in rows:
        row["p50"], row["p95"], row["p99"] = row.pop("q")
        split["cold" if row["cold"] else "warm"] = row
    info = db.query(
        f"""
        SELECT count() AS n, countIf({src.failed}) AS errors, countIf({src.cold}) AS cold,
               any({src.module}) AS module, groupUniqArray(3)({src.sha}) AS shas,
               max({src.fuel_limit}) AS fuel_limit, max({src.max_memory}) AS max_memory,
               quantilesTDigest(0.5, 0.95, 0.99)(Duration) AS q, {src.outcome_counts()}
        FROM {db.invocations} WHERE {src.inv} AND {where}
        """,
        params,
    ).dicts()[0]
    info["outcomes"] = _outcomes(info)
    info["p50"], info["p95"], info["p99"] = info.pop("q") if info["n"] else (None, None, None)
    info["split"] = split
    return info


#: The distributions of the detail page: expressions by name, per source.
DISTRIBUTIONS = ("duration", "fuel", "memory")


def _dist_expr(src: Src, name: str) -> str:
    return {"duration": "toFloat64(Duration)", "fuel": src.fuel, "memory": src.memory}[name]


def log2_histogram(db: Db, f: Filters, sha256: str, name: str) -> list[tuple[int, int]]:
    """``(k, count)`` of a distribution's values (non-negative numbers) in buckets
    ``[2**k, 2**(k+1))``; k = -1 holds zeros. ``name`` is one of :data:`DISTRIBUTIONS`."""
    src = src_of(db)
    where, params = _where(src, f, sha256)
    rows = db.query(
        f"""
        SELECT if(v <= 0, -1, toInt32(floor(log2(v)))) AS k, count() AS n
        FROM (SELECT {_dist_expr(src, name)} AS v FROM {db.invocations}
              WHERE {src.inv} AND {where} AND v IS NOT NULL)
        GROUP BY k ORDER BY k
        """,
        params,
    ).rows
    return [(int(k), int(n)) for k, n in rows]


def quantiles_of(db: Db, f: Filters, sha256: str, name: str) -> tuple[float | None, ...]:
    """p50, p95, p99 and max of a distribution (Nones when it is empty)."""
    src = src_of(db)
    where, params = _where(src, f, sha256)
    row = db.query(
        f"""
        SELECT quantilesTDigest(0.5, 0.95, 0.99)(v) AS q, max(v) AS top, count() AS n
        FROM (SELECT {_dist_expr(src, name)} AS v FROM {db.invocations}
              WHERE {src.inv} AND {where} AND v IS NOT NULL)
        """,
        params,
    ).rows[0]
    if not row[2]:
        return (None, None, None, None)
    return (*row[0], row[1])


def top_traps(db: Db, f: Filters, sha256: str, limit: int = 20) -> list[dict[str, Any]]:
    """Failures grouped by trap code (or outcome) and innermost frame, from each
    invocation's ``exception`` event (only spans with events are read in full)."""
    where, params = f.where()
    time_where, _ = f.where(function=False, service=False)
    if sha256:
        where += f" AND {RAW_SHA} = {{sha:String}}"
        params["sha"] = sha256
    return db.query(
        f"""
        SELECT multiIf(SpanAttributes['wasm.trap.code'] != '', SpanAttributes['wasm.trap.code'],
                       ev['exception.type'] != '', ev['exception.type'], {OUTCOME}) AS code,
               ev['code.function.name'] AS func, ev['code.file.path'] AS file,
               ev['code.line.number'] AS line, count() AS n,
               any(ev['exception.message']) AS message, any(TraceId) AS trace_id
        FROM {{db}}.otel_traces
        ARRAY JOIN Events.Name AS ev_name, Events.Attributes AS ev
        PREWHERE SpanKind = 'Server' AND notEmpty(Events.Name) AND {time_where}
        WHERE {INVOCATION} AND {where} AND ev_name = 'exception'
        GROUP BY code, func, file, line ORDER BY n DESC, code LIMIT {{limit:UInt32}}
        """,
        {**params, "limit": limit},
    ).dicts()


# --- Invocations -------------------------------------------------------------------------------
@dataclass(frozen=True, slots=True)
class InvocationSearch:
    """The Invocations page's search beyond the shared filters."""

    outcome: str = ""
    min_ms: float | None = None
    max_ms: float | None = None
    trace_id: str = ""
    attrs: tuple[tuple[str, str], ...] = ()
    text: str = ""
    #: Keyset cursor: rows strictly before (timestamp ns, span id).
    before: tuple[int, str] | None = None


def _ns(ms: float) -> int:
    """Milliseconds as whole nanoseconds within UInt64."""
    return min(max(0, int(ms * 1e6)), 2**63)


def _search_where(f: Filters, s: InvocationSearch) -> tuple[str, dict[str, Any]]:
    where, params = f.where()
    parts = [INVOCATION, where]
    if s.outcome == "failed":
        parts.append(FAILED)
    elif s.outcome:
        parts.append(f"{OUTCOME} = {{s_outcome:String}}")
        params["s_outcome"] = s.outcome
    if s.min_ms is not None:
        parts.append("Duration >= {s_min:UInt64}")
        params["s_min"] = _ns(s.min_ms)
    if s.max_ms is not None:
        parts.append("Duration <= {s_max:UInt64}")
        params["s_max"] = _ns(s.max_ms)
    if s.trace_id:
        parts.append("TraceId = {s_trace:String}")
        params["s_trace"] = s.trace_id.lower()
    for i, (key, value) in enumerate(s.attrs):
        # has(mapValues(...)) first: the form the exporter's bloom filter indexes answer.
        parts.append(f"((has(mapValues(SpanAttributes), {{s_v{i}:String}})"
                     f" AND SpanAttributes[{{s_k{i}:String}}] = {{s_v{i}:String}})"
                     f" OR (has(mapValues(ResourceAttributes), {{s_v{i}:String}})"
                     f" AND ResourceAttributes[{{s_k{i}:String}}] = {{s_v{i}:String}}))")  # fmt: skip
        params[f"s_k{i}"] = key
        params[f"s_v{i}"] = value
    if s.text:
        lwhere, lparams = f.where(function=False)
        parts.append(
            f"TraceId IN (SELECT TraceId FROM {{db}}.otel_logs WHERE {lwhere.replace('f_', 'l_')}"
            " AND TraceId != '' AND positionCaseInsensitiveUTF8(Body, {s_text:String}) > 0)"
        )
        params.update({k.replace("f_", "l_"): v for k, v in lparams.items()})
        params["s_text"] = s.text
    if s.before is not None:
        parts.append("(Timestamp, SpanId) < (fromUnixTimestamp64Nano({s_bt:Int64}), {s_bs:String})")
        params["s_bt"], params["s_bs"] = s.before
    return " AND ".join(parts), params


INVOCATION_COLUMNS = f"""
    toUnixTimestamp64Nano(Timestamp) AS ts_ns, TraceId AS trace_id, SpanId AS span_id,
    SpanName AS span_name, ServiceName AS service,
    SpanAttributes['faas.name'] AS function, SpanAttributes['faas.invocation_id'] AS invocation_id,
    {OUTCOME} AS outcome, Duration AS duration, {COLD} AS cold,
    SpanAttributes['wasm.trap.code'] AS trap_code, StatusMessage AS message,
    SpanAttributes['http.response.status_code'] AS http_status
"""


#: Search windows, as fractions of the range ending at its upper bound: the newest rows
#: are looked for in a short window first (the spans' sort key holds the time, so a
#: short window reads few granules), the whole range only when that finds too few.
SEARCH_WINDOWS = (1 / 256, 1 / 16, 1.0)


def search_invocations(db: Db, f: Filters, s: InvocationSearch, limit: int) -> list[dict[str, Any]]:
    """Invocation spans matching ``s``, newest first, at most ``limit``."""
    where, params = _search_where(f, s)
    hi = min(s.before[0] + 1, f.end_ns) if s.before is not None else f.end_ns
    span = max(hi - f.start_ns, 1)
    rows: list[dict[str, Any]] = []
    # An attribute value or a trace id is usually rare: the exporter's bloom filters skip
    # the granules without it, so one query over the range beats three windows.
    windows = (1.0,) if s.attrs or s.trace_id else SEARCH_WINDOWS
    for fraction in windows:
        lo = max(f.start_ns, hi - int(span * fraction))
        rows = db.query(
            f"SELECT {INVOCATION_COLUMNS} FROM {{db}}.otel_traces WHERE {where}"
            " AND Timestamp >= fromUnixTimestamp64Nano({s_lo:Int64})"
            " ORDER BY Timestamp DESC, SpanId DESC LIMIT {limit:UInt32}",
            {**params, "limit": limit, "s_lo": lo},
        ).dicts()
        # Rows are newest first and the windows end at the same time: once one holds
        # ``limit`` rows, a longer one has the same first ``limit``.
        if len(rows) >= limit or lo == f.start_ns:
            break
    return rows


def count_invocations(db: Db, f: Filters, s: InvocationSearch, cap: int) -> int:
    """How many match (counted up to ``cap``); from the invocations table when the
    search needs nothing it lacks (attributes, trace id, log text)."""
    if not (s.attrs or s.trace_id or s.text):
        src = src_of(db)
        where, params = _where(src, f)
        if s.outcome == "failed":
            where += f" AND {src.failed}"
        elif s.outcome:
            where += f" AND {src.outcome} = {{s_outcome:String}}"
            params["s_outcome"] = s.outcome
        if s.min_ms is not None:
            where += " AND Duration >= {s_min:UInt64}"
            params["s_min"] = _ns(s.min_ms)
        if s.max_ms is not None:
            where += " AND Duration <= {s_max:UInt64}"
            params["s_max"] = _ns(s.max_ms)
        value = db.query(f"SELECT count() FROM {db.invocations} WHERE {where}", params).scalar()
        return min(int(value or 0), cap)
    where, params = _search_where(f, InvocationSearch(**{**_fields(s), "before": None}))
    value = db.query(
        f"SELECT count() FROM (SELECT 1 FROM {{db}}.otel_traces WHERE {where} LIMIT {{cap:UInt32}})",
        {**params, "cap": cap},
    ).scalar()
    return int(value or 0)


def _fields(s: InvocationSearch) -> dict[str, Any]:
    return {name: getattr(s, name) for name in s.__slots__}


def invocations_after(db: Db, f: Filters, after_ns: int, limit: int = 200) -> list[dict[str, Any]]:
    """Invocation spans with ``Timestamp`` after ``after_ns``, oldest first (live tail:
    the service and function filters apply, not the range)."""
    where, params = f.where(time=False)
    return db.query(
        f"SELECT {INVOCATION_COLUMNS} FROM {{db}}.otel_traces WHERE {INVOCATION} AND {where}"
        " AND Timestamp > fromUnixTimestamp64Nano({after:Int64})"
        " ORDER BY Timestamp, SpanId LIMIT {limit:UInt32}",
        {**params, "after": after_ns, "limit": limit},
    ).dicts()


def facet_values(db: Db, f: Filters) -> dict[str, list[str]]:
    """Services and function names seen in the range (for the filter pickers)."""
    where, params = f.where(function=False, service=False)
    row = db.query(
        f"""
        SELECT groupUniqArray(200)(ServiceName) AS services, groupUniqArray(500)(Function) AS functions
        FROM {db.invocations} WHERE {where}
        """,
        params,
    ).dicts()[0]
    return {"services": sorted(row["services"]), "functions": sorted(row["functions"])}


# --- Trace -------------------------------------------------------------------------------------
def trace(db: Db, trace_id: str) -> dict[str, Any] | None:
    """A trace's spans (with events) and log lines, bounded in time by the
    ``otel_traces_trace_id_ts`` lookup table as the exporter's readers do."""
    bounds = db.query(
        "SELECT toUnixTimestamp(min(Start)) AS s, toUnixTimestamp(max(End)) AS e, count() AS n"
        " FROM {db}.otel_traces_trace_id_ts WHERE TraceId = {id:String}",
        {"id": trace_id},
    ).rows[0]
    if not bounds[2]:
        return None
    # Start/End are whole seconds: widen to cover the last second's spans.
    t0, t1 = int(bounds[0]) * NS, (int(bounds[1]) + 1) * NS
    spans = db.query(
        """
        SELECT toUnixTimestamp64Nano(Timestamp) AS ts_ns, SpanId AS span_id,
               ParentSpanId AS parent_id, SpanName AS name, SpanKind AS kind,
               ServiceName AS service, Duration AS duration, StatusCode AS status,
               StatusMessage AS status_message, SpanAttributes AS attributes,
               ResourceAttributes AS resource, ScopeName AS scope,
               arrayMap(t -> toUnixTimestamp64Nano(t), Events.Timestamp) AS ev_ts,
               Events.Name AS ev_names, Events.Attributes AS ev_attrs
        FROM {db}.otel_traces
        WHERE TraceId = {id:String}
          AND Timestamp >= fromUnixTimestamp64Nano({t0:Int64})
          AND Timestamp < fromUnixTimestamp64Nano({t1:Int64})
        ORDER BY Timestamp, SpanId LIMIT 5000
        """,
        {"id": trace_id, "t0": t0, "t1": t1},
    ).dicts()
    if not spans:
        return None
    end = max(s["ts_ns"] + s["duration"] for s in spans)
    logs = db.query(
        """
        SELECT toUnixTimestamp64Nano(Timestamp) AS ts_ns, SpanId AS span_id,
               SeverityText AS severity, SeverityNumber AS severity_number, Body AS body,
               LogAttributes AS attributes
        FROM {db}.otel_logs
        WHERE TraceId = {id:String}
          AND Timestamp >= fromUnixTimestamp64Nano({t0:Int64})
          AND Timestamp <= fromUnixTimestamp64Nano({t1:Int64})
        ORDER BY Timestamp LIMIT 5000
        """,
        {"id": trace_id, "t0": t0 - NS, "t1": end + 60 * NS},
    ).dicts()
    for s in spans:
        s["events"] = [
            {"ts_ns": t, "name": n, "attributes": a}
            for t, n, a in zip(s.pop("ev_ts"), s.pop("ev_names"), s.pop("ev_attrs"), strict=True)
        ]
    return {"trace_id": trace_id, "spans": spans, "logs": logs, "start_ns": min(s["ts_ns"] for s in spans),
            "end_ns": end}  # fmt: skip


# --- Modules -----------------------------------------------------------------------------------
def modules(db: Db, f: Filters) -> list[dict[str, Any]]:
    """Every module seen in invocation spans or pushed reports in the range."""
    where, params = f.where(function=False)
    seen = db.query(
        f"""
        SELECT ModuleSha256 AS sha256, any(ModuleName) AS name, count() AS invocations,
               groupUniqArray(10)(Function) AS functions, toUnixTimestamp64Nano(max(Timestamp)) AS last_ns
        FROM {db.invocations} WHERE {where} AND ModuleSha256 != ''
        GROUP BY sha256 ORDER BY invocations DESC, name LIMIT 1000
        """,
        params,
    ).dicts()
    # Size and kind are only in the spans: read them from each module's last span,
    # found by its exact time (the spans' sort key holds it, so few granules are read).
    detail: dict[str, tuple[int, str]] = {}
    if seen:
        stamps = {f"t{i}": row["last_ns"] for i, row in enumerate(seen)}
        cond = " OR ".join(f"Timestamp = fromUnixTimestamp64Nano({{{k}:Int64}})" for k in stamps)
        for sha, size, kind in db.query(
            f"""
            SELECT {RAW_SHA} AS sha, max(toUInt64OrZero(SpanAttributes['wasm.module.size'])),
                   any(SpanAttributes['wasm.module.kind'])
            FROM {{db}}.otel_traces WHERE SpanKind = 'Server' AND ({cond}) GROUP BY sha
            """,
            stamps,
        ).rows:
            detail[str(sha)] = (int(size), str(kind))
    lwhere, lparams = f.where(function=False)
    reports = db.query(
        f"""
        SELECT LogAttributes['wasm.module.sha256'] AS sha256, any(LogAttributes['wasm.module.name']) AS name,
               max(toUInt64OrZero(LogAttributes['wasm.module.size'])) AS size,
               any(LogAttributes['wasm.module.kind']) AS kind, toUnixTimestamp64Nano(max(Timestamp)) AS last_ns,
               max({EVENT_NAME} = 'wasmscope.inspect.report') AS has_report,
               countIf({EVENT_NAME} = 'wasmscope.profile') AS profiles
        FROM {{db}}.otel_logs
        WHERE {lwhere} AND {EVENT_NAME} IN ('wasmscope.inspect.report', 'wasmscope.profile')
          AND LogAttributes['wasm.module.sha256'] != ''
        GROUP BY sha256
        """,
        lparams,
    ).dicts()
    by_sha = {r["sha256"]: r for r in reports}
    out = []
    for row in seen:
        size, kind = detail.get(row["sha256"], (0, ""))
        rep = by_sha.pop(row["sha256"], None) or {}
        out.append({**row, "size": size or rep.get("size", 0), "kind": kind or rep.get("kind", ""),
                    "has_report": rep.get("has_report", 0), "profiles": rep.get("profiles", 0),
                    "last_ns": max(row["last_ns"], rep.get("last_ns", 0))})  # fmt: skip
    for rep in by_sha.values():  # modules only seen in reports
        out.append({**rep, "invocations": 0, "functions": []})
    return out


def module(db: Db, sha256: str) -> dict[str, Any] | None:
    """One module: what spans say of it (all time) and its latest inspect report."""
    seen = db.query(
        f"""
        SELECT count() AS invocations, any(SpanAttributes['wasm.module.name']) AS name,
               max(toUInt64OrZero(SpanAttributes['wasm.module.size'])) AS size,
               any(SpanAttributes['wasm.module.kind']) AS kind,
               groupUniqArray(50)(SpanAttributes['faas.name']) AS functions,
               toUnixTimestamp64Nano(min(Timestamp)) AS first_ns, toUnixTimestamp64Nano(max(Timestamp)) AS last_ns
        FROM {{db}}.otel_traces
        WHERE {INVOCATION} AND SpanAttributes['wasm.module.sha256'] = {{sha:String}}
        """,
        {"sha": sha256},
    ).dicts()[0]
    report = db.query(
        f"""
        SELECT toUnixTimestamp64Nano(Timestamp) AS ts_ns, Body AS body, LogAttributes AS attributes
        FROM {{db}}.otel_logs
        WHERE {EVENT_NAME} = 'wasmscope.inspect.report' AND LogAttributes['wasm.module.sha256'] = {{sha:String}}
        ORDER BY Timestamp DESC LIMIT 1
        """,
        {"sha": sha256},
    ).dicts()
    if not seen["invocations"] and not report:
        return None
    doc: dict[str, Any] | None = None
    if report:
        attrs = report[0]["attributes"]
        seen["name"] = seen["name"] or attrs.get("wasm.module.name", "")
        seen["size"] = seen["size"] or int(attrs.get("wasm.module.size") or 0)
        seen["kind"] = seen["kind"] or attrs.get("wasm.module.kind", "")
        seen["report_ns"] = report[0]["ts_ns"]
        try:
            loaded = json.loads(report[0]["body"])
            doc = loaded if isinstance(loaded, dict) else None
        except ValueError:
            doc = None
    seen["sha256"] = sha256
    seen["report"] = doc
    return seen


# --- Profiles ----------------------------------------------------------------------------------
def profiles(db: Db, f: Filters, limit: int = 200) -> list[dict[str, Any]]:
    """Pushed profiles in the range, newest first (without their bodies)."""
    where, params = f.where(function=False)
    return db.query(
        f"""
        SELECT toUnixTimestamp64Nano(Timestamp) AS ts_ns, ServiceName AS service,
               LogAttributes['wasm.module.sha256'] AS sha256, LogAttributes['wasm.module.name'] AS name,
               LogAttributes['wasm.outcome'] AS outcome, TraceId AS trace_id,
               JSONExtractUInt(Body, 'samples') AS samples, JSONExtractFloat(Body, 'interval_s') AS interval_s,
               length(JSONExtractArrayRaw(Body, 'functions')) AS functions
        FROM {{db}}.otel_logs WHERE {EVENT_NAME} = 'wasmscope.profile' AND {where}
        ORDER BY Timestamp DESC LIMIT {{limit:UInt32}}
        """,
        {**params, "limit": limit},
    ).dicts()


def profile(db: Db, ts_ns: int, sha256: str) -> dict[str, Any] | None:
    """One pushed profile, by its time and module, with its parsed body."""
    rows = db.query(
        f"""
        SELECT toUnixTimestamp64Nano(Timestamp) AS ts_ns, ServiceName AS service, Body AS body,
               LogAttributes AS attributes, TraceId AS trace_id
        FROM {{db}}.otel_logs
        WHERE {EVENT_NAME} = 'wasmscope.profile' AND Timestamp = fromUnixTimestamp64Nano({{t:Int64}})
          AND LogAttributes['wasm.module.sha256'] = {{sha:String}}
        LIMIT 1
        """,
        {"t": ts_ns, "sha": sha256},
    ).dicts()
    if not rows:
        return None
    row = rows[0]
    try:
        body = json.loads(row.pop("body"))
    except ValueError:
        body = None
    row["profile"] = body if isinstance(body, dict) else None
    return row


# --- Security ----------------------------------------------------------------------------------
#: The guard's security events are log records whose EventName (the OTLP LogRecord
#: field, a column of otel_logs) is one of these; a record without the field (an SDK
#: too old to set it) is found by its ``event.name`` attribute.
SECURITY_EVENT_NAMES = tuple(str(e) for e in EventName)
SECURITY_NAME = "if(EventName != '', EventName, LogAttributes['event.name'])"
SECURITY = f"{SECURITY_NAME} IN {{sec_names:Array(String)}}"
SECURITY_RULE = "LogAttributes['wasm.rule.id']"
SECURITY_MODULE = "LogAttributes['wasm.module.name']"
SECURITY_TOP = 8  # series of the charts (the rest is "(other)")


@dataclass(frozen=True, slots=True)
class SecuritySearch:
    """The Security page's filters beyond the shared ones."""

    module: str = ""  # a module name or sha256
    rule: str = ""
    name: str = ""  # an event name
    #: Keyset cursor: rows strictly before (timestamp ns, trace id).
    before: tuple[int, str] | None = None


def _security_where(f: Filters, s: SecuritySearch) -> tuple[str, dict[str, Any]]:
    where, params = f.where(function_column="LogAttributes['faas.name']")
    parts = [SECURITY, where]
    params["sec_names"] = list(SECURITY_EVENT_NAMES)
    if s.module:
        parts.append(f"({SECURITY_MODULE} = {{sec_module:String}}"
                     " OR LogAttributes['wasm.module.sha256'] = {sec_module:String})")  # fmt: skip
        params["sec_module"] = s.module
    if s.rule:
        parts.append(f"{SECURITY_RULE} = {{sec_rule:String}}")
        params["sec_rule"] = s.rule
    if s.name:
        parts.append(f"{SECURITY_NAME} = {{sec_name:String}}")
        params["sec_name"] = s.name
    if s.before is not None:
        parts.append("(Timestamp, TraceId) < (fromUnixTimestamp64Nano({sec_bt:Int64}), {sec_bs:String})")
        params["sec_bt"], params["sec_bs"] = s.before
    return " AND ".join(parts), params


SECURITY_COLUMNS = f"""
    toUnixTimestamp64Nano(Timestamp) AS ts_ns, ServiceName AS service, SeverityText AS severity,
    SeverityNumber AS severity_number, {SECURITY_NAME} AS event_name, {SECURITY_RULE} AS rule,
    {SECURITY_MODULE} AS module, LogAttributes['wasm.module.sha256'] AS sha256,
    LogAttributes['wasm.target'] AS target, LogAttributes['wasm.policy.suggestion'] AS suggestion,
    LogAttributes['event.kind'] AS kind, LogAttributes['event.outcome'] AS outcome,
    LogAttributes['faas.name'] AS function,
    if(LogAttributes['wasm.invocation.id'] != '', LogAttributes['wasm.invocation.id'],
       LogAttributes['faas.invocation_id']) AS invocation_id,
    TraceId AS trace_id, SpanId AS span_id, Body AS body
"""


def security_events(db: Db, f: Filters, s: SecuritySearch, limit: int) -> list[dict[str, Any]]:
    """Security events matching ``s`` in the range, newest first, at most ``limit``."""
    where, params = _security_where(f, s)
    return db.query(
        f"SELECT {SECURITY_COLUMNS} FROM {{db}}.otel_logs WHERE {where}"
        " ORDER BY Timestamp DESC, TraceId DESC LIMIT {limit:UInt32}",
        {**params, "limit": limit},
    ).dicts()


def security_summary(db: Db, f: Filters, s: SecuritySearch) -> dict[str, Any]:
    """Counts of the range (the cursor aside): events, alerts (``event.kind`` alert),
    modules and rules, and the rules, modules and event names seen (for the pickers)."""
    where, params = _security_where(f, SecuritySearch(module=s.module, rule=s.rule, name=s.name))
    row = db.query(
        f"""
        SELECT count() AS n, countIf(LogAttributes['event.kind'] = 'alert') AS alerts,
               uniqExact({SECURITY_MODULE}) AS modules, uniqExact({SECURITY_RULE}) AS rules_n,
               groupUniqArray(200)({SECURITY_RULE}) AS rules,
               groupUniqArray(200)({SECURITY_MODULE}) AS module_names,
               groupUniqArray(20)({SECURITY_NAME}) AS names
        FROM {{db}}.otel_logs WHERE {where}
        """,
        params,
    ).dicts()[0]
    for key in ("rules", "module_names", "names"):
        row[key] = sorted(str(v) for v in row[key] if v)
    return row


def security_series(db: Db, f: Filters, s: SecuritySearch, by: str) -> dict[str, Any]:
    """Events per bucket of ``f.step`` seconds, one series per rule (``by="rule"``) or
    module (``by="module"``): the :data:`SECURITY_TOP` with the most events, the rest
    summed as "(other)"."""
    column = {"rule": SECURITY_RULE, "module": SECURITY_MODULE}[by]
    step = f.step
    where, params = _security_where(f, SecuritySearch(module=s.module, rule=s.rule, name=s.name))
    rows = db.query(
        f"""
        SELECT intDiv(toUnixTimestamp(Timestamp), {{step:UInt32}}) * {{step:UInt32}} AS t,
               {column} AS label, count() AS n
        FROM {{db}}.otel_logs WHERE {where}
        GROUP BY t, label ORDER BY t
        """,
        {**params, "step": step},
    ).rows
    t0 = (f.start_ns // NS) // step * step
    xs = list(range(t0, f.end_ns // NS + 1, step))
    index = {t: i for i, t in enumerate(xs)}
    totals: dict[str, int] = {}
    for _t, label, n in rows:
        totals[str(label)] = totals.get(str(label), 0) + int(n)
    top = sorted(totals, key=lambda k: (-totals[k], k))[:SECURITY_TOP]
    series: dict[str, list[int]] = {label: [0] * len(xs) for label in top}
    other = [0] * len(xs)
    for t, label, n in rows:
        i = index.get(int(t))
        if i is not None:
            series.get(str(label), other)[i] += int(n)
    if any(other):
        series["(other)"] = other
    return {"step": step, "x": xs, "series": {k or "(none)": v for k, v in series.items()},
            "total": sum(totals.values())}  # fmt: skip


# --- Metrics -----------------------------------------------------------------------------------
def metric_names(db: Db, f: Filters) -> list[dict[str, Any]]:
    """Every metric with points in the range: name, kind, unit, description, points."""
    where, params = f.where(time_column="TimeUnix", function=False)
    selects = [
        f"SELECT MetricName AS name, '{kind}' AS kind, any(MetricUnit) AS unit,"
        f" any(MetricDescription) AS description, count() AS points,"
        f" uniqExact(Attributes) AS series FROM {{db}}.{table} WHERE {where} GROUP BY MetricName"
        for kind, table in METRIC_TABLES.items()
    ]
    return db.query(" UNION ALL ".join(selects) + " ORDER BY name, kind", params).dicts()


def metric_series(db: Db, f: Filters, name: str, kind: str, limit_series: int = 8) -> dict[str, Any]:
    """A metric over time: one line per attribute set (the ``limit_series`` with the
    most points). Gauges and sums chart their value (the last of each bucket);
    histograms and summaries their count and mean."""
    table = METRIC_TABLES[kind]
    step = f.step
    where, params = f.where(time_column="TimeUnix", function=False)
    params.update({"name": name, "step": step, "top": limit_series})
    value = "argMax(Value, TimeUnix)" if kind in ("gauge", "sum") else "argMax(Count, TimeUnix)"
    mean = "0" if kind in ("gauge", "sum") else "if(argMax(Count, TimeUnix) > 0, argMax(Sum, TimeUnix) / argMax(Count, TimeUnix), nan)"
    rows = db.query(
        f"""
        WITH top AS (
            SELECT Attributes AS a FROM {{db}}.{table}
            WHERE MetricName = {{name:String}} AND {where}
            GROUP BY a ORDER BY count() DESC LIMIT {{top:UInt32}}
        )
        SELECT intDiv(toUnixTimestamp(TimeUnix), {{step:UInt32}}) * {{step:UInt32}} AS t,
               arrayStringConcat(arrayMap((k, x) -> concat(k, '=', x), mapKeys(Attributes), mapValues(Attributes)), ', ')
                   AS series, toFloat64({value}) AS v, toFloat64({mean}) AS m
        FROM {{db}}.{table}
        WHERE MetricName = {{name:String}} AND {where} AND Attributes IN (SELECT a FROM top)
        GROUP BY t, series ORDER BY t
        """,
        params,
    ).rows
    t0 = (f.start_ns // NS) // step * step
    xs = list(range(t0, f.end_ns // NS + 1, step))
    index = {t: i for i, t in enumerate(xs)}
    series: dict[str, list[float | None]] = {}
    means: dict[str, list[float | None]] = {}
    for t, label, v, m in rows:
        i = index.get(int(t))
        if i is None:
            continue
        label = label or "(no attributes)"
        series.setdefault(label, [None] * len(xs))[i] = v
        means.setdefault(label, [None] * len(xs))[i] = None if m != m else m
    return {"x": xs, "step": step, "series": series, "means": means if kind not in ("gauge", "sum") else {}}


# --- Store -------------------------------------------------------------------------------------
def table_rows(db: Db) -> list[dict[str, Any]]:
    """Rows and bytes on disk of each table of the database (active parts)."""
    return db.query(
        """
        SELECT table, sum(rows) AS rows, sum(bytes_on_disk) AS bytes
        FROM system.parts WHERE database = {database:String} AND active
        GROUP BY table ORDER BY table
        """,
        {"database": db.name},
    ).dicts()


def nonempty(values: Sequence[Any]) -> bool:
    return any(v for v in values)


# --- Cost --------------------------------------------------------------------------------------
#: The per-invocation columns the Cost page prices (those of ``wasmscope cost``'s store
#: reader, :func:`wasmscope.cost.records.table_from_arrow`).
COST_COLUMNS = ("Function, ModuleSha256, ModuleName, Outcome, Timestamp, Duration, CpuTime, Fuel, FuelLimit, "
                "MemoryPeak, MemoryLimit")  # fmt: skip


def cost_counts(db: Db, f: Filters) -> list[tuple[str, int, int]]:
    """``(function, bucket start in seconds, invocations)`` of the range, in ``f.step``
    buckets: the exact counts a sample is scaled to."""
    src = src_of(db)
    where, params = _where(src, f)
    rows = db.query(
        f"""
        SELECT {src.fn} AS function, intDiv(toUnixTimestamp(Timestamp), {{step:UInt32}}) * {{step:UInt32}} AS t,
               count() AS n
        FROM {db.invocations}
        WHERE {src.inv} AND {where}
        GROUP BY function, t ORDER BY function, t
        """,
        {**params, "step": f.step},
    ).rows
    return [(str(fn), int(t), int(n)) for fn, t, n in rows]


def cost_columns(db: Db, f: Filters, every: dict[str, int] | None = None) -> Any:
    """The per-invocation columns of the range as an Arrow table; ``every``: keep one
    in ``k`` invocations of those functions (by a hash of the row: the same rows each
    time), every invocation of the others."""
    src = src_of(db)
    where, params = _where(src, f)
    if every:
        names = sorted(every)
        where += (" AND cityHash64(Timestamp, Duration, MemoryPeak) % "
                  "transform(toString(Function), {c_names:Array(String)}, {c_every:Array(UInt64)}, toUInt64(1)) = 0")  # fmt: skip
        params.update({"c_names": names, "c_every": [every[n] for n in names]})
    return db.query_arrow(
        f"SELECT {COST_COLUMNS} FROM {db.invocations} WHERE {src.inv} AND {where}"
        " SETTINGS output_format_arrow_low_cardinality_as_dictionary = 1",
        params,
    )


def peak_histograms(db: Db, f: Filters, functions: Sequence[str]) -> dict[str, list[tuple[int, int]]]:
    """Per function of ``functions``: its peak memory in log2 buckets, as
    :func:`log2_histogram` gives them."""
    if not functions:
        return {}
    src = src_of(db)
    where, params = _where(src, f)
    rows = db.query(
        f"""
        SELECT {src.fn} AS function, if(v <= 0, -1, toInt32(floor(log2(v)))) AS k, count() AS n
        FROM (SELECT {src.fn}, {src.memory} AS v FROM {db.invocations}
              WHERE {src.inv} AND {where} AND v IS NOT NULL AND has({{c_fns:Array(String)}}, toString({src.fn})))
        GROUP BY function, k ORDER BY function, k
        """,
        {**params, "c_fns": list(functions)},
    ).rows
    out: dict[str, list[tuple[int, int]]] = {}
    for fn, k, n in rows:
        out.setdefault(str(fn), []).append((int(k), int(n)))
    return out


def cost_extremes(db: Db, f: Filters, functions: Sequence[str]) -> Any:
    """For sampled functions, the rows a recommendation must see whatever the sample:
    each one's largest peak memory, fuel and duration, and up to 100 of each failure
    that bounds a limit (out of memory, out of fuel, timeout)."""
    src = src_of(db)
    where, params = _where(src, f)
    where += f" AND has({{c_fns:Array(String)}}, toString({src.fn}))"
    params["c_fns"] = list(functions)
    base = f"SELECT {COST_COLUMNS} FROM {db.invocations} WHERE {src.inv} AND {where}"
    # a row at each maximum, found by the maxima (a sort of every row per function is slower)
    parts = [f"{base} AND ({src.fn}, {column}) IN (SELECT {src.fn}, max({column}) FROM {db.invocations}"
             f" WHERE {src.inv} AND {where} GROUP BY {src.fn}) LIMIT 1 BY Function"
             for column in ("MemoryPeak", "Fuel", "Duration")]  # fmt: skip
    parts.append(f"{base} AND Outcome IN ('out_of_memory', 'out_of_fuel', 'timeout') LIMIT 100 BY Function, Outcome")
    return db.query_arrow(
        " UNION ALL ".join(f"SELECT * FROM ({p})" for p in parts)
        + " SETTINGS output_format_arrow_low_cardinality_as_dictionary = 1",
        params,
    )


def cost_shapes(db: Db, f: Filters, meter: str, rounding_ns: float, limit: int) -> Any | None:
    """The invocations of the range grouped by function, bucket of ``f.step`` and what a
    price sheet of ``meter`` bills (the wall time rounded up to whole ``rounding_ns`` as
    the sheet rounds it, the CPU time, the peak memory, the memory limit), with their
    count ``N``; an unknown value is 0, as the store has it. None when there are more
    than ``limit`` such shapes (the caller then prices rows)."""
    src = src_of(db)
    where, params = _where(src, f)
    if meter == "cpu-time":
        wall, cpu, peak = "0", "CpuTime", "toUInt64(0)"
    else:
        from wasmscope.cost.store_summary import billed_duration_sql

        duration, step = billed_duration_sql(rounding_ns, "c_step")
        wall = f"toUInt64({duration})" if step else duration
        params.update(step)
        cpu = "toFloat64(0)"
        peak = "MemoryPeak" if meter == "observed-memory-time" else "toUInt64(0)"
    data = db.query_arrow(
        f"""
        SELECT {src.fn} AS Function, intDiv(toUnixTimestamp(Timestamp), {{step:UInt32}}) * {{step:UInt32}} AS T,
               {wall} AS Duration, {cpu} AS CpuTime, {peak} AS MemoryPeak, MemoryLimit, count() AS N
        FROM {db.invocations}
        WHERE {src.inv} AND {where}
        GROUP BY Function, T, Duration, CpuTime, MemoryPeak, MemoryLimit
        LIMIT {{limit:UInt32}}
        SETTINGS output_format_arrow_low_cardinality_as_dictionary = 1
        """,
        {**params, "step": f.step, "limit": limit + 1},
    )
    return None if data.num_rows > limit else data
