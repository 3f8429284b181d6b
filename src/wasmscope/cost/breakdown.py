"""The cost of a range of invocations per function and per time bucket: what the
``collect`` dashboard's Cost page shows.

    from wasmscope.cost.breakdown import breakdown
    b = breakdown(table, load_price_sheet("aws-lambda-x86"), start_s=t0, step_s=60, buckets=60)
    b.rows[0].function, b.rows[0].total, b.series["work.wasm"]

Every invocation of ``table`` is priced by :meth:`PriceSheet.invocation_costs` (its
rounding per invocation), at the memory size :func:`memory_for` gives each function
(the rule of ``wasmscope cost summary``), so a row's ``per_invocation``,
``per_million`` and ``total`` are the summary's ``per_invocation``, ``per_million``
and ``observed`` for the same rows. When ``table`` is a sample of the range, ``counts``
(the exact invocations per function and bucket, counted in the store) scale each
bucket's sum up to its count.
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from dataclasses import dataclass, field

from wasmscope.cost._numpy import NDArray, np
from wasmscope.cost.prices import PriceSheet
from wasmscope.cost.records import UsageTable

__all__ = ["DEFAULT_MEMORY_MB", "Breakdown", "CostRow", "breakdown", "memory_for"]

#: The size a memory-time meter is priced at when a function's records carry no limit.
DEFAULT_MEMORY_MB = 128
MIB = 1 << 20


@dataclass(frozen=True, slots=True)
class CostRow:
    """One function's cost in the range (USD, at the sheet's unit prices, no free tier).

    ``invocations`` is exact; ``priced`` how many of them were priced (fewer when the
    range was sampled); ``unpriced`` those of the priced that lacked what the meter
    needs (CPU time, peak memory); ``total`` the sum over the range (scaled from the
    sample when there is one); ``share`` its part of all functions' total."""

    function: str
    invocations: int
    priced: int
    unpriced: int
    memory_mb: float | None
    memory_source: str  # "given", "limit" (the records' memory limit), "default", or "" (not memory-metered)
    per_invocation: float
    per_million: float
    total: float
    share: float


@dataclass(frozen=True, slots=True)
class Breakdown:
    sheet: str
    meter: str
    rows: tuple[CostRow, ...]  # the most expensive first
    total: float
    invocations: int
    priced: int
    #: USD per bucket of each function, over ``start_s + i * step_s``.
    series: dict[str, list[float]] = field(default_factory=dict)
    notes: tuple[str, ...] = ()


def memory_for(sheet: PriceSheet, limits: NDArray[np.float64], memory_mb: float | None) -> tuple[float | None, str]:
    """The size a memory-time meter prices a function at, and where it comes from:
    ``memory_mb`` when given, else the smallest size the sheet can configure that holds
    the function's largest memory limit (as ``cost summary`` does), else
    :data:`DEFAULT_MEMORY_MB` (rounded up to a size of the sheet). None: the sheet does
    not meter configured memory, or no size holds the limit."""
    if sheet.meter != "memory-time":
        return None, ""
    if memory_mb is not None:
        return float(memory_mb), "given"
    known = limits[~np.isnan(limits)]
    if len(known):
        size = sheet.memory_step_for(float(known.max()) / MIB)
        return (None if size is None else float(size)), "limit"
    size = sheet.memory_step_for(DEFAULT_MEMORY_MB)
    return (None if size is None else float(size)), "default"


def breakdown(
    table: UsageTable,
    sheet: PriceSheet,
    *,
    start_s: int,
    step_s: int,
    buckets: int,
    memory_mb: float | None = None,
    counts: Mapping[tuple[str, int], int] | None = None,
) -> Breakdown:
    """Each function's cost in the range and per bucket (see the module docstring).

    ``counts``: ``(function, bucket start in seconds) -> invocations``, counted in the
    store; without it ``table`` is taken as every invocation of the range."""
    names, codes = table.groups()
    n_fn = len(names)
    costs = np.full(len(table), np.nan)
    memory: list[tuple[float | None, str]] = []
    notes: list[str] = []
    for g in range(n_fn):
        rows = np.flatnonzero(codes == g)
        mb, source = memory_for(sheet, table.memory_limit[rows], memory_mb)
        memory.append((mb, source))
        if not len(rows):
            continue
        if sheet.meter == "memory-time" and mb is None:
            notes.append(f"{names[g]}: no size of {sheet.name} holds its memory limit; give memory_mb= to price it")
            continue
        costs[rows] = sheet.invocation_costs(table.wall_s[rows], table.cpu_s[rows], table.peak_memory[rows],
                                             memory_mb=mb)  # fmt: skip
    bucket = np.clip((table.start_ns // 1_000_000_000 - start_s) // step_s, 0, max(buckets - 1, 0)).astype(np.intp)
    cell = codes * buckets + bucket
    known = np.isfinite(costs)
    sums = np.bincount(cell, weights=np.where(known, costs, 0.0), minlength=n_fn * buckets).reshape(n_fn, buckets)
    sampled = np.bincount(cell, minlength=n_fn * buckets).reshape(n_fn, buckets).astype(np.float64)
    finite = np.bincount(codes, weights=known.astype(np.float64), minlength=n_fn)
    fn_sum = sums.sum(axis=1)
    fn_sampled = sampled.sum(axis=1)
    exact = sampled
    index = {str(name): i for i, name in enumerate(names)}
    if counts is not None:
        exact = np.zeros((n_fn, buckets))
        for (function, t), n in counts.items():
            at = index.get(function)
            if at is not None:
                exact[at, min(max((t - start_s) // step_s, 0), buckets - 1)] += n
    # A bucket's sum scaled to its count; a bucket the sample missed at the function's mean.
    with np.errstate(invalid="ignore", divide="ignore"):
        mean_fn = np.where(fn_sampled > 0, fn_sum / fn_sampled, 0.0)
        scaled = np.where(sampled > 0, sums * (exact / np.where(sampled > 0, sampled, 1.0)), exact * mean_fn[:, None])
    totals = scaled.sum(axis=1)
    grand = float(totals.sum())
    out = []
    for g in range(n_fn):
        if not fn_sampled[g] and not exact[g].any():  # a name of the store's dictionary without rows
            continue
        k = int(finite[g])
        mean = float(fn_sum[g] / k) if k else math.nan
        mb, source = memory[g]
        out.append(CostRow(str(names[g]), round(float(exact[g].sum())), int(fn_sampled[g]), int(fn_sampled[g]) - k, mb,
                           source, mean, mean * 1e6, float(totals[g]),
                           float(totals[g] / grand) if grand > 0 else 0.0))  # fmt: skip
    if counts is not None:  # a function the sample missed altogether: counted, not priced
        missed: dict[str, int] = {}
        for (function, _t), n in counts.items():
            if function not in index:
                missed[function] = missed.get(function, 0) + n
        for function, n in missed.items():
            out.append(CostRow(function, n, 0, 0, None, "", math.nan, math.nan, 0.0, 0.0))
            notes.append(f"{function}: none of its {n} invocations was in the sample; not priced")
    out.sort(key=lambda r: (-r.total, -r.invocations, r.function))
    series = {str(names[g]): [float(v) for v in scaled[g]] for g in range(n_fn) if fn_sampled[g] or exact[g].any()}
    invocations = sum(r.invocations for r in out)
    return Breakdown(sheet.name, sheet.meter, tuple(out), grand, invocations, len(table), series,
                     tuple(notes))  # fmt: skip
