"""What is being run: bytes, sha256, name, producers, and (lazily) names and line tables.

Uses wasmscope's own decoder (:mod:`wasmscope.binary`), which only indexes sections
when a module is opened: identity costs the sha256 of the bytes and little else. The
name section and the DWARF line table are decoded only when a trap needs symbolizing.

A :class:`SourceCache` remembers, per file (path, device, inode, size, mtime), its
sha256 and identity, so a Runtime that runs the same file again neither reads nor
hashes it (yosys: 68 MB, ~40 ms saved per run).
"""

from __future__ import annotations

import hashlib
import os
import threading
from collections import OrderedDict
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

from wasmscope.errors import DecodeError, UsageError
from wasmscope.runtime.record import ModuleIdentity

if TYPE_CHECKING:
    from wasmscope.binary.component import Component
    from wasmscope.binary.module import Module

__all__ = ["ModuleSource", "SourceCache", "load_source"]


def _producers_of(sections: list[Any]) -> dict[str, list[str]]:
    out: dict[str, list[str]] = {}
    for prod in sections:
        if prod is None:
            continue
        for fname, values in prod.fields.items():
            seen = out.setdefault(fname, [])
            for name, version in values:
                text = f"{name} {version}".strip()
                if text not in seen:
                    seen.append(text)
    return out


def _module_producers(module: Module) -> Any:
    from wasmscope.binary.custom import decode_producers

    for sec in module.custom_sections("producers"):
        try:
            return decode_producers(module.data, sec.content_start, sec.end)
        except DecodeError:
            return None
    return None


# WASI preview 1 calls that can wait in the host for as long as the guest asks.
_BLOCKING_IMPORTS = frozenset({"poll_oneoff", "sock_accept", "sock_recv", "sock_send"})


class ModuleSource:
    """One module or component, identified. ``data`` may be dropped after identification
    and re-read from ``path`` when needed (:meth:`read_bytes`)."""

    def __init__(self, data: bytes, sha256: str, path: str | None) -> None:
        from wasmscope.binary.component import is_component

        self.sha256 = sha256
        self.path = path
        self.size = len(data)
        self.kind = "component" if is_component(data) else "module"
        self._data: bytes | None = data
        self._lock = threading.Lock()
        self._decoded: Module | Component | None = None
        self._names: dict[int, str] | None = None
        self._module_name: str | None = None
        self._lines: Any = False  # False: not tried yet
        self.decode_error: str | None = None
        # Facts read once here, so that later runs never need the bytes again:
        self.memory_count: int | None = None  # memories a module defines or imports
        self.run_export: str | None = None  # a component's wasi:cli/run@VERSION export
        # A module that can wait in a host call (a sleep), where no epoch or budget
        # reaches it: serve never runs it on its event loop's thread. Components: True.
        self.may_block = True
        self.identity = self._identify(data)

    # -- identity ------------------------------------------------------------------------
    def _identify(self, data: bytes) -> ModuleIdentity:
        producers: dict[str, list[str]] = {}
        try:
            decoded: Any = self.decoded(data)
            if self.kind == "component":
                sections = [decoded.producers] + [_module_producers(m) for m in decoded.all_core_modules()]
                producers = _producers_of(sections)
                self.run_export = next(
                    (n for n in decoded.interfaces_exported() if n == "wasi:cli/run" or n.startswith("wasi:cli/run@")),
                    None,
                )
            else:
                producers = _producers_of([_module_producers(decoded)])
                self.memory_count = len(decoded.memories) + len(decoded.imported(2))
                self.may_block = any(i.name in _BLOCKING_IMPORTS for i in decoded.imported(0))
        except DecodeError as exc:
            # wasmtime has the last word (it may still accept it); the runner reports it.
            self.decode_error = str(exc)
        name = os.path.basename(self.path) if self.path else (self.module_name() or "<bytes>")
        return ModuleIdentity(
            sha256=self.sha256,
            name=name,
            size=self.size,
            kind=self.kind,
            path=self.path,
            producers=producers,
        )

    def read_bytes(self) -> bytes:
        """The bytes (re-read from the file if they were dropped; checked against sha256)."""
        if self._data is not None:
            return self._data
        assert self.path is not None
        data = Path(self.path).read_bytes()
        if hashlib.sha256(data).hexdigest() != self.sha256:
            raise UsageError(f"{self.path} changed while running")
        return data

    def drop_bytes(self) -> None:
        """Forget the bytes when they can be read again from the file."""
        if self.path is not None:
            with self._lock:
                self._data = None
                self._decoded = None

    def decoded(self, data: bytes | None = None) -> Module | Component:
        """Our decoder's view (lazy: sections indexed only). Raises ``DecodeError``."""
        with self._lock:
            if self._decoded is None:
                from wasmscope.binary.component import Component
                from wasmscope.binary.module import Module

                raw = data if data is not None else self.read_bytes()
                self._decoded = Component(raw) if self.kind == "component" else Module(raw)
            return self._decoded

    def core_module(self) -> Module | None:
        """The core module (None for a component)."""
        if self.kind == "component":
            return None
        return self.decoded()  # type: ignore[return-value]

    # -- symbols -----------------------------------------------------------------------------
    def _name_section(self) -> Any:
        from wasmscope.binary.custom import decode_name

        if self.decode_error is not None:
            return None
        module = self.core_module()
        if module is None:
            return None
        for sec in module.custom_sections("name"):
            try:
                return decode_name(module.data, sec.content_start, sec.end)
            except DecodeError:
                return None
        return None

    def module_name(self) -> str | None:
        if self._module_name is None and self.kind == "module" and self.decode_error is None:
            ns = self._name_section()
            self._module_name = ns.module if ns is not None else None
            if ns is not None and self._names is None:
                self._names = dict(ns.functions)
        return self._module_name

    def function_names(self) -> dict[int, str]:
        """Function index -> name, from the name section (empty without one)."""
        if self._names is None:
            ns = self._name_section()
            self._names = dict(ns.functions) if ns is not None else {}
        return self._names

    def line_table(self) -> Any:
        """The DWARF line table (``wasmscope.analysis.dwarf.LineTable``) or None: absent
        DWARF, a malformed one, or the DWARF reader not installed."""
        if self._lines is False:
            self._lines = None
            module = self.core_module() if self.decode_error is None else None
            if module is not None and module.custom_sections(".debug_line"):
                try:
                    from wasmscope.analysis.dwarf import LineTable
                except ImportError:
                    return None
                try:
                    self._lines = LineTable.from_module(module)
                except Exception:  # a broken .debug_line must not break a trap report
                    self._lines = None
        return self._lines

    def has_legacy_exceptions(self) -> tuple[int, int] | None:
        """(function index, byte offset) of the first legacy ``try`` / ``catch`` /
        ``rethrow`` / ``delegate`` / ``catch_all``, or None. Decodes every body: only
        called to explain a compile failure."""
        module = self.core_module() if self.decode_error is None else None
        if module is None:
            return None
        legacy = {0x06, 0x07, 0x09, 0x18, 0x19}
        for index, body in module.iter_bodies():
            try:
                instrs = body.instructions
            except DecodeError:
                continue
            for ins in instrs:
                if ins[0] in legacy:
                    return index, body.start
        return None


@dataclass(slots=True)
class _Stamp:
    path: str
    dev: int
    ino: int
    size: int
    mtime_ns: int


class SourceCache:
    """Identified sources by file stamp (and by sha256 for bytes), LRU, thread-safe."""

    def __init__(self, capacity: int = 64) -> None:
        self.capacity = capacity
        self._items: OrderedDict[tuple[Any, ...], ModuleSource] = OrderedDict()
        self._lock = threading.Lock()

    def _get(self, key: tuple[Any, ...]) -> ModuleSource | None:
        with self._lock:
            src = self._items.get(key)
            if src is not None:
                self._items.move_to_end(key)
            return src

    def _put(self, key: tuple[Any, ...], src: ModuleSource) -> None:
        with self._lock:
            self._items[key] = src
            self._items.move_to_end(key)
            while len(self._items) > self.capacity:
                self._items.popitem(last=False)

    def load(self, source: str | os.PathLike[str] | bytes | bytearray | memoryview) -> tuple[ModuleSource, bool]:
        """(the source, whether it came from this cache)."""
        if isinstance(source, bytes | bytearray | memoryview):
            data = _from_text(bytes(source))
            sha = hashlib.sha256(data).hexdigest()
            key: tuple[Any, ...] = ("sha", sha)
            hit = self._get(key)
            if hit is not None:
                return hit, True
            src = ModuleSource(data, sha, None)
            self._put(key, src)
            return src, False
        path = os.fspath(source)
        try:
            st = os.stat(path)
        except FileNotFoundError:
            raise UsageError(f"{path}: no such file") from None
        except OSError as exc:
            raise UsageError(f"{path}: {exc.strerror or exc}") from None
        if not os.path.isfile(path):
            raise UsageError(f"{path}: not a file")
        key = ("file", os.path.abspath(path), st.st_dev, st.st_ino, st.st_size, st.st_mtime_ns)
        hit = self._get(key)
        if hit is not None:
            return hit, True
        try:
            data = _from_text(Path(path).read_bytes())
        except OSError as exc:
            raise UsageError(f"{path}: {exc.strerror or exc}") from None
        src = ModuleSource(data, hashlib.sha256(data).hexdigest(), path)
        self._put(key, src)
        return src, False


def _from_text(data: bytes) -> bytes:
    """The binary of a WebAssembly text module (as ``wasmtime run x.wat`` accepts);
    anything else unchanged. The sha256 is then the binary's."""
    head = data[:4096].lstrip()
    while head.startswith(b";;"):
        nl = head.find(b"\n")
        head = head[nl + 1 :].lstrip() if nl >= 0 else b""
    if not head.startswith((b"(module", b"(component")):
        return data
    import wasmtime

    try:
        return bytes(wasmtime.wat2wasm(data.decode("utf-8")))
    except (UnicodeDecodeError, wasmtime.WasmtimeError) as exc:
        raise UsageError(f"invalid WebAssembly text: {first_line(str(exc))}") from None


def first_line(text: str) -> str:
    return next((line.strip() for line in text.strip().splitlines() if line.strip()), text.strip())


def load_source(source: str | os.PathLike[str] | bytes | bytearray | memoryview) -> ModuleSource:
    return SourceCache(capacity=1).load(source)[0]
