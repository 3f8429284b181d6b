"""LEB128 with the spec's limits: bounded decoders over ``bytes`` and encoders."""

from __future__ import annotations

from wasmscope.errors import DecodeError

__all__ = ["read_sleb", "read_uleb", "sleb", "uleb"]

_SMALL = [bytes([i]) for i in range(0x80)]


def uleb(value: int) -> bytes:
    if 0 <= value < 0x80:
        return _SMALL[value]
    if value < 0:
        raise ValueError(f"unsigned LEB128 of negative value {value}")
    out = bytearray()
    while True:
        b = value & 0x7F
        value >>= 7
        if value:
            out.append(b | 0x80)
        else:
            out.append(b)
            return bytes(out)


def sleb(value: int) -> bytes:
    if -0x40 <= value < 0x40:
        return _SMALL[value & 0x7F]
    out = bytearray()
    while True:
        b = value & 0x7F
        value >>= 7
        if (value == 0 and not b & 0x40) or (value == -1 and b & 0x40):
            out.append(b)
            return bytes(out)
        out.append(b | 0x80)


def read_uleb(data: bytes, pos: int, end: int, bits: int) -> tuple[int, int]:
    """An unsigned LEB128 of at most ``bits`` at ``data[pos:end]``, with the
    spec's rules; returns (value, position after it)."""
    start = pos
    result = 0
    shift = 0
    last = (bits + 6) // 7
    while True:
        if pos >= end:
            raise DecodeError("unexpected end", pos)
        b = data[pos]
        pos += 1
        if pos - start == last:
            if b & 0x80:
                raise DecodeError("integer representation too long", pos - 1)
            if b >> (bits - shift):
                raise DecodeError("integer too large", pos - 1)
            return result | (b << shift), pos
        result |= (b & 0x7F) << shift
        if b < 0x80:
            return result, pos
        shift += 7


def read_sleb(data: bytes, pos: int, end: int, bits: int) -> tuple[int, int]:
    """A signed LEB128 of ``bits`` (32, 33 or 64); returns (value, position after it)."""
    start = pos
    result = 0
    shift = 0
    last = (bits + 6) // 7
    while True:
        if pos >= end:
            raise DecodeError("unexpected end", pos)
        b = data[pos]
        pos += 1
        if pos - start == last:
            if b & 0x80:
                raise DecodeError("integer representation too long", pos - 1)
            # Unused high bits must all repeat the sign bit.
            used = bits - shift
            rest = (b & 0x7F) >> (used - 1)
            if rest != 0 and rest != (0x7F >> (used - 1)):
                raise DecodeError("integer too large", pos - 1)
            result |= (b & 0x7F) << shift
            shift += 7
            break
        result |= (b & 0x7F) << shift
        shift += 7
        if b < 0x80:
            break
    if (result >> (shift - 1)) & 1:
        result -= 1 << shift
    return result, pos
