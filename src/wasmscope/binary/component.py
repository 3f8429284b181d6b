"""The outer layer of a component (component model Binary.md), lazily over one buffer.

Opening a component checks its preamble and indexes its sections as (id,
offset, payload span); nested core modules and components are opened on
demand over the same ``bytes`` with their own offset, so nothing is copied.
Imports and exports are decoded in full; the other vector sections only
have their item count read. Every offset reported is absolute.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, NamedTuple, TypeVar

from wasmscope.binary.leb128 import uleb
from wasmscope.binary.reader import Reader
from wasmscope.errors import DecodeError

if TYPE_CHECKING:
    from wasmscope.binary.custom import Producers
    from wasmscope.binary.module import Module

__all__ = [
    "COMPONENT_LAYER",
    "COMPONENT_VERSION",
    "SECTION_NAMES",
    "Component",
    "ComponentExport",
    "ComponentImport",
    "ComponentSection",
    "ComponentSectionId",
    "CustomSection",
    "decode",
    "is_component",
]

MAGIC = b"\x00asm"
COMPONENT_VERSION = 0x0D
COMPONENT_LAYER = 0x01
_PREAMBLE = MAGIC + bytes((COMPONENT_VERSION, 0, COMPONENT_LAYER, 0))
_MODULE_PREAMBLE = MAGIC + b"\x01\x00\x00\x00"

T = TypeVar("T")


class ComponentSectionId:
    CUSTOM = 0
    CORE_MODULE = 1
    CORE_INSTANCE = 2
    CORE_TYPE = 3
    COMPONENT = 4
    INSTANCE = 5
    ALIAS = 6
    TYPE = 7
    CANON = 8
    START = 9
    IMPORT = 10
    EXPORT = 11
    VALUE = 12


SECTION_NAMES = {
    0: "custom", 1: "core module", 2: "core instance", 3: "core type", 4: "component",
    5: "instance", 6: "alias", 7: "type", 8: "canon", 9: "start", 10: "import", 11: "export",
    12: "value",
}
# Sections whose payload is vec(item): their count is the vector length.
_VEC_SECTIONS = frozenset((2, 3, 5, 6, 7, 8, 10, 11, 12))

_CORE_SORTS = {
    0x00: "core func", 0x01: "core table", 0x02: "core memory", 0x03: "core global",
    0x10: "core type", 0x11: "module", 0x12: "core instance",
}
_SORTS = {0x01: "func", 0x02: "value", 0x03: "type", 0x04: "component", 0x05: "instance"}
# externdesc tags (0x00 is ``0x00 0x11`` core module, handled apart).
_EXTERN_KINDS = {0x01: "func", 0x02: "value", 0x03: "type", 0x04: "component", 0x05: "instance"}
# primvaltype bytes, plus 0x64 error-context of the async extension.
_PRIMVALTYPES = frozenset((*range(0x73, 0x80), 0x64))


@dataclass(slots=True, frozen=True)
class ComponentSection:
    """Where one section lies in the buffer (absolute offsets)."""

    id: int
    name: str  # the kind of section, e.g. "core module"
    offset: int  # the id byte
    payload_start: int
    payload_end: int
    custom_name: str | None = None  # custom sections only
    content_start: int = 0  # custom sections: first byte after the name
    count: int | None = None  # items in a vector section; 1 for module/component/start

    @property
    def size(self) -> int:
        return self.payload_end - self.payload_start

    @property
    def total_size(self) -> int:
        """Bytes the section takes in the file, header included."""
        return self.payload_end - self.offset


class CustomSection(NamedTuple):
    """A custom section's content span: ``data[offset:offset + size]``
    (after the name)."""

    name: str
    offset: int
    size: int


@dataclass(slots=True, frozen=True)
class ComponentImport:
    name: str  # the full name, version suffix included
    kind: str  # "module", "func", "value", "type", "component", "instance"
    type_index: int | None  # None for `(sub resource)`, primitive values, `(eq valueidx)`
    version_suffix: str | None = None  # set when the name used the 0x01 suffix form


@dataclass(slots=True, frozen=True)
class ComponentExport:
    name: str
    kind: str  # a sort: "func", "instance", ..., "module", "core func", ...
    index: int  # in the index space of ``kind``
    type_index: int | None  # from the optional ascribed externdesc
    version_suffix: str | None = None


# -- name forms -----------------------------------------------------------------
# importname' / exportname' with tag 0x01 means two things in the wild: the
# current Binary.md reads it as `name versionsuffix'`, while binaries from before
# component-model#263 (and wasm-tools / wasmtime here, which still accept them)
# read it as a plain name. A section is read the legacy way first and, if that
# does not decode to its exact end, again with the suffix form.
_LEGACY = False
_SUFFIXED = True


def _read_extern_name(r: Reader, suffixed: bool) -> tuple[str, str | None]:
    pos = r.pos
    tag = r.u8()
    if tag == 0x00 or (tag == 0x01 and not suffixed):
        return r.name(), None
    if tag == 0x01:
        name = r.name()
        suffix = r.name()
        return name + suffix, suffix
    raise DecodeError(f"malformed import/export name tag 0x{tag:02x}", pos)


def _read_valtype_index(r: Reader) -> int | None:
    """A component valtype: None for a primitive, else its type index."""
    if r.peek() in _PRIMVALTYPES:
        r.pos += 1
        return None
    pos = r.pos
    idx = r.s33()
    if idx < 0:
        raise DecodeError("malformed value type", pos)
    return idx


def _read_externdesc(r: Reader) -> tuple[str, int | None]:
    pos = r.pos
    tag = r.u8()
    if tag == 0x00:
        sub = r.u8()
        if sub != 0x11:
            raise DecodeError(f"malformed core sort 0x{sub:02x} in externdesc", r.pos - 1)
        return "module", r.u32()
    kind = _EXTERN_KINDS.get(tag)
    if kind is None:
        raise DecodeError(f"malformed externdesc 0x{tag:02x}", pos)
    if tag == 0x02:  # valuebound
        bpos = r.pos
        bound = r.u8()
        if bound == 0x00:
            r.u32()  # eq valueidx: not a type
            return kind, None
        if bound == 0x01:
            return kind, _read_valtype_index(r)
        raise DecodeError(f"malformed value bound 0x{bound:02x}", bpos)
    if tag == 0x03:  # typebound
        bpos = r.pos
        bound = r.u8()
        if bound == 0x00:
            return kind, r.u32()
        if bound == 0x01:
            return kind, None  # sub resource
        raise DecodeError(f"malformed type bound 0x{bound:02x}", bpos)
    return kind, r.u32()


def _read_sort(r: Reader) -> str:
    pos = r.pos
    sort = r.u8()
    if sort == 0x00:
        core = r.u8()
        name = _CORE_SORTS.get(core)
        if name is None:
            raise DecodeError(f"malformed core sort 0x{core:02x}", r.pos - 1)
        return name
    name = _SORTS.get(sort)
    if name is None:
        raise DecodeError(f"malformed sort 0x{sort:02x}", pos)
    return name


def _read_import(r: Reader, suffixed: bool) -> ComponentImport:
    name, suffix = _read_extern_name(r, suffixed)
    kind, type_index = _read_externdesc(r)
    return ComponentImport(name, kind, type_index, suffix)


def _read_export(r: Reader, suffixed: bool) -> ComponentExport:
    name, suffix = _read_extern_name(r, suffixed)
    kind = _read_sort(r)
    index = r.u32()
    type_index = None
    pos = r.pos
    has_desc = r.u8()
    if has_desc == 0x01:
        _, type_index = _read_externdesc(r)
    elif has_desc != 0x00:
        raise DecodeError(f"malformed optional externdesc flag 0x{has_desc:02x}", pos)
    return ComponentExport(name, kind, index, type_index, suffix)


def _check_preamble(data: bytes, offset: int, end: int) -> None:
    if end - offset < 4 or data[offset : offset + 4] != MAGIC:
        raise DecodeError("magic header not detected", offset)
    if end - offset < 8:
        raise DecodeError("unexpected end", min(end, offset + 8))
    head = data[offset + 4 : offset + 8]
    if head[2:4] != b"\x01\x00":
        if head == b"\x01\x00\x00\x00":
            raise DecodeError("a core module, not a component", offset + 4)
        raise DecodeError("unknown binary layer", offset + 6)
    if head[0:2] != bytes((COMPONENT_VERSION, 0)):
        raise DecodeError("unknown component binary version", offset + 4)


class Component:
    """A component over ``data[offset:offset+size]``; a nested component or
    core module shares its parent's buffer."""

    def __init__(
        self, data: bytes | bytearray | memoryview, *, offset: int = 0, size: int | None = None
    ) -> None:
        self.data: bytes = data if isinstance(data, bytes) else bytes(data)
        if offset < 0 or offset > len(self.data) or (size is not None and size < 0):
            raise DecodeError("component span out of bounds", max(0, min(offset, len(self.data))))
        self.offset = offset
        self.end = len(self.data) if size is None else offset + size
        if self.end > len(self.data):
            raise DecodeError("unexpected end", len(self.data))
        self.sections: list[ComponentSection] = self._index()
        self._modules: list[Module] | None = None
        self._components: list[Component] | None = None
        self._imports: list[ComponentImport] | None = None
        self._exports: list[ComponentExport] | None = None

    @classmethod
    def from_file(cls, path: str | Path) -> Component:
        return cls(Path(path).read_bytes())

    @property
    def size(self) -> int:
        return self.end - self.offset

    def __repr__(self) -> str:
        return f"<Component at {self.offset:#x}, {self.size} bytes, {len(self.sections)} sections>"

    # -- indexing -------------------------------------------------------------
    def _index(self) -> list[ComponentSection]:
        data = self.data
        _check_preamble(data, self.offset, self.end)
        r = Reader(data, self.offset + 8, self.end)
        out: list[ComponentSection] = []
        while not r.at_end():
            offset = r.pos
            sid = r.u8()
            size = r.u32()
            start = r.pos
            if size > r.end - start:
                raise DecodeError("length out of bounds", start)
            end = start + size
            kind = SECTION_NAMES.get(sid)
            if kind is None:
                raise DecodeError(f"malformed section id {sid}", offset)
            if sid == ComponentSectionId.CUSTOM:
                sub = Reader(data, start, end)
                name = sub.name()
                out.append(ComponentSection(sid, kind, offset, start, end, name, sub.pos))
            else:
                if sid in _VEC_SECTIONS:
                    count = Reader(data, start, end).count()
                elif sid == ComponentSectionId.CORE_MODULE:
                    # Check the nested preamble now, so a bad one fails on open.
                    if end - start < 8 or data[start : start + 8] != _MODULE_PREAMBLE:
                        raise DecodeError("malformed nested core module preamble", start)
                    count = 1
                elif sid == ComponentSectionId.COMPONENT:
                    _check_preamble(data, start, end)
                    count = 1
                else:  # start
                    count = 1
                out.append(ComponentSection(sid, kind, offset, start, end, count=count))
            r.pos = end
        return out

    def sections_of(self, sid: int) -> list[ComponentSection]:
        return [s for s in self.sections if s.id == sid]

    @property
    def section_counts(self) -> dict[str, int]:
        """Items per kind of section, summed over its sections (which a
        component may repeat and interleave); custom sections excluded."""
        out: dict[str, int] = {}
        for s in self.sections:
            if s.count is not None:
                out[s.name] = out.get(s.name, 0) + s.count
        return out

    # -- nested modules and components ----------------------------------------
    @property
    def core_modules(self) -> list[Module]:
        """The core modules defined directly in this component, in order."""
        if self._modules is None:
            from wasmscope.binary.module import Module  # module imports stay one-way

            self._modules = [
                Module(self.data, offset=s.payload_start, size=s.size)
                for s in self.sections
                if s.id == ComponentSectionId.CORE_MODULE
            ]
        return self._modules

    @property
    def components(self) -> list[Component]:
        """The components nested directly in this one, in order."""
        if self._components is None:
            self._components = [
                Component(self.data, offset=s.payload_start, size=s.size)
                for s in self.sections
                if s.id == ComponentSectionId.COMPONENT
            ]
        return self._components

    def all_core_modules(self) -> Iterator[Module]:
        """Every core module, depth first, nested components included."""
        comps = iter(self.components)
        modules = iter(self.core_modules)
        for s in self.sections:
            if s.id == ComponentSectionId.CORE_MODULE:
                yield next(modules)
            elif s.id == ComponentSectionId.COMPONENT:
                yield from next(comps).all_core_modules()

    # -- imports and exports ----------------------------------------------------
    def _decode_vec(self, sid: int, read: Callable[[Reader, bool], T], min_size: int) -> list[T]:
        out: list[T] = []
        for s in self.sections:
            if s.id == sid:
                out.extend(self._decode_section(s, read, min_size))
        return out

    def _decode_section(
        self, s: ComponentSection, read: Callable[[Reader, bool], T], min_size: int
    ) -> list[T]:
        def run(suffixed: bool) -> list[T]:
            r = Reader(self.data, s.payload_start, s.payload_end)
            items = [read(r, suffixed) for _ in range(r.count(min_size))]
            if not r.at_end():
                raise DecodeError("section size mismatch", r.pos)
            return items

        try:
            return run(_LEGACY)
        except DecodeError as legacy:
            try:
                return run(_SUFFIXED)
            except DecodeError as suffixed:
                # The reading that got further tells the more likely fault.
                raise (legacy if legacy.offset >= suffixed.offset else suffixed) from None

    @property
    def imports(self) -> list[ComponentImport]:
        if self._imports is None:
            self._imports = self._decode_vec(ComponentSectionId.IMPORT, _read_import, 4)
        return self._imports

    @property
    def exports(self) -> list[ComponentExport]:
        if self._exports is None:
            self._exports = self._decode_vec(ComponentSectionId.EXPORT, _read_export, 5)
        return self._exports

    def interfaces_imported(self) -> list[str]:
        """Names of the imported instances (e.g. ``wasi:cli/environment@0.2.0``):
        the capabilities the component asks its host for."""
        return sorted({i.name for i in self.imports if i.kind == "instance"})

    def interfaces_exported(self) -> list[str]:
        return sorted({e.name for e in self.exports if e.kind == "instance"})

    # -- custom sections --------------------------------------------------------
    @property
    def custom_sections(self) -> list[CustomSection]:
        return [
            CustomSection(s.custom_name or "", s.content_start, s.payload_end - s.content_start)
            for s in self.sections
            if s.id == ComponentSectionId.CUSTOM
        ]

    def custom_payload(self, name: str) -> memoryview | None:
        """The content of the first custom section called ``name``."""
        for c in self.custom_sections:
            if c.name == name:
                return memoryview(self.data)[c.offset : c.offset + c.size]
        return None

    @property
    def producers(self) -> Producers | None:
        """This component's own ``producers`` section, decoded (not its modules')."""
        from wasmscope.binary.custom import decode_producers

        for c in self.custom_sections:
            if c.name == "producers":
                return decode_producers(self.data, c.offset, c.offset + c.size)
        return None

    # -- encoding -------------------------------------------------------------
    def encode(self) -> bytes:
        """The component as bytes: the original ones, except that a nested core
        module or component that was opened and edited is written re-encoded."""
        data = self.data
        if self._modules is None and self._components is None:
            return data[self.offset : self.end]
        modules = iter(self._modules or ())
        comps = iter(self._components or ())
        out = [data[self.offset : self.offset + 8]]
        for s in self.sections:
            raw = data[s.offset : s.payload_end]
            nested: Module | Component | None = None
            if s.id == ComponentSectionId.CORE_MODULE and self._modules is not None:
                nested = next(modules)
            elif s.id == ComponentSectionId.COMPONENT and self._components is not None:
                nested = next(comps)
            if nested is not None:
                payload = nested.encode()
                if payload != data[s.payload_start : s.payload_end]:
                    raw = bytes((s.id,)) + uleb(len(payload)) + payload
            out.append(raw)
        return b"".join(out)


def is_component(data: bytes | bytearray | memoryview) -> bool:
    """Whether ``data`` starts with a component preamble (layer 1)."""
    head = bytes(data[:8])
    return len(head) == 8 and head[:4] == MAGIC and head[6:8] == b"\x01\x00"


def decode(data: bytes | bytearray | memoryview) -> Module | Component:
    """A :class:`Component` or a core ``Module``, as the preamble's layer says."""
    if is_component(data):
        return Component(data)
    from wasmscope.binary.module import Module

    return Module(data)
