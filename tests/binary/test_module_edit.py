"""Editing a decoded module gives a valid module that wasmtime runs: rewritten
bodies, and added globals, memories, types, functions and exports."""

from __future__ import annotations

from pathlib import Path

import pytest

from wasmscope.binary import opcodes as op
from wasmscope.binary.module import FunctionBody, Module
from wasmscope.binary.sections import Export, Global
from wasmscope.binary.types import (
    I32,
    I64,
    ExternKind,
    FuncType,
    GlobalType,
    Limits,
    MemoryType,
    RecGroup,
    SubType,
)

wasmtime = pytest.importorskip("wasmtime")

# (func $add (param i32 i32) (result i32) local.get 0 local.get 1 i32.add) exported as "add"
ADD = bytes.fromhex(
    "0061736d01000000"
    "0107016002 7f7f 017f".replace(" ", "")
    + "03020100"
    + "070701036164640000"
    + "0a09010700200020016a0b"
)


def _instance(data: bytes) -> tuple[object, object]:
    store = wasmtime.Store()
    module = wasmtime.Module(store.engine, data)
    return store, wasmtime.Instance(store, module, [])


def test_unchanged_module_encodes_to_the_same_bytes() -> None:
    m = Module(ADD)
    _ = m.imports, m.exports, m.code, m.types  # decoded but not edited
    assert m.encode() == ADD
    store, inst = _instance(ADD)
    assert inst.exports(store)["add"](store, 2, 3) == 5  # type: ignore[attr-defined]


def test_rewritten_body_runs_the_new_code() -> None:
    m = Module(ADD)
    locals_, instrs = m.code[0].decode()
    assert instrs == [(op.LOCAL_GET, 0), (op.LOCAL_GET, 1), (op.I32_ADD,), (op.END,)]
    m.code[0].replace(locals_, [(op.LOCAL_GET, 0), (op.LOCAL_GET, 1), (op.I32_MUL,), (op.END,)])
    out = m.encode()
    assert out != ADD
    store, inst = _instance(out)
    assert inst.exports(store)["add"](store, 6, 7) == 42  # type: ignore[attr-defined]


def test_added_global_memory_function_and_exports() -> None:
    m = Module(ADD)
    # a counter global bumped on every call
    m.globals.append(Global(GlobalType(I64, True), ((op.I64_CONST, 0), (op.END,))))
    g = len(m.global_types()) - 1
    locals_, instrs = m.code[0].decode()
    m.code[0].replace(
        locals_,
        [(op.GLOBAL_GET, g), (op.I64_CONST, 1), (op.I64_ADD,), (op.GLOBAL_SET, g), *instrs],
    )
    # a second memory (multi-memory) the host can read, and a function writing to it
    m.memories.append(MemoryType(Limits(1, 1)))
    m.memories.append(MemoryType(Limits(1)))
    mem = len(m.memory_types()) - 1
    m.rec_groups.append(RecGroup([SubType(FuncType((I32,), ()))]))
    t = len(m.types) - 1
    m.functions.append(t)
    m.code.append(
        FunctionBody.new(
            [(1, I32)],
            [(op.I32_CONST, 8), (op.LOCAL_GET, 0), (op.I32_STORE, 2, 0, mem), (op.END,)],
        )
    )
    f = m.num_imported_functions + len(m.functions) - 1
    m.exports.extend(
        [
            Export("calls", ExternKind.GLOBAL, g),
            Export("books", ExternKind.MEMORY, mem),
            Export("poke", ExternKind.FUNC, f),
        ]
    )
    out = m.encode()
    wasmtime.Module.validate(wasmtime.Engine(), out)
    again = Module(out)
    again.decode_all()
    assert [s.kind for s in again.sections] == ["type", "function", "memory", "global", "export", "code"]
    store, inst = _instance(out)
    ex = inst.exports(store)
    assert ex["add"](store, 2, 3) == 5  # type: ignore[index]
    assert ex["add"](store, 2, 3) == 5  # type: ignore[index]
    assert ex["calls"].value(store) == 2  # type: ignore[index]
    ex["poke"](store, 0x01020304)  # type: ignore[index]
    assert ex["books"].read(store, 8, 12) == bytes([4, 3, 2, 1])  # type: ignore[index]


@pytest.mark.realcorpus
def test_real_module_with_every_body_rewritten_still_validates(real_corpus: Path) -> None:
    path = real_corpus / "tree-sitter-wasms-0.1.13--out_tree-sitter-c.wasm"
    if not path.exists():
        pytest.skip(f"{path.name} is not in the corpus")
    data = path.read_bytes()
    m = Module(data)
    m.globals.append(Global(GlobalType(I32, True), ((op.I32_CONST, 0), (op.END,))))
    g = len(m.global_types()) - 1
    for body in m.code:
        locals_, instrs = body.decode()
        body.replace(locals_, [(op.GLOBAL_GET, g), (op.I32_CONST, 1), (op.I32_ADD,), (op.GLOBAL_SET, g), *instrs])
    out = m.encode()
    assert out != data
    wasmtime.Module.validate(wasmtime.Engine(), out)
    assert [imp.name for imp in Module(out).imports] == [imp.name for imp in Module(data).imports]
