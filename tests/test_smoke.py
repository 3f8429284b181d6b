"""The package imports, its error tree behaves as documented, and the test
infrastructure finds the spec corpus."""

from __future__ import annotations

from pathlib import Path

import wasmscope
from tests.corpus import MANIFEST_COLUMNS, SPEC_KINDS, read_manifest, spec_files
from wasmscope.errors import DecodeError, WasmscopeError


def test_package_imports() -> None:
    assert wasmscope.__name__ == "wasmscope"


def test_decode_error_is_a_wasmscope_error_with_hex_offset() -> None:
    assert issubclass(DecodeError, WasmscopeError)
    err = DecodeError("unexpected end", 0x1F2)
    assert err.offset == 0x1F2
    assert "unexpected end" in str(err)
    assert "0x1f2" in str(err)


def test_manifest_lists_exactly_the_spec_files(spec_corpus: Path) -> None:
    rows = read_manifest(spec_corpus)
    assert rows and set(rows[0]) >= set(MANIFEST_COLUMNS)
    for kind in SPEC_KINDS:
        on_disk = {p.relative_to(spec_corpus).as_posix() for p in spec_files(kind, spec_corpus)}
        listed = {r["file"] for r in rows if r["kind"] == kind}
        assert on_disk and on_disk == listed, kind
