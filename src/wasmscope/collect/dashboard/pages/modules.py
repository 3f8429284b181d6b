"""Modules: every module seen in invocations or pushed reports, and for one its
imports, exports and capabilities from its latest ``inspect`` report."""

from __future__ import annotations

from typing import Any

from wasmscope.collect.dashboard import queries
from wasmscope.collect.dashboard.http import Request, Response, json_response
from wasmscope.collect.dashboard.pages._common import SHA256, not_found, render

__all__ = ["api", "detail", "page"]


async def page(req: Request) -> Response:
    rows = await req.ctx.run(queries.modules, req.ctx.db, req.filters)
    return await render(req, "modules.html", title="Modules", section="/modules", rows=rows)


async def api(req: Request) -> Response:
    return json_response({"modules": await req.ctx.run(queries.modules, req.ctx.db, req.filters)})


def _list(doc: dict[str, Any] | None, key: str) -> list[dict[str, Any]]:
    value = (doc or {}).get(key)
    return [v for v in value if isinstance(v, dict)] if isinstance(value, list) else []


async def detail(req: Request) -> Response:
    sha = req.tail.strip().lower()
    mod = await req.ctx.run(queries.module, req.ctx.db, sha) if SHA256.match(sha) else None
    if mod is None:
        return await not_found(req, f"No module with sha256 {sha[:80]!r} in the store.")
    if req.arg("format") == "json":
        return json_response(mod)
    report = mod["report"]
    return await render(req, "module.html", title=mod["name"] or sha[:12], section="/modules", mod=mod,
                        imports=_list(report, "imports"), exports=_list(report, "exports"),
                        capabilities=_list(report, "capabilities"),
                        header=(report or {}).get("header") if isinstance((report or {}).get("header"), dict) else {},
                        facet_values={"services": [], "functions": []})  # fmt: skip
