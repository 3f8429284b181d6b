"""Audited modules cached on disk, beside the instrumented ones (same folder, same
atomic writes and checks as :mod:`wasmscope.instrument.instrumented_cache`).

The audit pass (:mod:`wasmscope.instrument.wasi_audit`) is policy-free: its output
depends only on the input bytes, the pass version, the path capacity and whether
the counters pass ran first. One entry is two files named by
``sha256(input)-a<audit version>-p<path capacity>`` (plus ``-v<pass version>-c<stack
capacity>`` when composed with the counters pass): ``.wasm`` and ``.json`` (both
layouts and the sha256 and size of the ``.wasm``).
"""

from __future__ import annotations

import hashlib
import logging
from dataclasses import dataclass
from pathlib import Path

from wasmscope.instrument.audit_layout import AuditLayout
from wasmscope.instrument.counters_layout import CountersLayout
from wasmscope.instrument.instrumented_cache import default_cache_dir, read_entry, write_entry
from wasmscope.instrument.shadow_stack import PASS_VERSION, instrument
from wasmscope.instrument.wasi_audit import AUDIT_PASS_VERSION, audit

__all__ = ["AuditedModule", "audit_cached", "audit_key", "audit_module"]

log = logging.getLogger("wasmscope.instrument.audited_cache")


@dataclass(frozen=True)
class AuditedModule:
    """The audited bytes, the audit layout (None: nothing to audit, ``wasm`` is the
    input or its instrumented twin) and the counters layout when composed."""

    wasm: bytes
    layout: AuditLayout | None
    counters: CountersLayout | None = None


def audit_key(
    input_sha256: str, path_capacity: int, counted: bool, stack_capacity: int = 65536
) -> str:
    key = f"{input_sha256}-a{AUDIT_PASS_VERSION}-p{path_capacity}"
    return f"{key}-v{PASS_VERSION}-c{stack_capacity}" if counted else key


def _load(folder: Path, key: str) -> AuditedModule | None:
    entry = read_entry(folder, key)
    if entry is None:
        return None
    wasm, meta = entry
    try:
        layout = AuditLayout.from_dict(meta["audit"]) if meta["audit"] is not None else None
        counters = CountersLayout.from_dict(meta["counters"]) if meta["counters"] is not None else None
    except (KeyError, TypeError, ValueError):
        return None
    if layout is not None and layout.version != AUDIT_PASS_VERSION:
        return None
    return AuditedModule(wasm, layout, counters)


def _store(folder: Path, key: str, result: AuditedModule) -> None:
    meta = {
        "audit": result.layout.to_dict() if result.layout is not None else None,
        "counters": result.counters.to_dict() if result.counters is not None else None,
    }
    write_entry(folder, key, result.wasm, meta)


def audit_module(data: bytes, *, path_capacity: int = 256, counted: bool = False) -> AuditedModule:
    """The audit pass, after the counters pass when ``counted``."""
    counters = None
    if counted:
        inst = instrument(data)
        data, counters = inst.wasm, inst.layout
    result = audit(data, path_capacity=path_capacity)
    return AuditedModule(result.wasm, result.layout, counters)


def audit_cached(
    data: bytes,
    cache_dir: str | Path | None = None,
    *,
    path_capacity: int = 256,
    counted: bool = False,
) -> AuditedModule:
    """:func:`audit_module` through the on-disk cache (``cache_dir``, default the
    instrumentation cache's folder)."""
    folder = Path(cache_dir) if cache_dir is not None else default_cache_dir()
    key = audit_key(hashlib.sha256(data).hexdigest(), path_capacity, counted)
    hit = _load(folder, key)
    if hit is not None:
        return hit
    result = audit_module(data, path_capacity=path_capacity, counted=counted)
    try:
        _store(folder, key, result)
    except OSError as exc:
        log.warning("cannot write the audit cache in %s: %s", folder, exc)
    return result
