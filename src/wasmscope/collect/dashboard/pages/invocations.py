"""Invocations: search by function, outcome, duration, trace id, attribute
``key=value`` and text in the invocation's log lines; newest first, paginated
with a keyset cursor (``before=TIMESTAMP_NS:SPAN_ID``)."""

from __future__ import annotations

import asyncio
import re
from typing import Any

from wasmscope.collect.dashboard import queries
from wasmscope.collect.dashboard.http import Request, Response, json_response
from wasmscope.collect.dashboard.pages._common import render

__all__ = ["PAGE_SIZE", "api", "page", "parse_search"]

PAGE_SIZE = 50
COUNT_CAP = 10_000
MAX_ATTRS = 5
_CURSOR = re.compile(r"^(\d{1,20}):([0-9a-fA-F]{0,32})$")


def parse_search(req: Request) -> tuple[queries.InvocationSearch, list[str]]:
    """The search of a request, and the notes on parts of it that were ignored."""
    notes: list[str] = []
    attrs: list[tuple[str, str]] = []
    for text in req.args("attr")[: MAX_ATTRS + 1]:
        if not text.strip():
            continue
        key, sep, value = text.partition("=")
        if not sep or not key.strip():
            notes.append(f"ignored attribute filter {text!r}: write key=value")
            continue
        attrs.append((key.strip(), value))
    if len(attrs) > MAX_ATTRS:
        notes.append(f"only the first {MAX_ATTRS} attribute filters apply")
        attrs = attrs[:MAX_ATTRS]
    before = None
    match = _CURSOR.match(req.arg("before"))
    if match:
        before = (int(match.group(1)), match.group(2).lower())
    outcome = req.arg("outcome").strip()
    if outcome and outcome not in queries.OUTCOMES and outcome != "failed":
        notes.append(f"unknown outcome {outcome!r}")
        outcome = ""
    search = queries.InvocationSearch(
        outcome=outcome,
        min_ms=req.float_arg("min_ms"),
        max_ms=req.float_arg("max_ms"),
        trace_id=req.arg("trace").strip(),
        attrs=tuple(attrs),
        text=req.arg("q").strip(),
        before=before,
    )
    return search, notes


async def _data(req: Request) -> dict[str, Any]:
    search, notes = parse_search(req)
    limit = req.int_arg("limit", PAGE_SIZE, 1, 500)
    db, f = req.ctx.db, req.filters
    rows, total = await asyncio.gather(
        req.ctx.run(queries.search_invocations, db, f, search, limit + 1),
        req.ctx.run(queries.count_invocations, db, f, search, COUNT_CAP),
    )
    more = len(rows) > limit
    rows = rows[:limit]
    cursor = f"{rows[-1]['ts_ns']}:{rows[-1]['span_id']}" if more and rows else None
    return {"rows": rows, "total": total, "capped": total >= COUNT_CAP, "next": cursor, "search": search,
            "notes": notes, "limit": limit}  # fmt: skip


def _search_qs(req: Request, **extra: str | None) -> str:
    """The current search as a query string, with ``extra`` set (None removes)."""
    keep = {k: v for k, v in req.query.items() if k in ("outcome", "min_ms", "max_ms", "trace", "attr", "q", "limit")}
    pairs: list[tuple[str, str]] = list(req.filters.items())
    for key, values in keep.items():
        if key in extra:
            continue
        pairs.extend((key, v) for v in values if v != "")
    pairs.extend((k, v) for k, v in extra.items() if v)
    import urllib.parse

    return "?" + urllib.parse.urlencode(pairs) if pairs else ""


async def page(req: Request) -> Response:
    data = await _data(req)
    next_url = "/invocations" + _search_qs(req, before=data["next"]) if data["next"] else None
    first_url = "/invocations" + _search_qs(req, before=None) if req.arg("before") else None
    attr_values = [a for a in req.args("attr") if a.strip()] + [""]
    return await render(req, "invocations.html", title="Invocations", section="/invocations",
                        outcomes=queries.OUTCOMES, next_url=next_url, first_url=first_url,
                        attr_values=attr_values[: MAX_ATTRS], **data)  # fmt: skip


async def api(req: Request) -> Response:
    data = await _data(req)
    data.pop("search")
    return json_response(data)
