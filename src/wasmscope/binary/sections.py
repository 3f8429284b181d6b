"""The core module's known sections: their items, decoders and encoders.

Every item is a frozen dataclass, so a decoded section can be compared by
identity to find out whether the user edited it (see ``Module.encode``).
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any

from wasmscope.binary.instructions import Instruction, decode_expr, encode_instructions
from wasmscope.binary.leb128 import uleb
from wasmscope.binary.reader import Reader
from wasmscope.binary.types import (
    FUNCREF,
    ExternKind,
    GlobalType,
    MemoryType,
    RecGroup,
    TableType,
    TagType,
    ValType,
    encode_globaltype,
    encode_limits,
    encode_recgroup,
    encode_tabletype,
    encode_tagtype,
    encode_valtype,
    read_globaltype,
    read_limits,
    read_recgroup,
    read_reftype,
    read_tabletype,
    read_tagtype,
)

__all__ = [
    "SECTION_NAMES", "SECTION_ORDER", "Data", "Element", "Export", "Expr", "Global", "Import",
    "SectionId", "Table",
]

Expr = tuple[Instruction, ...]


class SectionId:
    CUSTOM = 0
    TYPE = 1
    IMPORT = 2
    FUNCTION = 3
    TABLE = 4
    MEMORY = 5
    GLOBAL = 6
    EXPORT = 7
    START = 8
    ELEMENT = 9
    CODE = 10
    DATA = 11
    DATA_COUNT = 12
    TAG = 13


SECTION_NAMES = {
    0: "custom", 1: "type", 2: "import", 3: "function", 4: "table", 5: "memory", 6: "global",
    7: "export", 8: "start", 9: "element", 10: "code", 11: "data", 12: "datacount", 13: "tag",
}
# Position of each known section id in the order the spec requires.
SECTION_ORDER = {1: 1, 2: 2, 3: 3, 4: 4, 5: 5, 13: 6, 6: 7, 7: 8, 8: 9, 9: 10, 12: 11, 10: 12, 11: 13}


@dataclass(slots=True, frozen=True)
class Import:
    module: str
    name: str
    kind: int  # ExternKind
    type: int | TableType | MemoryType | GlobalType | TagType  # int: function type index


@dataclass(slots=True, frozen=True)
class Export:
    name: str
    kind: int  # ExternKind
    index: int


@dataclass(slots=True, frozen=True)
class Table:
    type: TableType
    init: Expr | None = None  # Wasm 3.0 table initialiser (0x40 0x00 form)


@dataclass(slots=True, frozen=True)
class Global:
    type: GlobalType
    init: Expr


@dataclass(slots=True, frozen=True)
class Element:
    """An element segment. ``flags`` is the binary form (0-7) it was written in:
    bit 0 passive/declarative, bit 1 explicit table or declarative, bit 2 exprs."""

    flags: int
    type: ValType
    items: tuple[int, ...] | tuple[Expr, ...]  # function indices, or exprs when flags & 4
    table: int = 0
    offset: Expr | None = None

    @property
    def mode(self) -> str:
        if not self.flags & 1:
            return "active"
        return "declarative" if self.flags & 2 else "passive"


@dataclass(slots=True, frozen=True)
class Data:
    """A data segment; ``init`` is a zero-copy view into the module bytes."""

    init: memoryview | bytes
    memory: int = 0
    offset: Expr | None = None
    flags: int = 0  # 0 active mem 0, 1 passive, 2 active with explicit memory

    @property
    def mode(self) -> str:
        return "passive" if self.flags == 1 else "active"


def _expr(r: Reader, data_count: bool = True) -> Expr:
    instrs, r.pos = decode_expr(r.data, r.pos, r.end, data_count=data_count)
    return tuple(instrs)


def _encode_expr(e: Expr) -> bytes:
    return encode_instructions(e)


# -- decoders: each reads a whole section payload ------------------------------
def read_types(r: Reader) -> list[RecGroup]:
    return [read_recgroup(r) for _ in range(r.count())]


def read_imports(r: Reader) -> list[Import]:
    out = []
    for _ in range(r.count(3)):
        module = r.name()
        name = r.name()
        pos = r.pos
        kind = r.u8()
        desc: int | TableType | MemoryType | GlobalType | TagType
        if kind == ExternKind.FUNC:
            desc = r.u32()
        elif kind == ExternKind.TABLE:
            desc = read_tabletype(r)
        elif kind == ExternKind.MEMORY:
            desc = MemoryType(read_limits(r))
        elif kind == ExternKind.GLOBAL:
            desc = read_globaltype(r)
        elif kind == ExternKind.TAG:
            desc = read_tagtype(r)
        else:
            raise r.error("malformed import kind", pos)
        out.append(Import(module, name, kind, desc))
    return out


def read_functions(r: Reader) -> list[int]:
    return [r.u32() for _ in range(r.count())]


def read_tables(r: Reader) -> list[Table]:
    out = []
    for _ in range(r.count(2)):
        if r.peek() == 0x40:
            pos = r.pos
            r.pos += 1
            if r.u8() != 0x00:
                raise r.error("malformed table", pos)
            tt = read_tabletype(r)
            out.append(Table(tt, _expr(r)))
        else:
            out.append(Table(read_tabletype(r)))
    return out


def read_memories(r: Reader) -> list[MemoryType]:
    return [MemoryType(read_limits(r)) for _ in range(r.count(2))]


def read_globals(r: Reader) -> list[Global]:
    out = []
    for _ in range(r.count(3)):
        gt = read_globaltype(r)
        out.append(Global(gt, _expr(r)))
    return out


def read_exports(r: Reader) -> list[Export]:
    out = []
    for _ in range(r.count(3)):
        name = r.name()
        pos = r.pos
        kind = r.u8()
        if kind > ExternKind.TAG:
            raise r.error("malformed export kind", pos)
        out.append(Export(name, kind, r.u32()))
    return out


def read_start(r: Reader) -> int:
    return r.u32()


def read_elements(r: Reader, data_count: bool = True) -> list[Element]:
    out = []
    for _ in range(r.count()):
        pos = r.pos
        flags = r.u32()
        if flags > 7:
            raise r.error("malformed elements segment kind", pos)
        table = 0
        offset: Expr | None = None
        if not flags & 1:
            if flags & 2:
                table = r.u32()
            offset = _expr(r, data_count)
        etype: ValType = FUNCREF
        if flags & 3:  # everything but the legacy active-table-0 forms names its type
            if flags & 4:
                etype = read_reftype(r)
            else:
                kpos = r.pos
                if r.u8() != 0x00:
                    raise r.error("malformed element kind", kpos)
        items: tuple[int, ...] | tuple[Expr, ...]
        if flags & 4:
            items = tuple(_expr(r, data_count) for _ in range(r.count()))
        else:
            items = tuple(r.u32() for _ in range(r.count()))
        out.append(Element(flags, etype, items, table, offset))
    return out


def read_data_count(r: Reader) -> int:
    return r.u32()


def read_data(r: Reader, data_count: bool = True) -> list[Data]:
    out = []
    view = memoryview(r.data)
    for _ in range(r.count()):
        pos = r.pos
        flags = r.u32()
        if flags > 2:
            raise r.error("malformed data segment kind", pos)
        memory = 0
        offset: Expr | None = None
        if flags != 1:
            if flags == 2:
                memory = r.u32()
            offset = _expr(r, data_count)
        n = r.u32()
        start = r.pos
        r.skip(n)
        out.append(Data(view[start : start + n], memory, offset, flags))
    return out


def read_tags(r: Reader) -> list[TagType]:
    return [read_tagtype(r) for _ in range(r.count(2))]


# -- encoders: each returns a whole section payload ----------------------------
def _vec(items: Sequence[Any], enc: Callable[[Any], bytes]) -> bytes:
    return uleb(len(items)) + b"".join(enc(i) for i in items)


def _name(s: str) -> bytes:
    raw = s.encode("utf-8")
    return uleb(len(raw)) + raw


def encode_import(i: Import) -> bytes:
    head = _name(i.module) + _name(i.name) + bytes((i.kind,))
    t = i.type
    if isinstance(t, int):
        return head + uleb(t)
    if isinstance(t, TableType):
        return head + encode_tabletype(t)
    if isinstance(t, MemoryType):
        return head + encode_limits(t.limits)
    if isinstance(t, GlobalType):
        return head + encode_globaltype(t)
    return head + encode_tagtype(t)


def encode_table(t: Table) -> bytes:
    if t.init is None:
        return encode_tabletype(t.type)
    return b"\x40\x00" + encode_tabletype(t.type) + _encode_expr(t.init)


def encode_element(e: Element) -> bytes:
    out = [uleb(e.flags)]
    if not e.flags & 1:
        if e.flags & 2:
            out.append(uleb(e.table))
        out.append(_encode_expr(e.offset or ()))
    if e.flags & 3:
        out.append(encode_valtype(e.type) if e.flags & 4 else b"\x00")
    out.append(uleb(len(e.items)))
    if e.flags & 4:
        out.extend(_encode_expr(x) for x in e.items)  # type: ignore[arg-type]
    else:
        out.extend(uleb(x) for x in e.items)  # type: ignore[arg-type]
    return b"".join(out)


def encode_data(d: Data) -> bytes:
    out = uleb(d.flags)
    if d.flags != 1:
        if d.flags == 2:
            out += uleb(d.memory)
        out += _encode_expr(d.offset or ())
    return out + uleb(len(d.init)) + bytes(d.init)


ENCODERS: dict[int, Callable[[Any], bytes]] = {
    SectionId.TYPE: lambda v: _vec(v, encode_recgroup),
    SectionId.IMPORT: lambda v: _vec(v, encode_import),
    SectionId.FUNCTION: lambda v: _vec(v, uleb),
    SectionId.TABLE: lambda v: _vec(v, encode_table),
    SectionId.MEMORY: lambda v: _vec(v, lambda m: encode_limits(m.limits)),
    SectionId.GLOBAL: lambda v: _vec(v, lambda g: encode_globaltype(g.type) + _encode_expr(g.init)),
    SectionId.EXPORT: lambda v: _vec(v, lambda e: _name(e.name) + bytes((e.kind,)) + uleb(e.index)),
    SectionId.START: uleb,
    SectionId.ELEMENT: lambda v: _vec(v, encode_element),
    SectionId.DATA_COUNT: uleb,
    SectionId.DATA: lambda v: _vec(v, encode_data),
    SectionId.TAG: lambda v: _vec(v, encode_tagtype),
}
