"""Bounded cursor over one ``bytes`` object, with the spec's LEB128 rules.

Positions are absolute offsets into the whole file so that every
``DecodeError`` names the byte where decoding went wrong.
"""

from __future__ import annotations

import struct

from wasmscope.binary.leb128 import read_sleb, read_uleb
from wasmscope.errors import DecodeError

__all__ = ["Reader"]

_F32 = struct.Struct("<f")


class Reader:
    """Reads ``data[pos:end]``; never reads past ``end``."""

    __slots__ = ("data", "end", "pos")

    def __init__(self, data: bytes, pos: int = 0, end: int | None = None) -> None:
        self.data = data
        self.pos = pos
        self.end = len(data) if end is None else end

    # -- errors -------------------------------------------------------------
    def error(self, message: str, offset: int | None = None) -> DecodeError:
        return DecodeError(message, self.pos if offset is None else offset)

    def _eof(self) -> DecodeError:
        return DecodeError("unexpected end", self.pos)

    # -- raw bytes ----------------------------------------------------------
    @property
    def remaining(self) -> int:
        return self.end - self.pos

    def at_end(self) -> bool:
        return self.pos >= self.end

    def peek(self) -> int:
        if self.pos >= self.end:
            raise self._eof()
        return self.data[self.pos]

    def u8(self) -> int:
        pos = self.pos
        if pos >= self.end:
            raise self._eof()
        self.pos = pos + 1
        return self.data[pos]

    def bytes(self, n: int) -> bytes:
        pos = self.pos
        if n > self.end - pos:
            raise DecodeError("unexpected end", pos)
        self.pos = pos + n
        return self.data[pos : pos + n]

    def skip(self, n: int) -> None:
        if n > self.end - self.pos:
            raise DecodeError("unexpected end", self.pos)
        self.pos += n

    def u32_fixed(self) -> int:
        return int.from_bytes(self.bytes(4), "little")

    def u64_fixed(self) -> int:
        return int.from_bytes(self.bytes(8), "little")

    # -- LEB128 -------------------------------------------------------------
    def u32(self) -> int:
        data = self.data
        pos = self.pos
        if pos < self.end:
            b = data[pos]
            if b < 0x80:
                self.pos = pos + 1
                return b
        return self._uleb(32)

    def u64(self) -> int:
        return self._uleb(64)

    def s32(self) -> int:
        return self._sleb(32)

    def s33(self) -> int:
        return self._sleb(33)

    def s64(self) -> int:
        return self._sleb(64)

    def _uleb(self, bits: int) -> int:
        value, self.pos = read_uleb(self.data, self.pos, self.end, bits)
        return value

    def _sleb(self, bits: int) -> int:
        value, self.pos = read_sleb(self.data, self.pos, self.end, bits)
        return value

    # -- composite ----------------------------------------------------------
    def count(self, min_item_size: int = 1) -> int:
        """A vector length; one the remaining bytes cannot hold is refused now,
        so a hostile count never drives allocation."""
        pos = self.pos
        n = self.u32()
        if n * min_item_size > self.end - self.pos:
            raise DecodeError("length out of bounds", pos)
        return n

    def name(self) -> str:
        lpos = self.pos
        n = self.u32()
        pos = self.pos
        if n > self.end - pos:
            raise DecodeError("length out of bounds", lpos)
        raw = self.bytes(n)
        try:
            return raw.decode("utf-8")
        except UnicodeDecodeError as exc:
            raise DecodeError("malformed UTF-8 encoding", pos + exc.start) from None

    def sub(self, size: int) -> Reader:
        """A reader over the next ``size`` bytes; this one skips past them."""
        pos = self.pos
        if size > self.end - pos:
            raise DecodeError("unexpected end", pos)
        self.pos = pos + size
        return Reader(self.data, pos, pos + size)

    def f32_bits(self) -> int:
        return self.u32_fixed()

    def f64_bits(self) -> int:
        return self.u64_fixed()


def f32_from_bits(bits: int) -> float:
    return float(_F32.unpack(bits.to_bytes(4, "little"))[0])
