"""Hot reload for ``wasmscope serve``: a changed module or manifest is served without
dropping a request.

Versions and pinning
--------------------
A :class:`~wasmscope.gateway.app.Gateway` serves one *version* at a time
(:mod:`wasmscope.gateway.versions`): a manifest, one worker pool per route, and for
every route the
:class:`~wasmscope.runtime.identity.ModuleSource` it was compiled from, bytes kept in
memory (*pinned*). A request runs its route's pinned source (``Runtime.run`` takes a
ModuleSource as is), never what is on disk at that moment, so a module file being
rewritten is never served half-written, and a request always runs a version that
compiled. The version is picked once per request, by the first piece that looks at the
manifest (the tracing, metrics or API-key middleware, else the gateway), and kept in the
ASGI scope: the key check, the route labels and the handler all see the same version.

Watching
--------
:class:`Reloader` polls ``os.stat`` (no dependency, no inotify limits, works on every
file system and in containers): the manifest file (for a folder of handlers: its
``*.wasm`` listing) and every route's module file, as (device, inode, size, mtime). A
change is loaded once the stamps have stayed the same for two polls in a row (one
interval without a write: a copy in progress is not picked up), and a file whose stamp
moves while it is read is left for a later poll. Then, on the watcher thread, never on
the event loop:

1. the manifest is read again (a :class:`UsageError` names the file);
2. every module file whose stamp changed is read, hashed and compiled through the
   gateway's shared Runtime, for the engine its route's limits need (unchanged modules
   are cache hits);
3. when all of that worked, the new version replaces the old one in one attribute store.

A reload is all or nothing: on any error (logged on ``wasmscope.gateway``) the previous
version keeps serving every route, and the same files are not tried again until one of
them changes. Requests that already hold the old version finish on it; new requests get
the new one from the swap on. A route that keeps its ``max_concurrency`` keeps its pool
and its count of running instances (the limit holds across reloads); a pool the new
version no longer uses (route removed, or its limit changed) is shut down, without
waiting, once its last request has left.

API keys: :class:`~wasmscope.gateway.auth.ApiKeyAuth` reads the keys and the routes'
``auth`` of each request's version; ``auth.wrap(gateway, always=True)`` (what ``serve``
does with reloading on) puts it in front even when no route needs a key yet. A gateway
with no API-key middleware refuses a reload that would turn auth on (restart it).

One INFO line per reload: the version number, what changed (routes added and removed,
module files as sha256 prefixes old -> new, changed settings, keys) and the compile time.

Costs and limits: one ``os.stat`` per watched file per interval; every served module's
bytes stay in memory (the price of never running a file half-written). A change is
seen by its stamp: two writes of the same size within the file system's timestamp
granularity look alike (rename a new file over the old one instead). A manifest's
module path that is a symbolic link is resolved when the manifest is read, so
re-pointing the link is seen at the next change of the manifest (touch it); in a folder
of handlers, links are resolved at every poll.
"""

from __future__ import annotations

import logging
import os
import threading
import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass, fields
from pathlib import Path
from typing import TYPE_CHECKING

from wasmscope.errors import UsageError
from wasmscope.gateway.manifest import Manifest, load_manifest, manifest_from_dir

if TYPE_CHECKING:
    from wasmscope.gateway.versions import Versions
    from wasmscope.runtime import Runtime
    from wasmscope.runtime.identity import ModuleSource

__all__ = ["DEFAULT_INTERVAL", "Pinned", "Reloader", "Stamp", "describe_changes", "file_stamp"]

log = logging.getLogger("wasmscope.gateway")

DEFAULT_INTERVAL = 1.0  # seconds between two polls
STOP_WAIT = 60.0  # seconds close() waits for a reload that is still compiling
START_TRIES = 5  # reads of a module that keeps changing at start before giving up
SHA_SHOWN = 12  # hex digits of a module's sha256 in the log

Stamp = tuple[int, int, int, int]  # st_dev, st_ino, st_size, st_mtime_ns
Snapshot = dict[str, Stamp | None]  # watched file -> its stamp (None: missing)


def file_stamp(path: str) -> Stamp | None:
    """(device, inode, size, mtime in ns) of ``path``; None when it cannot be stat'ed."""
    try:
        st = os.stat(path)
    except OSError:
        return None
    return (st.st_dev, st.st_ino, st.st_size, st.st_mtime_ns)


class _Unstable(Exception):
    """A file changed while it was read: try again later."""


@dataclass(frozen=True, slots=True)
class Pinned:
    """A module file as read once: its identified source (bytes kept) and the file's
    stamp at that read."""

    source: ModuleSource
    stamp: Stamp


def _pin(path: str) -> Pinned:
    """Read, hash and identify ``path``. Raises :class:`_Unstable` when its stamp moved
    during the read, :class:`UsageError` when it cannot be read."""
    from wasmscope.runtime.identity import load_source

    before = file_stamp(path)
    if before is None:
        raise UsageError(f"{path}: no such file")
    source = load_source(path)  # a private source: nobody else drops its bytes
    if file_stamp(path) != before:
        raise _Unstable(path)
    return Pinned(source, before)


def _short(source: ModuleSource | None) -> str:
    return source.sha256[:SHA_SHOWN] if source is not None else "?"


def _first_line(exc: BaseException) -> str:
    text = str(exc).strip()
    return text.splitlines()[0] if text else "refused by wasmtime"


def describe_changes(
    old: Manifest, old_sources: Mapping[str, ModuleSource], new: Manifest, new_sources: Mapping[str, ModuleSource]
) -> list[str]:
    """What differs between two versions, one short phrase per route (``+/new (x.wasm
    1a2b...)``, ``-/old``, ``/hello: hello.wasm 1a2b... -> 3c4d...``, ``/api/...: timeout
    10.0 -> 2.0``) and one for the keys. Empty when they serve the same thing."""
    out: list[str] = []
    before = {r.path: r for r in old.routes}
    for route in new.routes:
        src = new_sources.get(route.path)
        prev = before.get(route.path)
        if prev is None:
            out.append(f"+{route.path} ({route.module.name} {_short(src)})")
            continue
        parts: list[str] = []
        prev_src = old_sources.get(route.path)
        if prev.module != route.module:
            parts.append(f"{prev.module.name} {_short(prev_src)} -> {route.module.name} {_short(src)}")
        elif prev_src is None or src is None or prev_src.sha256 != src.sha256:
            parts.append(f"{route.module.name} {_short(prev_src)} -> {_short(src)}")
        for name in ("argv", "env", "dirs", "auth"):
            if getattr(prev, name) != getattr(route, name):
                parts.append(f"auth {prev.auth} -> {route.auth}" if name == "auth" else name)
        for f in fields(route.settings):
            a, b = getattr(prev.settings, f.name), getattr(route.settings, f.name)
            if a != b:
                parts.append(f"{f.name} {a} -> {b}")
        if parts:
            out.append(f"{route.path}: {', '.join(parts)}")
    paths = {r.path for r in new.routes}
    out.extend(f"-{r.path}" for r in old.routes if r.path not in paths)
    if old.keys != new.keys:
        was, now = {k.id: k for k in old.keys}, {k.id: k for k in new.keys}
        ids = [f"+{i}" for i in now if i not in was] + [f"-{i}" for i in was if i not in now]
        ids += [f"~{i}" for i in now if i in was and was[i] != now[i]]
        out.append(f"keys {' '.join(ids)}")
    if not out and old != new:  # nothing a route or a key shows (e.g. only the defaults' text)
        out.append("manifest")
    return out


class Reloader:
    """Loads what a :class:`~wasmscope.gateway.app.Gateway` serves from disk into its
    ``versions``, compiled by its ``runtime``: every route's module at start
    (:meth:`load`), then again on every change (:meth:`check` now, :meth:`poll` for the
    watcher, which :meth:`start` runs on a thread every ``interval`` seconds; None: no
    watcher). ``auth_enforced()``: whether an API-key middleware checks the keys (else a
    reload that turns auth on is refused). Thread-safe: one load at a time."""

    def __init__(
        self, versions: Versions, runtime: Runtime, interval: float | None = DEFAULT_INTERVAL, *,
        auth_enforced: Callable[[], bool] = lambda: False,
    ) -> None:  # fmt: skip
        if interval is not None and not interval > 0:
            raise UsageError(f"the reload interval must be above 0 seconds, not {interval!r}")
        self.versions = versions
        self.runtime = runtime
        self.auth_enforced = auth_enforced
        self.interval = interval
        manifest = versions.current.manifest
        # The manifest's own file or folder (as it was given: equal manifests compare equal);
        # a manifest made in memory has none, and only its modules are watched.
        self.target: str | None = manifest.source if os.path.exists(manifest.source) else None
        self.folder = self.target is not None and os.path.isdir(self.target)
        self.reloads = 0  # versions swapped in after the first
        self.failures = 0  # reloads refused (logged)
        self._lock = threading.Lock()
        self._files: dict[str, Pinned] = {}  # module file -> what the current version runs
        self._extra: frozenset[str] = frozenset()  # modules of a manifest that failed to load
        self._seen: Snapshot | None = None  # the stamps at the last load (or failed one)
        self._pending: Snapshot | None = None  # stamps of the previous poll, not loaded yet
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None

    @property
    def name(self) -> str:
        return self.target or self.versions.current.manifest.source

    # -- loading ------------------------------------------------------------------------------
    def load(self) -> None:
        """Pin and compile every route's module of the gateway's manifest and serve them
        (at start). Raises :class:`UsageError` naming the route or the file."""
        with self._lock:
            manifest = self.versions.current.manifest
            snap = self._snapshot()
            attempt = 0
            while True:
                try:
                    files, observed = self._pin_all(manifest)
                    break
                except _Unstable as exc:
                    attempt += 1
                    if attempt == START_TRIES:
                        raise UsageError(f"{exc}: the file keeps changing while it is read") from None
                    time.sleep(0.1 * attempt)
            sources = {r.path: files[str(r.module)].source for r in manifest.routes}
            self._compile(manifest, sources)
            self.versions.install(manifest, sources)
            self._files = files
            self._seen = {**observed, **snap}
            self._pending = None

    def check(self) -> bool:
        """Look now (no waiting for files to settle) and serve what changed: True when a
        new version is served, False when nothing changed or it could not be loaded (the
        error is logged, the previous version keeps serving). Compiles on this thread."""
        with self._lock:
            if self._seen is None:
                raise UsageError("the gateway has not loaded its modules yet: call prepare() (or start the ASGI lifespan) first")
            snap = self._snapshot()
            if snap == self._seen:
                return False
            return self._attempt(snap)

    def poll(self) -> bool:
        """One step of the watcher: a change is loaded once the watched files have the
        same stamps on two polls in a row. True when a new version is served."""
        with self._lock:
            if self._seen is None or self._stop.is_set():
                return False
            snap = self._snapshot()
            if snap == self._seen:
                self._pending = None
                return False
            if snap != self._pending:
                self._pending = snap  # still moving, or seen for the first time: wait one poll
                return False
            return self._attempt(snap)

    def _snapshot(self) -> Snapshot:
        paths = set(self._files) | self._extra
        if self.target is not None:
            if self.folder:
                paths.update(str(p.resolve()) for p in Path(self.target).glob("*.wasm") if p.is_file())
            else:
                paths.add(self.target)
        return {p: file_stamp(p) for p in sorted(paths)}

    def _read_manifest(self) -> Manifest:
        current = self.versions.current.manifest
        if self.target is None:
            return current
        if self.folder:
            return manifest_from_dir(self.target, current.defaults)
        return load_manifest(self.target)

    def _pin_all(self, manifest: Manifest) -> tuple[dict[str, Pinned], Snapshot]:
        """The pinned source of every module file of ``manifest`` (the current one when
        the file's stamp did not move), and the stamps seen."""
        files: dict[str, Pinned] = {}
        observed: Snapshot = {}
        for route in manifest.routes:
            path = str(route.module)
            if path in files:
                continue
            now = observed[path] = file_stamp(path)
            old = self._files.get(path)
            if old is not None and old.stamp == now:
                files[path] = old
                continue
            new = _pin(path)
            observed[path] = new.stamp
            if old is not None and old.source.sha256 == new.source.sha256:
                new = Pinned(old.source, new.stamp)  # touched, same bytes: nothing to compile
            files[path] = new
        return files, observed

    def _compile(self, manifest: Manifest, sources: Mapping[str, ModuleSource]) -> float:
        """Compile every route's source for its engine (cached); the seconds it took."""
        from wasmscope.runtime.engine import engine_for

        rt = self.runtime
        t0 = time.perf_counter()
        for route in manifest.routes:
            source = sources[route.path]
            try:
                rt.compile(source, engine_for(rt.engine_settings(route.limits)))
            except Exception as exc:  # wasmtime refuses it (no wasmtime import outside runtime/)
                raise UsageError(
                    f"route {route.path}: {route.module} (sha256 {_short(source)}) cannot be compiled: {_first_line(exc)}"
                ) from None
        return time.perf_counter() - t0

    def _auth_check(self, old: Manifest, new: Manifest) -> None:
        if self.auth_enforced():
            return
        had = {r.path for r in old.routes if r.auth == "key"}
        turned_on = [r.path for r in new.routes if r.auth == "key" and r.path not in had]
        if turned_on:
            raise UsageError(
                f"{self.name}: {', '.join(turned_on)} would need an API key, but this server has no "
                "API-key middleware (it started with no route needing a key): restart it to turn auth on"
            )

    def _attempt(self, snap: Snapshot) -> bool:
        current = self.versions.current
        serving, old, old_sources = current.number, current.manifest, current.sources
        observed: Snapshot = {}
        try:
            manifest = self._read_manifest()
            self._extra = frozenset(str(r.module) for r in manifest.routes) - set(self._files)
            files, observed = self._pin_all(manifest)
            sources = {r.path: files[str(r.module)].source for r in manifest.routes}
            changes = describe_changes(old, old_sources, manifest, sources)
            seconds = self._compile(manifest, sources) if changes else 0.0
            if changes:
                self._auth_check(old, manifest)
        except _Unstable as exc:
            # _seen stays: the next polls see the change again and wait for it to settle
            log.debug("serve: %s is being written; reload put off", exc)
            self._pending = None
            return False
        except UsageError as exc:
            self._seen = {**observed, **snap}
            self._pending = None
            self.failures += 1
            if not self.versions.closed:
                log.error("serve: reload failed, still serving version %d: %s", serving, exc)
            return False
        self._seen = {**observed, **snap}
        self._pending = None
        self._files = files
        self._extra = frozenset()
        if not changes:
            return False  # touched, or written again with the same bytes
        if self._stop.is_set() or (number := self.versions.install(manifest, sources)) is None:
            return False  # closing
        self.reloads += 1
        log.info(
            "serve: reloaded %s: version %d -> %d: %s (compiled in %.1f ms)",
            self.name, serving, number, "; ".join(changes), seconds * 1000,
        )  # fmt: skip
        return True

    # -- the watcher thread -------------------------------------------------------------------
    @property
    def watching(self) -> bool:
        return self._thread is not None and self._thread.is_alive()

    def start(self) -> None:
        """Poll every :attr:`interval` seconds on a daemon thread (no-op without an
        interval or when already watching)."""
        if self.interval is None or self.watching:
            return
        self._stop.clear()
        self._thread = threading.Thread(target=self._watch, name="wasmscope-reload", daemon=True)
        self._thread.start()

    def _watch(self) -> None:
        assert self.interval is not None
        while not self._stop.wait(self.interval):
            try:
                self.poll()
            except Exception:  # the watcher never dies of one bad poll
                log.exception("serve: the reload watcher failed; it keeps watching")

    def stop(self) -> None:
        """Stop the watcher (waiting for a reload in progress). Idempotent."""
        self._stop.set()
        thread, self._thread = self._thread, None
        if thread is not None and thread is not threading.current_thread():
            thread.join(STOP_WAIT)
