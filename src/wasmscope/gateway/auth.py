"""API keys for ``wasmscope serve``: an ASGI middleware in front of the
:class:`~wasmscope.gateway.app.Gateway`.

::

    [server]
    auth = "key"                  # every route needs a key (default "none")

    [[route]]
    path = "/public"
    module = "hello.wasm"
    auth = "none"                 # per route: "none" or "key"

    [[key]]
    id = "ci"                     # named in the access log; never the key itself
    hash = "scrypt$16384$8$1$...$..."   # from: wasmscope serve --hash-key
    routes = ["/api/...", "/hello"]     # route paths as written, or ["*"]
    rate = "10/s"                 # optional: a token bucket per key ("600/min", "1000/h")
    burst = 20                    # optional: the bucket's size (default: the rate's count)

The key comes in ``Authorization: Bearer KEY`` or ``X-API-Key: KEY``. On a route with
``auth = "key"``: no key or an unknown one is 401 (``WWW-Authenticate: Bearer``), a
key without that route in its ``routes`` 403, a key over its rate 429 with
``Retry-After``. ``/healthz``, ``/readyz`` and paths without a route never need a key.

In front of a :class:`~wasmscope.gateway.app.Gateway`, the keys and the routes'
``auth`` are those of the version serving each request: a reload that adds, removes or
changes a key, or turns auth on or off, applies from the next request
(:mod:`wasmscope.gateway.reload`).

The ``[[key]]`` tables are read by :mod:`wasmscope.gateway.manifest` (into
:class:`~wasmscope.gateway.manifest.ApiKey`); only hashes are stored, made and checked
by :mod:`wasmscope.gateway.keys`; rates are :mod:`wasmscope.gateway.rates`. The slow key derivation
runs once per presented key per process (on a worker thread): the outcome is cached
under a keyed BLAKE2b digest of the key (a random key per process), so later
requests cost one BLAKE2b. The key is never logged and never reaches the guest (the
WAGI environment drops ``Authorization`` and ``X-API-Key``); the access log line of
an authenticated request gets ``"key_id"``.
"""

from __future__ import annotations

import asyncio
import contextvars
import hashlib
import json
import logging
import math
import secrets
import threading
import time
from collections import OrderedDict
from collections.abc import Callable, MutableMapping, Sequence
from typing import TYPE_CHECKING, Any

from wasmscope._asgi import ASGIApp, Receive, Scope, Send
from wasmscope.errors import UsageError
from wasmscope.gateway.keys import parse_hash
from wasmscope.gateway.rates import TokenBucket

if TYPE_CHECKING:
    from wasmscope.gateway.manifest import ApiKey, Manifest

__all__ = ["ApiKeyAuth", "KeyStore", "wrap"]

log = logging.getLogger("wasmscope.gateway")
access_log = logging.getLogger("wasmscope.access")

MAX_KEY_CHARS = 512  # longer presented keys are refused before any hashing
NEGATIVE_CACHE = 4096  # unknown keys remembered (bounded: LRU)
MAX_KDF_AT_ONCE = 4  # key derivations running at once (a flood of new keys waits; cached keys do not)

# -- verification --------------------------------------------------------------------------


class KeyStore:
    """Which :class:`ApiKey` a presented key is. The KDF runs once per presented key
    per process; the outcome (known or not) is cached under a keyed BLAKE2b digest."""

    def __init__(self, keys: Sequence[ApiKey]) -> None:
        self.keys = tuple(keys)
        self._hashes = [(k, parse_hash(k.hash)) for k in self.keys]
        self._secret = secrets.token_bytes(32)
        self._known: dict[bytes, ApiKey] = {}
        self._unknown: OrderedDict[bytes, None] = OrderedDict()
        self._lock = threading.Lock()
        self.kdf_runs = 0  # key derivations done (for tests and curiosity)

    def _digest(self, presented: str) -> bytes:
        return hashlib.blake2b(presented.encode(), key=self._secret, digest_size=32).digest()

    def cached(self, presented: str) -> tuple[bool, ApiKey | None]:
        """``(True, key-or-None)`` when this key was seen before, else ``(False, None)``."""
        digest = self._digest(presented)
        with self._lock:
            hit = self._known.get(digest)
            if hit is not None:
                return True, hit
            if digest in self._unknown:
                self._unknown.move_to_end(digest)
                return True, None
        return False, None

    def updated(self, keys: Sequence[ApiKey]) -> KeyStore:
        """A store for ``keys`` (a reload changed them) that keeps what this one learned
        and is still true: a presented key known as a key whose id and hash are still
        there, and the unknown ones when no new hash came (none of them can match now)."""
        new = KeyStore(keys)
        new._secret = self._secret
        still = {(k.id, k.hash): k for k in new.keys}
        with self._lock:
            for digest, key in self._known.items():
                match = still.get((key.id, key.hash))
                if match is not None:
                    new._known[digest] = match
            if {k.hash for k in new.keys} <= {k.hash for k in self.keys}:
                new._unknown = OrderedDict(self._unknown)
        return new

    def identify(self, presented: str) -> ApiKey | None:
        """The key (cached, else by running the KDF against every stored hash)."""
        seen, hit = self.cached(presented)
        if seen:
            return hit
        found: ApiKey | None = None
        for key, stored in self._hashes:
            with self._lock:
                self.kdf_runs += 1
            if stored.matches(presented):
                found = key
                break
        digest = self._digest(presented)
        with self._lock:
            if found is not None:
                self._known[digest] = found
            else:
                self._unknown[digest] = None
                while len(self._unknown) > NEGATIVE_CACHE:
                    self._unknown.popitem(last=False)
        return found


# -- the middleware ------------------------------------------------------------------------

_KEY_ID: contextvars.ContextVar[str | None] = contextvars.ContextVar("wasmscope_key_id", default=None)


class _AccessKeyId(logging.Filter):
    """Adds ``"key_id"`` to the gateway's JSON access line of an authenticated request
    (the id is in a context variable set by the middleware around the app)."""

    def filter(self, record: logging.LogRecord) -> bool:
        key_id = _KEY_ID.get()
        msg = record.msg
        if key_id is not None and isinstance(msg, str) and msg.endswith("}") and not record.args and '"key_id"' not in msg:
            record.msg = record.msg[:-1] + ',"key_id":' + json.dumps(key_id) + "}"
        return True


_FILTER = _AccessKeyId()


def _presented_key(scope: Scope) -> str | None:
    bearer: str | None = None
    api_key: str | None = None
    for name_b, value_b in scope.get("headers") or ():
        name = bytes(name_b).lower()
        if name == b"authorization":
            scheme, _, token = bytes(value_b).decode("latin-1").strip().partition(" ")
            if scheme.lower() == "bearer" and token.strip():
                bearer = token.strip()
        elif name == b"x-api-key":
            api_key = bytes(value_b).decode("latin-1").strip() or None
    return bearer or api_key


class ApiKeyAuth:
    """ASGI middleware: API keys, route scopes and per-key rates in front of ``app``.

    When ``app`` is a :class:`~wasmscope.gateway.app.Gateway` (or wraps one and passes
    its attributes on), the manifest of each request's version is read from it
    (``manifest_for``), so reloads apply, and ``manifest`` is not needed. For any other
    app, ``manifest`` is the one enforced."""

    def __init__(self, app: ASGIApp, manifest: Manifest | None = None, *, clock: Callable[[], float] = time.monotonic) -> None:
        self.app = app
        live = getattr(app, "manifest_for", None)
        self._gateway: Any = getattr(live, "__self__", None) if callable(live) else None  # the Gateway, even wrapped
        self._live: Callable[[Scope], Manifest] | None = live if self._gateway is not None else None
        if self._live is None and manifest is None:
            raise UsageError("ApiKeyAuth needs a manifest (or a Gateway to read it from)")
        self._fixed = manifest
        self._clock = clock
        self.store = KeyStore(())
        self._keys: tuple[ApiKey, ...] | None = None  # the keys self.store was made for
        self._buckets: dict[str, TokenBucket] = {}
        self._sync(self.manifest.keys)
        self._kdf_slots: asyncio.Semaphore | None = None  # made on the server's loop
        if self._gateway is not None:
            self._gateway.auth_enforced = True  # keys are checked: a reload may turn auth on
        if not any(f is _FILTER for f in access_log.filters):
            access_log.addFilter(_FILTER)

    @property
    def manifest(self) -> Manifest:
        """The manifest enforced now (the gateway's current one when it has one)."""
        if self._gateway is not None:
            return self._gateway.manifest  # type: ignore[no-any-return]
        assert self._fixed is not None
        return self._fixed

    def _sync(self, keys: tuple[ApiKey, ...]) -> None:
        """Use ``keys`` (a reload changed them): a new store, with what the old one learned
        that still holds (:meth:`KeyStore.updated`); a key whose rate is unchanged keeps
        its bucket."""
        if keys == self.store.keys:
            self._keys = keys
            return
        old = {k.id: k for k in self.store.keys}
        buckets: dict[str, TokenBucket] = {}
        for k in keys:
            if k.rate is None:
                continue
            prev = old.get(k.id)
            same = prev is not None and (prev.rate, prev.burst) == (k.rate, k.burst)
            bucket = self._buckets.get(k.id) if same else None
            buckets[k.id] = bucket if bucket is not None else TokenBucket(k.rate, k.burst, self._clock)
        self.store = self.store.updated(keys)
        self._buckets = buckets
        self._keys = keys

    def __getattr__(self, name: str) -> Any:  # close(), ready, prepare() ... of the wrapped app
        app = self.__dict__.get("app")
        if app is None:
            raise AttributeError(name)
        return getattr(app, name)

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        path = str(scope.get("path") or "/")
        manifest = self._live(scope) if self._live is not None else self.manifest
        if manifest.keys is not self._keys:
            self._sync(manifest.keys)
        store, buckets = self.store, self._buckets  # a reload during the await below swaps them
        route = manifest.match(path)
        if route is None or getattr(route, "auth", "none") != "key":
            await self.app(scope, receive, send)
            return
        t0 = time.perf_counter()
        presented = _presented_key(scope)
        if presented is None:
            await self._reject(scope, send, t0, route.path, None, 401, "an API key is required (Authorization: Bearer KEY or X-API-Key)", [("www-authenticate", 'Bearer realm="wasmscope"')])
            return
        key: ApiKey | None = None
        if len(presented) <= MAX_KEY_CHARS:
            seen, key = store.cached(presented)
            if not seen:
                if self._kdf_slots is None:
                    self._kdf_slots = asyncio.Semaphore(MAX_KDF_AT_ONCE)
                async with self._kdf_slots:
                    key = await asyncio.to_thread(store.identify, presented)
        if key is None:
            await self._reject(scope, send, t0, route.path, None, 401, "unknown API key", [("www-authenticate", 'Bearer realm="wasmscope", error="invalid_token"')])
            return
        if not key.allows(route.path):
            await self._reject(scope, send, t0, route.path, key.id, 403, "this API key may not call this route", [])
            return
        bucket = buckets.get(key.id)
        if bucket is not None:
            wait = bucket.take()
            if wait > 0:
                retry = str(max(1, math.ceil(wait)))
                await self._reject(scope, send, t0, route.path, key.id, 429, "this API key is over its rate; retry later", [("retry-after", retry)])
                return
        state = scope.get("state")
        if isinstance(state, MutableMapping):
            state["wasmscope.key_id"] = key.id
        token = _KEY_ID.set(key.id)
        try:
            await self.app(scope, receive, send)
        finally:
            _KEY_ID.reset(token)

    @staticmethod
    async def _reject(
        scope: Scope, send: Send, t0: float, route: str, key_id: str | None, status: int, message: str, extra: list[tuple[str, str]]
    ) -> None:
        body = (json.dumps({"error": message}, separators=(",", ":")) + "\n").encode()
        method = str(scope.get("method") or "GET")
        sent = b"" if method == "HEAD" else body
        headers = [("content-type", "application/json"), *extra, ("content-length", str(len(body)))]
        await send({"type": "http.response.start", "status": status, "headers": [(k.encode(), v.encode()) for k, v in headers]})
        await send({"type": "http.response.body", "body": sent})
        if access_log.isEnabledFor(logging.INFO):
            client = scope.get("client")
            doc = {
                "method": method,
                "path": str(scope.get("path") or "/"),
                "status": status,
                "duration_ms": round((time.perf_counter() - t0) * 1000, 3),
                "route": route,
                "outcome": None,
                "invocation_id": None,
                "trace_id": None,
                "bytes_in": 0,
                "bytes_out": len(sent),
                "remote": client[0] if isinstance(client, tuple | list) and client else None,
                "key_id": key_id,
            }
            access_log.info(json.dumps(doc, separators=(",", ":")))


def wrap(app: ASGIApp, manifest: Manifest | None = None, *, always: bool = False) -> ASGIApp:
    """``app`` behind :class:`ApiKeyAuth` when a route of ``manifest`` (default: the
    app's, a Gateway's) needs a key, or ``always``, else ``app`` as is. ``always``: for
    a gateway that reloads, since a reload may turn auth on (the middleware costs a
    route match per request while no route needs a key)."""
    if manifest is None:
        manifest = getattr(app, "manifest", None)
        if manifest is None:
            raise UsageError("wrap() needs a manifest (or a Gateway to read it from)")
    if always or any(getattr(r, "auth", "none") == "key" for r in manifest.routes):
        return ApiKeyAuth(app, manifest)
    return app
