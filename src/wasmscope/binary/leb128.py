"""LEB128 encoders (the decoders live in :mod:`wasmscope.binary.reader`)."""

from __future__ import annotations

__all__ = ["sleb", "uleb"]

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
