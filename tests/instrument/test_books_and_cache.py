"""The layout (JSON round trip, readers) and the on-disk cache."""

from __future__ import annotations

import json
import os
import struct
from pathlib import Path

import pytest

from tests.instrument.support import wat
from wasmscope.instrument import (
    BOOKS_EXPORT,
    PASS_VERSION,
    CountersLayout,
    default_cache_dir,
    instrument,
    instrument_cached,
)
from wasmscope.instrument import instrumented_cache as cache_mod

pytest.importorskip("wasmtime")

MODULE = """(module (import "env" "f" (func $f))
  (func (export "a") (call $f)) (func (export "b") (call 1)))"""


def test_layout_is_json_serialisable_and_round_trips() -> None:
    layout = instrument(wat(MODULE), stack_capacity=1024).layout
    assert layout.memory_export == BOOKS_EXPORT
    assert layout.depth_offset == 0
    assert layout.slots_offset == 4
    assert layout.slots == 15
    assert layout.stack_offset == 64
    assert layout.stack_capacity == 1024
    assert layout.counters_offset == 64 + 4 * 1024
    assert layout.n_functions == 3
    assert layout.thunks == {3: 0}
    assert layout.version == PASS_VERSION
    text = layout.to_json()
    assert json.loads(text)["thunks"] == {"3": 0}
    assert CountersLayout.from_json(text) == layout
    assert CountersLayout.from_dict(json.loads(json.dumps(layout.to_dict()))) == layout


def test_readers() -> None:
    layout = CountersLayout(BOOKS_EXPORT, 0, 64, 4, 80, 3, 1, 0, 1)
    books = bytearray(layout.pages * 65536)
    struct.pack_into("<I", books, 0, 6)
    struct.pack_into("<4I", books, 64, 10, 11, 12, 13)  # frames 4, 5 overwrote 0, 1
    struct.pack_into("<3Q", books, 80, 1, 2, 1 << 40)
    assert layout.read_depth(books) == 6
    assert layout.read_stack(books) == [12, 13, 10, 11]
    assert layout.read_stack(books, depth=2) == [10, 11]
    assert layout.read_counters(books) == [1, 2, 1 << 40]
    assert layout.read_counter(books, 2) == 1 << 40
    assert layout.counter_offset(1) == 88
    with pytest.raises(IndexError):
        layout.counter_offset(3)
    assert layout.size == 80 + 24


def test_cache_hit_returns_the_same_result(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    data = wat(MODULE)
    first = instrument_cached(data, tmp_path)
    assert first == instrument(data)
    files = sorted(p.name for p in tmp_path.iterdir())
    assert len(files) == 2 and files[0].endswith(".json") and files[1].endswith(".wasm")
    assert not any(p.name.startswith(".tmp") for p in tmp_path.iterdir())

    def boom(*_a: object, **_k: object) -> None:
        raise AssertionError("the pass ran again")

    monkeypatch.setattr(cache_mod, "instrument", boom)
    assert instrument_cached(data, tmp_path) == first
    # another capacity is another entry
    monkeypatch.undo()
    other = instrument_cached(data, tmp_path, stack_capacity=256)
    assert other.layout.stack_capacity == 256
    assert len(list(tmp_path.iterdir())) == 4


def test_corrupt_or_torn_entries_are_recomputed(tmp_path: Path) -> None:
    data = wat(MODULE)
    good = instrument_cached(data, tmp_path)
    [wasm_file] = tmp_path.glob("*.wasm")
    wasm_file.write_bytes(good.wasm[:-1] + b"\xff")
    assert instrument_cached(data, tmp_path) == good
    assert wasm_file.read_bytes() == good.wasm
    [json_file] = tmp_path.glob("*.json")
    json_file.write_text("{not json")
    assert instrument_cached(data, tmp_path) == good
    wasm_file.unlink()
    assert instrument_cached(data, tmp_path) == good


def test_unwritable_cache_still_returns_the_result(tmp_path: Path) -> None:
    blocker = tmp_path / "file"
    blocker.write_text("")
    data = wat(MODULE)
    assert instrument_cached(data, blocker / "sub") == instrument(data)


def test_default_cache_dir(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    monkeypatch.setenv("WASMSCOPE_CACHE_DIR", str(tmp_path))
    assert default_cache_dir() == tmp_path / "instrumented"
    monkeypatch.delenv("WASMSCOPE_CACHE_DIR")
    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path / "xdg"))
    assert default_cache_dir() == tmp_path / "xdg" / "wasmscope" / "instrumented"
    monkeypatch.delenv("XDG_CACHE_HOME")
    assert default_cache_dir() == Path(os.path.expanduser("~")) / ".cache" / "wasmscope" / "instrumented"


@pytest.mark.parametrize("cap", [1, 2, 4, 8])
def test_read_stack_matches_the_ring_definition(cap: int) -> None:
    layout = CountersLayout(BOOKS_EXPORT, 0, 64, cap, 64 + 4 * cap, 0, 0, 0, 1)
    books = bytearray(65536)
    values = [1000 + i for i in range(cap)]
    struct.pack_into(f"<{cap}I", books, 64, *values)
    for depth in range(3 * cap + 2):
        expected = [values[i & (cap - 1)] for i in range(max(0, depth - cap), depth)]
        assert layout.read_stack(books, depth) == expected


def test_a_cached_layout_is_read_without_the_instrumented_module(tmp_path: Path) -> None:
    """A profile start whose compiled code is cached reads only the entry's .json
    (the rewritten yosys is 70 MB: reading and hashing it cost ~0.3 s a process)."""
    import hashlib

    from wasmscope.instrument.instrumented_cache import cached_layout
    from wasmscope.runtime import guest_counters as books_mod
    from wasmscope.runtime.identity import load_source

    data = wat(MODULE)
    sha = hashlib.sha256(data).hexdigest()
    assert cached_layout(sha, tmp_path) is None
    first = instrument_cached(data, tmp_path)
    wasm_sha = hashlib.sha256(first.wasm).hexdigest()
    assert cached_layout(sha, tmp_path) == (first.layout, wasm_sha)
    assert cached_layout(sha, tmp_path, stack_capacity=256) is None

    (wasm_file,) = tmp_path.glob("*.wasm")
    wasm_file.unlink()  # not read on a hit: its absence is only seen when compiling
    source = load_source(data)
    books_mod._PLANS.clear()
    plan = books_mod.plan_for(source, tmp_path)
    assert (plan.layout, plan.key, plan.wasm) == (first.layout, wasm_sha, None)
    assert plan.instrumented(source) == first.wasm  # rewritten again, checked, cached again
    assert wasm_file.is_file()
    books_mod._PLANS.clear()
