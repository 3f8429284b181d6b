"""What the page modules share: the page frame (navigation, filters) and helpers."""

from __future__ import annotations

import re
from typing import Any

from wasmscope.collect.dashboard import queries
from wasmscope.collect.dashboard.filters import RANGES
from wasmscope.collect.dashboard.http import Request, Response, html

__all__ = ["HEX_ID", "SHA256", "not_found", "render"]

HEX_ID = re.compile(r"^[0-9a-f]{32}$")
SHA256 = re.compile(r"^[0-9a-f]{64}$")


async def facets(req: Request) -> dict[str, list[str]]:
    """Services and functions of the range, for the filter pickers."""
    try:
        return await req.ctx.run(queries.facet_values, req.ctx.db, req.filters)
    except Exception:  # the pickers are a convenience: a page still renders without them
        return {"services": [], "functions": []}


async def render(req: Request, template: str, *, title: str, section: str,
                 facet_values: dict[str, list[str]] | None = None, status: int = 200,
                 **values: Any) -> Response:  # fmt: skip
    """A page in the frame of ``base.html``: navigation, the filter bar, content."""
    nav = [p for p in req.ctx.pages if p.nav is not None]
    text = req.ctx.render(
        template,
        req=req,
        f=req.filters,
        title=title,
        section=section,
        nav=nav,
        ranges=list(RANGES),
        facets=facet_values if facet_values is not None else await facets(req),
        **values,
    )
    return html(text, status)


async def not_found(req: Request, what: str) -> Response:
    return await render(req, "not_found.html", title="Not found", section="", what=what, status=404,
                        facet_values={"services": [], "functions": []})  # fmt: skip
