"""The dashboard's ASGI application: routing, login, static files, headers."""

from __future__ import annotations

import asyncio
import logging
import mimetypes
import time
import urllib.parse
from collections.abc import Callable
from pathlib import Path

from wasmscope._asgi import Receive, Scope, Send
from wasmscope.collect.dashboard.auth import Auth
from wasmscope.collect.dashboard.context import Context, StoreLike
from wasmscope.collect.dashboard.filters import Filters
from wasmscope.collect.dashboard.http import Request, Response, Stream, html, redirect
from wasmscope.collect.dashboard.pages import PAGES, Page, match
from wasmscope.errors import StoreError

__all__ = ["CSP", "Dashboard"]

log = logging.getLogger("wasmscope.collect.dashboard")

STATIC = Path(__file__).with_name("static")
MAX_BODY = 64 * 1024
CSP = (
    "default-src 'none'; script-src 'self'; style-src 'self'; img-src 'self' data:; "
    "connect-src 'self'; font-src 'self'; form-action 'self'; base-uri 'none'; frame-ancestors 'none'"
)
SECURITY_HEADERS = [
    ("content-security-policy", CSP),
    ("x-content-type-options", "nosniff"),
    ("referrer-policy", "same-origin"),
    ("x-frame-options", "DENY"),
]
_TYPES = {".js": "text/javascript; charset=utf-8", ".css": "text/css; charset=utf-8", ".svg": "image/svg+xml",
          ".png": "image/png", ".ico": "image/x-icon", ".txt": "text/plain; charset=utf-8"}  # fmt: skip


class Dashboard:
    """The dashboard over ``store`` as an ASGI application.

    ``token`` turns the login on; ``clock`` gives "now" for relative ranges (tests
    inject one); ``pages`` defaults to every registered page; ``price`` is the Cost
    page's default price sheet (a shipped name or a TOML path) and ``cost_rows`` the
    most invocations it prices one by one (beyond, the billed shapes, at most
    ``cost_shapes`` of them, else a sample).
    """

    def __init__(
        self,
        store: StoreLike,
        *,
        token: str | None = None,
        clock: Callable[[], float] = time.time,
        pages: tuple[Page, ...] = PAGES,
        live_poll: float = 0.5,
        live_lifetime: float = 30.0,
        price: str = "aws-lambda-x86",
        cost_rows: int = 200_000,
        cost_shapes: int = 1_000_000,
    ) -> None:
        self.auth = Auth(token)
        self.ctx = Context(store=store, clock=clock, pages=pages, live_poll=live_poll,
                           live_lifetime=live_lifetime, price=price, cost_rows=cost_rows,
                           cost_shapes=cost_shapes)  # fmt: skip
        self._static = STATIC.resolve()

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] == "lifespan":
            while True:
                message = await receive()
                if message["type"] == "lifespan.startup":
                    await send({"type": "lifespan.startup.complete"})
                elif message["type"] == "lifespan.shutdown":
                    await send({"type": "lifespan.shutdown.complete"})
                    return
        if scope["type"] != "http":
            return
        path: str = scope.get("path", "/") or "/"
        method: str = scope.get("method", "GET")
        headers = {k.decode("latin-1").lower(): v.decode("latin-1") for k, v in scope.get("headers", ())}
        if path.startswith("/static/"):
            await self._send(send, self._static_file(path[len("/static/"):], method))
            return
        if path in ("/login", "/logout"):
            body = await _read_body(receive) if method == "POST" else b""
            await self._send(send, self._login(scope, method, path, headers, body))
            return
        if not self.auth.allowed(headers):
            await self._send(send, self._unauthorized(scope, path, headers))
            return
        found = match(self.ctx.pages, path)
        if found is None:
            await self._send(send, html(_error_page(404, "No such page."), 404))
            return
        if method not in ("GET", "HEAD"):
            await self._send(send, Response(b"method not allowed\n", 405, "text/plain; charset=utf-8",
                                            [("allow", "GET, HEAD")]))  # fmt: skip
            return
        page, tail = found
        query = urllib.parse.parse_qs(scope.get("query_string", b"").decode("latin-1"), keep_blank_values=True)
        disconnected = asyncio.Event()
        request = Request(
            scope=scope, method=method, path=path, query=query, headers=headers, ctx=self.ctx,
            filters=Filters.parse(query, self.ctx.clock()), htmx=headers.get("hx-request") == "true",
            tail=urllib.parse.unquote(tail), disconnected=disconnected.is_set,
        )  # fmt: skip
        try:
            result = await page.handler(request)
        except StoreError as exc:
            log.warning("dashboard: %s: the store failed: %s", path, exc)
            result = html(_error_page(503, "The store did not answer this query.", str(exc)), 503)
        except Exception:
            log.exception("dashboard: %s failed", path)
            result = html(_error_page(500, "This page failed; the collector's log has the details."), 500)
        if isinstance(result, Stream):
            await self._stream(result, receive, send, disconnected)
        else:
            await self._send(send, result, head=method == "HEAD")

    # --- responses -----------------------------------------------------------------------------
    async def _send(self, send: Send, response: Response, head: bool = False) -> None:
        headers = [
            (b"content-type", response.content_type.encode()),
            (b"content-length", str(len(response.body)).encode()),
            *((k.encode(), v.encode()) for k, v in SECURITY_HEADERS),
        ]
        names = {k.lower() for k, _ in response.headers}
        if "cache-control" not in names:
            headers.append((b"cache-control", b"no-store"))
        headers.extend((k.encode("latin-1"), v.encode("latin-1")) for k, v in response.headers)
        await send({"type": "http.response.start", "status": response.status, "headers": headers})
        await send({"type": "http.response.body", "body": b"" if head else response.body})

    async def _stream(self, stream: Stream, receive: Receive, send: Send, disconnected: asyncio.Event) -> None:
        async def watch() -> None:
            while True:
                message = await receive()
                if message["type"] == "http.disconnect":
                    disconnected.set()
                    return

        watcher = asyncio.ensure_future(watch())
        headers = [(b"content-type", stream.content_type.encode()),
                   *((k.encode(), v.encode()) for k, v in SECURITY_HEADERS),
                   *((k.encode("latin-1"), v.encode("latin-1")) for k, v in stream.headers)]  # fmt: skip
        try:
            await send({"type": "http.response.start", "status": 200, "headers": headers})
            async for chunk in stream.chunks:
                if disconnected.is_set():
                    break
                await send({"type": "http.response.body", "body": chunk, "more_body": True})
            if not disconnected.is_set():
                await send({"type": "http.response.body", "body": b"", "more_body": False})
        except OSError:  # the client went away mid-write
            pass
        finally:
            watcher.cancel()

    def _static_file(self, name: str, method: str) -> Response:
        target = (self._static / urllib.parse.unquote(name)).resolve()
        if self._static not in target.parents or not target.is_file() or method not in ("GET", "HEAD"):
            return Response(b"not found\n", 404, "text/plain; charset=utf-8")
        ctype = _TYPES.get(target.suffix) or mimetypes.guess_type(target.name)[0] or "application/octet-stream"
        body = target.read_bytes() if method == "GET" else b""
        return Response(body, 200, ctype, [("cache-control", "public, max-age=3600")])

    # --- login ---------------------------------------------------------------------------------
    def _unauthorized(self, scope: Scope, path: str, headers: dict[str, str]) -> Response:
        wants_html = "text/html" in headers.get("accept", "") and not path.startswith("/api/")
        if wants_html and headers.get("hx-request") != "true":
            qs = scope.get("query_string", b"").decode("latin-1")
            target = path + ("?" + qs if qs else "")
            return redirect("/login?" + urllib.parse.urlencode({"next": target}))
        return Response(b'{"error":"login required"}', 401, "application/json",
                        [("www-authenticate", 'Bearer realm="wasmscope collect"')])  # fmt: skip

    def _login(self, scope: Scope, method: str, path: str, headers: dict[str, str], body: bytes) -> Response:
        secure = scope.get("scheme") == "https"
        if path == "/logout":
            return redirect("/login" if self.auth.enabled else "/", headers=[("set-cookie", Auth.clear_cookie())])
        query = urllib.parse.parse_qs(scope.get("query_string", b"").decode("latin-1"))
        fields = {k: v[0] for k, v in urllib.parse.parse_qs(body.decode("utf-8", "replace")).items()}
        target = _safe_next(fields.get("next") or (query.get("next") or ["/"])[0])
        if not self.auth.enabled:
            return redirect(target)
        if method == "POST":
            if self.auth.token_ok(fields.get("token", "")):
                return redirect(target, headers=[("set-cookie", self.auth.set_cookie(secure))])
            return html(self.ctx.render("login.html", next=target, error="That token is not the right one."), 401)
        if method != "GET":
            return Response(b"method not allowed\n", 405, "text/plain; charset=utf-8")
        return html(self.ctx.render("login.html", next=target, error=""))



async def _read_body(receive: Receive) -> bytes:
    chunks: list[bytes] = []
    size = 0
    while True:
        message = await receive()
        if message["type"] != "http.request":
            break
        chunk = message.get("body", b"")
        size += len(chunk)
        if size <= MAX_BODY:
            chunks.append(chunk)
        if not message.get("more_body", False):
            break
    return b"".join(chunks)


def _safe_next(target: str) -> str:
    """A same-site path to go to after login (never another host)."""
    if not target.startswith("/") or target.startswith("//") or "\\" in target:
        return "/"
    return target


def _error_page(status: int, message: str, detail: str = "") -> str:
    import html as _html

    extra = f"<pre>{_html.escape(detail[:2000])}</pre>" if detail else ""
    return (
        "<!doctype html><html lang=en><head><meta charset=utf-8><title>wasmscope collect</title>"
        '<link rel="stylesheet" href="/static/dashboard.css"></head><body class="error-page"><main>'
        f"<h1>{status}</h1><p>{_html.escape(message)}</p>{extra}"
        '<p><a href="/">Back to the functions</a></p></main></body></html>'
    )

