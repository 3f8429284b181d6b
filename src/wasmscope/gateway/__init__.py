"""``wasmscope serve``: an HTTP host for WAGI handlers (Wasm modules and command
components), one fresh instance per request, with limits.

Modules, one concept each: :mod:`.manifest` (the TOML manifest, or a folder of
handlers, with its routes and ``[[key]]`` tables), :mod:`.wagi` (the CGI/WAGI
environment and the response parser), :mod:`.app` (the ASGI application: routes,
limits, health, access log), :mod:`.versions` (what the app serves and the swap to
the next version), :mod:`.workers` (a route's threads), :mod:`.auth` (API keys, route
scopes and per-key rates: an ASGI middleware around the app), :mod:`.keys` (making and
checking key hashes), :mod:`.rates` (per-key rates), :mod:`.reload` (hot reload: a
changed module or manifest served without dropping a request), :mod:`.metrics` and
:mod:`.tracing` (Prometheus metrics and the HTTP server span: middlewares). The ASGI
server (uvicorn) is imported only by ``wasmscope.cli.serve``.

    from wasmscope.gateway import Gateway, load
    app = Gateway(load("app.toml"))     # an ASGI callable
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from wasmscope._lazy import lazy_exports

if TYPE_CHECKING:
    from wasmscope.gateway.app import Gateway
    from wasmscope.gateway.manifest import (
        Manifest,
        Route,
        RouteSettings,
        load,
        load_manifest,
        manifest_from_dir,
    )

__all__ = ["Gateway", "Manifest", "Route", "RouteSettings", "load", "load_manifest", "manifest_from_dir"]

_LAZY = {
    "Gateway": "wasmscope.gateway.app",
    "Manifest": "wasmscope.gateway.manifest",
    "Route": "wasmscope.gateway.manifest",
    "RouteSettings": "wasmscope.gateway.manifest",
    "load": "wasmscope.gateway.manifest",
    "load_manifest": "wasmscope.gateway.manifest",
    "manifest_from_dir": "wasmscope.gateway.manifest",
}

__getattr__, __dir__ = lazy_exports(__name__, _LAZY, __all__)
