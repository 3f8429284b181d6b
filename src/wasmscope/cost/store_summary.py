"""The summary computed in the collect store, where the invocations live.

:func:`summarize_store` gives what :func:`~wasmscope.cost.summary.summarize` gives for
the store's rows, without bringing the rows out: one ``GROUP BY Function`` for the
counts and the statistics (``quantilesExactInclusive``: the same linear interpolation
as numpy's default), one without it for the total, and one for the cost that groups the
invocations by what the price sheet bills (the wall time rounded as the sheet rounds
it, the CPU time, the peak memory, as the meter needs). The sheet then prices each
distinct billed shape once, weighted by how many invocations had it: a store of 100M
invocations hands over a few thousand rows.

As in the table the store gives :func:`~wasmscope.cost.records.read_usage`, a zero (the
span had no such attribute) is an unknown value, and an empty outcome is not an error.
"""

from __future__ import annotations

import math
from typing import Any

from wasmscope.cost._numpy import NDArray, np
from wasmscope.cost.prices import PriceSheet
from wasmscope.cost.summary import (
    QUANTILES,
    SECONDS_PER_MONTH,
    TOTAL,
    Cost,
    FunctionSummary,
    Stats,
    Summary,
    _memory_mb,
    _share_free_tier,
)
from wasmscope.errors import UsageError

__all__ = ["billed_duration_sql", "summarize_store"]

_Q = ", ".join(str(q) for q in QUANTILES)
# (name, value, known when): the columns of the statistics, as wasmscope_invocations has them
_METRICS = (
    ("wall", "Duration / 1e9", "1"),
    ("cpu", "CpuTime", "CpuTime > 0"),
    ("fuel", "toFloat64(Fuel)", "Fuel > 0 OR FuelLimit > 0"),
    ("peak_memory", "toFloat64(MemoryPeak)", "MemoryPeak > 0"),
)


def _stats_sql(source: str, where: str, grouped: bool) -> str:
    parts = []
    for name, value, known in _METRICS:
        parts.append(f"countIf({known}) AS {name}_known, minIf({value}, {known}) AS {name}_min, "
                     f"avgIf({value}, {known}) AS {name}_avg, quantilesExactInclusiveIf({_Q})({value}, {known}) AS {name}_q, "
                     f"maxIf({value}, {known}) AS {name}_max")  # fmt: skip
    head = "Function AS function, " if grouped else "'' AS function, "
    return f"""
SELECT {head}count() AS n, countIf(Outcome NOT IN ('ok', '')) AS errors, {", ".join(parts)},
       countIf(MemoryLimit > 0) AS limit_known, maxIf(toFloat64(MemoryLimit), MemoryLimit > 0) AS limit_max,
       countIf(Timestamp > 0) AS timed, minIf(toUnixTimestamp64Nano(Timestamp), Timestamp > 0) AS first_ns,
       maxIf(toUnixTimestamp64Nano(Timestamp) + Duration, Timestamp > 0) AS last_ns
FROM {source}
WHERE {where}
{"GROUP BY function" if grouped else ""}"""


def billed_duration_sql(rounding_ns: float, param: str) -> tuple[str, dict[str, float]]:
    """``Duration`` (ns) rounded up to whole ``rounding_ns`` as a price sheet rounds wall
    time (``prices._rounded``: the quotient first rounded to 1e-6, then up), as SQL with
    the step in the parameter ``param``; not rounded when ``rounding_ns`` is 0."""
    if rounding_ns <= 0:
        return "Duration", {}
    return f"ceil(round(Duration / {{{param}:Float64}}, 6)) * {{{param}:Float64}}", {param: rounding_ns}


def _cost_sql(source: str, where: str, sheet: PriceSheet) -> tuple[str, dict[str, Any]]:
    """The invocations grouped by what the sheet bills: (function, wall, cpu, peak, n),
    -1 for an unknown value; a dimension the meter does not read is 0."""
    params: dict[str, Any] = {}
    if sheet.meter == "cpu-time":
        wall, cpu, peak = "0", "if(CpuTime > 0, CpuTime, -1)", "0"
    else:
        duration, params = billed_duration_sql(sheet.rounding_ms * 1e6, "step")
        wall = f"{duration} / 1e9"
        cpu = "0"
        peak = "if(MemoryPeak > 0, toFloat64(MemoryPeak), -1)" if sheet.meter == "observed-memory-time" else "0"
    sql = f"""
SELECT Function AS function, {wall} AS wall_s, {cpu} AS cpu_s, {peak} AS peak, count() AS n
FROM {source}
WHERE {where}
GROUP BY function, wall_s, cpu_s, peak"""
    return sql, params


def _stats(row: dict[str, Any], name: str) -> Stats:
    known = int(row[f"{name}_known"])
    if known == 0:
        nan = float("nan")
        return Stats(0, nan, nan, nan, nan, nan, nan)
    q = [float(x) for x in row[f"{name}_q"]]
    return Stats(known, float(row[f"{name}_min"]), float(row[f"{name}_avg"]), q[0], q[1], q[2], float(row[f"{name}_max"]))


def _weighted(sheet: PriceSheet, costs: NDArray[np.float64], n: NDArray[np.float64], *, seconds: float | None,
              monthly: float | None, free_tier: bool, memory_mb: float | None) -> Cost:  # fmt: skip
    """The cost of ``n[i]`` invocations at ``costs[i]`` each, billed by the sheet."""
    finite = np.isfinite(costs)
    priced = float(n[finite].sum())
    usd = float((costs[finite] * n[finite]).sum())
    mean = usd / priced if priced else math.nan
    bill = sheet.bill(np.array([mean]), invocations=float(n.sum()), seconds_observed=seconds,
                      monthly_invocations=monthly, free_tier=free_tier)  # fmt: skip
    at = bill.monthly_invocations
    return Cost(float(bill.per_invocation), float(bill.per_million),
                None if bill.per_month is None else float(bill.per_month), usd, memory_mb,
                None if at is None else float(at), int(n[~finite].sum()))  # fmt: skip


def summarize_store(
    store: Any,
    sheet: PriceSheet | None = None,
    *,
    function: str | None = None,
    memory_mb: float | None = None,
    monthly_invocations: float | None = None,
    rate_per_s: float | None = None,
    free_tier: bool = False,
    concurrency: float = 1.0,
) -> Summary:
    """The summary of the invocations in ``store`` (a :class:`~wasmscope.collect.store.Store`),
    of ``function`` only when given, aggregated by the store."""
    from wasmscope.cost.records import invocation_source

    if monthly_invocations is not None and rate_per_s is not None:
        raise UsageError("give the monthly volume or the rate, not both")
    if rate_per_s is not None:
        monthly_invocations = rate_per_s * SECONDS_PER_MONTH
    source = invocation_source(store)
    where = "Function = {function:String}" if function is not None else "1"
    params: dict[str, Any] = {"function": function} if function is not None else {}
    q = store.backend.query
    rows = q(_stats_sql(source, where, True), params).dicts()
    rows.sort(key=lambda r: (-int(r["n"]), str(r["function"])))
    total_row = q(_stats_sql(source, where, False), params).dicts()[0] if rows else None
    n = int(total_row["n"]) if total_row else 0
    seconds = 0.0
    if total_row and int(total_row["timed"]):
        seconds = (int(total_row["last_ns"]) - int(total_row["first_ns"])) / 1e9
    window = seconds if total_row and int(total_row["timed"]) >= 2 and seconds > 0 else None

    costs: list[Cost | None] = [None] * len(rows)
    total_cost: Cost | None = None
    if sheet is not None and n:
        sql, cost_params = _cost_sql(source, where, sheet)
        shapes = store.backend.query_arrow(sql, {**params, **cost_params})
        fn = np.array(shapes.column("function").to_pylist(), dtype=object)

        def col(name: str) -> NDArray[np.float64]:
            v = np.asarray(shapes.column(name).to_numpy(), dtype=np.float64)
            return np.where(v < 0, np.nan, v)

        wall, cpu, peak, count = col("wall_s"), col("cpu_s"), col("peak"), col("n")
        all_costs = np.empty(len(fn), dtype=np.float64)
        memory: list[float | None] = []
        for i, r in enumerate(rows):
            name = str(r["function"])
            limits = np.array([r["limit_max"]], dtype=np.float64) if int(r["limit_known"]) else np.empty(0)
            mem = _memory_mb(sheet, memory_mb, limits, name)
            mine = fn == name
            all_costs[mine] = sheet.invocation_costs(wall[mine], cpu[mine], peak[mine], memory_mb=mem,
                                                     concurrency=concurrency)  # fmt: skip
            share = None if monthly_invocations is None else monthly_invocations * int(r["n"]) / n
            costs[i] = _weighted(sheet, all_costs[mine], count[mine], seconds=window, monthly=share,
                                 free_tier=False, memory_mb=mem)  # fmt: skip
            memory.append(mem)
        sizes = {m for m in memory if m is not None}
        total_cost = _weighted(sheet, all_costs, count, seconds=window, monthly=monthly_invocations,
                               free_tier=free_tier, memory_mb=sizes.pop() if len(sizes) == 1 else None)  # fmt: skip
        if free_tier:
            costs = _share_free_tier(costs, total_cost)

    def summary_of(r: dict[str, Any], name: str, cost: Cost | None) -> FunctionSummary:
        return FunctionSummary(name, int(r["n"]), int(r["errors"]), _stats(r, "wall"), _stats(r, "cpu"),
                               _stats(r, "fuel"), _stats(r, "peak_memory"), cost)  # fmt: skip

    functions = tuple(summary_of(r, str(r["function"]), costs[i]) for i, r in enumerate(rows))
    if total_row is None:
        nan = float("nan")
        empty = Stats(0, nan, nan, nan, nan, nan, nan)
        total = FunctionSummary(TOTAL, 0, 0, empty, empty, empty, empty, None)
    else:
        total = summary_of(total_row, TOTAL, total_cost)
    return Summary(functions, total, seconds, sheet.name if sheet is not None else None,
                   sheet.meter if sheet is not None else None, free_tier,
                   "given" if monthly_invocations is not None else "observed")  # fmt: skip
