"""Request and response records of the dashboard's small ASGI layer."""

from __future__ import annotations

import json
import math
import urllib.parse
from collections.abc import AsyncIterator, Callable
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

from wasmscope._asgi import Scope

if TYPE_CHECKING:
    from wasmscope.collect.dashboard.context import Context
    from wasmscope.collect.dashboard.filters import Filters

__all__ = ["HTML", "JSON_TYPE", "Request", "Response", "Stream", "html", "json_response", "redirect"]

HTML = "text/html; charset=utf-8"
JSON_TYPE = "application/json"


@dataclass(slots=True)
class Request:
    """One request as a page handler sees it."""

    scope: Scope
    method: str
    path: str
    query: dict[str, list[str]]
    headers: dict[str, str]
    ctx: Context
    filters: Filters
    body: bytes = b""
    #: True for an htmx request (``HX-Request``): a page may answer with less.
    htmx: bool = False
    #: Set by the router for paths with a tail (``/modules/{sha}``).
    tail: str = ""
    disconnected: Callable[[], bool] = lambda: False

    def arg(self, name: str, default: str = "") -> str:
        values = self.query.get(name)
        return values[0] if values else default

    def args(self, name: str) -> list[str]:
        return list(self.query.get(name, ()))

    def int_arg(self, name: str, default: int, lo: int, hi: int) -> int:
        try:
            value = int(self.arg(name, str(default)))
        except ValueError:
            return default
        return min(max(value, lo), hi)

    def float_arg(self, name: str) -> float | None:
        text = self.arg(name).strip()
        try:
            value = float(text) if text else None
        except ValueError:
            return None
        return value if value is None or math.isfinite(value) else None

    def form(self) -> dict[str, str]:
        """An ``application/x-www-form-urlencoded`` body's fields (first values)."""
        fields = urllib.parse.parse_qs(self.body.decode("utf-8", "replace"), keep_blank_values=True)
        return {k: v[0] for k, v in fields.items()}

    @property
    def url(self) -> str:
        """The path and query string as the browser sent them."""
        qs = self.scope.get("query_string", b"").decode("latin-1")
        return self.path + ("?" + qs if qs else "")


@dataclass(slots=True)
class Response:
    """A whole response."""

    body: bytes = b""
    status: int = 200
    content_type: str = HTML
    headers: list[tuple[str, str]] = field(default_factory=list)


@dataclass(slots=True)
class Stream:
    """A streamed response (server-sent events): chunks from ``chunks``."""

    chunks: AsyncIterator[bytes]
    content_type: str = "text/event-stream; charset=utf-8"
    headers: list[tuple[str, str]] = field(default_factory=list)


def html(text: str, status: int = 200) -> Response:
    return Response(text.encode(), status)


def _default(value: Any) -> Any:
    if hasattr(value, "isoformat"):
        return value.isoformat()
    if isinstance(value, bytes | bytearray):
        return value.hex()
    raise TypeError(f"not JSON serializable: {type(value).__name__}")


def _finite(value: Any) -> Any:
    """NaN and infinities (quantiles of nothing) as null: JSON has no such numbers."""
    if isinstance(value, float):
        return value if math.isfinite(value) else None
    if isinstance(value, dict):
        return {k: _finite(v) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return [_finite(v) for v in value]
    return value


def json_response(doc: Any, status: int = 200) -> Response:
    body = json.dumps(_finite(doc), separators=(",", ":"), default=_default, allow_nan=False)
    return Response(body.encode(), status, JSON_TYPE)


def redirect(location: str, status: int = 303, headers: list[tuple[str, str]] | None = None) -> Response:
    return Response(b"", status, "text/plain; charset=utf-8", [("location", location), *(headers or [])])
