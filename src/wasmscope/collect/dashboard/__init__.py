"""The dashboard of ``wasmscope collect``: server-rendered pages over the store.

::

    from wasmscope.collect.dashboard import Dashboard
    app = Dashboard(store, token=None)      # an ASGI application

Pages are registered in :mod:`wasmscope.collect.dashboard.pages` (one module a
page), their SQL is in :mod:`wasmscope.collect.dashboard.queries`, templates
(Jinja2, autoescaped) in ``templates/`` and the vendored scripts in ``static/``.
Every page shares the time range and the service/function filters
(:class:`~wasmscope.collect.dashboard.filters.Filters`), kept in the query string.
"""

from __future__ import annotations

from wasmscope.collect.dashboard.app import CSP, Dashboard
from wasmscope.collect.dashboard.pages import PAGES, Page

__all__ = ["CSP", "PAGES", "Dashboard", "Page"]
