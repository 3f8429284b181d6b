"""A core Wasm module, decoded lazily over one buffer.

Opening a module only indexes its sections as (id, offset, size); each known
section is decoded the first time it is asked for, and function bodies only
when their instructions are asked for. Unchanged sections are written back
as the original bytes, so ``Module(b).encode() == b``.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any, TypeVar

from wasmscope.binary import sections as S
from wasmscope.binary.instructions import Instruction, decode_function_body, encode_function_body
from wasmscope.binary.leb128 import uleb
from wasmscope.binary.reader import Reader
from wasmscope.binary.sections import Data, Element, Export, Global, Import, SectionId, Table
from wasmscope.binary.types import (
    ExternKind,
    FuncType,
    GlobalType,
    MemoryType,
    RecGroup,
    SubType,
    TableType,
    TagType,
    ValType,
    read_valtype,
)
from wasmscope.errors import DecodeError

__all__ = ["FunctionBody", "Module", "Section"]

MAGIC = b"\x00asm"
VERSION = b"\x01\x00\x00\x00"

T = TypeVar("T")


@dataclass(slots=True, frozen=True)
class Section:
    """Where one section lies in the buffer (absolute offsets)."""

    id: int
    offset: int  # the id byte
    start: int  # first payload byte
    end: int  # one past the last payload byte
    name: str | None = None  # custom sections only
    content_start: int = 0  # custom sections: first byte after the name

    @property
    def size(self) -> int:
        """Payload size, as the section header states it."""
        return self.end - self.start

    @property
    def total_size(self) -> int:
        """Bytes the section takes in the file, header included."""
        return self.end - self.offset

    @property
    def kind(self) -> str:
        return self.name if self.name is not None else S.SECTION_NAMES.get(self.id, str(self.id))


class FunctionBody:
    """One entry of the code section. Decoded on demand and not cached, so a
    full walk over a large module keeps memory flat; ``replace`` edits it."""

    __slots__ = ("_data", "_encoded", "data_count", "end", "start")

    def __init__(self, data: bytes, start: int, end: int, data_count: bool = True) -> None:
        self._data = data
        self.start = start  # first byte after the body's size
        self.end = end
        self.data_count = data_count
        self._encoded: bytes | None = None

    @property
    def size(self) -> int:
        return len(self._encoded) if self._encoded is not None else self.end - self.start

    @property
    def modified(self) -> bool:
        return self._encoded is not None

    def raw(self) -> bytes:
        if self._encoded is not None:
            return self._encoded
        return self._data[self.start : self.end]

    def decode(self) -> tuple[list[tuple[int, ValType]], list[Instruction]]:
        """(locals as (count, type) groups, instructions ending with ``end``)."""
        if self._encoded is not None:
            return decode_function_body(self._encoded, 0, len(self._encoded))
        return decode_function_body(self._data, self.start, self.end, data_count=self.data_count)

    @property
    def locals(self) -> list[tuple[int, ValType]]:
        r = Reader(self._encoded, 0) if self._encoded is not None else Reader(self._data, self.start, self.end)
        out = []
        for _ in range(r.count()):
            n = r.u32()
            out.append((n, read_valtype(r)))
        return out

    @property
    def instructions(self) -> list[Instruction]:
        return self.decode()[1]

    def replace(self, locals: Sequence[tuple[int, ValType]], instructions: Sequence[Instruction]) -> None:
        self._encoded = encode_function_body(locals, instructions)

    @classmethod
    def new(cls, locals: Sequence[tuple[int, ValType]], instructions: Sequence[Instruction]) -> FunctionBody:
        body = cls(b"", 0, 0)
        body.replace(locals, instructions)
        return body


class Module:
    """A core module over ``data[offset:offset+size]`` (a component's nested
    module shares its parent's buffer); every offset reported is absolute."""

    def __init__(self, data: bytes | bytearray | memoryview, *, offset: int = 0, size: int | None = None) -> None:
        self.data: bytes = data if isinstance(data, bytes) else bytes(data)
        self.offset = offset
        self.end = len(self.data) if size is None else offset + size
        if self.end > len(self.data) or offset < 0:
            raise DecodeError("unexpected end", len(self.data))
        self._items: dict[int, Any] = {}
        self._snapshots: dict[int, Any] = {}
        self.sections: list[Section] = self._index()

    @classmethod
    def from_file(cls, path: str | Path) -> Module:
        return cls(Path(path).read_bytes())

    @property
    def size(self) -> int:
        return self.end - self.offset

    # -- indexing -------------------------------------------------------------
    def _index(self) -> list[Section]:
        r = Reader(self.data, self.offset, self.end)
        head = self.data[self.offset : min(self.offset + 4, self.end)]
        if len(head) < 4 and MAGIC.startswith(head):
            raise DecodeError("unexpected end", self.end)
        if r.remaining < 4 or r.bytes(4) != MAGIC:
            raise DecodeError("magic header not detected", self.offset)
        if r.remaining < 4:
            raise DecodeError("unexpected end", r.pos)
        version = r.bytes(4)
        if version != VERSION:
            raise DecodeError("unknown binary version", r.pos - 4)
        out: list[Section] = []
        last_order = 0
        while not r.at_end():
            offset = r.pos
            sid = r.u8()
            size = r.u32()
            start = r.pos
            if size > r.end - start:
                raise DecodeError("length out of bounds", start)
            end = start + size
            if sid == SectionId.CUSTOM:
                sub = Reader(self.data, start, end)
                name = sub.name()
                out.append(Section(sid, offset, start, end, name, sub.pos))
            elif sid in S.SECTION_ORDER:
                order = S.SECTION_ORDER[sid]
                if order <= last_order:
                    raise DecodeError("unexpected content after last section", offset)
                last_order = order
                out.append(Section(sid, offset, start, end))
            else:
                raise DecodeError("malformed section id", offset)
            r.pos = end
        return out

    def section(self, sid: int) -> Section | None:
        for s in self.sections:
            if s.id == sid:
                return s
        return None

    def custom_sections(self, name: str | None = None) -> list[Section]:
        return [s for s in self.sections if s.id == 0 and (name is None or s.name == name)]

    def custom_payload(self, section: Section) -> memoryview:
        return memoryview(self.data)[section.content_start : section.end]

    # -- lazy decoding ----------------------------------------------------------
    def _decode(self, sid: int, reader: Callable[[Reader], T], empty: T) -> T:
        if sid in self._items:
            return self._items[sid]  # type: ignore[no-any-return]
        sec = self.section(sid)
        if sec is None:
            value = empty
        else:
            r = Reader(self.data, sec.start, sec.end)
            value = reader(r)
            if not r.at_end():
                raise DecodeError("section size mismatch", r.pos)
        self._items[sid] = value
        self._snapshots[sid] = list(value) if isinstance(value, list) else value
        return value

    @property
    def has_data_count(self) -> bool:
        return self.section(SectionId.DATA_COUNT) is not None

    @property
    def rec_groups(self) -> list[RecGroup]:
        return self._decode(SectionId.TYPE, S.read_types, [])

    @property
    def types(self) -> list[SubType]:
        """The type index space, rec groups flattened."""
        return [t for g in self.rec_groups for t in g.types]

    @property
    def imports(self) -> list[Import]:
        return self._decode(SectionId.IMPORT, S.read_imports, [])

    @property
    def functions(self) -> list[int]:
        """Type index of each function defined (not imported) here."""
        return self._decode(SectionId.FUNCTION, S.read_functions, [])

    @property
    def tables(self) -> list[Table]:
        return self._decode(SectionId.TABLE, S.read_tables, [])

    @property
    def memories(self) -> list[MemoryType]:
        return self._decode(SectionId.MEMORY, S.read_memories, [])

    @property
    def tags(self) -> list[TagType]:
        return self._decode(SectionId.TAG, S.read_tags, [])

    @property
    def globals(self) -> list[Global]:
        return self._decode(SectionId.GLOBAL, S.read_globals, [])

    @property
    def exports(self) -> list[Export]:
        return self._decode(SectionId.EXPORT, S.read_exports, [])

    @property
    def start_function(self) -> int | None:
        return self._decode(SectionId.START, S.read_start, None)

    @start_function.setter
    def start_function(self, index: int | None) -> None:
        self._decode(SectionId.START, S.read_start, None)
        self._items[SectionId.START] = index

    @property
    def elements(self) -> list[Element]:
        dc = self.has_data_count
        return self._decode(SectionId.ELEMENT, lambda r: S.read_elements(r, dc), [])

    @property
    def data_count(self) -> int | None:
        return self._decode(SectionId.DATA_COUNT, S.read_data_count, None)

    @property
    def data_segments(self) -> list[Data]:
        dc = self.has_data_count
        return self._decode(SectionId.DATA, lambda r: S.read_data(r, dc), [])

    @property
    def code(self) -> list[FunctionBody]:
        return self._decode(SectionId.CODE, self._read_code, [])

    def _read_code(self, r: Reader) -> list[FunctionBody]:
        dc = self.has_data_count
        out = []
        data = self.data
        for _ in range(r.count()):
            size = r.u32()
            start = r.pos
            r.skip(size)
            out.append(FunctionBody(data, start, start + size, dc))
        return out

    # -- index spaces ---------------------------------------------------------
    def imported(self, kind: int) -> list[Import]:
        return [i for i in self.imports if i.kind == kind]

    @property
    def num_imported_functions(self) -> int:
        return sum(1 for i in self.imports if i.kind == ExternKind.FUNC)

    def function_type_index(self, funcidx: int) -> int:
        n = self.num_imported_functions
        if funcidx < n:
            t = self.imported(ExternKind.FUNC)[funcidx].type
            assert isinstance(t, int)
            return t
        return self.functions[funcidx - n]

    def function_type(self, funcidx: int) -> FuncType:
        comp = self.types[self.function_type_index(funcidx)].comp
        if not isinstance(comp, FuncType):
            raise DecodeError(f"function {funcidx} has a non-function type", self.offset)
        return comp

    def table_types(self) -> list[TableType]:
        return [i.type for i in self.imported(ExternKind.TABLE) if isinstance(i.type, TableType)] + [
            t.type for t in self.tables
        ]

    def memory_types(self) -> list[MemoryType]:
        return [i.type for i in self.imported(ExternKind.MEMORY) if isinstance(i.type, MemoryType)] + list(
            self.memories
        )

    def global_types(self) -> list[GlobalType]:
        return [i.type for i in self.imported(ExternKind.GLOBAL) if isinstance(i.type, GlobalType)] + [
            g.type for g in self.globals
        ]

    # -- full decode ----------------------------------------------------------
    def decode_all(self, progress: Callable[[int, int], None] | None = None) -> None:
        """Decode every section and every instruction, checking what the spec
        checks while decoding. ``progress(done_bytes, total_bytes)`` is called
        as function bodies are decoded. Decoded bodies are not kept."""
        for s in self.sections:
            if s.id == SectionId.CUSTOM:
                continue
            getter = _SECTION_GETTERS[s.id]
            getter(self)
        if len(self.functions) != len(self.code):
            sec = self.section(SectionId.CODE) or self.section(SectionId.FUNCTION)
            raise DecodeError("function and code section have inconsistent lengths", sec.offset if sec else self.offset)
        if self.data_count is not None and self.data_count != len(self.data_segments):
            sec = self.section(SectionId.DATA) or self.section(SectionId.DATA_COUNT)
            raise DecodeError("data count and data section have inconsistent lengths", sec.offset if sec else self.offset)
        code = self.code
        if not code:
            return
        code_sec = self.section(SectionId.CODE)
        total = code_sec.size if code_sec else 0
        step = max(total // 100, 1)
        next_report = 0
        base = code_sec.start if code_sec else 0
        for body in code:
            body.decode()
            if progress is not None and body.end - base >= next_report:
                progress(body.end - base, total)
                next_report = body.end - base + step
        if progress is not None:
            progress(total, total)

    def iter_bodies(self) -> Iterator[tuple[int, FunctionBody]]:
        """(function index, body) for every defined function."""
        n = self.num_imported_functions
        for i, body in enumerate(self.code):
            yield n + i, body

    # -- encoding -------------------------------------------------------------
    def _changed(self, sid: int) -> bool:
        if sid not in self._items:
            return False
        cur = self._items[sid]
        snap = self._snapshots.get(sid)
        if sid == SectionId.CODE:
            assert isinstance(snap, list)
            return len(cur) != len(snap) or any(a is not b or a.modified for a, b in zip(cur, snap, strict=True))
        if isinstance(cur, list):
            assert isinstance(snap, list)
            return len(cur) != len(snap) or any(a is not b for a, b in zip(cur, snap, strict=True))
        return bool(cur != snap)

    def _encode_section(self, sid: int, reencode: bool = False) -> bytes | None:
        value = self._items[sid]
        if sid == SectionId.CODE:
            bodies = [encode_function_body(*b.decode()) if reencode else b.raw() for b in value]
            payload = uleb(len(bodies)) + b"".join(uleb(len(b)) + b for b in bodies)
        elif sid == SectionId.DATA_COUNT and SectionId.DATA in self._items:
            payload = uleb(len(self._items[SectionId.DATA]))
        elif value is None:
            return None
        else:
            payload = S.ENCODERS[sid](value)
        return bytes((sid,)) + uleb(len(payload)) + payload

    def encode(self, *, reencode: bool = False) -> bytes:
        """The module as bytes: untouched sections exactly as read, edited or
        added ones re-encoded, in the order the spec requires. ``reencode``
        writes every known section and body from its decoded form instead
        (canonical LEB128), which proves the encoder covers everything."""
        if reencode:
            for s in self.sections:
                if s.id != SectionId.CUSTOM:
                    _SECTION_GETTERS[s.id](self)
        if SectionId.DATA in self._items and self._changed(SectionId.DATA) and self.has_data_count:
            self._decode(SectionId.DATA_COUNT, S.read_data_count, None)
            self._items[SectionId.DATA_COUNT] = len(self._items[SectionId.DATA])
        present = {s.id for s in self.sections}
        added = sorted(
            (sid for sid, v in self._items.items() if sid not in present and v not in (None, [])),
            key=S.SECTION_ORDER.__getitem__,
        )
        data = self.data
        out = [data[self.offset : self.offset + 8]]
        for s in self.sections:
            if s.id != SectionId.CUSTOM:
                while added and S.SECTION_ORDER[added[0]] < S.SECTION_ORDER[s.id]:
                    out.append(self._encode_section(added.pop(0)) or b"")
                if reencode or self._changed(s.id):
                    out.append(self._encode_section(s.id, reencode) or b"")
                    continue
            out.append(data[s.offset : s.end])
        out.extend(self._encode_section(sid) or b"" for sid in added)
        return b"".join(out)


_SECTION_GETTERS: dict[int, Callable[[Module], object]] = {
    SectionId.TYPE: lambda m: m.rec_groups,
    SectionId.IMPORT: lambda m: m.imports,
    SectionId.FUNCTION: lambda m: m.functions,
    SectionId.TABLE: lambda m: m.tables,
    SectionId.MEMORY: lambda m: m.memories,
    SectionId.TAG: lambda m: m.tags,
    SectionId.GLOBAL: lambda m: m.globals,
    SectionId.EXPORT: lambda m: m.exports,
    SectionId.START: lambda m: m.start_function,
    SectionId.ELEMENT: lambda m: m.elements,
    SectionId.DATA_COUNT: lambda m: m.data_count,
    SectionId.CODE: lambda m: m.code,
    SectionId.DATA: lambda m: m.data_segments,
}
