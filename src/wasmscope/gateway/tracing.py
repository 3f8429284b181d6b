"""The HTTP server span of ``wasmscope serve``: an ASGI middleware around the gateway.

::

    from wasmscope.gateway.tracing import TracingMiddleware
    app = TracingMiddleware(gateway, telemetry, gateway=gateway)

Per HTTP request: one span of kind SERVER named ``"METHOD /route"`` (``"METHOD"``
when no route matches) with the OpenTelemetry HTTP semantic conventions
(``http.request.method``, ``url.path``, ``url.scheme``, ``http.route``,
``http.response.status_code``, ``server.address``/``server.port``, ``client.address``,
``user_agent.original``); status ERROR for a 5xx answer or an exception. An incoming
valid W3C ``traceparent`` (with its ``tracestate``) is its parent; otherwise it starts
a trace. The request forwarded to the gateway carries the server span's own
``traceparent`` in place of the incoming one (with serve's Telemetry: the open span
itself, as the scope's ``REQUEST_SPAN`` key), so the invocation span, the guest's
``TRACEPARENT`` and the ``trace_id`` of error bodies all belong to the server span's
trace. With serve's Telemetry (``trigger="http"``) the span is plain data
(:mod:`wasmscope.telemetry.direct`) and the invocation is folded into it: the server
span also carries ``faas.trigger=http``, ``faas.invocation_id``, ``faas.coldstart`` and
the ``wasm.*`` attributes, with children ``instantiate`` and ``execute``; with another
Telemetry it is an SDK span and the invocation span its child. Non-HTTP scopes
(lifespan) pass through.
"""

from __future__ import annotations

from typing import Any

from wasmscope._asgi import ASGIApp, Message, Receive, Scope, Send
from wasmscope.telemetry.tracecontext import valid_traceparent

__all__ = ["REQUEST_SPAN", "TracingMiddleware"]

# The scope key of a request's open server span (a ``telemetry.direct.RequestSpan``):
# the gateway hands its traceparent to the guest and folds the invocation into it.
REQUEST_SPAN = "wasmscope.request_span"

# OpenTelemetry HTTP semantic conventions (stable, v1.23+)
HTTP_REQUEST_METHOD = "http.request.method"
HTTP_ROUTE = "http.route"
HTTP_RESPONSE_STATUS_CODE = "http.response.status_code"
URL_PATH = "url.path"
URL_SCHEME = "url.scheme"
URL_QUERY = "url.query"
SERVER_ADDRESS = "server.address"
SERVER_PORT = "server.port"
CLIENT_ADDRESS = "client.address"
CLIENT_PORT = "client.port"
USER_AGENT_ORIGINAL = "user_agent.original"
NETWORK_PROTOCOL_VERSION = "network.protocol.version"
ERROR_TYPE = "error.type"

_MISSING = object()
_KNOWN_METHODS = {"GET", "HEAD", "POST", "PUT", "DELETE", "CONNECT", "OPTIONS", "TRACE", "PATCH"}


class TracingMiddleware:
    """Wrap ``app`` (a :class:`~wasmscope.gateway.app.Gateway`, possibly already
    wrapped) so that every HTTP request gets a server span from ``telemetry``
    (a :class:`wasmscope.telemetry.Telemetry`). ``manifest``: to name the matched
    route (``http.route``); without it spans are named by method only. ``gateway``:
    name it from the manifest of each request's version instead (reloads apply)."""

    def __init__(self, app: ASGIApp, telemetry: Any, *, manifest: Any = None, gateway: Any = None) -> None:
        self.app = app
        self.telemetry = telemetry
        self._fixed = manifest
        self._gateway = gateway if callable(getattr(gateway, "manifest_for", None)) else None
        self._routes_of: Any = None
        self._routes: dict[str, str | None] = {}
        self._attr_cache: dict[tuple[Any, ...], tuple[dict[str, Any], str]] = {}  # -> (base attributes, span name)
        self._pipe: Any = getattr(telemetry, "direct", None)  # serve's Telemetry: plain-data spans

    @property
    def manifest(self) -> Any:
        """The manifest that names routes now (the gateway's current one)."""
        return self._gateway.manifest if self._gateway is not None else self._fixed

    def _route(self, scope: Scope, path: str) -> str | None:
        if path in ("/healthz", "/readyz", "/metrics"):
            return path
        manifest = self._gateway.manifest_for(scope) if self._gateway is not None else self._fixed
        if manifest is None:
            return None
        route = manifest.match(path)
        return str(route.path) if route is not None else None

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope.get("type") != "http" or getattr(self.telemetry, "closed", False):
            await self.app(scope, receive, send)
            return
        if self._pipe is not None:
            await self._direct(self._pipe, scope, receive, send)
            return
        await self._sdk(scope, receive, send)

    def _cached_route(self, scope: Scope, path: str) -> str | None:
        """``_route``, remembered per manifest and path (bounded)."""
        manifest = self._gateway.manifest_for(scope) if self._gateway is not None else self._fixed
        if manifest is not self._routes_of:
            self._routes_of = manifest
            self._routes = {}
        hit = self._routes.get(path, _MISSING)
        if hit is _MISSING:
            if len(self._routes) >= 4096:
                self._routes.clear()
            hit = self._routes[path] = self._route(scope, path)
        return hit  # type: ignore[return-value]

    async def _direct(self, pipe: Any, scope: Scope, receive: Receive, send: Send) -> None:
        """A ``trigger="http"`` Telemetry: the span is plain data (telemetry/direct.py),
        the invocation is folded into it, and its name and attributes are made when it
        is encoded (:meth:`_describe`, in a batch of requests)."""
        incoming = tracestate = None
        for k, v in scope.get("headers") or ():
            if len(k) in (10, 11):  # only the trace context is needed now
                lk = bytes(k).lower()
                if lk == b"traceparent":
                    incoming = bytes(v).decode("latin-1")
                elif lk == b"tracestate":
                    tracestate = bytes(v).decode("latin-1")
        span = pipe.open_request(incoming, tracestate, self._describe, scope)
        scope[REQUEST_SPAN] = span

        async def send_observed(message: Message) -> None:
            if message.get("type") == "http.response.start":
                status = span.status = int(message["status"])
                if status >= 500:
                    span.error = True
            await send(message)

        try:
            await self.app(scope, receive, send_observed)
        except BaseException as exc:
            span.exception = exc
            span.error = True
            raise
        finally:
            self.telemetry.end_request(span)

    def _describe(self, span: Any) -> None:
        """Name a span from :meth:`_direct` and set its HTTP attributes, from its scope."""
        scope = span.context
        headers = scope.get("headers") or ()
        host = agent = None
        for k, v in headers:
            lk = bytes(k).lower()
            if lk == b"host":
                host = bytes(v)
            elif lk == b"user-agent":
                agent = bytes(v)
        path = str(scope.get("path") or "/")
        method = str(scope.get("method") or "GET")
        route = self._cached_route(scope, path)
        # the attributes that repeat from request to request, made once per combination
        key = (method, path, route, scope.get("scheme"), scope.get("http_version"), host, agent, scope.get("server"))
        hit = self._attr_cache.get(key)
        if hit is None:
            if len(self._attr_cache) >= 4096:
                self._attr_cache.clear()
            hit = self._attr_cache[key] = (
                _attributes({**scope, "client": None, "query_string": b""}, [(bytes(k), bytes(v)) for k, v in headers], method, path, route),
                f"{method} {route}" if route else method,
            )
        span.base = self._pipe.base_block(hit[0])
        span.name = hit[1]
        attrs = span.attrs
        query = scope.get("query_string")
        if query:
            attrs[URL_QUERY] = bytes(query).decode("latin-1")
        client = scope.get("client")
        if isinstance(client, tuple | list) and client:
            attrs[CLIENT_ADDRESS] = str(client[0])
            if len(client) > 1 and client[1] is not None:
                attrs[CLIENT_PORT] = int(client[1])
        if span.status:
            attrs[HTTP_RESPONSE_STATUS_CODE] = span.status
        if span.exception is not None:
            attrs[ERROR_TYPE] = type(span.exception).__qualname__
        elif span.status >= 500:
            attrs[ERROR_TYPE] = str(span.status)

    async def _sdk(self, scope: Scope, receive: Receive, send: Send) -> None:
        from opentelemetry.trace import SpanKind, Status, StatusCode

        from wasmscope.telemetry.otel import context_from_traceparent, traceparent

        headers = [(bytes(k), bytes(v)) for k, v in scope.get("headers") or ()]
        incoming = valid_traceparent(_get(headers, b"traceparent"))
        parent = context_from_traceparent(incoming, _get(headers, b"tracestate")) if incoming else None
        path = str(scope.get("path") or "/")
        method = str(scope.get("method") or "GET")
        route = self._route(scope, path)
        span = self.telemetry.tracer.start_span(
            f"{method} {route}" if route else method,
            context=parent,
            kind=SpanKind.SERVER,
            attributes=_attributes(scope, headers, method, path, route),
        )
        own = traceparent(span)
        forwarded = [(k, v) for k, v in headers if k.lower() != b"traceparent"]
        forwarded.append((b"traceparent", own.encode("latin-1")))
        status: list[int] = []

        async def send_observed(message: Message) -> None:
            if message.get("type") == "http.response.start":
                status.append(int(message["status"]))
            await send(message)

        try:
            await self.app({**scope, "headers": forwarded}, receive, send_observed)
        except BaseException as exc:
            span.record_exception(exc)
            span.set_attribute(ERROR_TYPE, type(exc).__qualname__)
            span.set_status(Status(StatusCode.ERROR, f"{type(exc).__name__}: {exc}"))
            raise
        finally:
            if status:
                span.set_attribute(HTTP_RESPONSE_STATUS_CODE, status[0])
                if status[0] >= 500:
                    span.set_attribute(ERROR_TYPE, str(status[0]))
                    span.set_status(Status(StatusCode.ERROR))
            span.end()


def _get(headers: list[tuple[bytes, bytes]], name: bytes) -> str | None:
    for key, value in headers:
        if key.lower() == name:
            return value.decode("latin-1")
    return None


def _attributes(scope: Scope, headers: list[tuple[bytes, bytes]], method: str, path: str, route: str | None) -> dict[str, Any]:
    attrs: dict[str, Any] = {
        HTTP_REQUEST_METHOD: method if method in _KNOWN_METHODS else "_OTHER",
        URL_PATH: path,
        URL_SCHEME: str(scope.get("scheme") or "http"),
    }
    query = bytes(scope.get("query_string") or b"")
    if query:
        attrs[URL_QUERY] = query.decode("latin-1")
    if route:
        attrs[HTTP_ROUTE] = route
    version = scope.get("http_version")
    if version:
        attrs[NETWORK_PROTOCOL_VERSION] = str(version)
    host = _get(headers, b"host")
    server = scope.get("server")
    if host:
        name, sep, port = host.rpartition(":") if not host.endswith("]") else (host, "", "")
        if sep and port.isdigit():
            attrs[SERVER_ADDRESS] = name
            attrs[SERVER_PORT] = int(port)
        else:
            attrs[SERVER_ADDRESS] = host
    elif isinstance(server, tuple | list) and server:
        attrs[SERVER_ADDRESS] = str(server[0])
        if len(server) > 1 and server[1] is not None:
            attrs[SERVER_PORT] = int(server[1])
    if SERVER_PORT not in attrs and isinstance(server, tuple | list) and len(server) > 1 and server[1] is not None:
        attrs[SERVER_PORT] = int(server[1])
    client = scope.get("client")
    if isinstance(client, tuple | list) and client:
        attrs[CLIENT_ADDRESS] = str(client[0])
        if len(client) > 1 and client[1] is not None:
            attrs[CLIENT_PORT] = int(client[1])
    agent = _get(headers, b"user-agent")
    if agent:
        attrs[USER_AGENT_ORIGINAL] = agent
    return attrs
