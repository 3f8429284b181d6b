"""Function detail: latency histogram, cold against warm, fuel and peak memory
drawn against their limits, and the top traps by code and innermost frame."""

from __future__ import annotations

import asyncio
from typing import Any

from wasmscope.collect.dashboard import charts, queries
from wasmscope.collect.dashboard.http import Request, Response, json_response
from wasmscope.collect.dashboard.pages._common import not_found, render

__all__ = ["api", "page"]


async def _data(req: Request) -> dict[str, Any]:
    db, f = req.ctx.db, req.filters
    sha = req.arg("sha").strip().lower()
    run = req.ctx.run
    summary, series, lat, fuel, mem, fuel_q, mem_q, traps = await asyncio.gather(
        run(queries.function_summary, db, f, sha),
        run(queries.functions_series, db, f, sha),
        run(queries.log2_histogram, db, f, sha, "duration"),
        run(queries.log2_histogram, db, f, sha, "fuel"),
        run(queries.log2_histogram, db, f, sha, "memory"),
        run(queries.quantiles_of, db, f, sha, "fuel"),
        run(queries.quantiles_of, db, f, sha, "memory"),
        run(queries.top_traps, db, f, sha),
    )  # fmt: skip
    return {
        "sha": sha,
        "summary": summary,
        "series": series,
        "latency": lat,
        "fuel": fuel,
        "memory": mem,
        "fuel_q": fuel_q,
        "memory_q": mem_q,
        "traps": traps,
    }


async def page(req: Request) -> Response:
    if not req.filters.function:
        return await not_found(req, "Pick a function on the Functions page (the fn= parameter is missing).")
    data = await _data(req)
    s = data["summary"]
    hists = {
        "latency": charts.log2_bars(data["latency"], unit="ns"),
        "fuel": charts.log2_bars(data["fuel"], unit="fuel", limit=s["fuel_limit"] or None),
        "memory": charts.log2_bars(data["memory"], unit="bytes", limit=s["max_memory"] or None),
    }
    return await render(req, "function.html", title=req.filters.function, section="/", outcomes=queries.OUTCOMES,
                        hists=hists, **data)  # fmt: skip


async def api(req: Request) -> Response:
    if not req.filters.function:
        return json_response({"error": "fn= is required"}, 400)
    data = await _data(req)
    data["latency"] = [{"log2": k, "count": n} for k, n in data["latency"]]
    data["fuel"] = [{"log2": k, "count": n} for k, n in data["fuel"]]
    data["memory"] = [{"log2": k, "count": n} for k, n in data["memory"]]
    return json_response(data)
