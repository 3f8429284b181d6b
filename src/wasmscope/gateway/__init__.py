"""``wasmscope serve``: an HTTP host for WAGI handlers (Wasm modules and command
components), one fresh instance per request, with limits.

Modules, one concept each: :mod:`.manifest` (the TOML manifest, or a folder of
handlers), :mod:`.wagi` (the CGI/WAGI environment and the response parser),
:mod:`.app` (the ASGI application: routes, limits, health, access log), :mod:`.auth`
(API keys, route scopes and per-key rates: an ASGI middleware around the app). The ASGI
server (uvicorn) is imported only by ``wasmscope.cli.serve``.

    from wasmscope.gateway import Gateway, load
    app = Gateway(load("app.toml"))     # an ASGI callable
"""

from __future__ import annotations

import importlib
from typing import TYPE_CHECKING, Any

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


def __getattr__(name: str) -> Any:
    module = _LAZY.get(name)
    if module is None:
        raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
    value = getattr(importlib.import_module(module), name)
    globals()[name] = value
    return value


def __dir__() -> list[str]:
    return sorted({*globals(), *__all__})
