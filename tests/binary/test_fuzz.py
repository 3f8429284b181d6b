"""Mutation fuzzing over real modules (pyelftools' test_corrupt_files idea):
whatever the bytes, only DecodeError escapes, and nothing hangs."""

from __future__ import annotations

import signal
from pathlib import Path

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from wasmscope.binary.custom import decode_custom
from wasmscope.binary.module import Module
from wasmscope.errors import DecodeError

# Small real modules from different toolchains keep each example fast.
SEEDS = [
    "tree-sitter-wasms-0.1.13--out_tree-sitter-json.wasm",
    "tree-sitter-wasms-0.1.13--out_tree-sitter-embedded_template.wasm",
    "yowasp-yosys-0.55.944--gen_yosys.core3.wasm",
    "yowasp-yosys-0.55.944--gen_yosys.core4.wasm",
    "bytecodealliance-jco-1.35.0--lib_wasi_snapshot_preview1.command.wasm",
]


def decode_everything(data: bytes) -> None:
    m = Module(data)
    m.decode_all()
    for s in m.custom_sections():
        assert s.name is not None
        decode_custom(s.name, m.data, s.content_start, s.end)


@pytest.fixture(scope="module")
def seeds(real_corpus: Path) -> list[bytes]:
    out = [(real_corpus / name).read_bytes() for name in SEEDS if (real_corpus / name).exists()]
    if not out:
        pytest.skip("none of the seed modules are in the real corpus")
    for data in out:
        decode_everything(data)  # the seeds themselves are well-formed
    return out


mutation = st.one_of(
    st.tuples(st.just("flip"), st.integers(0, 1 << 30), st.integers(1, 255)),
    st.tuples(st.just("truncate"), st.integers(0, 1 << 30), st.just(0)),
    st.tuples(st.just("insert"), st.integers(0, 1 << 30), st.integers(0, 255)),
    st.tuples(st.just("delete"), st.integers(0, 1 << 30), st.integers(1, 16)),
    st.tuples(st.just("big-leb"), st.integers(0, 1 << 30), st.just(0)),
)


def mutate(data: bytes, ops: list[tuple[str, int, int]]) -> bytes:
    buf = bytearray(data)
    for op, where, arg in ops:
        if not buf:
            break
        i = where % len(buf)
        if op == "flip":
            buf[i] ^= arg
        elif op == "truncate":
            del buf[i:]
        elif op == "insert":
            buf.insert(i, arg)
        elif op == "delete":
            del buf[i : i + arg]
        else:  # a huge count or size where a small one stood
            buf[i : i + 1] = b"\xff\xff\xff\xff\x0f"
    return bytes(buf)


@settings(
    max_examples=1500,
    deadline=None,
    suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow],
)
@given(seed=st.integers(0, len(SEEDS) - 1), ops=st.lists(mutation, min_size=1, max_size=4))
def test_mutated_real_modules_raise_only_decode_error(
    seeds: list[bytes], seed: int, ops: list[tuple[str, int, int]]
) -> None:
    data = mutate(seeds[seed % len(seeds)], ops)
    # A hang guard, not a speed check: each example takes milliseconds.
    signal.alarm(60)
    try:
        decode_everything(data)
    except DecodeError as exc:
        assert 0 <= exc.offset <= len(data)
    finally:
        signal.alarm(0)


def test_huge_counts_are_refused_before_allocating() -> None:
    header = b"\x00asm\x01\x00\x00\x00"
    # a type section claiming 2**32-1 entries in 5 bytes of payload
    data = header + b"\x01\x05\xff\xff\xff\xff\x0f"
    with pytest.raises(DecodeError, match=r"length out of bounds|unexpected end"):
        Module(data).decode_all()
    # a function body claiming 2**32-1 local groups
    body = b"\xff\xff\xff\xff\x0f\x0b"
    code = b"\x01" + bytes([len(body)]) + body
    data = header + b"\x01\x04\x01\x60\x00\x00" + b"\x03\x02\x01\x00" + b"\x0a" + bytes([len(code)]) + code
    with pytest.raises(DecodeError):
        Module(data).decode_all()
