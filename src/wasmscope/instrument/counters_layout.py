"""The layout of the books: the memory an instrumented module keeps its shadow
call stack and call counters in, and helpers that read it.

The books are one 32-bit memory of their own, exported as ``wasmscope:books``::

    offset 0                 i32 depth: frames on the shadow stack (may exceed the capacity)
    offset slots_offset (4)  i32 slot[slots]: slot h holds 1 + the index of the function of
                             height h running now, or 0
    offset stack_offset      i32 stack[stack_capacity]: function indices, entry i at
                             stack_offset + 4 * (i & (stack_capacity - 1))
    offset counters_offset   u64 counters[n_functions]: calls per ORIGINAL function index
                             (imports included), little-endian

Frame ``i`` (0 = outermost) is written when the function is entered at depth ``i``,
so entries ``0 .. depth-1`` are the current stack. Past ``stack_capacity`` frames
the ring wraps: only the innermost ``stack_capacity`` frames can be read, and the
outer ones are overwritten (:meth:`CountersLayout.read_stack` returns what is there).

A function of bounded *height* (a leaf: height 0; one that only calls
functions of lower height directly: see :mod:`wasmscope.instrument.shadow_stack`)
does not touch the depth or the stack: it stores ``1 + its index`` in slot
``height`` on entry and 0 on exit. The set slots are the innermost frames, the
highest height outermost; the readers append them to the stack in that order.

Every value is a plain little-endian integer, so a host reads the memory with
``struct``; nothing in it is atomic (see :mod:`wasmscope.instrument.shadow_stack`
for threads).
"""

from __future__ import annotations

import json
import struct
from collections.abc import Mapping
from dataclasses import asdict, dataclass, field
from typing import Any

__all__ = [
    "BOOKS_EXPORT",
    "DEPTH_OFFSET",
    "MAX_SLOTS",
    "PAGE_SIZE",
    "SLOTS_OFFSET",
    "STACK_OFFSET",
    "CountersLayout",
]

BOOKS_EXPORT = "wasmscope:books"
PAGE_SIZE = 65536
DEPTH_OFFSET = 0
SLOTS_OFFSET = 4
STACK_OFFSET = 64  # the first 64 bytes are a header: depth, then the slots
MAX_SLOTS = (STACK_OFFSET - SLOTS_OFFSET) // 4  # heights 0..14


@dataclass(frozen=True)
class CountersLayout:
    """Where things are in the books memory of one instrumented module.

    ``thunks`` maps each thunk the pass added (a defined function that counts one
    import and then calls it) to the import it stands for: a trap backtrace or a
    name lookup that meets a thunk index should show the import instead. Shadow
    stack entries and counters always use the original indices, never thunks.
    """

    memory_export: str
    depth_offset: int
    stack_offset: int
    stack_capacity: int  # a power of two
    counters_offset: int
    n_functions: int  # imported + defined functions of the original module
    n_imported_functions: int
    memory_index: int  # index of the books memory in the instrumented module
    pages: int  # the memory's fixed size (min == max) in 64 KiB pages
    thunks: dict[int, int] = field(default_factory=dict)
    version: int = 0
    slots_offset: int | None = None  # slot h at slots_offset + 4 * h (None: no slots)
    slots: int = 0

    # -- addresses ------------------------------------------------------------
    @property
    def size(self) -> int:
        """Bytes in use (the memory itself is ``pages * 65536``)."""
        return self.counters_offset + 8 * self.n_functions

    def counter_offset(self, funcidx: int) -> int:
        """Address of the u64 call counter of an original function index."""
        if not 0 <= funcidx < self.n_functions:
            raise IndexError(f"function {funcidx} is not in 0..{self.n_functions - 1}")
        return self.counters_offset + 8 * funcidx

    def original_function(self, funcidx: int) -> int:
        """The original function a function index of the instrumented module
        stands for: the import behind a thunk, else the index itself."""
        return self.thunks.get(funcidx, funcidx)

    # -- reading --------------------------------------------------------------
    def read_depth(self, books: bytes | bytearray | memoryview) -> int:
        """The shadow stack depth (frames pushed and not popped)."""
        return int(struct.unpack_from("<I", books, self.depth_offset)[0])

    def read_slots(self, books: bytes | bytearray | memoryview) -> list[int]:
        """The slot functions running now (or that trapped), outermost (highest
        height) first."""
        if self.slots_offset is None or not self.slots:
            return []
        values = struct.unpack_from(f"<{self.slots}I", books, self.slots_offset)
        return [v - 1 for v in reversed(values) if v]

    def read_stack(self, books: bytes | bytearray | memoryview, depth: int | None = None) -> list[int]:
        """Function indices on the shadow stack, outermost first, innermost last,
        the running slot functions (if any) included as the innermost frames.
        When the depth exceeds the capacity only the innermost
        ``stack_capacity`` frames (and the slots) are returned."""
        if depth is None:
            depth = self.read_depth(books)
        return self._read_ring(books, depth) + self.read_slots(books)

    def _read_ring(self, books: bytes | bytearray | memoryview, depth: int) -> list[int]:
        if depth <= 0:
            return []
        cap = self.stack_capacity
        # Read only the live entries: a sampler calls this while the guest
        # writes the same cache lines, so every line read costs the guest.
        start = max(0, depth - cap) & (cap - 1)
        n = min(depth, cap)
        head = min(n, cap - start)
        out = list(struct.unpack_from(f"<{head}I", books, self.stack_offset + 4 * start))
        if head < n:
            out += struct.unpack_from(f"<{n - head}I", books, self.stack_offset)
        return out

    def read_counters(self, books: bytes | bytearray | memoryview) -> list[int]:
        """Call counts indexed by original function index (imports included)."""
        return list(struct.unpack_from(f"<{self.n_functions}Q", books, self.counters_offset))

    def read_counter(self, books: bytes | bytearray | memoryview, funcidx: int) -> int:
        return int(struct.unpack_from("<Q", books, self.counter_offset(funcidx))[0])

    # -- (de)serialisation ----------------------------------------------------
    def to_dict(self) -> dict[str, Any]:
        d = asdict(self)
        d["thunks"] = {str(k): v for k, v in sorted(self.thunks.items())}
        return d

    @classmethod
    def from_dict(cls, d: Mapping[str, Any]) -> CountersLayout:
        values = dict(d)
        values["thunks"] = {int(k): int(v) for k, v in dict(values.get("thunks", {})).items()}
        return cls(**values)

    def to_json(self) -> str:
        return json.dumps(self.to_dict(), sort_keys=True)

    @classmethod
    def from_json(cls, text: str | bytes) -> CountersLayout:
        return cls.from_dict(json.loads(text))
