"""The official core test suite, binary format: every well-formed module
decodes fully, every malformed one is refused with a DecodeError, and every
decoded module encodes back to the same bytes."""

from __future__ import annotations

from pathlib import Path

import pytest

from wasmscope.binary.module import Module
from wasmscope.errors import DecodeError


def _files(spec_corpus: Path, kind: str) -> list[Path]:
    files = sorted((spec_corpus / kind).glob("*.wasm"))
    assert files, f"no {kind} files in {spec_corpus}"
    return files


def _structure(m: Module) -> list[object]:
    """Everything the decoder produces, for semantic comparison."""
    return [
        m.rec_groups, m.imports, m.functions, m.tables, m.memories, m.tags, m.globals,
        m.exports, m.start_function, m.elements, m.data_count,
        [bytes(d.init) for d in m.data_segments], [d.offset for d in m.data_segments],
        [b.decode() for b in m.code],
        [(s.name, bytes(m.custom_payload(s))) for s in m.custom_sections()],
    ]


@pytest.mark.parametrize("kind", ["valid", "invalid"])
def test_well_formed_files_decode_fully_and_round_trip(spec_corpus: Path, kind: str) -> None:
    failures = []
    reencoded_identical = 0
    files = _files(spec_corpus, kind)
    for path in files:
        data = path.read_bytes()
        try:
            m = Module(data)
            m.decode_all()
            assert m.encode() == data, "unchanged module did not encode to the same bytes"
            again = m.encode(reencode=True)
            if again == data:
                reencoded_identical += 1
            else:
                # Non-canonical LEB128 in the source: the re-encoding must
                # still decode to exactly the same structure.
                m2 = Module(again)
                m2.decode_all()
                assert _structure(m2) == _structure(Module(data)), "re-encoded module differs"
        except (DecodeError, AssertionError) as exc:
            failures.append(f"{path.name}: {exc}")
    assert not failures, f"{len(failures)}/{len(files)} failed:\n" + "\n".join(failures[:40])
    # Nearly all of the suite is written canonically; if the encoder were
    # lossy this share would collapse.
    assert reencoded_identical > 0.9 * len(files)


def test_malformed_files_raise_decode_error(spec_corpus: Path) -> None:
    accepted = []
    for path in _files(spec_corpus, "malformed"):
        try:
            Module(path.read_bytes()).decode_all()
        except DecodeError as exc:
            assert exc.offset >= 0
        else:
            expected = path.with_suffix(".txt").read_text().strip()
            accepted.append(f"{path.name} (expected: {expected})")
    assert not accepted, f"{len(accepted)} malformed files accepted:\n" + "\n".join(accepted)
