"""Type grammar of Wasm 3.0: value, reference, heap, composite and recursive
types, limits, and the external types of imports.

A value type is an ``int`` (its one-byte code, including the shorthand
reference types such as ``FUNCREF``) or a :class:`RefType`. Heap types are
s33 values: negative for abstract ones (``byte - 0x80``), else a type index.
``(ref null <abstract>)`` always normalises to its shorthand byte, so two
encodings of one type decode equal.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import NamedTuple

from wasmscope.binary.leb128 import sleb, uleb
from wasmscope.binary.reader import Reader

__all__ = [
    "ANYREF", "ARRAYREF", "EQREF", "EXNREF", "EXTERNREF", "F32", "F64", "FUNCREF",
    "I8", "I16", "I31REF", "I32", "I64", "NULLEXNREF", "NULLEXTERNREF", "NULLFUNCREF",
    "NULLREF", "STRUCTREF", "V128", "ArrayType", "CompType", "ExternKind", "FieldType",
    "FuncType", "GlobalType", "Limits", "MemoryType", "RecGroup", "RefType", "StorageType",
    "StructType", "SubType", "TableType", "TagType", "ValType", "encode_heaptype",
    "encode_valtype", "heaptype_name", "read_heaptype", "read_valtype", "valtype_name",
]

I32 = 0x7F
I64 = 0x7E
F32 = 0x7D
F64 = 0x7C
V128 = 0x7B
I8 = 0x78  # packed, storage only
I16 = 0x77
FUNCREF = 0x70
EXTERNREF = 0x6F
ANYREF = 0x6E
EQREF = 0x6D
I31REF = 0x6C
STRUCTREF = 0x6B
ARRAYREF = 0x6A
EXNREF = 0x69
NULLREF = 0x71
NULLEXTERNREF = 0x72
NULLFUNCREF = 0x73
NULLEXNREF = 0x74
_REF = 0x64
_REF_NULL = 0x63

_NUM_VEC = frozenset((I32, I64, F32, F64, V128))
_ABSTRACT_HEAP = {
    0x70: "func", 0x6F: "extern", 0x6E: "any", 0x6D: "eq", 0x6C: "i31", 0x6B: "struct",
    0x6A: "array", 0x69: "exn", 0x71: "none", 0x72: "noextern", 0x73: "nofunc", 0x74: "noexn",
}
_VALTYPE_NAMES = {
    I32: "i32", I64: "i64", F32: "f32", F64: "f64", V128: "v128", I8: "i8", I16: "i16",
    **{code: f"{name}ref" for code, name in _ABSTRACT_HEAP.items()},
}
_VALTYPE_NAMES[NULLREF] = "nullref"
_VALTYPE_NAMES[NULLEXTERNREF] = "nullexternref"
_VALTYPE_NAMES[NULLFUNCREF] = "nullfuncref"
_VALTYPE_NAMES[NULLEXNREF] = "nullexnref"


class RefType(NamedTuple):
    """``(ref null? heap)`` that has no one-byte shorthand."""

    nullable: bool
    heap: int  # s33: <0 abstract (byte - 0x80), >=0 type index


ValType = int | RefType
StorageType = ValType  # plus the packed I8 / I16


def heaptype_name(heap: int) -> str:
    if heap >= 0:
        return str(heap)
    return _ABSTRACT_HEAP.get(heap + 0x80, f"heap{heap}")


def valtype_name(vt: ValType) -> str:
    if isinstance(vt, RefType):
        return f"(ref {'null ' if vt.nullable else ''}{heaptype_name(vt.heap)})"
    return _VALTYPE_NAMES.get(vt, f"<0x{vt:02x}>")


def read_heaptype(r: Reader) -> int:
    pos = r.pos
    heap = r.s33()
    if heap < 0 and (heap + 0x80) not in _ABSTRACT_HEAP:
        raise r.error("malformed heap type", pos)
    return heap


def read_valtype(r: Reader, *, storage: bool = False) -> ValType:
    pos = r.pos
    b = r.u8()
    if b in _NUM_VEC or b in _ABSTRACT_HEAP:
        return b
    if b in (_REF, _REF_NULL):
        heap = read_heaptype(r)
        nullable = b == _REF_NULL
        if nullable and heap < 0:
            return heap + 0x80
        return RefType(nullable, heap)
    if storage and (b in (I8, I16)):
        return b
    raise r.error("malformed value type" if b < 0x60 else "malformed reference type", pos)


def read_reftype(r: Reader) -> ValType:
    pos = r.pos
    vt = read_valtype(r)
    if isinstance(vt, int) and vt in _NUM_VEC:
        raise r.error("malformed reference type", pos)
    return vt


def encode_heaptype(heap: int) -> bytes:
    return sleb(heap)


def encode_valtype(vt: ValType) -> bytes:
    if isinstance(vt, RefType):
        return bytes((_REF_NULL if vt.nullable else _REF,)) + sleb(vt.heap)
    return bytes((vt,))


def encode_mut(mutable: bool) -> bytes:
    return b"\x01" if mutable else b"\x00"


def read_mut(r: Reader) -> bool:
    pos = r.pos
    b = r.u8()
    if b > 1:
        raise r.error("malformed mutability", pos)
    return b == 1


# -- composite and recursive types -------------------------------------------
@dataclass(slots=True, frozen=True)
class FuncType:
    params: tuple[ValType, ...]
    results: tuple[ValType, ...]


@dataclass(slots=True, frozen=True)
class FieldType:
    storage: StorageType
    mutable: bool


@dataclass(slots=True, frozen=True)
class StructType:
    fields: tuple[FieldType, ...]


@dataclass(slots=True, frozen=True)
class ArrayType:
    field: FieldType


CompType = FuncType | StructType | ArrayType


@dataclass(slots=True, frozen=True)
class SubType:
    """A defined type; a bare composite type is ``final`` with no supertypes."""

    comp: CompType
    final: bool = True
    supertypes: tuple[int, ...] = ()


@dataclass(slots=True)
class RecGroup:
    """One entry of the type section. ``explicit`` says it was written as
    ``rec`` (0x4E) even if it holds a single type, so it re-encodes the same."""

    types: list[SubType] = field(default_factory=list)
    explicit: bool = False


def _read_valtypes(r: Reader) -> tuple[ValType, ...]:
    return tuple(read_valtype(r) for _ in range(r.count()))


def _read_field(r: Reader) -> FieldType:
    storage = read_valtype(r, storage=True)
    return FieldType(storage, read_mut(r))


def read_comptype(r: Reader) -> CompType:
    pos = r.pos
    form = r.u8()
    if form == 0x60:
        params = _read_valtypes(r)
        return FuncType(params, _read_valtypes(r))
    if form == 0x5F:
        return StructType(tuple(_read_field(r) for _ in range(r.count(2))))
    if form == 0x5E:
        return ArrayType(_read_field(r))
    raise r.error(f"malformed composite type 0x{form:02x}", pos)


def read_subtype(r: Reader) -> SubType:
    b = r.peek()
    if b == 0x50 or b == 0x4F:
        r.pos += 1
        supers = tuple(r.u32() for _ in range(r.count()))
        return SubType(read_comptype(r), b == 0x4F, supers)
    return SubType(read_comptype(r))


def read_recgroup(r: Reader) -> RecGroup:
    if r.peek() == 0x4E:
        r.pos += 1
        return RecGroup([read_subtype(r) for _ in range(r.count())], explicit=True)
    return RecGroup([read_subtype(r)])


def _encode_vec_valtypes(types: tuple[ValType, ...]) -> bytes:
    return uleb(len(types)) + b"".join(encode_valtype(t) for t in types)


def _encode_field(f: FieldType) -> bytes:
    return encode_valtype(f.storage) + encode_mut(f.mutable)


def encode_comptype(c: CompType) -> bytes:
    if isinstance(c, FuncType):
        return b"\x60" + _encode_vec_valtypes(c.params) + _encode_vec_valtypes(c.results)
    if isinstance(c, StructType):
        return b"\x5f" + uleb(len(c.fields)) + b"".join(_encode_field(f) for f in c.fields)
    return b"\x5e" + _encode_field(c.field)


def encode_subtype(s: SubType) -> bytes:
    if s.final and not s.supertypes:
        return encode_comptype(s.comp)
    head = b"\x4f" if s.final else b"\x50"
    return head + uleb(len(s.supertypes)) + b"".join(uleb(i) for i in s.supertypes) + encode_comptype(s.comp)


def encode_recgroup(g: RecGroup) -> bytes:
    if len(g.types) == 1 and not g.explicit:
        return encode_subtype(g.types[0])
    return b"\x4e" + uleb(len(g.types)) + b"".join(encode_subtype(s) for s in g.types)


# -- limits and external types ------------------------------------------------
@dataclass(slots=True, frozen=True)
class Limits:
    min: int
    max: int | None = None
    shared: bool = False
    is64: bool = False


def read_limits(r: Reader, *, table: bool = False) -> Limits:
    pos = r.pos
    flags = r.u8()
    if flags > 0x07 or (table and flags & 0x02):
        raise r.error("malformed limits flags", pos)
    is64 = bool(flags & 0x04)
    # Wasm 3.0 reads u64 either way; the 32-bit range is a validation rule.
    lo = r.u64()
    hi = r.u64() if flags & 0x01 else None
    return Limits(lo, hi, bool(flags & 0x02), is64)


def encode_limits(lim: Limits) -> bytes:
    flags = (0x01 if lim.max is not None else 0) | (0x02 if lim.shared else 0) | (0x04 if lim.is64 else 0)
    out = bytes((flags,)) + uleb(lim.min)
    return out + uleb(lim.max) if lim.max is not None else out


@dataclass(slots=True, frozen=True)
class MemoryType:
    limits: Limits


@dataclass(slots=True, frozen=True)
class TableType:
    elem: ValType
    limits: Limits


@dataclass(slots=True, frozen=True)
class GlobalType:
    valtype: ValType
    mutable: bool


@dataclass(slots=True, frozen=True)
class TagType:
    type: int  # index of a function type
    attribute: int = 0


def read_tabletype(r: Reader) -> TableType:
    elem = read_reftype(r)
    return TableType(elem, read_limits(r, table=True))


def encode_tabletype(t: TableType) -> bytes:
    return encode_valtype(t.elem) + encode_limits(t.limits)


def read_globaltype(r: Reader) -> GlobalType:
    vt = read_valtype(r)
    return GlobalType(vt, read_mut(r))


def encode_globaltype(g: GlobalType) -> bytes:
    return encode_valtype(g.valtype) + encode_mut(g.mutable)


def read_tagtype(r: Reader) -> TagType:
    pos = r.pos
    attr = r.u8()
    if attr != 0:
        raise r.error("malformed tag attribute", pos)
    return TagType(r.u32(), attr)


def encode_tagtype(t: TagType) -> bytes:
    return bytes((t.attribute,)) + uleb(t.type)


class ExternKind:
    FUNC = 0
    TABLE = 1
    MEMORY = 2
    GLOBAL = 3
    TAG = 4
    NAMES = ("func", "table", "memory", "global", "tag")
