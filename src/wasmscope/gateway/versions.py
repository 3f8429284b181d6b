"""What a :class:`~wasmscope.gateway.app.Gateway` serves, and the swap to the next.

A :class:`Version` is a manifest, one :class:`RoutePool` per route (its worker threads
and its count of running instances) and, once loaded, the compiled source of every
route (pinned: never re-read from disk). :class:`Versions` holds the one served now
and installs the next in one attribute store, so a request that read the current
version keeps it to its end: the gateway serves from it, the reloader
(:mod:`wasmscope.gateway.reload`) installs into it. A route that keeps its path and
``max_concurrency`` keeps its pool across versions (the concurrency limit holds
across reloads); a pool no version uses any more is *retired*: it shuts down, without
waiting, once its last request has left.
"""

from __future__ import annotations

import math
import threading
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import TYPE_CHECKING

from wasmscope.gateway.workers import Workers

if TYPE_CHECKING:
    from wasmscope.gateway.manifest import Manifest, Route
    from wasmscope.runtime.identity import ModuleSource

__all__ = ["RoutePool", "Version", "Versions"]


class RoutePool:
    """A route's worker threads (:attr:`workers`) and its count of running instances
    (:attr:`in_flight`, at most :attr:`limit`), shared by the versions that keep the
    route's path and ``max_concurrency``. Read these from outside; the gateway alone
    changes them. :attr:`inline_after`: the time (on the gateway's clock) from which the
    route's handlers may run on the event loop's thread again; :attr:`inline_strike`:
    when a handler last ran past the inline budget (both -inf: never)."""

    def __init__(self, route: Route) -> None:
        self.limit = route.settings.max_concurrency
        self.in_flight = 0
        self.inline_after = -math.inf
        self.inline_strike = -math.inf
        self._holders = 0  # requests between their route match and their response
        self._retired = False
        self.shut = False
        self._lock = threading.Lock()
        # As few threads as keep up, up to the limit while some are stuck (gateway.workers).
        self.workers = Workers(self.limit, f"wasmscope-route{route.prefix or '/'}")

    def hold(self) -> bool:
        """Keep the pool open for one request; False when it is already shut down."""
        with self._lock:
            if self.shut:
                return False
            self._holders += 1
            return True

    def unhold(self) -> None:
        with self._lock:
            self._holders -= 1
            shut = self._retired and self._holders == 0 and not self.shut
            self.shut = self.shut or shut
        if shut:
            self.workers.shutdown(wait=False)

    def retire(self) -> None:
        """No version uses this pool any more: shut it down once no request holds it."""
        with self._lock:
            self._retired = True
            shut = self._holders == 0 and not self.shut
            self.shut = self.shut or shut
        if shut:
            self.workers.shutdown(wait=False)

    def try_acquire(self) -> bool:
        """Count one more running instance; False when the route is at its limit."""
        with self._lock:
            if self.in_flight >= self.limit:
                return False
            self.in_flight += 1
            return True

    def release(self) -> None:
        with self._lock:
            self.in_flight -= 1


@dataclass(frozen=True, slots=True)
class Version:
    """A manifest, its route pools (route path -> pool) and, once loaded, the compiled
    source of every route (route path -> source)."""

    number: int
    manifest: Manifest
    pools: Mapping[str, RoutePool]
    sources: Mapping[str, ModuleSource] = field(default_factory=dict)


class Versions:
    """The version served now (:attr:`current`: version 0, with no sources, until the
    first :meth:`install`) and the swap to the next. Thread-safe."""

    def __init__(self, manifest: Manifest) -> None:
        # Requests read this attribute once (the swap is one store).
        self.current = Version(0, manifest, {r.path: RoutePool(r) for r in manifest.routes})
        self._lock = threading.Lock()
        self._draining: list[RoutePool] = []  # retired pools, shut down once their requests left
        self._closed = False

    @property
    def closed(self) -> bool:
        return self._closed

    def install(self, manifest: Manifest, sources: Mapping[str, ModuleSource]) -> int | None:
        """Serve ``manifest`` with these compiled sources (route path -> source): the new
        version's number, or None once closed. Routes that keep their path and
        ``max_concurrency`` keep their pool; the others' pools drain and shut down."""
        with self._lock:
            if self._closed:
                return None
            old = self.current
            pools: dict[str, RoutePool] = {}
            for route in manifest.routes:
                pool = old.pools.get(route.path)
                if pool is None or pool.limit != route.settings.max_concurrency:
                    pool = RoutePool(route)
                pools[route.path] = pool
            kept = {id(p) for p in pools.values()}
            retired = [p for p in old.pools.values() if id(p) not in kept]
            self.current = Version(old.number + 1, manifest, pools, dict(sources))
            self._draining = [p for p in self._draining if not p.shut] + retired
        for pool in retired:
            pool.retire()
        return old.number + 1

    def close(self) -> None:
        """Install nothing more and shut every pool down, waiting for the running
        handlers (each ends by its timeout); requests not started yet are cancelled."""
        with self._lock:
            self._closed = True
            pools = [*self.current.pools.values(), *self._draining]
        for pool in pools:
            pool.workers.shutdown(wait=True, cancel_futures=True)
