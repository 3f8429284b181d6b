"""The dashboard's pages, registered in one place (:data:`PAGES`).

A :class:`Page` is a path, a title, a place in the navigation (None: not listed,
such as a detail page or a JSON endpoint) and an async handler. A new page is one
module of this package that defines its handlers, and one line here.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from dataclasses import dataclass

from wasmscope.collect.dashboard.http import Request, Response, Stream

__all__ = ["PAGES", "Handler", "Page", "match"]

Handler = Callable[[Request], Awaitable[Response | Stream]]


@dataclass(frozen=True, slots=True)
class Page:
    """One route of the dashboard."""

    path: str
    title: str
    handler: Handler
    #: Position in the navigation bar (ascending); None keeps it out of it.
    nav: int | None = None
    #: True when ``path`` is a prefix and the rest of the URL path is an argument
    #: (``/trace/`` + trace id); the handler reads it as ``request.tail``.
    prefix: bool = False
    #: The navigation entry shown as active on this page (a detail page names its list).
    section: str = ""


def _pages() -> tuple[Page, ...]:
    from wasmscope.collect.dashboard.pages import (
        cost,
        function,
        functions,
        invocations,
        live,
        metrics,
        modules,
        profiles,
        security,
        store,
        trace,
    )

    pages = (
        Page("/", "Functions", functions.page, nav=10),
        Page("/api/functions", "Functions (JSON)", functions.api),
        Page("/function", "Function", function.page, section="/"),
        Page("/api/function", "Function (JSON)", function.api),
        Page("/invocations", "Invocations", invocations.page, nav=20),
        Page("/api/invocations", "Invocations (JSON)", invocations.api),
        Page("/trace/", "Trace", trace.page, prefix=True, section="/invocations"),
        Page("/api/trace/", "Trace (JSON)", trace.api, prefix=True),
        Page("/live", "Live tail", live.page, nav=30),
        Page("/live/stream", "Live tail (events)", live.stream),
        Page("/security", "Security", security.page, nav=35),
        Page("/api/security", "Security (JSON)", security.api),
        Page("/cost", "Cost", cost.page, nav=37),
        Page("/api/cost", "Cost (JSON)", cost.api),
        Page("/modules", "Modules", modules.page, nav=40),
        Page("/modules/", "Module", modules.detail, prefix=True, section="/modules"),
        Page("/api/modules", "Modules (JSON)", modules.api),
        Page("/profiles", "Profiles", profiles.page, nav=50),
        Page("/profiles/view", "Profile", profiles.detail, section="/profiles"),
        Page("/api/profile", "Profile (JSON)", profiles.api),
        Page("/explore", "Metrics", metrics.page, nav=60),
        Page("/api/metric", "Metric (JSON)", metrics.api),
        Page("/store", "Store", store.page, nav=90),
        Page("/api/store", "Store (JSON)", store.api),
    )
    return tuple(sorted(pages, key=lambda p: (p.nav is None, p.nav or 0)))


PAGES: tuple[Page, ...] = _pages()


def match(pages: tuple[Page, ...], path: str) -> tuple[Page, str] | None:
    """The page for ``path`` and the path's tail (exact paths first, then the
    longest prefix)."""
    for page in pages:
        if not page.prefix and page.path == path:
            return page, ""
    best: Page | None = None
    for page in pages:
        if page.prefix and path.startswith(page.path) and (best is None or len(page.path) > len(best.path)):
            best = page
    if best is None:
        return None
    return best, path[len(best.path):]
