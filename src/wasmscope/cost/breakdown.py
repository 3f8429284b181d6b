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
from typing import Any

from wasmscope.cost._numpy import NDArray, np
from wasmscope.cost.prices import PriceSheet
from wasmscope.cost.records import UsageTable

__all__ = ["DEFAULT_MEMORY_MB", "Breakdown", "CostRow", "breakdown", "from_shapes", "memory_for"]

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


def from_shapes(data: Any) -> tuple[UsageTable, NDArray[np.float64]]:
    """The rows of an Arrow table of billed shapes (columns ``Function``, ``T`` (bucket
    start, seconds), ``Duration`` (ns), ``CpuTime``, ``MemoryPeak``, ``MemoryLimit``,
    ``N``; a zero is unknown) as a usage table, and each row's count."""
    if data.num_rows == 0:
        return UsageTable.empty(), np.empty(0)
    def numbers(name: str, dtype: Any = np.float64) -> NDArray[Any]:
        return np.asarray(data.column(name).to_numpy(), dtype=dtype)

    n = data.num_rows
    encoded = data.column("Function").combine_chunks()
    if not hasattr(encoded, "indices"):  # plain strings: made a dictionary in Arrow (a hash, no sort)
        encoded = encoded.dictionary_encode()
    names = np.empty(len(encoded.dictionary), dtype=object)
    names[:] = encoded.dictionary.to_pylist()
    function = names[np.asarray(encoded.indices.to_numpy(zero_copy_only=False), dtype=np.intp)]
    cpu, peak, limit = numbers("CpuTime"), numbers("MemoryPeak"), numbers("MemoryLimit")
    blank = np.full(n, "", dtype=object)
    table = UsageTable(
        function=function, module=blank, wall_s=numbers("Duration") / 1e9, cpu_s=np.where(cpu > 0, cpu, np.nan),
        fuel=np.full(n, np.nan), peak_memory=np.where(peak > 0, peak, np.nan),
        memory_limit=np.where(limit > 0, limit, np.nan), host_calls=np.full(n, np.nan), outcome=blank,
        start_ns=numbers("T", np.int64) * 1_000_000_000,
    )  # fmt: skip
    return table, numbers("N")


def breakdown(
    table: UsageTable,
    sheet: PriceSheet,
    *,
    start_s: int,
    step_s: int,
    buckets: int,
    memory_mb: float | None = None,
    counts: Mapping[tuple[str, int], int] | None = None,
    weights: NDArray[np.float64] | None = None,
) -> Breakdown:
    """Each function's cost in the range and per bucket (see the module docstring).

    ``counts``: ``(function, bucket start in seconds) -> invocations``, counted in the
    store; without it ``table`` is taken as every invocation of the range. ``weights``:
    how many invocations each row stands for (the billed shapes of :func:`from_shapes`);
    None: one each."""
    names, codes = table.groups()
    n_fn = len(names)
    w = np.ones(len(table)) if weights is None else np.asarray(weights, dtype=np.float64)
    costs = np.full(len(table), np.nan)
    memory: list[tuple[float | None, str]] = []
    notes: list[str] = []
    order = np.argsort(codes, kind="stable")  # each function's rows, one slice of it
    ends = np.cumsum(np.bincount(codes, minlength=n_fn))
    for g in range(n_fn):
        rows = order[(ends[g - 1] if g else 0):ends[g]]
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
    sums = np.bincount(cell, weights=np.where(known, costs * w, 0.0), minlength=n_fn * buckets).reshape(n_fn, buckets)
    sampled = np.asarray(np.bincount(cell, weights=w, minlength=n_fn * buckets), dtype=np.float64).reshape(n_fn, buckets)
    finite = np.bincount(codes, weights=known * w, minlength=n_fn)
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
        k = round(float(finite[g]))
        mean = float(fn_sum[g] / finite[g]) if k else math.nan
        mb, source = memory[g]
        priced = round(float(fn_sampled[g]))
        out.append(CostRow(str(names[g]), round(float(exact[g].sum())), priced, priced - k, mb,
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
    return Breakdown(sheet.name, sheet.meter, tuple(out), grand, invocations, round(float(w.sum())), series,
                     tuple(notes))  # fmt: skip
