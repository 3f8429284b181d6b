"""Live tail: invocations as they arrive, by server-sent events.

The stream polls the store every ``live_poll`` seconds for invocation spans newer
than the last one sent (``Timestamp`` > last seen; the event id is that time in ns,
so that a reconnecting ``EventSource`` resumes with ``Last-Event-ID``). A stream
ends after ``live_lifetime`` seconds and the browser reconnects: no connection is
held forever by a tab left open.
"""

from __future__ import annotations

import asyncio
import json
import time
from collections.abc import AsyncIterator
from typing import Any

from wasmscope.collect.dashboard import queries
from wasmscope.collect.dashboard.fmt import duration, ts
from wasmscope.collect.dashboard.http import Request, Response, Stream
from wasmscope.collect.dashboard.pages._common import render

__all__ = ["page", "stream"]

BACKLOG = 30  # invocations shown when the page opens
BATCH = 200  # at most this many a poll (a burst is caught up over the next polls)


def _row(r: dict[str, Any]) -> dict[str, Any]:
    return {"ts_ns": r["ts_ns"], "time": ts(r["ts_ns"], precise=True), "trace_id": r["trace_id"],
            "span_id": r["span_id"], "function": r["function"], "service": r["service"],
            "outcome": r["outcome"], "duration": duration(r["duration"]), "duration_ns": r["duration"],
            "cold": bool(r["cold"]), "trap_code": r["trap_code"], "message": r["message"][:200]}  # fmt: skip


async def page(req: Request) -> Response:
    rows = await req.ctx.run(queries.search_invocations, req.ctx.db, req.filters, queries.InvocationSearch(), BACKLOG)
    since = max((r["ts_ns"] for r in rows), default=int(req.ctx.clock() * 1e9) - 60 * 10**9)
    return await render(req, "live.html", title="Live tail", section="/live",
                        rows=[_row(r) for r in rows], since=since)  # fmt: skip


def _since(req: Request) -> int:
    for text in (req.headers.get("last-event-id", ""), req.arg("since")):
        if text.strip().isdigit():
            return int(text.strip())
    return int(req.ctx.clock() * 1e9)


async def stream(req: Request) -> Stream:
    after = _since(req)
    ctx = req.ctx

    async def chunks() -> AsyncIterator[bytes]:
        nonlocal after
        yield f"retry: 1000\nid: {after}\n\n".encode()
        deadline = time.monotonic() + ctx.live_lifetime
        while not req.disconnected():
            rows = await ctx.run(queries.invocations_after, ctx.db, req.filters, after, BATCH)
            if rows:
                after = max(after, max(int(r["ts_ns"]) for r in rows))
                data = json.dumps([_row(r) for r in rows], separators=(",", ":"))
                yield f"id: {after}\nevent: invocations\ndata: {data}\n\n".encode()
            else:
                yield b": idle\n\n"
            if time.monotonic() >= deadline:
                return
            await asyncio.sleep(ctx.live_poll)

    return Stream(chunks(), headers=[("cache-control", "no-store"), ("x-accel-buffering", "no")])
