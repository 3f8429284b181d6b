"""Cost: what the invocations of the range cost under a price sheet, per function and
over time, and each function's right-sizing recommendation with its evidence.

The store counts the invocations per function and bucket and hands over the columns
the sheet meters (one row per invocation); :mod:`wasmscope.cost.breakdown` prices them
as ``wasmscope cost summary`` does, and :mod:`wasmscope.cost.recommend` sizes each
function. Past ``ctx.cost_rows`` invocations, the store groups them by what the sheet
bills (function, bucket, the wall time rounded as the sheet rounds it, CPU time, peak
memory, memory limit) and each shape is priced once, weighted by its count: exact,
when there are at most ``ctx.cost_shapes`` shapes. Else a function's rows are sampled
(one in k, the same rows each time) and its sums scaled to the exact counts. The
recommendations read the rows (sampled past the budget, with each function's extremes).
The page says which.
numpy (the ``cost`` extra) is imported here only when the page is opened.
"""

from __future__ import annotations

import dataclasses
import math
from typing import TYPE_CHECKING, Any

from wasmscope.collect.dashboard import charts, queries
from wasmscope.collect.dashboard.filters import NS
from wasmscope.collect.dashboard.http import Request, Response, json_response
from wasmscope.collect.dashboard.pages._common import render
from wasmscope.collect.dashboard.pages.security import OTHER, PALETTE
from wasmscope.errors import UsageError

if TYPE_CHECKING:
    from wasmscope.cost.prices import PriceSheet
    from wasmscope.cost.records import UsageTable

__all__ = ["HEADROOM", "api", "chart_spec", "page", "sampling", "usd_series"]

TOP_SERIES = 8  # functions charted (the rest is "(other)")
TOP_ROWS = 50  # functions in the table
TOP_RECOMMEND = 20  # functions with a recommendation
REC_ROWS = 5_000  # rows of one function a recommendation is computed from (with its extremes)
HEADROOM = 0.2
FAILED_KEPT = ("out_of_memory", "out_of_fuel", "timeout")


def sampling(counts: dict[str, int], budget: int) -> dict[str, int]:
    """Per function, keep one invocation in k (only those with k > 1): nothing is
    sampled when the range holds at most ``budget``; else each function keeps about
    ``budget / functions`` (the small ones all of theirs)."""
    n = sum(counts.values())
    if n <= budget or not counts:
        return {}
    cap = max(budget // len(counts), 1)
    return {fn: math.ceil(c / cap) for fn, c in counts.items() if c > cap}


def _sheets(price: str) -> tuple[dict[str, str], str]:
    """The sheets one can pick (name -> what to load) and the default's name: the
    shipped ones and the one ``collect --price`` names (a file, by its sheet's name)."""
    from wasmscope.cost.prices import SHEETS, load_price_sheet

    choices = {name: name for name in SHEETS}
    if price in SHEETS:
        return choices, price
    own = load_price_sheet(price)
    choices[own.name] = price
    return choices, own.name


def _choose(req: Request) -> tuple[PriceSheet, list[str], list[str], float | None]:
    """The sheet, the names one can pick, notes, and the memory size the URL gives."""
    from wasmscope.cost.prices import load_price_sheet

    notes: list[str] = []
    try:
        choices, default = _sheets(req.ctx.price)
    except UsageError as exc:  # the configured file went bad since collect started
        notes.append(f"the configured price sheet cannot be read ({exc}); using aws-lambda-x86")
        choices, default = _sheets("aws-lambda-x86")
    wanted = req.arg("price").strip()
    if wanted and wanted not in choices:
        notes.append(f"unknown price sheet {wanted[:100]!r}: using {default}")
        wanted = ""
    sheet = load_price_sheet(choices[wanted or default])
    memory_mb = None
    text = req.arg("memory_mb").strip()
    if text:
        value = req.float_arg("memory_mb")
        if value is None or value <= 0 or value > 1 << 30:
            notes.append(f"memory_mb={text[:40]!r} is not a size in MB: ignored")
        elif sheet.meter == "memory-time" and sheet.memory_step_for(value) != value:
            notes.append(f"{sheet.name} cannot configure {value:g} MB: memory_mb ignored")
        else:
            memory_mb = value
            if sheet.meter != "memory-time":
                notes.append(f"{sheet.name} does not bill configured memory: memory_mb={value:g} is only the "
                             "size the recommendations compare with")  # fmt: skip
    return sheet, list(choices), notes, memory_mb


def _price(arrow: Any, extremes: Any, shapes: Any, sheet: PriceSheet, start_s: int, step: int, buckets: int,
           counts: dict[tuple[str, int], int] | None, memory_mb: float | None) -> dict[str, Any]:  # fmt: skip
    """The pricing (of the billed shapes when there are, else of the rows, scaled to
    ``counts`` when they are a sample) and the recommendations (numpy: on a worker thread)."""
    from wasmscope.cost.breakdown import breakdown, from_shapes
    from wasmscope.cost.records import UsageTable, table_from_arrow

    table = table_from_arrow(arrow)
    if shapes is not None:
        grouped, weights = from_shapes(shapes)
        b = breakdown(grouped, sheet, start_s=start_s, step_s=step, buckets=buckets, memory_mb=memory_mb,
                      weights=weights)  # fmt: skip
    else:
        b = breakdown(table, sheet, start_s=start_s, step_s=step, buckets=buckets, memory_mb=memory_mb, counts=counts)
    recs: list[dict[str, Any]] = []
    notes: list[str] = []
    try:
        from wasmscope.cost.recommend import recommend_function
    except ImportError:
        notes.append("recommendations need wasmscope.cost.recommend, which this install lacks")
    else:
        extra = table_from_arrow(extremes) if extremes is not None else None
        every = UsageTable.concat([table, extra]) if extra is not None and len(extra) else table
        for row in b.rows[:TOP_RECOMMEND]:
            rows = _bounded(every.only(row.function))
            if not len(rows):
                continue
            configured: int | None = None
            if memory_mb is not None:  # compare with the size asked for, not the records' limit
                rows = dataclasses.replace(rows, memory_limit=rows.memory_limit * math.nan)
                configured = int(memory_mb)
            elif row.memory_mb is not None and row.memory_source == "default":
                configured = int(row.memory_mb)
            try:
                rec = recommend_function(row.function, rows, sheet, headroom=HEADROOM, configured_mb=configured)
            except UsageError as exc:
                notes.append(f"{row.function}: no recommendation ({exc})")
                continue
            doc = rec.to_json()
            doc["curve"] = [dataclasses.asdict(c) for c in rec.curve]
            recs.append(doc)
    return {"breakdown": b, "recommendations": recs, "notes": notes, "shapes": None if shapes is None else shapes.num_rows,
            "rows": len(table)}  # fmt: skip


def _bounded(table: UsageTable) -> UsageTable:
    """At most about :data:`REC_ROWS` rows: an even stride, plus the rows with the
    largest peak memory, fuel and duration and the failures a finding reads."""
    from wasmscope.cost._numpy import np

    n = len(table)
    if n <= REC_ROWS:
        return table
    keep = np.zeros(n, dtype=bool)
    keep[:: math.ceil(n / REC_ROWS)] = True
    for column in (table.peak_memory, table.fuel, table.wall_s):
        if np.isfinite(column).any():
            keep[int(np.nanargmax(column))] = True
    for outcome in FAILED_KEPT:
        keep[np.flatnonzero(table.outcome == outcome)[:100]] = True
    return table.where(keep)


def usd_series(x: list[int], rows: list[Any], series: dict[str, list[float]]) -> list[dict[str, Any]]:
    """USD per bucket, one series per function (the most expensive :data:`TOP_SERIES`),
    the rest summed as "(other)"."""
    top = [r.function for r in rows[:TOP_SERIES]]
    lines = [{"label": fn or "(unnamed)", "values": series.get(fn, [0.0] * len(x)),
              "color": PALETTE[i % len(PALETTE)]} for i, fn in enumerate(top)]  # fmt: skip
    rest = [r.function for r in rows[TOP_SERIES:]]
    if rest:
        other = [sum(series.get(fn, [0.0] * len(x))[i] for fn in rest) for i in range(len(x))]
        lines.append({"label": "(other)", "values": other, "color": OTHER})
    return lines


def chart_spec(x: list[int], lines: list[dict[str, Any]]) -> dict[str, Any]:
    """Stacked bars of :func:`usd_series`, in micro-dollars while a bucket costs under
    a cent (the axis then reads 0.2, not 2e-7)."""
    peak = max((sum(v) for v in zip(*(s["values"] for s in lines), strict=True)), default=0.0) if lines else 0.0
    scale, unit = (1e6, "µ$") if peak < 0.01 else (1.0, "$")
    scaled = [{**s, "values": [round(v * scale, 9) for v in s["values"]]} for s in lines]
    return {"x": x, "unit": unit, "kind": "bars", "stacked": True, "series": scaled}


async def _data(req: Request) -> dict[str, Any]:
    db, f, run = req.ctx.db, req.filters, req.ctx.run
    try:
        sheet, names, notes, memory_mb = await run(_choose, req)
    except UsageError as exc:  # numpy is missing
        return {"unavailable": str(exc)}
    step = f.step
    t0 = (f.start_ns // NS) // step * step
    x = list(range(t0, f.end_ns // NS + 1, step))
    counted = await run(queries.cost_counts, db, f)
    per_fn: dict[str, int] = {}
    for fn, _t, n in counted:
        per_fn[fn] = per_fn.get(fn, 0) + n
    budget = req.ctx.cost_rows
    every = sampling(per_fn, budget)
    # Past the budget, the invocations grouped by what the sheet bills price the range
    # exactly when there are few such shapes (a rounded wall time: Lambda, Cloud Run).
    shapes = (await run(queries.cost_shapes, db, f, sheet.meter, sheet.rounding_ms * 1e6, req.ctx.cost_shapes)
              if every else None)  # fmt: skip
    arrow = await run(queries.cost_columns, db, f, every)
    extremes = await run(queries.cost_extremes, db, f, sorted(every)) if every else None
    counts = {(fn, t): n for fn, t, n in counted} if every else None
    priced = await run(_price, arrow, extremes, shapes, sheet, t0, step, len(x), counts, memory_mb)
    b = priced["breakdown"]
    recs = priced["recommendations"]
    hists = await run(queries.peak_histograms, db, f, [r["function"] for r in recs])
    for rec in recs:
        limit = rec["memory_limit_configured"] or ((rec["configured_mb"] or 0) * 1024 * 1024) or None
        rec["peak_histogram"] = hists.get(rec["function"], [])
        rec["hist"] = charts.log2_bars(rec["peak_histogram"], unit="bytes", limit=limit)
    rows = list(b.rows)
    lines = usd_series(x, rows, b.series)
    return {
        "price": {"name": sheet.name, "provider": sheet.provider, "date": sheet.date, "source": sheet.source,
                  "meter": sheet.meter},
        "sheets": names,
        "memory_mb": memory_mb,
        "invocations": b.invocations,
        "priced": b.priced,
        # how: "rows" (every invocation), "shapes" (every invocation, grouped by what the
        # sheet bills) or "sample" (one in k of the functions in "sampled")
        "method": "rows" if not every else "shapes" if priced["shapes"] is not None else "sample",
        "shapes": priced["shapes"],
        "sampled": {fn: k for fn, k in sorted(every.items())},
        "recommended_from": priced["rows"],
        "total": b.total,
        "per_million": b.total / b.invocations * 1e6 if b.invocations else None,
        "functions": [dataclasses.asdict(r) for r in rows[:TOP_ROWS]],
        "more_functions": max(len(rows) - TOP_ROWS, 0),
        "series": {"step": step, "x": x, "usd": lines},
        "chart": chart_spec(x, lines),
        "recommendations": recs,
        "headroom": HEADROOM,
        "notes": [*notes, *b.notes, *priced["notes"]],
    }  # fmt: skip


async def page(req: Request) -> Response:
    data = await _data(req)
    return await render(req, "cost.html", title="Cost", section="/cost", d=data)


async def api(req: Request) -> Response:
    data = await _data(req)
    if "unavailable" in data:
        return json_response({"error": data["unavailable"]}, 501)
    for rec in data["recommendations"]:
        rec.pop("hist")
        rec["peak_histogram"] = [{"log2": k, "count": n} for k, n in rec["peak_histogram"]]
    data.pop("chart")
    return json_response(data)

