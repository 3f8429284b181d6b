"""Instruction decoder and encoder: layouts, round trips, and hostile bytes."""

from __future__ import annotations

import contextlib
from pathlib import Path
from typing import Any

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from wasmscope.binary import opcodes as O
from wasmscope.binary.immediates import ImmKind as K
from wasmscope.binary.instructions import (
    decode_expr,
    decode_function_body,
    encode_function_body,
    encode_instructions,
    iter_opcodes,
)
from wasmscope.binary.types import RefType
from wasmscope.errors import DecodeError, EncodeError

E = b"\x0b"
END = (O.END,)

# (bytes of one instruction, its tuple); every ImmKind appears at least once.
CASES: list[tuple[bytes, tuple[Any, ...]]] = [
    (b"\x6a", (O.I32_ADD,)),
    (b"\x02\x40", (O.BLOCK, -64)),
    (b"\x03\x7f", (O.LOOP, -1)),
    (b"\x04\x70", (O.IF, 0x70 - 0x80)),
    (b"\x02\x05", (O.BLOCK, 5)),
    (b"\x02\x80\x01", (O.BLOCK, 128)),
    (b"\x02\x64\x03", (O.BLOCK, RefType(False, 3))),
    (b"\x02\x63\x05", (O.BLOCK, RefType(True, 5))),
    (b"\x0c\x02", (O.BR, 2)),
    (b"\x0e\x03\x00\x01\x02\x05", (O.BR_TABLE, (0, 1, 2), 5)),
    (b"\x0e\x00\x00", (O.BR_TABLE, (), 0)),
    (b"\x10\xc0\xbb\x01", (O.CALL, 24000)),
    (b"\x11\x02\x01", (O.CALL_INDIRECT, 2, 1)),
    (b"\x14\x07", (O.CALL_REF, 7)),
    (b"\x08\x01", (O.THROW, 1)),
    (b"\x1c\x02\x7f\x64\x00", (O.SELECT_T, (0x7F, RefType(False, 0)))),
    (b"\x20\x03", (O.LOCAL_GET, 3)),
    (b"\x21\xff\x7f", (O.LOCAL_SET, 16383)),
    (b"\x22\x80\x80\x01", (O.LOCAL_TEE, 16384)),
    (b"\x23\x00", (O.GLOBAL_GET, 0)),
    (b"\x25\x01", (O.TABLE_GET, 1)),
    (b"\x28\x02\x04", (O.I32_LOAD, 2, 4, 0)),
    (b"\x29\x03\x80\x01", (O.I64_LOAD, 3, 128, 0)),
    (b"\x36\x02\xff\xff\xff\xff\xff\xff\xff\xff\xff\x01", (O.I32_STORE, 2, 2**64 - 1, 0)),
    (b"\x28\x42\x01\x08", (O.I32_LOAD, 2, 8, 1)),
    (b"\x3f\x00", (O.MEMORY_SIZE, 0)),
    (b"\x40\x01", (O.MEMORY_GROW, 1)),
    (b"\x41\x3f", (O.I32_CONST, 63)),
    (b"\x41\x40", (O.I32_CONST, -64)),
    (b"\x41\x7f", (O.I32_CONST, -1)),
    (b"\x41\xc0\x00", (O.I32_CONST, 64)),
    (b"\x41\x80\x7f", (O.I32_CONST, -128)),
    (b"\x41\x80\x80\x80\x80\x78", (O.I32_CONST, -(2**31))),
    (b"\x41\xff\xff\xff\xff\x07", (O.I32_CONST, 2**31 - 1)),
    (b"\x42\x80\x80\x80\x80\x80\x80\x80\x80\x80\x7f", (O.I64_CONST, -(2**63))),
    (b"\x42\x2a", (O.I64_CONST, 42)),
    (b"\x43\x00\x00\xc0\x7f", (O.F32_CONST, 0x7FC00000)),
    (b"\x44\x01\x00\x00\x00\x00\x00\xf8\x7f", (O.F64_CONST, 0x7FF8000000000001)),
    (b"\xd0\x70", (O.REF_NULL, 0x70 - 0x80)),
    (b"\xd0\x05", (O.REF_NULL, 5)),
    (b"\xd2\x09", (O.REF_FUNC, 9)),
    (b"\xd5\x00", (O.BR_ON_NULL, 0)),
    (b"\xfb\x00\x01", (O.STRUCT_NEW, 1)),
    (b"\xfb\x02\x01\x02", (O.STRUCT_GET, 1, 2)),
    (b"\xfb\x08\x01\x04", (O.ARRAY_NEW_FIXED, 1, 4)),
    (b"\xfb\x09\x01\x00", (O.ARRAY_NEW_DATA, 1, 0)),
    (b"\xfb\x0a\x01\x00", (O.ARRAY_NEW_ELEM, 1, 0)),
    (b"\xfb\x11\x01\x02", (O.ARRAY_COPY, 1, 2)),
    (b"\xfb\x0f", (O.ARRAY_LEN,)),
    (b"\xfb\x15\x6c", (O.REF_TEST_NULL, 0x6C - 0x80)),
    (b"\xfb\x18\x03\x00\x6e\x01", (O.BR_ON_CAST, 3, 0, 0x6E - 0x80, 1)),
    (b"\xfc\x00", (O.I32_TRUNC_SAT_F32_S,)),
    (b"\xfc\x08\x02\x00", (O.MEMORY_INIT, 2, 0)),
    (b"\xfc\x09\x02", (O.DATA_DROP, 2)),
    (b"\xfc\x0a\x01\x00", (O.MEMORY_COPY, 1, 0)),
    (b"\xfc\x0b\x00", (O.MEMORY_FILL, 0)),
    (b"\xfc\x0c\x03\x01", (O.TABLE_INIT, 3, 1)),
    (b"\xfc\x0d\x03", (O.ELEM_DROP, 3)),
    (b"\xfc\x0e\x00\x01", (O.TABLE_COPY, 0, 1)),
    (b"\xfc\x0f\x00", (O.TABLE_GROW, 0)),
    (b"\xfd\x00\x04\x00", (O.V128_LOAD, 4, 0, 0)),
    (b"\xfd\x0c" + bytes(range(16)), (O.V128_CONST, bytes(range(16)))),
    (b"\xfd\x0d" + bytes(range(31, 15, -1)), (O.I8X16_SHUFFLE, bytes(range(31, 15, -1)))),
    (b"\xfd\x15\x0f", (O.I8X16_EXTRACT_LANE_S, 15)),
    (b"\xfd\x54\x00\x10\x07", (O.V128_LOAD8_LANE, 0, 16, 0, 7)),
    (b"\xfd\x5b\x43\x02\x20\x01", (O.V128_STORE64_LANE, 3, 32, 2, 1)),
    (b"\xfd\x5c\x02\x00", (O.V128_LOAD32_ZERO, 2, 0, 0)),
    (b"\xfd\x80\x01", (O.I16X8_ABS,)),
    (b"\xfd\x93\x02", (O.I32X4_RELAXED_DOT_I8X16_I7X16_ADD_S,)),
    (b"\xfe\x00\x02\x00", (O.MEMORY_ATOMIC_NOTIFY, 2, 0, 0)),
    (b"\xfe\x03\x00", (O.ATOMIC_FENCE, 0)),
    (b"\xfe\x4e\x03\x08", (O.I64_ATOMIC_RMW32_CMPXCHG_U, 3, 8, 0)),
]

# Whole bodies (after the locals) with structured control.
STRUCTURED: list[tuple[bytes, list[tuple[Any, ...]]]] = [
    (
        b"\x04\x40\x01\x05\x01\x0b\x0b",
        [(O.IF, -64), (O.NOP,), (O.ELSE,), (O.NOP,), END, END],
    ),
    (
        b"\x1f\x40\x04\x00\x01\x02\x01\x03\x04\x02\x05\x03\x06\x0b\x0b",
        [(O.TRY_TABLE, -64, ((0, 1, 2), (1, 3, 4), (2, 5), (3, 6))), END, END],
    ),
    (
        # legacy: try / catch / catch_all / end, then try / delegate
        b"\x06\x40\x07\x00\x19\x0b\x06\x40\x18\x00\x0b",
        [(O.TRY, -64), (O.CATCH, 0), (O.CATCH_ALL,), END, (O.TRY, -64), (O.DELEGATE, 0), END],
    ),
    (
        b"\x02\x40\x03\x40\x0c\x01\x0b\x0b\x0b",
        [(O.BLOCK, -64), (O.LOOP, -64), (O.BR, 1), END, END, END],
    ),
]


def _body(code: bytes, locals_: bytes = b"\x00") -> bytes:
    return locals_ + code


def test_every_kind_is_covered() -> None:
    kinds = {O.IMMEDIATES[ins[0]] for _, ins in CASES}
    kinds |= {K.TRY_TABLE, K.TAG}  # in STRUCTURED
    assert kinds == set(range(K.COUNT))


@pytest.mark.parametrize(
    ("raw", "ins"), CASES, ids=[O.NAMES[c[1][0]] + f"-{i}" for i, c in enumerate(CASES)]
)
def test_single_instruction_round_trip(raw: bytes, ins: tuple[Any, ...]) -> None:
    opens = O.IMMEDIATES[ins[0]] == K.BLOCK
    code = raw + E + E if opens else raw + E
    instrs, pos = decode_expr(code, 0, len(code))
    assert instrs == ([ins, END, END] if opens else [ins, END])
    assert pos == len(code)
    assert encode_instructions(instrs) == code
    # Also at an offset inside a larger buffer, bounded by `end`.
    padded = b"\xff\xff" + code + b"\xff"
    instrs2, pos2 = decode_expr(padded, 2, 2 + len(code))
    assert instrs2 == instrs and pos2 == 2 + len(code)


@pytest.mark.parametrize(("raw", "instrs"), STRUCTURED)
def test_structured_round_trip(raw: bytes, instrs: list[tuple[Any, ...]]) -> None:
    assert decode_expr(raw, 0, len(raw)) == (instrs, len(raw))
    assert encode_instructions(instrs) == raw


def test_expression_stops_at_its_end() -> None:
    data = b"\x41\x01\x0b\x41\x02\x0b"
    assert decode_expr(data, 0, len(data)) == ([(O.I32_CONST, 1), END], 3)
    assert list(iter_opcodes(data, 3, len(data))) == [O.I32_CONST, O.END]


def test_function_body_with_locals() -> None:
    body = b"\x03\x02\x7f\x01\x7e\x03\x64\x00" + b"\x20\x00\x1a\x0b"
    locals_, instrs = decode_function_body(body, 0, len(body))
    assert locals_ == [(2, 0x7F), (1, 0x7E), (3, RefType(False, 0))]
    assert instrs == [(O.LOCAL_GET, 0), (O.DROP,), END]
    assert encode_function_body(locals_, instrs) == body


def test_instruction_offsets_walk_the_raw_bytes() -> None:
    from wasmscope.binary.instructions import instruction_offsets

    # locals, then local.get 0 (padded LEB), memory.fill (prefixed), block/end, end
    body = b"\x01\x01\x7f" + b"\x20\x80\x80\x80\x80\x00" + b"\xfc\x0b\x00" + b"\x02\x40\x0b" + b"\x0b"
    at = 10
    data = bytes(at) + body
    assert instruction_offsets(data, at, len(data)) == [at + 3, at + 9, at + 12, at + 14, at + 15]
    with pytest.raises(DecodeError):
        instruction_offsets(data + b"\xff", at, len(data) + 1)


def test_immediateless_tuples_are_shared() -> None:
    code = b"\x6a\x6a\x0b"
    a, b, _ = decode_expr(code, 0, 3)[0]
    assert a is b


# -- padded (non-canonical) LEB128 ----------------------------------------------
@pytest.mark.parametrize(
    ("padded", "canonical"),
    [
        (b"\x20\x83\x80\x80\x80\x00", b"\x20\x03"),  # local.get 3, as wasm-ld pads
        (b"\x10\x85\x80\x80\x80\x00", b"\x10\x05"),
        (b"\x41\xff\xff\xff\xff\x7f", b"\x41\x7f"),  # i32.const -1
        (b"\x41\x80\x80\x80\x80\x00", b"\x41\x00"),
        (b"\x28\x82\x80\x80\x80\x00\x90\x80\x80\x80\x00", b"\x28\x02\x10"),
        (b"\xfc\x8a\x80\x80\x80\x00\x00\x00", b"\xfc\x0a\x00\x00"),  # padded sub-opcode
        (b"\x02\xc0\x80\x80\x00\x0b", b"\x02\xc0\x00\x0b"),  # block type index 64, padded s33
        (b"\x02\x63\x6e\x0b", b"\x02\x6e\x0b"),  # (ref null any) is anyref
        (b"\x28\x40\x00\x04", b"\x28\x00\x04"),  # memidx 0 written explicitly
    ],
)
def test_padded_leb_round_trip(padded: bytes, canonical: bytes) -> None:
    instrs, _ = decode_expr(padded + E, 0, len(padded) + 1)
    assert encode_instructions(instrs) == canonical + E
    assert decode_expr(canonical + E, 0, len(canonical) + 1)[0] == instrs


# -- errors -----------------------------------------------------------------------
def _err(
    data: bytes, *, end: int | None = None, body: bool = False, data_count: bool = True
) -> DecodeError:
    with pytest.raises(DecodeError) as info:
        if body:
            decode_function_body(data, 0, len(data) if end is None else end, data_count=data_count)
        else:
            decode_expr(data, 0, len(data) if end is None else end, data_count=data_count)
    return info.value


@pytest.mark.parametrize(
    ("code", "message"),
    [
        (b"\xff\x0b", "illegal opcode ff"),
        (b"\x27\x0b", "illegal opcode 27"),
        (b"\xfd\x9a\x01\x0b", "illegal opcode fd 9a"),
        (b"\xfc\x12\x0b", "illegal opcode fc 12"),
        (b"\xfc\x87\x80\x80\x80\x80\x00\x0b", "integer representation too long"),
        (b"\x20\x80\x80\x80\x80\x10\x0b", "integer too large"),
        (b"\x41\x80\x80\x80\x80\x70\x0b", "integer too large"),
        (b"\x28\x80\x01\x00\x0b", "malformed memop flags"),
        (b"\x28\x80\x02\x00\x0b", "malformed memop flags"),
        (b"\xfe\x03\x01\x0b", "zero byte expected"),
        (b"\x1c\x01\x40\x0b", "malformed value type"),
        (b"\x1c\x01\x62\x0b", "malformed reference type"),
        (b"\xd0\x60\x0b", "malformed heap type"),
        (b"\x02\x60\x0b", "malformed block type"),
        (b"\x1f\x40\x01\x04\x00\x0b", "malformed catch clause"),
        (b"\xfb\x18\x04\x00\x6e\x6e\x0b", "malformed br_on_cast flags"),
        (b"\x05\x0b", "END opcode expected"),
        (b"\x18\x00\x0b", "END opcode expected"),
        (b"\x0e\xff\xff\x03\x0b", "length out of bounds"),
    ],
)
def test_malformed(code: bytes, message: str) -> None:
    assert _err(code).message == message


def test_reading_past_end_inside_data_is_an_error() -> None:
    # `end` cuts the expression although the buffer goes on.
    data = b"\x41\x01\x0b\x0b"
    e = _err(data, end=2)
    assert e.message.startswith("unexpected end")
    # An immediate that runs past `end` into following bytes.
    data = b"\x20\x80\x0b\x0b"
    assert _err(data, end=2).message == "unexpected end"
    data = b"\xfd\x0c" + bytes(16) + b"\x0b"
    assert _err(data, end=10).message == "unexpected end"
    # `end` beyond the buffer is clamped.
    assert _err(b"\x41\x01", end=10).message.startswith("unexpected end")


def test_function_body_errors() -> None:
    # Locals beyond 2**32-1 in total (spec binary.wast).
    assert _err(b"\x02\xff\xff\xff\xff\x0f\x7f\x02\x7e\x0b", body=True).message == "too many locals"
    # The expression ends before the body does.
    assert _err(b"\x00\x0b\x01", body=True).message == "section size mismatch"
    # The body ends inside its expression. As the reference decoder reads on,
    # what follows names the error (spec binary.wast, binary_37/38/39).
    assert _err(b"\x00\x41\x01\x1a\x05\x00", end=4, body=True).message == "END opcode expected"
    assert _err(b"\x00\x41\x01\x1a\x0b\x03", end=4, body=True).message == "section size mismatch"
    assert _err(b"\x00\x41\x01\x1a", body=True).message == "unexpected end of section or function"
    assert _err(b"\x00\x41\x01\x1a\x41", end=4, body=True).message == "END opcode expected"
    assert _err(b"\x05\x00", body=True).message == "unexpected end"


@pytest.mark.parametrize(
    "code",
    [b"\xfc\x08\x00\x00", b"\xfc\x09\x00", b"\xfb\x09\x00\x00", b"\xfb\x12\x00\x00"],
    ids=["memory.init", "data.drop", "array.new_data", "array.init_data"],
)
def test_data_count_required(code: bytes) -> None:
    assert _err(code + E, data_count=False).message == "data count section required"
    assert decode_expr(code + E, 0, len(code) + 1, data_count=True)[0][-1] == END
    assert (
        _err(b"\x00" + code + E, body=True, data_count=False).message
        == "data count section required"
    )


VALID_BODY = _body(
    b"\x02\x40\x20\x00\x28\x02\x10\x41\xc0\x00\x6a\x0d\x00\x0b"
    b"\x0e\x02\x00\x00\x00\x1f\x7f\x01\x00\x00\x00\x41\x01\x0b\x1a"
    b"\xfd\x0c" + bytes(16) + b"\xfd\x54\x00\x04\x03\x1a\x43\x00\x00\x80\x3f\x1a"
    b"\x44" + bytes(8) + b"\x1a\x1c\x01\x7f\xfb\x18\x01\x00\x6e\x6e\x0b",
    b"\x01\x02\x7f",
)


def test_valid_body_decodes() -> None:
    locals_, instrs = decode_function_body(VALID_BODY, 0, len(VALID_BODY))
    assert locals_ == [(2, 0x7F)]
    assert encode_function_body(locals_, instrs) == VALID_BODY


def test_every_truncation_is_a_decode_error() -> None:
    for cut in range(len(VALID_BODY)):
        # Cut the buffer itself, and cut only `end` inside a longer buffer.
        with pytest.raises(DecodeError):
            decode_function_body(VALID_BODY[:cut], 0, cut)
        with pytest.raises(DecodeError):
            decode_function_body(VALID_BODY, 0, cut)


@settings(max_examples=3000, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(st.binary(max_size=64), st.integers(0, 8), st.booleans())
def test_random_bytes_raise_only_decode_error(data: bytes, slack: int, data_count: bool) -> None:
    end = max(0, len(data) - slack)
    for fn in (decode_expr, decode_function_body):
        with contextlib.suppress(DecodeError):
            fn(data, 0, end, data_count=data_count)


_OPS = sorted(O.NAMES)


@settings(max_examples=2000, deadline=None)
@given(st.lists(st.sampled_from(_OPS), max_size=12), st.binary(max_size=24))
def test_opcode_soup_raises_only_decode_error(ops: list[int], tail: bytes) -> None:
    """Valid opcodes followed by arbitrary immediates reach the deep paths."""
    raw = bytearray()
    for op in ops:
        raw += bytes((op,)) if op < 0x100 else bytes((op >> 12, op & 0x7F | 0x80, op >> 7 & 0x1F))
        raw += tail[: op % 5]
    raw += tail
    try:
        instrs, _ = decode_expr(bytes(raw), 0, len(raw))
    except DecodeError:
        return
    again = encode_instructions(instrs)
    assert decode_expr(again, 0, len(again))[0] == instrs


# -- encoder errors --------------------------------------------------------------
@pytest.mark.parametrize(
    "ins",
    [
        (0xFF,),
        (O.LOCAL_GET, -1),
        (O.LOCAL_GET, 2**32),
        (O.I32_CONST, 2**32),
        (O.LOCAL_GET,),
        (O.V128_CONST, b"\x00"),
        (O.BLOCK, -30),
        ("x",),
        (O.I32_LOAD, 64, 0, 0),
    ],
)
def test_encode_errors(ins: tuple[Any, ...]) -> None:
    with pytest.raises(EncodeError):
        encode_instructions([ins])


def test_encode_accepts_unsigned_i32_spelling() -> None:
    assert encode_instructions([(O.I32_CONST, 0xFFFFFFFF)]) == b"\x41\x7f"


# -- corpora ----------------------------------------------------------------------
def test_spec_corpus_bodies_round_trip(spec_corpus: Path) -> None:
    from wasmscope.binary.module import Module

    n = 0
    for kind in ("valid", "invalid"):
        for path in sorted((spec_corpus / kind).glob("*.wasm")):
            try:
                bodies = Module(path.read_bytes()).code
            except DecodeError:
                continue  # not this layer's business
            for body in bodies:
                locals_, instrs = body.decode()
                enc = encode_function_body(locals_, instrs)
                if enc != body.raw():  # padded LEBs: canonical, same meaning
                    assert decode_function_body(enc, 0, len(enc)) == (locals_, instrs), path.name
                n += 1
    assert n > 5000


@pytest.mark.realcorpus
def test_real_modules_round_trip(real_corpus: Path) -> None:
    from tests.corpus import real_modules
    from wasmscope.binary.module import Module

    for path in real_modules(real_corpus)[:6]:
        for body in Module(path.read_bytes()).code:
            locals_, instrs = body.decode()
            enc = encode_function_body(locals_, instrs)
            if enc != body.raw():
                assert decode_function_body(enc, 0, len(enc)) == (locals_, instrs), path.name
