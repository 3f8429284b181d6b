"""Store: size on disk, rows per table, retention and the disk cap."""

from __future__ import annotations

from typing import Any

from wasmscope.collect.dashboard import queries
from wasmscope.collect.dashboard.http import Request, Response, json_response
from wasmscope.collect.dashboard.pages._common import render

__all__ = ["api", "page"]


def _retention_text(seconds: int | None) -> str | None:
    if not seconds:
        return None
    for unit, size in (("d", 86400), ("h", 3600), ("min", 60)):
        if seconds % size == 0:
            return f"{seconds // size} {unit}"
    return f"{seconds} s"


def _info(req: Request) -> dict[str, Any]:
    """What the store says of itself (``size()``, retention, disk cap) and, when it
    cannot, what ``system.parts`` says."""
    store = req.ctx.store
    tables: list[dict[str, Any]]
    sizer = getattr(store, "size", None)
    size = sizer() if callable(sizer) else None
    if size is not None and hasattr(size, "rows"):
        tables = [{"table": t, "rows": int(size.rows.get(t, 0)), "bytes": int(size.table_bytes.get(t, 0))}
                  for t in sorted(size.rows)]  # fmt: skip
    else:
        tables = queries.table_rows(req.ctx.db)
    retention = getattr(store, "retention_seconds", None)
    backend = store.backend
    return {
        "database": store.database,
        "backend": getattr(backend, "kind", "?"),
        "path": str(getattr(backend, "path", "") or ""),
        "tables": tables,
        "bytes": sum(int(t["bytes"]) for t in tables),
        "rows": sum(int(t["rows"]) for t in tables),
        "retention_s": retention,
        "retention": _retention_text(retention),
        "max_disk": getattr(store, "max_disk", None),
    }


async def page(req: Request) -> Response:
    info = await req.ctx.run(_info, req)
    return await render(req, "store.html", title="Store", section="/store", info=info,
                        facet_values={"services": [], "functions": []})  # fmt: skip


async def api(req: Request) -> Response:
    return json_response(await req.ctx.run(_info, req))
