"""Compiled-module cache: on disk across processes, and an in-process LRU.

Where: ``$WASMSCOPE_CACHE_DIR``, else ``$XDG_CACHE_HOME/wasmscope``, else
``~/.cache/wasmscope``; entries live in ``modules/<engine fingerprint>/<sha[:2]>/``.
The engine fingerprint (:meth:`EngineSettings.fingerprint`) covers the settings, the
wasmtime version and the machine, so an entry is only ever offered to an engine that
can load it (and wasmtime checks again: a refused entry is deleted and recompiled).

One entry is one file, ``<module sha256>-<size>-<crc32>.cwasm`` (``.ccwasm`` for a
component): exactly the bytes of ``Module.serialize()``, so wasmtime can map it
(``deserialize_file``, ~2 ms for yosys's 170 MB) instead of copying it.

- Integrity: the size and CRC-32 in the name are checked against the file *before*
  wasmtime sees it (deserializing garbage can crash the process). A mismatch (a
  truncated or corrupted file) is deleted and the module recompiled. The check reads
  the file once (CRC-32 runs at ~4 GB/s here: ~40 ms for yosys) and then hands wasmtime
  the very file descriptor it checked (``/proc/self/fd/N``), so a concurrent replace
  cannot slip an unchecked file in between.
- Concurrent writers: each writes a temporary file in the entry's folder and renames it
  into place (``os.replace`` is atomic). wasmtime's output is deterministic, so writers
  of one module produce the same name and the last rename wins: one valid entry. Were
  the bytes to differ, the next reader loads the newest and removes the others (writers
  never delete, so an entry always survives). Readers keep their mapping of a file that
  is replaced or removed meanwhile.
- Safety: the folder is created 0700; a cache folder owned by another user or writable
  by others is not used (loading code from it would run that code), with a warning.
- Size: when a write takes the total over ``max_bytes``, the least recently used entries
  (mtime, refreshed on every hit) are removed.

Not a security boundary against the user's own account: anyone who can write to the
folder can make us run their machine code.
"""

from __future__ import annotations

import contextlib
import logging
import mmap
import os
import re
import stat
import tempfile
import threading
import time
import zlib
from collections import OrderedDict
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

__all__ = [
    "CacheResult",
    "CompiledCache",
    "DiskCache",
    "default_cache_dir",
]

log = logging.getLogger("wasmscope.runtime.compiled_cache")

_ENTRY = re.compile(r"^([0-9a-f]{64})-([0-9]+)-([0-9a-f]{8})\.(cwasm|ccwasm)$")
_TMP_PREFIX = ".tmp-"
_STALE_TMP_SECONDS = 3600.0
DEFAULT_MAX_BYTES = 8 * 1024**3


def default_cache_dir() -> Path:
    env = os.environ.get("WASMSCOPE_CACHE_DIR")
    if env:
        return Path(env).expanduser()
    xdg = os.environ.get("XDG_CACHE_HOME")
    base = Path(xdg).expanduser() if xdg else Path.home() / ".cache"
    return base / "wasmscope"


def _crc32_fd(fd: int, size: int) -> int:
    if size == 0:
        return 0
    with mmap.mmap(fd, size, access=mmap.ACCESS_READ) as m:
        return zlib.crc32(m)


@dataclass(slots=True)
class CacheResult:
    compiled: Any  # wasmtime.Module or wasmtime.component.Component
    source: str  # "memory", "disk", "miss" (compiled and stored) or "none" (compiled, disk cache off)
    seconds: float  # time to get it (compile, or load and check)
    compile_seconds: float | None = None  # when compiled here
    entry: str | None = None  # the disk entry used or written
    note: str | None = None  # e.g. why a disk entry was discarded


class DiskCache:
    """The on-disk half. Thread- and process-safe; every failure is logged and turns into
    a cache miss, never an error of the run."""

    def __init__(self, directory: str | os.PathLike[str] | None = None, *, max_bytes: int = DEFAULT_MAX_BYTES) -> None:
        self.root = Path(directory) if directory is not None else default_cache_dir()
        self.max_bytes = max_bytes
        self._usable: bool | None = None
        self._lock = threading.Lock()

    # -- layout --------------------------------------------------------------------------
    def folder(self, fingerprint: str, sha256: str) -> Path:
        return self.root / "modules" / fingerprint / sha256[:2]

    @staticmethod
    def _suffix(kind: str) -> str:
        return "ccwasm" if kind == "component" else "cwasm"

    def entries(self, fingerprint: str, sha256: str, kind: str) -> list[Path]:
        folder = self.folder(fingerprint, sha256)
        try:
            names = os.listdir(folder)
        except OSError:
            return []
        suffix = self._suffix(kind)
        out = []
        for name in names:
            m = _ENTRY.match(name)
            if m and m.group(1) == sha256 and m.group(4) == suffix:
                out.append(folder / name)
        return sorted(out, key=lambda p: p.name)

    def usable(self) -> bool:
        """Create the root (0700) if needed; refuse one that others could write to."""
        with self._lock:
            if self._usable is not None:
                return self._usable
            try:
                self.root.mkdir(parents=True, exist_ok=True, mode=0o700)
                st = self.root.stat()
                if hasattr(os, "getuid") and st.st_uid != os.getuid():
                    log.warning("compiled-module cache %s belongs to another user: not used", self.root)
                    self._usable = False
                elif st.st_mode & (stat.S_IWGRP | stat.S_IWOTH):
                    log.warning("compiled-module cache %s is writable by others: not used", self.root)
                    self._usable = False
                else:
                    self._usable = True
            except OSError as exc:
                log.warning("compiled-module cache %s unusable: %s", self.root, exc)
                self._usable = False
            return self._usable

    # -- read ------------------------------------------------------------------------------
    def load(
        self,
        fingerprint: str,
        sha256: str,
        kind: str,
        deserialize: Callable[[str], Any],
    ) -> tuple[Any, Path | None, str | None]:
        """(compiled, entry, note): the first entry that passes the integrity check and that
        wasmtime accepts; bad entries are deleted (``note`` says why). (None, None, note)
        when there is none."""
        if not self.usable():
            return None, None, None
        note: str | None = None
        for path in self._newest_first(self.entries(fingerprint, sha256, kind)):
            m = _ENTRY.match(path.name)
            assert m is not None
            want_size, want_crc = int(m.group(2)), int(m.group(3), 16)
            try:
                fd = os.open(path, os.O_RDONLY | getattr(os, "O_CLOEXEC", 0))
            except OSError:
                continue  # removed meanwhile
            try:
                st = os.fstat(fd)
                size, mtime = st.st_size, st.st_mtime
                if size != want_size:
                    note = f"cache entry {path.name} truncated ({size} of {want_size} bytes): recompiled"
                    self._discard(path)
                    continue
                crc = _crc32_fd(fd, size)
                if crc != want_crc:
                    note = f"cache entry {path.name} corrupted (CRC-32 {crc:08x}): recompiled"
                    self._discard(path)
                    continue
                proc = f"/proc/self/fd/{fd}"
                target = proc if os.path.exists(proc) else str(path)
                try:
                    compiled = deserialize(target)
                except Exception as exc:  # wasmtime refused it: other build, other CPU
                    first = str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__
                    note = f"cache entry {path.name} refused by wasmtime ({first}): recompiled"
                    self._discard(path)
                    continue
            finally:
                os.close(fd)
            self._drop_older(fingerprint, sha256, kind, path, mtime)
            with contextlib.suppress(OSError):
                os.utime(path)  # recently used, for pruning
            return compiled, path, note
        return None, None, note

    @staticmethod
    def _newest_first(paths: list[Path]) -> list[Path]:
        def mtime(p: Path) -> float:
            try:
                return p.stat().st_mtime
            except OSError:
                return 0.0

        return sorted(paths, key=mtime, reverse=True)

    def _drop_older(self, fingerprint: str, sha256: str, kind: str, keep: Path, keep_mtime: float) -> None:
        """Two writers whose compilers did not produce the same bytes leave two entries;
        a reader that loaded one removes those strictly older than it (writers never
        delete). Worst case under races: a recompilation, never a bad entry."""
        for other in self.entries(fingerprint, sha256, kind):
            if other != keep:
                try:
                    if other.stat().st_mtime < keep_mtime:
                        other.unlink()
                except OSError:
                    pass

    def _discard(self, path: Path) -> None:
        log.warning("discarding bad compiled-module cache entry %s", path)
        try:
            path.unlink()
        except FileNotFoundError:
            pass
        except OSError as exc:
            log.warning("cannot remove %s: %s", path, exc)

    # -- write -----------------------------------------------------------------------------
    def store(self, fingerprint: str, sha256: str, kind: str, payload: bytes | bytearray) -> Path | None:
        """Write an entry atomically; None (and a log line) if it could not be written."""
        if not self.usable():
            return None
        folder = self.folder(fingerprint, sha256)
        crc = zlib.crc32(payload)
        final = folder / f"{sha256}-{len(payload)}-{crc:08x}.{self._suffix(kind)}"
        tmp_name: str | None = None
        try:
            folder.mkdir(parents=True, exist_ok=True, mode=0o700)
            fd, tmp_name = tempfile.mkstemp(prefix=f"{_TMP_PREFIX}{sha256[:16]}-", dir=folder)
            with os.fdopen(fd, "wb") as f:
                f.write(payload)
            os.replace(tmp_name, final)
            tmp_name = None
        except OSError as exc:
            log.warning("cannot write compiled-module cache entry %s: %s", final, exc)
            return None
        finally:
            if tmp_name is not None:
                with contextlib.suppress(OSError):
                    os.unlink(tmp_name)
        self._clean_tmp(folder)
        self.prune()
        return final

    def _clean_tmp(self, folder: Path) -> None:
        now = time.time()
        try:
            for name in os.listdir(folder):
                if name.startswith(_TMP_PREFIX):
                    p = folder / name
                    try:
                        if now - p.stat().st_mtime > _STALE_TMP_SECONDS:
                            p.unlink()
                    except OSError:
                        pass
        except OSError:
            pass

    def prune(self, max_bytes: int | None = None) -> int:
        """Remove least recently used entries until the total is under ``max_bytes``;
        returns the bytes removed."""
        limit = self.max_bytes if max_bytes is None else max_bytes
        found: list[tuple[float, int, Path]] = []
        base = self.root / "modules"
        for dirpath, _dirs, files in os.walk(base):
            for name in files:
                if _ENTRY.match(name):
                    p = Path(dirpath) / name
                    try:
                        st = p.stat()
                    except OSError:
                        continue
                    found.append((st.st_mtime, st.st_size, p))
        total = sum(size for _, size, _ in found)
        removed = 0
        for _mtime, size, p in sorted(found, key=lambda t: t[0]):
            if total <= limit:
                break
            try:
                p.unlink()
            except OSError:
                continue
            total -= size
            removed += size
        return removed

    def clear(self) -> None:
        """Remove every entry (the folder layout stays)."""
        for dirpath, _dirs, files in os.walk(self.root / "modules"):
            for name in files:
                if _ENTRY.match(name) or name.startswith(_TMP_PREFIX):
                    with contextlib.suppress(OSError):
                        os.unlink(os.path.join(dirpath, name))


class CompiledCache:
    """Compiled modules by (engine fingerprint, sha256, kind): the in-process LRU first,
    then the disk, else compile (once per key even when threads ask together) and store."""

    def __init__(self, disk: DiskCache | None, *, capacity: int = 16) -> None:
        self.disk = disk
        self.capacity = capacity
        self._lru: OrderedDict[tuple[str, str, str], Any] = OrderedDict()
        self._lock = threading.Lock()
        self._key_locks: dict[tuple[str, str, str], threading.Lock] = {}

    def __len__(self) -> int:
        return len(self._lru)

    def peek(self, key: tuple[str, str, str]) -> Any:
        with self._lock:
            item = self._lru.get(key)
            if item is not None:
                self._lru.move_to_end(key)
            return item

    def _put(self, key: tuple[str, str, str], item: Any) -> None:
        with self._lock:
            self._lru[key] = item
            self._lru.move_to_end(key)
            while len(self._lru) > self.capacity:
                self._lru.popitem(last=False)

    def clear(self) -> None:
        with self._lock:
            self._lru.clear()

    def get(
        self,
        fingerprint: str,
        sha256: str,
        kind: str,
        *,
        compile: Callable[[], Any],
        deserialize: Callable[[str], Any],
        serialize: Callable[[Any], bytes | bytearray],
    ) -> CacheResult:
        key = (fingerprint, sha256, kind)
        t0 = time.perf_counter()
        item = self.peek(key)
        if item is not None:
            return CacheResult(item, "memory", time.perf_counter() - t0)
        with self._lock:
            key_lock = self._key_locks.setdefault(key, threading.Lock())
        with key_lock:
            item = self.peek(key)  # another thread may have finished it meanwhile
            if item is not None:
                return CacheResult(item, "memory", time.perf_counter() - t0)
            note = None
            disk = self.disk if self.disk is not None and self.disk.usable() else None
            if disk is not None:
                loaded, entry, note = disk.load(fingerprint, sha256, kind, deserialize)
                if loaded is not None:
                    self._put(key, loaded)
                    return CacheResult(loaded, "disk", time.perf_counter() - t0, entry=str(entry), note=note)
            tc = time.perf_counter()
            compiled = compile()
            compile_seconds = time.perf_counter() - tc
            self._put(key, compiled)
            if disk is None:
                return CacheResult(compiled, "none", time.perf_counter() - t0, compile_seconds)
            written: Path | None = None
            try:
                written = disk.store(fingerprint, sha256, kind, serialize(compiled))
            except Exception as exc:  # serialization failed: run anyway
                log.warning("cannot serialize compiled module: %s", exc)
            return CacheResult(
                compiled,
                "miss",
                time.perf_counter() - t0,
                compile_seconds,
                entry=str(written) if written else None,
                note=note,
            )
