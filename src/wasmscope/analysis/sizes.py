"""Where the bytes go: sections with their sizes and shares of the file, and
the biggest functions by body size with their names (like ``twiggy top``).

Nothing here decodes a function body: body sizes come from the code
section's index, names from the name section.
"""

from __future__ import annotations

import heapq
from collections.abc import Mapping
from dataclasses import dataclass

from wasmscope.binary.module import Module
from wasmscope.binary.reader import Reader
from wasmscope.binary.sections import SECTION_NAMES, SectionId
from wasmscope.errors import DecodeError

__all__ = ["FunctionSize", "SectionSize", "function_sizes_total", "section_sizes", "top_functions"]

# Sections whose payload starts with a vector length.
_VECTOR_SECTIONS = frozenset(
    {
        SectionId.TYPE, SectionId.IMPORT, SectionId.FUNCTION, SectionId.TABLE, SectionId.MEMORY,
        SectionId.GLOBAL, SectionId.EXPORT, SectionId.ELEMENT, SectionId.CODE, SectionId.DATA,
        SectionId.TAG,
    }
)


@dataclass(slots=True)
class SectionSize:
    index: int  # position in the file
    id: int
    kind: str  # "code", "data", "custom"...
    name: str | None  # custom sections: their name
    offset: int  # absolute offset of the section id byte
    size: int  # bytes in the file, header included
    payload: int  # payload bytes, as the header states
    percent: float  # share of the whole module
    count: int | None  # items, for sections that hold a vector (read from the header only)

    @property
    def label(self) -> str:
        return f"custom {self.name!r}" if self.name is not None else self.kind

    def to_json(self) -> dict[str, object]:
        return {
            "index": self.index,
            "id": self.id,
            "kind": self.kind,
            "name": self.name,
            "offset": self.offset,
            "size": self.size,
            "payload_size": self.payload,
            "percent": round(self.percent, 3),
            "count": self.count,
        }


@dataclass(slots=True)
class FunctionSize:
    index: int  # function index (imports included)
    name: str | None
    size: int  # body bytes (locals and instructions, without the size prefix)
    percent_of_code: float
    percent_of_file: float
    module: str | None = None  # components: which core module

    def to_json(self) -> dict[str, object]:
        return {
            "index": self.index,
            "name": self.name,
            "module": self.module,
            "size": self.size,
            "percent_of_code": round(self.percent_of_code, 3),
            "percent_of_file": round(self.percent_of_file, 3),
        }


def _count(module: Module, sid: int, start: int, end: int) -> int | None:
    if sid == SectionId.START:
        return 1
    if sid not in _VECTOR_SECTIONS and sid != SectionId.DATA_COUNT:
        return None
    try:
        return Reader(module.data, start, end).u32()
    except DecodeError:
        return None


def section_sizes(module: Module) -> list[SectionSize]:
    """Every section in file order, with its size and share of the module."""
    total = module.size or 1
    out = []
    for i, s in enumerate(module.sections):
        out.append(
            SectionSize(
                index=i,
                id=s.id,
                kind=SECTION_NAMES.get(s.id, str(s.id)),
                name=s.name,
                offset=s.offset,
                size=s.total_size,
                payload=s.size,
                percent=100.0 * s.total_size / total,
                count=_count(module, s.id, s.start, s.end),
            )
        )
    return out


def function_sizes_total(module: Module) -> int:
    """Payload bytes of the code section (0 if there is none)."""
    sec = module.section(SectionId.CODE)
    return sec.size if sec is not None else 0


def top_functions(module: Module, names: Mapping[int, str] | None = None, n: int = 10) -> list[FunctionSize]:
    """The ``n`` largest function bodies, largest first (ties: lower index
    first), each with its name from ``names`` (function index -> name)."""
    if n <= 0:
        return []
    code = module.code
    if not code:
        return []
    names = names or {}
    base = module.num_imported_functions
    code_total = function_sizes_total(module) or 1
    file_total = module.size or 1
    sizes = [b.size for b in code]
    # nlargest is stable: equal sizes keep index order.
    best = heapq.nlargest(n, range(len(sizes)), key=sizes.__getitem__)
    return [
        FunctionSize(
            index=base + i,
            name=names.get(base + i),
            size=sizes[i],
            percent_of_code=100.0 * sizes[i] / code_total,
            percent_of_file=100.0 * sizes[i] / file_total,
        )
        for i in best
    ]
