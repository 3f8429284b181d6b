"""Immediate kinds: what follows an opcode in the binary, and how an
instruction tuple ``(opcode, *immediates)`` carries it.

Opcodes are ints: a one-byte opcode is its byte; a prefixed one is
``prefix << 12 | sub`` (``0xFC00A`` is ``memory.copy``, ``0xFD108`` is
``f32x4.relaxed_nmadd``... read it as "FD 108").
"""

from __future__ import annotations

__all__ = ["ImmKind"]


class ImmKind:
    """Immediate layouts. Each comment shows the tuple after the opcode."""

    NONE = 0  # ()
    BLOCK = 1  # (blocktype,)  blocktype: s33 int (<0: -64 empty or a value type byte - 0x80; >=0 type index) or RefType
    LABEL = 2  # (labelidx,)
    BR_TABLE = 3  # (labels: tuple[int, ...], default: int)
    FUNC = 4  # (funcidx,)
    CALL_INDIRECT = 5  # (typeidx, tableidx)
    TYPE = 6  # (typeidx,)
    TAG = 7  # (tagidx,)
    SELECT_T = 8  # (valtypes: tuple[ValType, ...],)
    TRY_TABLE = 9  # (blocktype, catches: tuple[Catch, ...]) Catch = (kind, tag, label) or (kind, label)
    LOCAL = 10  # (localidx,)
    GLOBAL = 11  # (globalidx,)
    TABLE = 12  # (tableidx,)
    MEMARG = 13  # (align, offset, memidx)  align is log2; memidx encoded with flag bit 6 when != 0
    MEMIDX = 14  # (memidx,)
    I32 = 15  # (value,) signed
    I64 = 16  # (value,) signed
    F32 = 17  # (bits,) raw IEEE bits as u32, so NaN payloads survive
    F64 = 18  # (bits,) raw IEEE bits as u64
    HEAPTYPE = 19  # (heaptype,) s33: <0 abstract, >=0 type index
    TYPE_FIELD = 20  # (typeidx, fieldidx)
    TYPE_U32 = 21  # (typeidx, n)  array.new_fixed
    TYPE_DATA = 22  # (typeidx, dataidx)
    TYPE_ELEM = 23  # (typeidx, elemidx)
    TYPE_TYPE = 24  # (typeidx, typeidx)  array.copy
    BR_ON_CAST = 25  # (flags, labelidx, heaptype1, heaptype2)
    MEMORY_INIT = 26  # (dataidx, memidx)
    DATA = 27  # (dataidx,)
    MEM_MEM = 28  # (dst memidx, src memidx)
    TABLE_INIT = 29  # (elemidx, tableidx)
    ELEM = 30  # (elemidx,)
    TABLE_TABLE = 31  # (dst tableidx, src tableidx)
    V128 = 32  # (16 bytes,)
    SHUFFLE = 33  # (16 lane indices as bytes,)
    LANE = 34  # (laneidx,)
    MEMARG_LANE = 35  # (align, offset, memidx, laneidx)
    FENCE = 36  # (flags,)  atomic.fence: one byte, 0

    COUNT = 37
