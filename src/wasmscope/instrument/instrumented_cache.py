"""Instrumented modules cached on disk: the pass takes seconds on a large module
(~15 s for a 69 MB one), its result depends only on the input bytes, the pass
version and the stack capacity.

Where: ``cache_dir`` if given, else ``$WASMSCOPE_CACHE_DIR/instrumented``, else
``$XDG_CACHE_HOME/wasmscope/instrumented``, else ``~/.cache/wasmscope/instrumented``.
One entry is two files named by ``sha256(input)-v<pass version>-c<capacity>``:
``.wasm`` (the instrumented bytes) and ``.json`` (the layout, the list of
uninstrumented functions, and the sha256 and size of the ``.wasm``).

Each file is written to a temporary file in the same folder and renamed into
place (``os.replace`` is atomic), the ``.wasm`` before the ``.json``; a reader
trusts an entry only if the ``.wasm`` matches the digest its ``.json`` records,
so a torn or stale pair is recomputed and rewritten. A cache that cannot be
written (read-only, full) is skipped with a warning: the result is returned anyway.
"""

from __future__ import annotations

import contextlib
import hashlib
import json
import logging
import os
import tempfile
from pathlib import Path
from typing import Any

from wasmscope.instrument.counters_layout import CountersLayout
from wasmscope.instrument.shadow_stack import PASS_VERSION, Instrumented, instrument

__all__ = ["cache_key", "cached_layout", "default_cache_dir", "instrument_cached", "read_entry", "write_entry"]

log = logging.getLogger("wasmscope.instrument.instrumented_cache")


def default_cache_dir() -> Path:
    env = os.environ.get("WASMSCOPE_CACHE_DIR")
    if env:
        return Path(env) / "instrumented"
    xdg = os.environ.get("XDG_CACHE_HOME")
    base = Path(xdg) if xdg else Path.home() / ".cache"
    return base / "wasmscope" / "instrumented"


def cache_key(data: bytes, stack_capacity: int = 65536) -> str:
    return _key(hashlib.sha256(data).hexdigest(), stack_capacity)


def _key(input_sha256: str, stack_capacity: int) -> str:
    return f"{input_sha256}-v{PASS_VERSION}-c{stack_capacity}"


def cached_layout(
    input_sha256: str, cache_dir: str | Path | None = None, *, stack_capacity: int = 65536
) -> tuple[CountersLayout, str] | None:
    """The layout and the instrumented bytes' sha256 of a cached entry, from its
    ``.json`` alone: a host whose compiled-code cache already holds that sha256 never
    reads (nor hashes) the instrumented module; one that must compile it goes through
    :func:`instrument_cached`, which checks the ``.wasm``. None when not cached."""
    folder = Path(cache_dir) if cache_dir is not None else default_cache_dir()
    try:
        meta = json.loads((folder / f"{_key(input_sha256, stack_capacity)}.json").read_text(encoding="utf-8"))
        layout = CountersLayout.from_dict(meta["layout"])
        wasm_sha256 = str(meta["wasm_sha256"])
    except (OSError, ValueError, KeyError, TypeError):
        return None
    if layout.version != PASS_VERSION or len(wasm_sha256) != 64:
        return None
    return layout, wasm_sha256


def read_entry(folder: Path, key: str) -> tuple[bytes, dict[str, Any]] | None:
    """An entry's ``.wasm`` and ``.json`` (its metadata), or None when either is missing,
    unreadable or the bytes are not the ones the metadata names (size and sha256)."""
    try:
        meta = json.loads((folder / f"{key}.json").read_text(encoding="utf-8"))
        wasm = (folder / f"{key}.wasm").read_bytes()
        if len(wasm) != meta["wasm_size"] or hashlib.sha256(wasm).hexdigest() != meta["wasm_sha256"]:
            return None
    except (OSError, ValueError, KeyError, TypeError):
        return None
    return wasm, meta


def write_entry(folder: Path, key: str, wasm: bytes, meta: dict[str, Any]) -> None:
    """Writes an entry (each file atomically), ``meta`` with the bytes' size and sha256."""
    folder.mkdir(parents=True, exist_ok=True, mode=0o700)
    meta = {**meta, "wasm_sha256": hashlib.sha256(wasm).hexdigest(), "wasm_size": len(wasm)}
    _write_atomic(folder / f"{key}.wasm", wasm)
    _write_atomic(folder / f"{key}.json", json.dumps(meta, sort_keys=True).encode())


def _load(folder: Path, key: str) -> Instrumented | None:
    entry = read_entry(folder, key)
    if entry is None:
        return None
    wasm, meta = entry
    try:
        layout = CountersLayout.from_dict(meta["layout"])
        uninstrumented = tuple(int(f) for f in meta.get("uninstrumented", ()))
    except (KeyError, TypeError, ValueError):
        return None
    if layout.version != PASS_VERSION:
        return None
    return Instrumented(wasm, layout, uninstrumented)


def _write_atomic(path: Path, payload: bytes) -> None:
    fd, tmp = tempfile.mkstemp(prefix=".tmp-", dir=path.parent)
    try:
        with os.fdopen(fd, "wb") as f:
            f.write(payload)
        os.replace(tmp, path)
    except BaseException:
        with contextlib.suppress(OSError):
            os.unlink(tmp)
        raise


def _store(folder: Path, key: str, result: Instrumented) -> None:
    meta = {"layout": result.layout.to_dict(), "uninstrumented": list(result.uninstrumented)}
    write_entry(folder, key, result.wasm, meta)


def instrument_cached(
    data: bytes, cache_dir: str | Path | None = None, *, stack_capacity: int = 65536
) -> Instrumented:
    """:func:`~wasmscope.instrument.instrument`, through the on-disk cache."""
    folder = Path(cache_dir) if cache_dir is not None else default_cache_dir()
    key = cache_key(data, stack_capacity)
    hit = _load(folder, key)
    if hit is not None:
        return hit
    result = instrument(data, stack_capacity=stack_capacity)
    try:
        _store(folder, key, result)
    except OSError as exc:
        log.warning("cannot write the instrumentation cache in %s: %s", folder, exc)
    return result
