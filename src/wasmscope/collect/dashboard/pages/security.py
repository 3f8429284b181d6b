"""Security: the guard's security events (log records named ``wasm.policy.denied``,
``wasm.anomaly.detected``...): over time by rule and by module, and the newest, each
linked to its invocation and its trace; filtered by module, rule and event name."""

from __future__ import annotations

import asyncio
import re
from typing import Any

from wasmscope.collect.dashboard import queries
from wasmscope.collect.dashboard.http import Request, Response, json_response
from wasmscope.collect.dashboard.pages._common import render

__all__ = ["PAGE_SIZE", "api", "page", "parse_search"]

PAGE_SIZE = 100
#: Series colours of the charts, in order (the last series, "(other)", is grey).
PALETTE = ("#d9480f", "#4c6ef5", "#f59f00", "#2f9e6e", "#ae3ec9", "#1098ad", "#e64980", "#74b816")
OTHER = "#868e96"
_CURSOR = re.compile(r"^(\d{1,20}):([0-9a-fA-F]{0,32})$")


def parse_search(req: Request) -> tuple[queries.SecuritySearch, list[str]]:
    """The search of a request, and notes on the parts that were ignored."""
    notes: list[str] = []
    name = req.arg("event").strip()
    if name and name not in queries.SECURITY_EVENT_NAMES:
        notes.append(f"unknown event name {name!r}")
        name = ""
    before = None
    match = _CURSOR.match(req.arg("before"))
    if match:
        before = (int(match.group(1)), match.group(2).lower())
    search = queries.SecuritySearch(module=req.arg("module").strip()[:300], rule=req.arg("rule").strip()[:300],
                                    name=name, before=before)  # fmt: skip
    return search, notes


def chart_spec(series: dict[str, Any]) -> dict[str, Any]:
    """A stacked bar chart (events per second) of :func:`queries.security_series`."""
    step = series["step"]
    lines = []
    for i, (label, counts) in enumerate(series["series"].items()):
        color = OTHER if label == "(other)" else PALETTE[i % len(PALETTE)]
        lines.append(
            {"label": label, "values": [round(c / step, 6) for c in counts], "color": color}
        )
    return {"x": series["x"], "unit": "/s", "kind": "bars", "stacked": True, "series": lines}


async def _data(req: Request) -> dict[str, Any]:
    search, notes = parse_search(req)
    limit = req.int_arg("limit", PAGE_SIZE, 1, 1000)
    db, f = req.ctx.db, req.filters
    rows, summary, by_rule, by_module = await asyncio.gather(
        req.ctx.run(queries.security_events, db, f, search, limit + 1),
        req.ctx.run(queries.security_summary, db, f, search),
        req.ctx.run(queries.security_series, db, f, search, "rule"),
        req.ctx.run(queries.security_series, db, f, search, "module"),
    )
    more = len(rows) > limit
    rows = rows[:limit]
    cursor = f"{rows[-1]['ts_ns']}:{rows[-1]['trace_id']}" if more and rows else None
    return {"rows": rows, "summary": summary, "by_rule": by_rule, "by_module": by_module, "next": cursor,
            "search": search, "notes": notes, "limit": limit}  # fmt: skip


async def page(req: Request) -> Response:
    data = await _data(req)
    search: queries.SecuritySearch = data["search"]
    keep = {
        "module": search.module or None,
        "rule": search.rule or None,
        "event": search.name or None,
    }
    next_url = "/security" + req.filters.qs(**keep, before=data["next"]) if data["next"] else None
    first_url = "/security" + req.filters.qs(**keep) if req.arg("before") else None
    return await render(req, "security.html", title="Security", section="/security", names=queries.SECURITY_EVENT_NAMES,
                        rule_chart=chart_spec(data["by_rule"]), module_chart=chart_spec(data["by_module"]),
                        next_url=next_url, first_url=first_url, **data)  # fmt: skip


async def api(req: Request) -> Response:
    data = await _data(req)
    data.pop("search")
    return json_response(data)
