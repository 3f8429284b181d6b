"""Instruction decoder and encoder: the hot path of every full decode.

An instruction is a tuple ``(opcode, *immediates)`` laid out as
:mod:`wasmscope.binary.immediates` describes. The decoder indexes the
``bytes`` directly with absolute positions and inlines the short LEB128
cases; anything unusual goes through small helpers that check every bound.

Bounds: the main loop checks ``pos < end`` before each opcode, so an
immediate that ran past ``end`` is caught at the next fetch (the expression
must end with ``end``, fetched in bounds), and reading past ``len(data)``
surfaces as ``IndexError``, turned into :class:`DecodeError` at the boundary.
"""

from __future__ import annotations

from collections.abc import Iterable, Iterator, Sequence
from typing import Any

from wasmscope.binary.immediates import ImmKind as K
from wasmscope.binary.leb128 import read_sleb, read_uleb, sleb, uleb
from wasmscope.binary.opcodes import IMMEDIATES, ONE_BYTE, PREFIXED
from wasmscope.binary.reader import Reader
from wasmscope.binary.types import RefType, ValType, encode_valtype, read_heaptype, read_valtype
from wasmscope.errors import DecodeError, EncodeError

__all__ = [
    "Instruction",
    "decode_expr",
    "decode_function_body",
    "encode_function_body",
    "encode_instructions",
    "instruction_offsets",
    "iter_opcodes",
]

Instruction = tuple[Any, ...]

# -- dispatch tables ------------------------------------------------------------
# Internal kinds: the ImmKind values, plus a few that fold together kinds
# with one u32 immediate and split out the structured-control opcodes.
_U32 = 100  # LOCAL GLOBAL FUNC LABEL TYPE TAG TABLE MEMIDX ELEM
_END = 101
_ELSE = 102  # else, catch_all: need an open block
_CATCH = 103  # legacy catch: tag immediate, needs an open block
_DELEGATE = 104  # label immediate, closes a legacy try

_AS_U32 = frozenset((K.LOCAL, K.GLOBAL, K.FUNC, K.LABEL, K.TYPE, K.TAG, K.TABLE, K.MEMIDX, K.ELEM))


def _internal(kind: int) -> int:
    return _U32 if kind in _AS_U32 else kind


_K1: list[int] = [_internal(k) if k >= 0 else k for k in ONE_BYTE]
_K1[0x0B] = _END
_K1[0x05] = _ELSE
_K1[0x19] = _ELSE
_K1[0x07] = _CATCH
_K1[0x18] = _DELEGATE
_KP: dict[int, list[int]] = {
    p: [_internal(k) if k >= 0 else k for k in t] for p, t in PREFIXED.items()
}

# Immediate-less instructions are shared: one tuple per opcode.
_SHARED: dict[int, Instruction] = {op: (op,) for op, k in IMMEDIATES.items() if k == K.NONE}

# One-byte value types that a block type may name directly.
_BLOCK_VALTYPES = frozenset((0x7F, 0x7E, 0x7D, 0x7C, 0x7B, *range(0x69, 0x75)))


# -- bounded LEB128 helpers: (value, new position) --------------------------------
def _eof(pos: int) -> DecodeError:
    return DecodeError("unexpected end", pos)




# -- rare immediates ------------------------------------------------------------
def _memarg(data: bytes, pos: int, end: int) -> tuple[int, int, int, int]:
    """(align, offset, memidx, new pos); flags bit 6 says a memidx follows."""
    fpos = pos
    flags, pos = read_uleb(data, pos, end, 32)
    if flags >= 0x80:
        raise DecodeError("malformed memop flags", fpos)
    mem = 0
    if flags & 0x40:
        mem, pos = read_uleb(data, pos, end, 32)
        flags -= 0x40
    offset, pos = read_uleb(data, pos, end, 64)
    return flags, offset, mem, pos


def _blocktype(data: bytes, pos: int, end: int) -> tuple[Any, int]:
    if pos >= end:
        raise _eof(pos)
    b = data[pos]
    if b == 0x40 or b in _BLOCK_VALTYPES:
        return b - 0x80, pos + 1
    if b == 0x63 or b == 0x64:
        r = Reader(data, pos, end)
        vt = read_valtype(r)
        # A (ref null <abstract>) came back as its shorthand byte.
        return (vt - 0x80 if isinstance(vt, int) else vt), r.pos
    start = pos
    v, pos = read_sleb(data, pos, end, 33)
    if v < 0:
        raise DecodeError("malformed block type", start)
    return v, pos


def _two_u32(op: int, data: bytes, pos: int, end: int) -> tuple[Instruction, int]:
    a, pos = read_uleb(data, pos, end, 32)
    b, pos = read_uleb(data, pos, end, 32)
    return (op, a, b), pos


def _slow(
    op: int, k: int, data: bytes, pos: int, end: int, data_count: bool
) -> tuple[Instruction, int]:
    """Immediates of the kinds the main loop does not inline."""
    if k == _U32:
        v, pos = read_uleb(data, pos, end, 32)
        return (op, v), pos
    if k == K.CALL_INDIRECT or k == K.TYPE_FIELD or k == K.TYPE_U32 or k == K.TYPE_ELEM:
        return _two_u32(op, data, pos, end)
    if k == K.I32:
        v, pos = read_sleb(data, pos, end, 32)
        return (op, v), pos
    if k == K.I64:
        v, pos = read_sleb(data, pos, end, 64)
        return (op, v), pos
    if k == K.BR_TABLE:
        n, p = read_uleb(data, pos, end, 32)
        if n > end - p:  # each label takes a byte at least
            raise DecodeError("length out of bounds", pos)
        labels = []
        for _ in range(n):
            x, p = read_uleb(data, p, end, 32)
            labels.append(x)
        default, p = read_uleb(data, p, end, 32)
        return (op, tuple(labels), default), p
    if k == K.MEMARG:
        a, o, m, pos = _memarg(data, pos, end)
        return (op, a, o, m), pos
    if k == K.BLOCK or k == K.TRY_TABLE:
        bt, pos = _blocktype(data, pos, end)
        if k == K.BLOCK:
            return (op, bt), pos
        n, p = read_uleb(data, pos, end, 32)
        if n * 2 > end - p:
            raise DecodeError("length out of bounds", pos)
        catches: list[tuple[int, ...]] = []
        for _ in range(n):
            if p >= end:
                raise _eof(p)
            ck = data[p]
            if ck > 3:
                raise DecodeError("malformed catch clause", p)
            p += 1
            if ck < 2:
                tag, p = read_uleb(data, p, end, 32)
                label, p = read_uleb(data, p, end, 32)
                catches.append((ck, tag, label))
            else:
                label, p = read_uleb(data, p, end, 32)
                catches.append((ck, label))
        return (op, bt, tuple(catches)), p
    if k == K.HEAPTYPE or k == K.SELECT_T or k == K.BR_ON_CAST:
        r = Reader(data, pos, end)
        if k == K.HEAPTYPE:
            ins: Instruction = (op, read_heaptype(r))
        elif k == K.SELECT_T:
            ins = (op, tuple(read_valtype(r) for _ in range(r.count())))
        else:
            fpos = r.pos
            flags = r.u8()
            if flags > 3:
                raise DecodeError("malformed br_on_cast flags", fpos)
            label = r.u32()
            ht1 = read_heaptype(r)
            ins = (op, flags, label, ht1, read_heaptype(r))
        return ins, r.pos
    if k == K.TYPE_DATA or k == K.MEMORY_INIT or k == K.DATA:
        if not data_count:
            raise DecodeError("data count section required", pos)
        if k == K.DATA:
            v, pos = read_uleb(data, pos, end, 32)
            return (op, v), pos
        return _two_u32(op, data, pos, end)
    if k == K.TYPE_TYPE or k == K.MEM_MEM or k == K.TABLE_INIT or k == K.TABLE_TABLE:
        return _two_u32(op, data, pos, end)
    if k == K.V128 or k == K.SHUFFLE:
        if end - pos < 16:
            raise _eof(pos)
        return (op, data[pos : pos + 16]), pos + 16
    if k == K.LANE:
        if pos >= end:
            raise _eof(pos)
        return (op, data[pos]), pos + 1
    if k == K.MEMARG_LANE:
        a, o, m, pos = _memarg(data, pos, end)
        if pos >= end:
            raise _eof(pos)
        return (op, a, o, m, data[pos]), pos + 1
    if k == K.FENCE:
        if pos >= end:
            raise _eof(pos)
        if data[pos] != 0:
            raise DecodeError("zero byte expected", pos)
        return (op, 0), pos + 1
    if k == K.F32 or k == K.F64:
        n = 4 if k == K.F32 else 8
        if end - pos < n:
            raise _eof(pos)
        return (op, int.from_bytes(data[pos : pos + n], "little")), pos + n
    raise DecodeError(f"unsupported immediate kind {k}", pos)  # table bug, not input


class _BodyOverrun(DecodeError):
    """A function body ended inside its expression, and bytes follow it."""


def _illegal(op: int, sub: int | None, pos: int) -> DecodeError:
    if sub is None:
        return DecodeError(f"illegal opcode {op:02x}", pos)
    return DecodeError(f"illegal opcode {op:02x} {sub:x}", pos)


# -- the decoder ----------------------------------------------------------------
def _decode(
    data: bytes, pos: int, end: int, data_count: bool, body: bool
) -> tuple[list[Instruction], int]:
    out: list[Instruction] = []
    append = out.append
    K1 = _K1
    KP = _KP
    SH = _SHARED
    depth = 0
    while True:
        if pos >= end:
            if pos > end:  # an immediate ran past the end
                raise _eof(end)
            if body and end < len(data):
                raise _BodyOverrun("END opcode expected", pos)
            raise DecodeError("unexpected end of section or function", pos)
        # Common kinds first, by frequency in real code; immediates are read
        # at pos + 1 so the opcode byte costs no separate increment.
        op = data[pos]
        k = K1[op]
        if k == _U32:
            b = data[pos + 1]
            if b < 0x80:
                append((op, b))
                pos += 2
            else:
                c = data[pos + 2]
                if c < 0x80:
                    append((op, (b & 0x7F) | (c << 7)))
                    pos += 3
                else:
                    v, pos = read_uleb(data, pos + 1, end, 32)
                    append((op, v))
        elif k == 0:  # NONE
            append(SH[op])
            pos += 1
        elif k == 15:  # I32
            b = data[pos + 1]
            if b < 0x40:
                append((op, b))
                pos += 2
            elif b < 0x80:
                append((op, b - 0x80))
                pos += 2
            else:
                c = data[pos + 2]
                if c < 0x80:
                    v = (b & 0x7F) | (c << 7)
                    append((op, v - 0x4000 if c & 0x40 else v))
                    pos += 3
                else:
                    v, pos = read_sleb(data, pos + 1, end, 32)
                    append((op, v))
        elif k == 13:  # MEMARG
            a = data[pos + 1]
            if a < 0x40:
                b = data[pos + 2]
                if b < 0x80:
                    append((op, a, b, 0))
                    pos += 3
                else:
                    c = data[pos + 3]
                    if c < 0x80:
                        append((op, a, (b & 0x7F) | (c << 7), 0))
                        pos += 4
                    else:
                        v, pos = read_uleb(data, pos + 2, end, 64)
                        append((op, a, v, 0))
            else:
                a, o, m, pos = _memarg(data, pos + 1, end)
                append((op, a, o, m))
        elif k == _END:
            append(SH[op])
            pos += 1
            if depth == 0:
                return out, pos
            depth -= 1
        elif k == 1:  # BLOCK
            b = data[pos + 1]
            if b == 0x40 or 0x7B <= b < 0x80:
                append((op, b - 0x80))
                pos += 2
            else:
                bt, pos = _blocktype(data, pos + 1, end)
                append((op, bt))
            depth += 1
        else:
            pos += 1
            if k == -2:  # prefix byte
                b = data[pos]
                if b < 0x80:
                    sub = b
                    pos += 1
                else:
                    sub, pos = read_uleb(data, pos, end, 32)
                t = KP[op]
                if sub >= len(t) or t[sub] < 0:
                    raise _illegal(op, sub, pos - 1)
                k = t[sub]
                op = (op << 12) | sub
                if k == 0:
                    append(SH[op])
                else:
                    ins, pos = _slow(op, k, data, pos, end, data_count)
                    append(ins)
            elif k == -1:
                raise _illegal(op, None, pos - 1)
            elif k >= _ELSE:
                if depth == 0:
                    raise DecodeError("END opcode expected", pos - 1)
                if k == _ELSE:
                    append(SH[op])
                else:
                    v, pos = read_uleb(data, pos, end, 32)
                    append((op, v))
                    if k == _DELEGATE:
                        depth -= 1
            else:
                ins, pos = _slow(op, k, data, pos, end, data_count)
                append(ins)
                if k == 9:  # TRY_TABLE
                    depth += 1


def _guard(
    data: bytes, pos: int, end: int, data_count: bool, body: bool
) -> tuple[list[Instruction], int]:
    if end > len(data):
        end = len(data)
    if pos < 0:  # would index from the far end of the buffer
        raise DecodeError("unexpected end", pos)
    try:
        return _decode(data, pos, end, data_count, body)
    except IndexError:
        # Only a read past len(data) gets here.
        raise DecodeError("unexpected end", end) from None


def decode_expr(
    data: bytes, pos: int, end: int, *, data_count: bool = True
) -> tuple[list[Instruction], int]:
    """Instructions from ``pos`` through the ``end`` that closes the expression,
    and the position after it."""
    return _guard(data, pos, end, data_count, False)


def decode_function_body(
    data: bytes, pos: int, end: int, *, data_count: bool = True
) -> tuple[list[tuple[int, ValType]], list[Instruction]]:
    """(locals as (count, type) groups, instructions) of one code entry
    ``data[pos:end]`` (after its size)."""
    if end > len(data):
        end = len(data)
    if pos < 0:
        raise DecodeError("unexpected end", pos)
    r = Reader(data, pos, end)
    start = r.pos
    n = r.u32()
    if n * 2 > r.remaining:
        raise DecodeError("unexpected end", start)
    locals_: list[tuple[int, ValType]] = []
    total = 0
    for _ in range(n):
        cpos = r.pos
        count = r.u32()
        total += count
        if total > 0xFFFFFFFF:
            raise DecodeError("too many locals", cpos)
        locals_.append((count, read_valtype(r)))
    expr = r.pos
    try:
        instrs, p = _guard(data, expr, end, data_count, True)
    except _BodyOverrun as exc:
        # The reference decoder reads on past a body, and what it meets there
        # names the error: an `end` -> size mismatch, an `else` -> END expected.
        try:
            _, p = _guard(data, expr, len(data), data_count, False)
        except DecodeError:
            raise DecodeError(exc.message, exc.offset) from None
        raise DecodeError("section size mismatch", p) from None
    if p != end:
        raise DecodeError("section size mismatch", p)
    return locals_, instrs


def instruction_offsets(data: bytes, start: int, end: int, *, data_count: bool = True) -> list[int]:
    """Absolute offsets of the instructions of the code entry ``data[start:end]``
    (after its size): where each instruction's opcode starts, in order, the final
    ``end`` included. Raises :class:`DecodeError` on malformed code."""
    r = Reader(data, start, end)
    for _ in range(r.count()):
        r.u32()
        read_valtype(r)
    pos = r.pos
    out: list[int] = []
    k1, kp, slow = _K1, _KP, _slow
    while pos < end:
        out.append(pos)
        code = data[pos]
        k = k1[code]
        pos += 1
        if k in (0, _END, _ELSE):
            continue
        if k == -2:  # a prefix: the sub-opcode is a u32
            sub, pos = read_uleb(data, pos, end, 32)
            table = kp[code]
            if sub >= len(table) or table[sub] < 0:
                raise DecodeError(f"illegal opcode {code:02x} {sub:x}", pos)
            k = table[sub]
            if k != 0:
                _, pos = slow((code << 12) | sub, k, data, pos, end, data_count)
        elif k == -1:
            raise DecodeError(f"illegal opcode {code:02x}", pos - 1)
        elif k in (_CATCH, _DELEGATE):
            _, pos = read_uleb(data, pos, end, 32)
        else:
            _, pos = slow(code, k, data, pos, end, data_count)
    if pos != end:
        raise DecodeError("instruction runs past the end of its function", end)
    return out


def iter_opcodes(data: bytes, pos: int, end: int) -> Iterator[int]:
    """The opcodes of one expression, in order (feature scans)."""
    for ins in decode_expr(data, pos, end)[0]:
        yield ins[0]


# -- the encoder ----------------------------------------------------------------
def _opbytes(op: int) -> bytes:
    if op < 0x100:
        return bytes((op,))
    return bytes((op >> 12,)) + uleb(op & 0xFFF)


_OPBYTES: dict[int, bytes] = {op: _opbytes(op) for op in IMMEDIATES}
_EKIND: dict[int, int] = {op: _internal(k) for op, k in IMMEDIATES.items()}


def _eu(v: int, bits: int) -> bytes:
    if not 0 <= v < (1 << bits):
        raise EncodeError(f"value {v} out of range for u{bits}")
    return uleb(v)


def _es(v: int, bits: int) -> bytes:
    # Unsigned spellings (i32.const 0xFFFFFFFF) wrap to their signed value.
    if (1 << (bits - 1)) <= v < (1 << bits):
        v -= 1 << bits
    if not -(1 << (bits - 1)) <= v < (1 << (bits - 1)):
        raise EncodeError(f"value {v} out of range for s{bits}")
    return sleb(v)


def _e_blocktype(bt: Any) -> bytes:
    if isinstance(bt, RefType):
        return encode_valtype(bt)
    if bt < 0:
        if bt != -64 and bt + 0x80 not in _BLOCK_VALTYPES:
            raise EncodeError(f"bad block type {bt}")
        return bytes((bt + 0x80,))
    return _es(bt, 33)


def _e_memarg(align: int, offset: int, mem: int) -> bytes:
    if not 0 <= align < 0x40:
        raise EncodeError(f"bad alignment {align}")
    if mem:
        return _eu(align | 0x40, 32) + _eu(mem, 32) + _eu(offset, 64)
    return bytes((align,)) + _eu(offset, 64)


def _e_slow(ins: Instruction, k: int) -> bytes:
    if k == K.I64:
        return _es(ins[1], 64)
    if k == K.F32 or k == K.F64:
        n = 4 if k == K.F32 else 8
        v = ins[1]
        if not 0 <= v < (1 << (8 * n)):
            raise EncodeError(f"float bits {v} out of range")
        return bytes(v.to_bytes(n, "little"))
    if k == K.MEMARG:
        return _e_memarg(ins[1], ins[2], ins[3])
    if k == K.MEMARG_LANE:
        return _e_memarg(ins[1], ins[2], ins[3]) + bytes((ins[4],))
    if k == K.BLOCK:
        return _e_blocktype(ins[1])
    if k in (
        K.CALL_INDIRECT,
        K.TYPE_FIELD,
        K.TYPE_U32,
        K.TYPE_DATA,
        K.TYPE_ELEM,
        K.TYPE_TYPE,
        K.MEMORY_INIT,
        K.MEM_MEM,
        K.TABLE_INIT,
        K.TABLE_TABLE,
    ):
        return _eu(ins[1], 32) + _eu(ins[2], 32)
    if k == K.DATA:
        return _eu(ins[1], 32)
    if k == K.BR_TABLE:
        labels = ins[1]
        return _eu(len(labels), 32) + b"".join(_eu(x, 32) for x in labels) + _eu(ins[2], 32)
    if k == K.SELECT_T:
        return _eu(len(ins[1]), 32) + b"".join(encode_valtype(t) for t in ins[1])
    if k == K.TRY_TABLE:
        parts = [_e_blocktype(ins[1]), _eu(len(ins[2]), 32)]
        for c in ins[2]:
            if c[0] < 2:
                _, tag, label = c
                parts.append(bytes((c[0],)) + _eu(tag, 32) + _eu(label, 32))
            else:
                _, label = c
                parts.append(bytes((c[0],)) + _eu(label, 32))
        return b"".join(parts)
    if k == K.HEAPTYPE:
        return _es(ins[1], 33)
    if k == K.BR_ON_CAST:
        return bytes((ins[1],)) + _eu(ins[2], 32) + _es(ins[3], 33) + _es(ins[4], 33)
    if k == K.V128 or k == K.SHUFFLE:
        v = bytes(ins[1])
        if len(v) != 16:
            raise EncodeError("a v128 immediate takes 16 bytes")
        return v
    if k == K.LANE:
        return bytes((ins[1],))
    if k == K.FENCE:
        return b"\x00"
    raise EncodeError(f"unsupported immediate kind {k}")


def encode_instructions(instrs: Iterable[Instruction]) -> bytes:
    out = bytearray()
    OPB = _OPBYTES
    EK = _EKIND
    ins: Instruction = ()
    try:
        for ins in instrs:
            op = ins[0]
            k = EK[op]
            out += OPB[op]
            if k == 0:
                continue
            if k == _U32:
                v = ins[1]
                if 0 <= v < 0x80:
                    out.append(v)
                else:
                    out += _eu(v, 32)
            elif k == 15:  # I32
                v = ins[1]
                if -0x40 <= v < 0x40:
                    out.append(v & 0x7F)
                else:
                    out += _es(v, 32)
            elif k == 13 and not ins[3] and 0 <= ins[1] < 0x40 and 0 <= ins[2] < 0x80:
                out.append(ins[1])
                out.append(ins[2])
            else:
                out += _e_slow(ins, k)
    except EncodeError:
        raise
    except (KeyError, IndexError, TypeError, ValueError, AttributeError, OverflowError) as exc:
        raise EncodeError(f"cannot encode instruction {ins!r}: {exc!r}") from None
    return bytes(out)


def encode_function_body(
    locals: Sequence[tuple[int, ValType]], instrs: Iterable[Instruction]
) -> bytes:
    """One code entry without its size prefix."""
    head = bytearray(_eu(len(locals), 32))
    for n, vt in locals:
        head += _eu(n, 32)
        head += encode_valtype(vt)
    return bytes(head) + encode_instructions(instrs)
