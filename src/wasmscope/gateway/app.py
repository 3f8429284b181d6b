"""The ASGI application of ``wasmscope serve``: routes to WAGI handlers, health, limits.

::

    from wasmscope.gateway import Gateway, load
    app = Gateway(load("app.toml"))           # any ASGI server; lifespan compiles the modules

Per request: the route is matched, the body read up to ``max_request_bytes`` (413 past
it, before anything runs), a slot taken among the route's ``max_concurrency`` (503 with
``Retry-After: 1`` when all are busy: requests never queue), and the handler run in a
fresh instance on a worker thread of the route's own pool (a route that hangs cannot
take the threads of another; Wasm releases the GIL), through one shared
:class:`~wasmscope.runtime.Runtime` that keeps compiled modules and ``InstancePre``
warm. Then the outcome becomes the response:

=====================================================  ======
handler printed a valid CGI response                    its status (200 by default)
no valid header block                                   502
stdout over ``max_response_bytes``                      502
timeout                                                 504
trap, out of fuel, out of memory, stack overflow,       500
non-zero exit, could not start, stderr over the cap
=====================================================  ======

Error bodies are a short JSON object (``error``, ``outcome``, ``invocation_id``,
``trace_id``), never what the guest printed or its trap. Every response carries
``X-Wasmscope-Invocation``; one JSON access log line per request goes to the
``wasmscope.access`` logger; details of failures go to ``wasmscope.gateway``.
``/healthz`` answers 200 while the process runs, ``/readyz`` 200 once every route's
module is compiled (503 before).
"""

from __future__ import annotations

import asyncio
import concurrent.futures
import json
import logging
import threading
import time
from collections.abc import Awaitable, Callable, MutableMapping
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from wasmscope.errors import UsageError
from wasmscope.gateway.manifest import Manifest, Route
from wasmscope.gateway.wagi import (
    BadResponse,
    argv_for,
    cgi_environ,
    parse_response,
    valid_traceparent,
)
from wasmscope.runtime.record import Outcome

if TYPE_CHECKING:
    from wasmscope.runtime.record import InvocationRecord
    from wasmscope.runtime.runner import Runtime

__all__ = ["Gateway"]

Scope = MutableMapping[str, Any]
Message = MutableMapping[str, Any]
Receive = Callable[[], Awaitable[Message]]
Send = Callable[[Message], Awaitable[None]]

log = logging.getLogger("wasmscope.gateway")
access_log = logging.getLogger("wasmscope.access")

MAX_STDERR_LOG = 2048  # bytes of a handler's stderr logged per request
_FAILURES = {
    Outcome.TIMEOUT: (504, "the handler ran past its time limit"),
    Outcome.TRAP: (500, "the handler trapped"),
    Outcome.OUT_OF_FUEL: (500, "the handler ran out of fuel"),
    Outcome.OUT_OF_MEMORY: (500, "the handler ran out of memory"),
    Outcome.STACK_OVERFLOW: (500, "the handler overflowed its stack"),
    Outcome.EXIT: (500, "the handler exited with a non-zero status"),
    Outcome.ERROR: (500, "the handler could not start"),
    Outcome.OUTPUT_LIMIT: (500, "the handler wrote more than the output limit to stderr"),
}


class _Disconnected(Exception):
    pass


class _TooLarge(Exception):
    pass


@dataclass(slots=True)
class _Result:
    status: int
    headers: list[tuple[str, str]]
    body: bytes
    outcome: str | None = None
    invocation_id: str | None = None
    trace_id: str | None = None
    route: str | None = None


class _RouteState:
    """A route's worker threads and its count of running instances."""

    def __init__(self, route: Route) -> None:
        self.route = route
        self.limit = route.settings.max_concurrency
        self.in_flight = 0
        self._lock = threading.Lock()
        self.executor = concurrent.futures.ThreadPoolExecutor(
            max_workers=self.limit, thread_name_prefix=f"wasmscope-route{route.prefix or '/'}"
        )

    def try_acquire(self) -> bool:
        with self._lock:
            if self.in_flight >= self.limit:
                return False
            self.in_flight += 1
            return True

    def release(self, _future: object = None) -> None:
        with self._lock:
            self.in_flight -= 1


def _json_body(doc: dict[str, Any]) -> bytes:
    return (json.dumps({k: v for k, v in doc.items() if v is not None}, separators=(",", ":")) + "\n").encode()


def _error(status: int, message: str, **extra: Any) -> _Result:
    headers = [("content-type", "application/json")]
    if status == 503:
        headers.append(("retry-after", "1"))
    return _Result(status, headers, _json_body({"error": message, **extra}))


class Gateway:
    """The ASGI application for a :class:`~wasmscope.gateway.manifest.Manifest`.

    ``runtime``: a shared :class:`Runtime` (default: one made here, with the on-disk
    compiled-module cache in ``cache_dir``, closed by :meth:`close`). ``telemetry``: an
    object with ``record_invocation(record, parent=traceparent)`` (e.g.
    :class:`wasmscope.telemetry.Telemetry`), called after every handler run with the
    request's ``traceparent``; its failures are logged, never answered."""

    def __init__(
        self,
        manifest: Manifest,
        *,
        runtime: Runtime | None = None,
        telemetry: Any = None,
        cache: bool = True,
        cache_dir: str | None = None,
    ) -> None:
        self.manifest = manifest
        self.telemetry = telemetry
        self._own_runtime = runtime is None
        if runtime is None:
            from wasmscope.runtime.runner import Runtime

            runtime = Runtime(cache=cache, cache_dir=cache_dir, capacity=max(16, 2 * len(manifest.routes)))
        self.runtime = runtime
        self._states = {r.path: _RouteState(r) for r in manifest.routes}
        self.ready = False
        self._closed = False

    # -- lifecycle ------------------------------------------------------------------------
    def prepare(self) -> None:
        """Compile every route's module (cached); then :attr:`ready`. Raises
        :class:`UsageError` naming the route when a module cannot be compiled."""
        from wasmscope.runtime.engine import engine_for

        rt = self.runtime
        for route in self.manifest.routes:
            source, _hit = rt.sources.load(str(route.module))
            try:
                rt.compile(source, engine_for(rt.engine_settings(route.limits)))
            except Exception as exc:  # wasmtime refuses it (no wasmtime import outside runtime/)
                first = str(exc).strip().splitlines()[0] if str(exc).strip() else "refused by wasmtime"
                raise UsageError(f"route {route.path}: {route.module} cannot be compiled: {first}") from None
            finally:
                source.drop_bytes()
        self.ready = True

    def close(self) -> None:
        """Stop the worker pools (waiting for running handlers: each ends by its
        timeout) and close the Runtime made here. Idempotent."""
        if self._closed:
            return
        self._closed = True
        self.ready = False
        for state in self._states.values():
            state.executor.shutdown(wait=True, cancel_futures=True)
        if self._own_runtime:
            self.runtime.close()

    def in_flight(self, path: str) -> int:
        """Instances of the route ``path`` (as written in the manifest) running now."""
        return self._states[path].in_flight

    # -- ASGI -------------------------------------------------------------------------------
    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        kind = scope["type"]
        if kind == "http":
            await self._http(scope, receive, send)
        elif kind == "lifespan":
            await self._lifespan(receive, send)
        # websockets are not served: the server closes them

    async def _lifespan(self, receive: Receive, send: Send) -> None:
        while True:
            message = await receive()
            if message["type"] == "lifespan.startup":
                try:
                    await asyncio.to_thread(self.prepare)
                except Exception as exc:  # the server logs the message and exits
                    await send({"type": "lifespan.startup.failed", "message": str(exc)})
                    return
                await send({"type": "lifespan.startup.complete"})
            elif message["type"] == "lifespan.shutdown":
                await asyncio.to_thread(self.close)
                await send({"type": "lifespan.shutdown.complete"})
                return

    async def _http(self, scope: Scope, receive: Receive, send: Send) -> None:
        t0 = time.perf_counter()
        path = str(scope.get("path") or "/")
        method = str(scope.get("method") or "GET")
        bytes_in = 0
        try:
            result, bytes_in = await self._handle(scope, receive, path, method)
        except _Disconnected:
            self._access(scope, method, path, 499, t0, bytes_in, 0, None)
            return
        except Exception:
            log.exception("serve: internal error on %s %s", method, path)
            result = _error(500, "internal server error")
        if result.invocation_id:
            result.headers.append(("x-wasmscope-invocation", result.invocation_id))
        body = b"" if method == "HEAD" else result.body
        headers = [*result.headers, ("content-length", str(len(result.body)))]
        await send({
            "type": "http.response.start",
            "status": result.status,
            "headers": [(k.encode("latin-1"), v.encode("latin-1", "replace")) for k, v in headers],
        })  # fmt: skip
        await send({"type": "http.response.body", "body": body})
        self._access(scope, method, path, result.status, t0, bytes_in, len(body), result)

    async def _handle(self, scope: Scope, receive: Receive, path: str, method: str) -> tuple[_Result, int]:
        if path == "/healthz":
            return _Result(200, [("content-type", "application/json")], _json_body({"status": "ok"})), 0
        if path == "/readyz":
            if self.ready:
                return _Result(200, [("content-type", "application/json")], _json_body({"status": "ready"})), 0
            return _Result(503, [("content-type", "application/json"), ("retry-after", "1")], _json_body({"status": "starting"})), 0
        route = self.manifest.match(path)
        if route is None:
            return _error(404, "no route for this path"), 0
        state = self._states[route.path]
        cap = route.settings.max_request_bytes
        try:
            body = await _read_body(scope, receive, cap)
        except _TooLarge:
            res = _error(413, f"request body larger than {cap} bytes")
            res.route = route.path
            return res, 0
        if not state.try_acquire():
            res = _error(503, "too many concurrent requests for this route; retry later")
            res.route = route.path
            return res, len(body)
        try:
            future = state.executor.submit(self._invoke, route, scope, body)
        except BaseException:
            state.release()
            raise
        future.add_done_callback(state.release)
        result = await asyncio.wrap_future(future)
        result.route = route.path
        return result, len(body)

    # -- on the worker thread -----------------------------------------------------------------
    def _invoke(self, route: Route, scope: Scope, body: bytes) -> _Result:
        path = str(scope.get("path") or "/")
        query = bytes(scope.get("query_string") or b"").decode("latin-1")
        path_info = _raw_path(scope)[len(route.prefix) :] if route.wildcard else ""
        env = cgi_environ(scope, route_path=route.path, script_name=route.prefix, path_info_raw=path_info, content_length=len(body))
        env.update(route.env)  # the operator's variables win over the request's
        argv0, args = argv_for(path, query, route.argv)
        method = str(scope.get("method") or "GET")
        rec = self.runtime.run(
            str(route.module), args, argv0=argv0, env=env, dirs=route.dirs, stdin=body, limits=route.limits,
            attributes={"http.request.method": method, "http.route": route.path, "url.path": path},
        )  # fmt: skip
        traceparent = valid_traceparent(_header(scope, b"traceparent"))
        trace_id = traceparent.split("-")[1] if traceparent else None
        if self.telemetry is not None:
            try:
                trace_id = self.telemetry.record_invocation(rec, parent=traceparent) or trace_id
            except Exception as exc:  # telemetry never fails a request
                log.warning("serve: telemetry failed for invocation %s: %s", rec.invocation_id, exc)
        if rec.stderr:
            text = rec.stderr[:MAX_STDERR_LOG].decode("utf-8", "replace").rstrip()
            more = " ..." if len(rec.stderr) > MAX_STDERR_LOG else ""
            log.info("handler stderr [%s %s invocation=%s trace=%s]: %s%s", route.path, method, rec.invocation_id, trace_id or "-", text, more)
        return self._response(route, rec, trace_id)

    @staticmethod
    def _response(route: Route, rec: InvocationRecord, trace_id: str | None) -> _Result:
        ids = {"outcome": rec.outcome, "invocation_id": rec.invocation_id, "trace_id": trace_id}
        cap = route.settings.max_response_bytes
        if rec.stdout_truncated or (rec.outcome == Outcome.OUTPUT_LIMIT and rec.stdout_bytes >= cap):
            log.warning("route %s: response over max_response_bytes (%d); invocation %s", route.path, cap, rec.invocation_id)
            res = _error(502, f"the handler's response is larger than {cap} bytes (truncated, not sent)", **ids)
        elif rec.outcome == Outcome.OK:
            try:
                cgi = parse_response(rec.stdout)
            except BadResponse as exc:
                log.warning("route %s: bad handler response (invocation %s): %s", route.path, rec.invocation_id, exc)
                res = _error(502, "the handler printed no valid CGI header block", **ids)
            else:
                res = _Result(cgi.status, cgi.headers, cgi.body)
        else:
            status, message = _FAILURES.get(rec.outcome, (500, "the handler failed"))
            detail = rec.trap.kind + ": " + rec.trap.message if rec.trap else rec.error or (f"exit code {rec.exit_code}" if rec.exit_code else "")
            log.warning("route %s: %s (invocation %s): %s", route.path, rec.outcome, rec.invocation_id, detail)
            res = _error(status, message, **ids)
        res.outcome = rec.outcome
        res.invocation_id = rec.invocation_id
        res.trace_id = trace_id
        return res

    # -- access log ------------------------------------------------------------------------------
    @staticmethod
    def _access(scope: Scope, method: str, path: str, status: int, t0: float, bytes_in: int, bytes_out: int, res: _Result | None) -> None:
        if not access_log.isEnabledFor(logging.INFO):
            return
        client = scope.get("client")
        doc = {
            "method": method,
            "path": path,
            "status": status,
            "duration_ms": round((time.perf_counter() - t0) * 1000, 3),
            "route": res.route if res else None,
            "outcome": res.outcome if res else None,
            "invocation_id": res.invocation_id if res else None,
            "trace_id": res.trace_id if res else None,
            "bytes_in": bytes_in,
            "bytes_out": bytes_out,
            "remote": client[0] if isinstance(client, tuple | list) and client else None,
        }
        access_log.info(json.dumps(doc, separators=(",", ":")))


def _header(scope: Scope, name: bytes) -> str | None:
    for key, value in scope.get("headers") or ():
        if bytes(key).lower() == name:
            return bytes(value).decode("latin-1")
    return None


def _raw_path(scope: Scope) -> str:
    raw = scope.get("raw_path")
    if isinstance(raw, bytes | bytearray) and raw:
        return bytes(raw).decode("latin-1").partition("?")[0]
    from urllib.parse import quote

    return quote(str(scope.get("path") or "/"))


async def _read_body(scope: Scope, receive: Receive, cap: int) -> bytes:
    declared = _header(scope, b"content-length")
    if declared is not None and declared.strip().isdigit() and int(declared) > cap:
        raise _TooLarge
    chunks: list[bytes] = []
    size = 0
    while True:
        message = await receive()
        if message["type"] == "http.disconnect":
            raise _Disconnected
        if message["type"] != "http.request":
            continue
        chunk = message.get("body", b"")
        size += len(chunk)
        if size > cap:
            raise _TooLarge
        chunks.append(chunk)
        if not message.get("more_body", False):
            return b"".join(chunks)
