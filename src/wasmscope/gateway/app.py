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
module is compiled (503 before; it stays 200 during a reload).

Small handlers run inline: a route without preopened directories first runs its
handler on the event loop's own thread, stopped at the first epoch tick past
``inline_budget`` (2 ms; the loop waits at most that plus one tick, 5 ms); one that
finishes in time answers with no thread hop at all (the hop and the GIL hand-offs
around it cost more than the C hello itself), one that does not is run again, from
scratch, on the route's threads with its full limits; after two such runs within
``INLINE_STRIKES`` seconds, the route runs there for the next ``INLINE_BACKOFF``
seconds (a slow handler costs the loop two budgets every 5 s at most). Only the
final run is reported (telemetry, metrics, logs); what the stopped attempt wrote is
dropped, and it had no other way out (no preopened directory, no network).

Each route runs the module version compiled at start or at the last reload (held in
memory, never re-read from disk per request); :meth:`Gateway.reload` and the watcher
started with ``reload_interval`` swap in a new version without dropping a request
(:mod:`wasmscope.gateway.reload`).
"""

from __future__ import annotations

import asyncio
import dataclasses
import json
import logging
import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from wasmscope._asgi import Receive, Scope, Send
from wasmscope.errors import UsageError
from wasmscope.gateway.guards import RouteGuards
from wasmscope.gateway.manifest import Manifest, Route
from wasmscope.gateway.reload import Reloader
from wasmscope.gateway.tracing import REQUEST_SPAN
from wasmscope.gateway.versions import RoutePool, Version, Versions
from wasmscope.gateway.wagi import (
    BadResponse,
    argv_for,
    cgi_environ,
    parse_response,
)
from wasmscope.runtime.options import RunOptions
from wasmscope.runtime.record import Outcome
from wasmscope.telemetry.tracecontext import valid_traceparent

if TYPE_CHECKING:
    from wasmscope.guard.findings import Finding
    from wasmscope.guard.session import GuardConfig
    from wasmscope.runtime.identity import ModuleSource
    from wasmscope.runtime.limits import Limits
    from wasmscope.runtime.record import InvocationRecord
    from wasmscope.runtime.runner import Runtime

__all__ = ["Gateway"]

log = logging.getLogger("wasmscope.gateway")
access_log = logging.getLogger("wasmscope.access")

MAX_STDERR_LOG = 2048  # bytes of a handler's stderr logged per request
INLINE_BUDGET = 0.002  # seconds a handler may run on the event loop's thread (see above)
INLINE_BACKOFF = 5.0  # seconds a route runs on its threads after two handlers ran past the budget
INLINE_STRIKES = 1.0  # ... within this many seconds (a lone one may be the machine, not the handler)
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
    request's ``traceparent``; its failures are logged, never answered.
    ``reload_interval``: seconds between two looks at the manifest and the module
    files by the watcher that the ASGI lifespan starts (None, the default: no watcher;
    :meth:`reload` still works). ``pooling``: the Runtime made here takes instances
    from wasmtime's pooling allocator (:class:`~wasmscope.runtime.engine.Pooling`:
    cheaper per-request instances; falls back to on-demand allocation, with a warning,
    where the pools cannot be reserved). ``inline_budget``: seconds a handler may first
    run on the event loop's thread (None: always on the route's threads; see the module
    docstring). ``clock``: the seconds of the inline strike and backoff windows
    (``INLINE_STRIKES``, ``INLINE_BACKOFF``; tests drive it)."""

    def __init__(
        self,
        manifest: Manifest,
        *,
        runtime: Runtime | None = None,
        telemetry: Any = None,
        cache: bool = True,
        cache_dir: str | None = None,
        reload_interval: float | None = None,
        pooling: bool = True,
        inline_budget: float | None = INLINE_BUDGET,
        clock: Callable[[], float] = time.monotonic,
        guard: GuardConfig | None = None,
    ) -> None:
        self.telemetry = telemetry
        self.guards = RouteGuards(guard, lambda: self.telemetry)
        self.inline_budget = inline_budget
        self._clock = clock
        self._inline_limits: dict[tuple[Any, float], Limits] = {}
        self._own_runtime = runtime is None
        if runtime is None:
            from wasmscope.runtime.engine import Pooling
            from wasmscope.runtime.runner import Runtime

            runtime = Runtime(
                cache=cache, cache_dir=cache_dir, capacity=max(16, 2 * len(manifest.routes)),
                pooling=Pooling() if pooling else None,
            )  # fmt: skip
        self.runtime = runtime
        self.versions = Versions(manifest)  # what is served now; the reloader installs the next
        self._scope_key = f"wasmscope.version.{id(self):x}"  # a request's version, in its scope
        self.auth_enforced = False  # set by an ApiKeyAuth in front (a reload may then turn auth on)
        self.ready = False
        self.reloader = Reloader(self.versions, runtime, reload_interval, auth_enforced=lambda: self.auth_enforced)

    # -- versions ---------------------------------------------------------------------------
    @property
    def manifest(self) -> Manifest:
        """The manifest served now (it changes with every reload)."""
        return self.versions.current.manifest

    @property
    def version(self) -> int:
        """The number of the version served now: 0 before :meth:`prepare`, 1 after, +1 per reload."""
        return self.versions.current.number

    @property
    def closed(self) -> bool:
        return self.versions.closed

    def _version_for(self, scope: Scope) -> Version:
        version = scope.get(self._scope_key)
        if not isinstance(version, Version):
            version = self.versions.current
            scope[self._scope_key] = version
        return version

    def manifest_for(self, scope: Scope) -> Manifest:
        """The manifest that serves the request of this ASGI ``scope``: the one current
        when it was first asked for (kept in the scope), so that the middlewares and the
        handler of one request all see the same version, whatever reloads meanwhile."""
        return self._version_for(scope).manifest

    def reload(self) -> bool:
        """Look at the manifest and the module files now and serve what changed:
        True when a new version is served, False when nothing changed or the new one
        could not be loaded (logged; the previous version keeps serving). Blocks while
        it compiles: from async code, ``await asyncio.to_thread(gateway.reload)``."""
        return self.reloader.check()

    # -- lifecycle ------------------------------------------------------------------------
    def prepare(self) -> None:
        """Read and compile every route's module (cached) and serve them; then
        :attr:`ready`. Raises :class:`UsageError` naming the route when a module cannot be
        compiled."""
        if self.closed:
            raise UsageError("this Gateway is closed")
        self.reloader.load()
        self.ready = True

    def close(self) -> None:
        """Stop the reload watcher and the worker pools (waiting for running handlers:
        each ends by its timeout) and close the Runtime made here. Idempotent."""
        if self.closed:
            return
        self.reloader.stop()  # a reload still compiling finishes first
        self.ready = False
        self.versions.close()
        self.guards.close()
        if self._own_runtime:
            self.runtime.close()

    def in_flight(self, path: str) -> int:
        """Instances of the route ``path`` (as written in the manifest) running now."""
        return self.versions.current.pools[path].in_flight

    def route_pool(self, path: str) -> RoutePool:
        """The pool of the route ``path`` (as written in the manifest) in the version
        served now: its threads (``workers.started``), running instances and inline
        backoff (``inline_after``), to read (tests, monitoring), not to change."""
        return self.versions.current.pools[path]

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
                self.reloader.start()  # no-op without a reload_interval
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
        version = self._version_for(scope)
        route = version.manifest.match(path)
        if route is None:
            return _error(404, "no route for this path"), 0
        pool = version.pools[route.path]
        if not pool.hold():
            # The request waited (in a middleware) across a reload whose retired pool has
            # drained and shut since: nothing ran yet, the version served now takes it.
            version = scope[self._scope_key] = self.versions.current
            route = version.manifest.match(path)
            if route is None:
                return _error(404, "no route for this path"), 0
            pool = version.pools[route.path]
            if not pool.hold():
                return _error(503, "the server is stopping; retry later"), 0
        try:
            return await self._run_route(scope, receive, route, pool, version.sources.get(route.path))
        finally:
            pool.unhold()

    async def _run_route(
        self, scope: Scope, receive: Receive, route: Route, pool: RoutePool, source: ModuleSource | None
    ) -> tuple[_Result, int]:
        cap = route.settings.max_request_bytes
        try:
            body = await _read_body(scope, receive, cap)
        except _TooLarge:
            res = _error(413, f"request body larger than {cap} bytes")
            res.route = route.path
            return res, 0
        if not pool.try_acquire():
            res = _error(503, "too many concurrent requests for this route; retry later")
            res.route = route.path
            return res, len(body)
        if self._inline(route, pool, source):
            try:
                inline = self._invoke(route, source, scope, body, self.inline_budget)
            except BaseException:
                pool.release()
                raise
            if inline is not None:
                pool.release()
                inline.route = route.path
                return inline, len(body)
            now = self._clock()  # past the budget: again on a thread, from scratch
            if now - pool.inline_strike < INLINE_STRIKES:
                pool.inline_after = now + INLINE_BACKOFF
            pool.inline_strike = now
        try:
            future = pool.workers.submit(self._invoke, route, source, scope, body, done=pool.release)
        except BaseException:
            pool.release()
            raise
        result = await future
        result.route = route.path
        return result, len(body)

    def _budget_limits(self, route: Route, budget: float) -> Limits:
        """The route's limits with the inline budget as the timeout (made once per settings)."""
        key = (route.settings, budget)
        limits = self._inline_limits.get(key)
        if limits is None:
            limits = self._inline_limits[key] = dataclasses.replace(route.limits, timeout=budget)
        return limits

    def _inline(self, route: Route, pool: RoutePool, source: ModuleSource | None) -> bool:
        """May this request first run on the event loop's thread?"""
        budget = self.inline_budget
        if budget is None or source is None or source.kind != "module" or route.dirs:
            return False
        if source.may_block:  # a sleep would hold the event loop, out of the budget's reach
            return False
        timeout = route.settings.timeout
        if timeout is not None and timeout <= budget:
            return False
        # A Runtime's own telemetry would also see the stopped attempts.
        return self.runtime.telemetry is None and self._clock() >= pool.inline_after

    # -- on the worker thread (or inline, see _inline) -------------------------------------------
    def _invoke(
        self, route: Route, source: ModuleSource | None, scope: Scope, body: bytes, budget: float | None = None
    ) -> _Result | None:
        """Run the handler for the request and make the response. ``budget``: the run
        is stopped past that many seconds and None returned (nothing reported)."""
        path = str(scope.get("path") or "/")
        query = bytes(scope.get("query_string") or b"").decode("latin-1")
        path_info = _raw_path(scope)[len(route.prefix) :] if route.wildcard else ""
        span = scope.get(REQUEST_SPAN)  # the tracing middleware's server span of this request
        traceparent = span.traceparent if span is not None else valid_traceparent(_header(scope, b"traceparent"))
        env = cgi_environ(
            scope, route_path=route.path, script_name=route.prefix, path_info_raw=path_info, content_length=len(body),
            traceparent=traceparent,
        )  # fmt: skip
        env.update(route.env)  # the operator's variables win over the request's
        argv0, args = argv_for(path, query, route.argv)
        method = str(scope.get("method") or "GET")
        # The pinned source (the version compiled at start or at the last reload); before
        # prepare() there is none and the file is read as it is.
        limits = route.limits if budget is None else self._budget_limits(route, budget)
        guard = self.guards.session(route)
        options = RunOptions(argv0=argv0, env=env, dirs=route.dirs, stdin=body, limits=limits,
                             attributes={"http.request.method": method, "http.route": route.path, "url.path": path},
                             audit=guard.audit_settings(route.dirs) if guard is not None else None)  # fmt: skip
        early: list[Finding] = []
        if guard is not None:
            refusal = self.guards.refusal(guard, route, source)
            if refusal is not None:
                log.warning("route %s: %s", route.path, refusal)
                try:
                    self.guards.report_refusal(guard, route, source, options, traceparent)
                except Exception as exc:  # the guard never fails a request
                    log.warning("serve: the guard failed for route %s: %s", route.path, exc)
                return _error(500, refusal)
            options, early = guard.prepare(options)
        rec = self.runtime.run(source if source is not None else str(route.module), args, options)
        if budget is not None:
            if rec.outcome == Outcome.TIMEOUT:
                return None
            rec.timeout = route.settings.timeout  # the record tells the route's limit, not the budget
        trace_id = traceparent.split("-")[1] if traceparent else None
        if self.telemetry is not None:
            try:
                if span is not None:
                    trace_id = self.telemetry.record_invocation(rec, parent=traceparent, request=span) or trace_id
                else:
                    trace_id = self.telemetry.record_invocation(rec, parent=traceparent) or trace_id
            except Exception as exc:  # telemetry never fails a request
                log.warning("serve: telemetry failed for invocation %s: %s", rec.invocation_id, exc)
        if guard is not None:
            try:
                guard.judge(rec, options, early, function=route.path, traceparent=traceparent)
            except Exception as exc:  # the guard never fails a request either
                log.warning("serve: the guard failed for invocation %s: %s", rec.invocation_id, exc)
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
