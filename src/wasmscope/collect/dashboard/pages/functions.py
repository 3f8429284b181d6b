"""Functions (home): per function and module, rate, errors, latency quantiles,
cold starts and the outcome split, and the same over time."""

from __future__ import annotations

import asyncio

from wasmscope.collect.dashboard import queries
from wasmscope.collect.dashboard.http import Request, Response, json_response
from wasmscope.collect.dashboard.pages._common import render

__all__ = ["api", "page"]


async def _data(req: Request) -> tuple[list[dict[str, object]], dict[str, object]]:
    db, f = req.ctx.db, req.filters
    rows, series = await asyncio.gather(
        req.ctx.run(queries.functions_table, db, f), req.ctx.run(queries.functions_series, db, f)
    )
    return rows, series


def _totals(rows: list[dict[str, object]]) -> dict[str, int]:
    out = {"n": 0, "errors": 0, "cold": 0}
    for row in rows:
        for key in out:
            out[key] += int(row[key])  # type: ignore[call-overload]
    return out


async def page(req: Request) -> Response:
    rows, series = await _data(req)
    facet_values = {
        "services": sorted({str(r["service"]) for r in rows}),
        "functions": sorted({str(r["function"]) for r in rows}),
    }
    return await render(req, "functions.html", title="Functions", section="/", rows=rows, series=series,
                        totals=_totals(rows), outcomes=queries.OUTCOMES, facet_values=facet_values)  # fmt: skip


async def api(req: Request) -> Response:
    rows, series = await _data(req)
    return json_response({"range": {"start_ns": req.filters.start_ns, "end_ns": req.filters.end_ns},
                          "functions": rows, "series": series, "totals": _totals(rows)})  # fmt: skip
