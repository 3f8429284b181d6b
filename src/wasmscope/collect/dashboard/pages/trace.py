"""Trace: the span waterfall, each span's attributes and events (the exception
with the guest's stack), and the invocation's log lines interleaved in time."""

from __future__ import annotations

from typing import Any

from wasmscope.collect.dashboard import queries
from wasmscope.collect.dashboard.http import Request, Response, json_response
from wasmscope.collect.dashboard.pages._common import HEX_ID, not_found, render

__all__ = ["api", "page", "waterfall"]


def waterfall(doc: dict[str, Any]) -> list[dict[str, Any]]:
    """Spans in tree order (children after their parent, by start), each with its
    depth and its bar's offset and width in percent of the trace."""
    spans = doc["spans"]
    ids = {s["span_id"] for s in spans}
    children: dict[str, list[dict[str, Any]]] = {}
    roots = []
    for s in spans:
        if s["parent_id"] and s["parent_id"] in ids:
            children.setdefault(s["parent_id"], []).append(s)
        else:
            roots.append(s)
    t0, total = doc["start_ns"], max(doc["end_ns"] - doc["start_ns"], 1)
    out: list[dict[str, Any]] = []

    def walk(span: dict[str, Any], depth: int) -> None:
        if len(out) > 5000:
            return
        left = (span["ts_ns"] - t0) / total * 100
        width = max(span["duration"] / total * 100, 0.2)
        out.append({**span, "depth": depth, "left": round(left, 3), "width": round(min(width, 100 - left), 3),
                    "offset_ns": span["ts_ns"] - t0,
                    "invocation": bool(span["attributes"].get("faas.invocation_id"))})  # fmt: skip
        for child in sorted(
            children.get(span["span_id"], ()), key=lambda c: (c["ts_ns"], c["span_id"])
        ):
            walk(child, depth + 1)

    for root in sorted(roots, key=lambda r: (r["ts_ns"], r["span_id"])):
        walk(root, 0)
    return out


def timeline(doc: dict[str, Any]) -> list[dict[str, Any]]:
    """Span starts, events and log lines of the trace in one time order."""
    items: list[dict[str, Any]] = []
    names = {s["span_id"]: s["name"] for s in doc["spans"]}
    for s in doc["spans"]:
        for e in s["events"]:
            items.append({"ts_ns": e["ts_ns"], "kind": "event", "span": s["name"], "text": e["name"],
                          "detail": e["attributes"].get("exception.message", "")})  # fmt: skip
    for line in doc["logs"]:
        event = line["attributes"].get("event.name", "")
        if event in queries.SECURITY_EVENT_NAMES:  # a guard finding: its name, then its message
            items.append({"ts_ns": line["ts_ns"], "kind": "security", "span": names.get(line["span_id"], ""),
                          "text": event, "detail": line["body"]})  # fmt: skip
            continue
        stream = line["attributes"].get("log.iostream", "") or line["severity"].lower()
        items.append({"ts_ns": line["ts_ns"], "kind": stream or "log", "span": names.get(line["span_id"], ""),
                      "text": line["body"], "detail": ""})  # fmt: skip
    items.sort(key=lambda i: i["ts_ns"])
    return items


def _frames(stacktrace: str) -> list[str]:
    return [line for line in stacktrace.splitlines() if line.strip()]


async def _load(req: Request) -> dict[str, Any] | None:
    trace_id = req.tail.strip().lower()
    if not HEX_ID.match(trace_id):
        return None
    return await req.ctx.run(queries.trace, req.ctx.db, trace_id)


async def page(req: Request) -> Response:
    doc = await _load(req)
    if doc is None:
        return await not_found(req, f"No trace {req.tail[:64]!r} in the store.")
    spans = waterfall(doc)
    exceptions = [
        {"span": s, "event": e, "frames": _frames(e["attributes"].get("exception.stacktrace", ""))}
        for s in spans for e in s["events"] if e["name"] == "exception"
    ]  # fmt: skip
    selected = req.arg("span")
    invocation = next((s for s in spans if s["invocation"]), spans[0])
    current = next((s for s in spans if s["span_id"] == selected), invocation)
    return await render(req, "trace.html", title=f"Trace {doc['trace_id'][:12]}", section="/invocations",
                        doc=doc, spans=spans, exceptions=exceptions, timeline=timeline(doc),
                        current=current, invocation=invocation,
                        facet_values={"services": [], "functions": []})  # fmt: skip


async def api(req: Request) -> Response:
    doc = await _load(req)
    if doc is None:
        return json_response({"error": "no such trace"}, 404)
    return json_response(doc)
