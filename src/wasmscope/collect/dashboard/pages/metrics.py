"""Metrics: every OTLP metric in the store, and one charted over time (gauges and
sums by value, histograms and summaries by count and mean), one line per
attribute set."""

from __future__ import annotations

from typing import Any

from wasmscope.collect.dashboard import queries
from wasmscope.collect.dashboard.http import Request, Response, json_response
from wasmscope.collect.dashboard.pages._common import render

__all__ = ["api", "page"]


async def _chart(req: Request, names: list[dict[str, Any]]) -> tuple[dict[str, Any] | None, dict[str, Any] | None]:
    name, kind = req.arg("name"), req.arg("kind")
    chosen = next((m for m in names if m["name"] == name and (not kind or m["kind"] == kind)), None)
    if chosen is None:
        return None, None
    series = await req.ctx.run(queries.metric_series, req.ctx.db, req.filters, chosen["name"], chosen["kind"])
    return chosen, series


async def page(req: Request) -> Response:
    names = await req.ctx.run(queries.metric_names, req.ctx.db, req.filters)
    chosen, series = await _chart(req, names)
    return await render(req, "metrics.html", title="Metrics", section="/explore", names=names, chosen=chosen,
                        series=series, facet_values={"services": [], "functions": []})  # fmt: skip


async def api(req: Request) -> Response:
    names = await req.ctx.run(queries.metric_names, req.ctx.db, req.filters)
    chosen, series = await _chart(req, names)
    return json_response({"metrics": names, "metric": chosen, "series": series})
