"""The usage summary: per function and in total, the distributions of wall time, CPU
time, fuel and peak memory, and the cost under a price sheet.

    from wasmscope.cost.records import read_usage
    from wasmscope.cost.prices import load_price_sheet
    s = summarize(read_usage("runs.jsonl"), load_price_sheet("aws-lambda-arm64"), memory_mb=128)
    s.total.wall.p99, s.total.cost.per_million, [f.function for f in s.functions]

Vectorised: the rows are ordered by function once (an argsort of the function codes),
counts, sums, minima and maxima are ``reduceat`` over the groups, and each group's
quantiles one ``np.quantile`` over its slice (a loop over functions, never over rows).
Quantiles are numpy's default (linear between the closest ranks). NaN (unknown) values
are left out of a column's statistics; ``known`` says how many there were.

The cost: the sheet prices every invocation (its rounding applies per invocation), and
bills the group: mean per invocation, per million, and per month at the given monthly
rate (``monthly_invocations``, or ``rate_per_s`` times 30 days; shared among the
functions by their invocations) or else at the observed rate over the window the
records cover. A free tier is an account's: it is taken off the total, and each
function's monthly share of it is in proportion to its cost.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

from wasmscope.cost._numpy import NDArray, np
from wasmscope.cost.prices import PriceSheet
from wasmscope.cost.records import UsageTable
from wasmscope.errors import UsageError

__all__ = ["METRICS", "QUANTILES", "Cost", "FunctionSummary", "Stats", "Summary", "summarize"]

QUANTILES = (0.5, 0.95, 0.99)
SECONDS_PER_MONTH = 30 * 86400.0
TOTAL = "(total)"
# (attribute of the summary, column of the table)
METRICS = (("wall", "wall_s"), ("cpu", "cpu_s"), ("fuel", "fuel"), ("peak_memory", "peak_memory"))


@dataclass(frozen=True, slots=True)
class Stats:
    """One column of one group: NaN where no value is known."""

    known: int
    min: float
    avg: float
    p50: float
    p95: float
    p99: float
    max: float

    def to_json(self) -> dict[str, float | int | None]:
        return {k: _finite(getattr(self, k)) for k in ("min", "avg", "p50", "p95", "p99", "max")} | {"known": self.known}


@dataclass(frozen=True, slots=True)
class Cost:
    """USD under one price sheet: the mean per invocation, per million, per month, and
    the sum over the invocations observed (no free tier)."""

    per_invocation: float
    per_million: float
    per_month: float | None
    observed: float
    memory_mb: float | None = None  # the configured size priced (memory-time meters)
    monthly_invocations: float | None = None  # the rate per_month is at
    unpriced: int = 0  # invocations without what the meter needs (no CPU time, say)

    def to_json(self) -> dict[str, float | None]:
        return {
            "per_invocation": _finite(self.per_invocation), "per_million": _finite(self.per_million),
            "per_month": _finite(self.per_month), "observed": _finite(self.observed),
            "memory_mb": self.memory_mb, "monthly_invocations": _finite(self.monthly_invocations),
            "unpriced": self.unpriced,
        }  # fmt: skip


@dataclass(frozen=True, slots=True)
class FunctionSummary:
    function: str
    invocations: int
    errors: int  # outcome other than ok (an empty outcome, unknown, is not counted)
    wall: Stats  # seconds
    cpu: Stats  # seconds
    fuel: Stats  # fuel units
    peak_memory: Stats  # bytes
    cost: Cost | None = None

    def to_json(self) -> dict[str, Any]:
        out: dict[str, Any] = {"function": self.function, "invocations": self.invocations, "errors": self.errors}
        for attr, _ in METRICS:
            out[attr] = getattr(self, attr).to_json()
        out["cost"] = self.cost.to_json() if self.cost is not None else None
        return out


@dataclass(frozen=True, slots=True)
class Summary:
    functions: tuple[FunctionSummary, ...]  # most invoked first
    total: FunctionSummary
    seconds_observed: float  # from the first start to the last end
    price: str | None = None  # the sheet's name
    meter: str | None = None
    free_tier: bool = False
    rate: str = "observed"  # what per_month is at: "given" (a monthly volume or rate) or "observed"

    @property
    def observed_rate(self) -> float | None:
        """Invocations per second over the window the records cover (None: under two)."""
        if self.total.invocations < 2 or self.seconds_observed <= 0:
            return None
        return self.total.invocations / self.seconds_observed

    def to_json(self) -> dict[str, Any]:
        return {
            "price": self.price, "meter": self.meter, "free_tier": self.free_tier,
            "monthly_rate": self.rate, "seconds_observed": self.seconds_observed, "observed_rate_per_s": self.observed_rate,
            "functions": [f.to_json() for f in self.functions], "total": self.total.to_json(),
        }  # fmt: skip


def _finite(x: float | None) -> float | None:
    return None if x is None or not math.isfinite(x) else float(x)


# -- statistics ---------------------------------------------------------------------------


def _stats_of(values: NDArray[np.float64]) -> Stats:
    """The statistics of one slice (NaN left out)."""
    v = values[~np.isnan(values)]
    if len(v) == 0:
        nan = float("nan")
        return Stats(0, nan, nan, nan, nan, nan, nan)
    q = np.quantile(v, QUANTILES)
    return Stats(len(v), float(v.min()), float(v.mean()), float(q[0]), float(q[1]), float(q[2]), float(v.max()))


@dataclass(frozen=True, slots=True)
class _Groups:
    """The rows ordered by function: ``order`` the permutation, group ``g`` the slice
    ``starts[g]:ends[g]`` of it, named ``names[g]``."""

    names: NDArray[np.object_]
    order: NDArray[np.intp]
    starts: NDArray[np.intp]
    ends: NDArray[np.intp]

    @classmethod
    def of(cls, table: UsageTable) -> _Groups:
        names, codes = table.groups()
        order = np.argsort(codes, kind="stable")
        counts = np.bincount(codes, minlength=len(names))
        present = np.flatnonzero(counts)
        ends = np.cumsum(counts)[present]
        starts = ends - counts[present]
        return cls(names[present], order, starts.astype(np.intp), ends.astype(np.intp))


def _group_stats(g: _Groups, column: NDArray[np.float64]) -> list[Stats]:
    """Every group's statistics: counts, sums, minima and maxima by ``reduceat``, the
    quantiles one call per group."""
    if len(g.starts) == 0:
        return []
    v = column[g.order]
    known = ~np.isnan(v)
    n_known = np.add.reduceat(known, g.starts)
    sums = np.add.reduceat(np.where(known, v, 0.0), g.starts)
    mins = np.fmin.reduceat(v, g.starts)
    maxs = np.fmax.reduceat(v, g.starts)
    out = []
    nan = float("nan")
    for i, (s, e) in enumerate(zip(g.starts.tolist(), g.ends.tolist(), strict=True)):
        k = int(n_known[i])
        if k == 0:
            out.append(Stats(0, nan, nan, nan, nan, nan, nan))
            continue
        seg = v[s:e]
        if k != e - s:
            seg = seg[known[s:e]]
        q = np.quantile(seg, QUANTILES)
        out.append(Stats(k, float(mins[i]), float(sums[i] / k), float(q[0]), float(q[1]), float(q[2]), float(maxs[i])))
    return out


# -- cost ---------------------------------------------------------------------------------


def _memory_mb(sheet: PriceSheet, memory_mb: float | None, limits: NDArray[np.float64], function: str) -> float | None:
    """The configured size to price a memory-time meter at: ``memory_mb``, else the
    smallest size the sheet can configure that holds the function's largest memory limit
    in the records."""
    if sheet.meter != "memory-time" or memory_mb is not None:
        return memory_mb
    known = limits[~np.isnan(limits)]
    if len(known) == 0:
        raise UsageError(
            f"the price sheet {sheet.name} bills the configured memory and the records of {function} "
            "carry no memory limit: give the size (--memory-mb N)"
        )
    need = float(known.max()) / (1 << 20)
    size = sheet.memory_step_for(need)
    if size is None:
        raise UsageError(
            f"{function} has a memory limit of {need:g} MiB, which no size of {sheet.name} holds "
            "(see docs/cost.md): give the size (--memory-mb N)"
        )
    return float(size)


def _costs(sheet: PriceSheet, table: UsageTable, rows: NDArray[np.intp] | slice, memory_mb: float | None,
           concurrency: float) -> NDArray[np.float64]:  # fmt: skip
    wall = table.wall_s[rows]
    cpu = table.cpu_s[rows]
    peak = table.peak_memory[rows]
    # An unknown the meter needs (CPU time for cpu-time, peak memory for observed memory)
    # gives a NaN cost: the bill counts it as unpriced.
    costs = sheet.invocation_costs(wall, cpu, peak, memory_mb=memory_mb, concurrency=concurrency)
    return np.asarray(costs, dtype=np.float64)


def _cost(sheet: PriceSheet, costs: NDArray[np.float64], *, seconds: float | None, monthly: float | None,
          free_tier: bool, memory_mb: float | None) -> Cost:  # fmt: skip
    bill = sheet.bill(costs, invocations=float(len(costs)), seconds_observed=seconds,
                      monthly_invocations=monthly, free_tier=free_tier)  # fmt: skip
    per_month = bill.per_month
    at = bill.monthly_invocations
    return Cost(float(bill.per_invocation), float(bill.per_million), None if per_month is None else float(per_month),
                float(np.nansum(costs)), memory_mb, None if at is None else float(at), int(bill.unpriced))  # fmt: skip


def summarize(
    table: UsageTable,
    sheet: PriceSheet | None = None,
    *,
    memory_mb: float | None = None,
    monthly_invocations: float | None = None,
    rate_per_s: float | None = None,
    free_tier: bool = False,
    concurrency: float = 1.0,
) -> Summary:
    """The summary of ``table``, with the cost under ``sheet`` when one is given."""
    if monthly_invocations is not None and rate_per_s is not None:
        raise UsageError("give the monthly volume or the rate, not both")
    if rate_per_s is not None:
        monthly_invocations = rate_per_s * SECONDS_PER_MONTH
    n = len(table)
    seconds = 0.0
    timed = table.start_ns > 0  # a record of a run that never started may carry no times
    if timed.any():
        starts = table.start_ns[timed]
        ends = starts + np.rint(table.wall_s[timed] * 1e9).astype(np.int64)
        seconds = float(ends.max() - starts.min()) / 1e9
    window = seconds if int(timed.sum()) >= 2 and seconds > 0 else None
    g = _Groups.of(table)
    stats = {attr: _group_stats(g, getattr(table, col)) for attr, col in METRICS}
    totals = {attr: _stats_of(getattr(table, col)) for attr, col in METRICS}
    failed_rows = (table.outcome != "ok") & (table.outcome != "")  # "": the store had no outcome
    failed = failed_rows[g.order]
    errors = np.add.reduceat(failed, g.starts).tolist() if len(g.starts) else []
    counts = (g.ends - g.starts).tolist()

    costs: list[Cost | None] = [None] * len(counts)
    total_cost: Cost | None = None
    if sheet is not None and n:
        per_memory: list[float | None] = []
        if sheet.meter == "memory-time" and memory_mb is None:
            all_costs = np.empty(n, dtype=np.float64)
            for i, (s, e) in enumerate(zip(g.starts.tolist(), g.ends.tolist(), strict=True)):
                rows = g.order[s:e]
                mem = _memory_mb(sheet, None, table.memory_limit[rows], str(g.names[i]))
                all_costs[rows] = _costs(sheet, table, rows, mem, concurrency)
                per_memory.append(mem)
        else:
            all_costs = _costs(sheet, table, slice(None), memory_mb, concurrency)
            per_memory = [memory_mb] * len(counts)
        for i, (s, e) in enumerate(zip(g.starts.tolist(), g.ends.tolist(), strict=True)):
            share = None if monthly_invocations is None else monthly_invocations * counts[i] / n
            costs[i] = _cost(sheet, all_costs[g.order[s:e]], seconds=window, monthly=share,
                             free_tier=False, memory_mb=per_memory[i])  # fmt: skip
        sizes = {m for m in per_memory if m is not None}
        total_cost = _cost(sheet, all_costs, seconds=window, monthly=monthly_invocations, free_tier=free_tier,
                           memory_mb=sizes.pop() if len(sizes) == 1 else None)  # fmt: skip
        if free_tier:
            costs = _share_free_tier(costs, total_cost)

    functions = [
        FunctionSummary(str(g.names[i]), counts[i], int(errors[i]), stats["wall"][i], stats["cpu"][i],
                        stats["fuel"][i], stats["peak_memory"][i], costs[i])
        for i in range(len(counts))
    ]
    functions.sort(key=lambda f: (-f.invocations, f.function))
    total = FunctionSummary(TOTAL, n, int(np.count_nonzero(failed_rows)), totals["wall"], totals["cpu"],
                            totals["fuel"], totals["peak_memory"], total_cost)  # fmt: skip
    return Summary(tuple(functions), total, seconds, sheet.name if sheet is not None else None,
                   sheet.meter if sheet is not None else None, free_tier,
                   "given" if monthly_invocations is not None else "observed")  # fmt: skip


def _share_free_tier(costs: Sequence[Cost | None], total: Cost) -> list[Cost | None]:
    """Each function's per-month cost after the free tier: the total's, shared in
    proportion to the functions' per-month costs without it."""
    months = [c.per_month if c is not None and c.per_month is not None else 0.0 for c in costs]
    whole = sum(months)
    out: list[Cost | None] = []
    for c, m in zip(costs, months, strict=True):
        if c is None or c.per_month is None or total.per_month is None:
            out.append(c)
            continue
        share = total.per_month * (m / whole) if whole > 0 else 0.0
        out.append(Cost(c.per_invocation, c.per_million, share, c.observed, c.memory_mb, c.monthly_invocations,
                        c.unpriced))  # fmt: skip
    return out
