"""Profiles: the pushed ``wasmscope.profile/1`` reports, and for one a flame graph
of its sampled stacks with the self/total samples and exact call counts."""

from __future__ import annotations

import re
from typing import Any

from wasmscope.collect.dashboard import queries
from wasmscope.collect.dashboard.http import Request, Response, json_response
from wasmscope.collect.dashboard.pages._common import SHA256, not_found, render

__all__ = ["api", "detail", "page"]

MAX_STACKS = 20_000  # a flame graph past this many distinct stacks is not read by anyone


async def page(req: Request) -> Response:
    rows = await req.ctx.run(queries.profiles, req.ctx.db, req.filters)
    return await render(req, "profiles.html", title="Profiles", section="/profiles", rows=rows)


def clean(body: dict[str, Any] | None) -> dict[str, Any]:
    """The parts of a profile body the page uses, type-checked (it is client data)."""
    body = body or {}
    functions: list[dict[str, Any]] = []
    for fn in body.get("functions") or []:
        if isinstance(fn, dict):
            functions.append({"name": str(fn.get("name", "?")), "calls": _int(fn.get("calls")),
                              "self": _int(fn.get("self")), "total": _int(fn.get("total"))})  # fmt: skip
    stacks = []
    for st in (body.get("stacks") or [])[:MAX_STACKS]:
        if isinstance(st, dict) and isinstance(st.get("frames"), list):
            stacks.append({"frames": [str(x) for x in st["frames"][:256]], "value": _int(st.get("value"))})
    functions.sort(key=lambda r: (-r["self"], -r["total"], r["name"]))
    module = body.get("module") if isinstance(body.get("module"), dict) else {}
    return {"format": str(body.get("format", "")), "samples": _int(body.get("samples")),
            "interval_s": _float(body.get("interval_s")), "unit": str(body.get("unit", "samples")),
            "module": module, "functions": functions, "stacks": stacks}  # fmt: skip


def _int(value: Any) -> int:
    return int(value) if isinstance(value, int | float) and not isinstance(value, bool) else 0


def _float(value: Any) -> float:
    return float(value) if isinstance(value, int | float) and not isinstance(value, bool) else 0.0


_TS = re.compile(r"^\d{1,20}$")


async def _load(req: Request) -> dict[str, Any] | None:
    t, sha = req.arg("t"), req.arg("sha").lower()
    if not _TS.match(t) or not SHA256.match(sha):
        return None
    return await req.ctx.run(queries.profile, req.ctx.db, int(t), sha)


async def detail(req: Request) -> Response:
    row = await _load(req)
    if row is None:
        return await not_found(req, "No such profile in the store.")
    prof = clean(row["profile"])
    return await render(req, "profile.html", title="Profile", section="/profiles", row=row, prof=prof,
                        flame={"stacks": prof["stacks"], "unit": prof["unit"]},
                        facet_values={"services": [], "functions": []})  # fmt: skip


async def api(req: Request) -> Response:
    row = await _load(req)
    if row is None:
        return json_response({"error": "no such profile"}, 404)
    row["profile"] = clean(row["profile"])
    return json_response(row)
