"""The compiled-module cache: cached starts, corrupt entries recompiled (never handed to
wasmtime), concurrent writers, an unsafe folder refused, pruning."""

from __future__ import annotations

import os
import subprocess
import sys
import threading
from pathlib import Path

import pytest

from wasmscope.runtime import Outcome, Runtime
from wasmscope.runtime.compiled_cache import DiskCache, default_cache_dir


def _entries(cache: Path) -> list[Path]:
    return sorted(p for p in cache.rglob("*") if p.suffix in (".cwasm", ".ccwasm"))


def test_second_run_is_cached(c_modules: dict[str, Path], cache_dir: Path) -> None:
    path = c_modules["hello"]
    with Runtime(cache_dir=cache_dir) as rt:
        first = rt.run(path)
        again = rt.run(path)
    assert (first.cache, first.cold_start) == ("miss", True)
    assert first.phase("compile") is not None and "wasm.compile_seconds" in first.phase("compile").attributes  # type: ignore[union-attr]
    assert (again.cache, again.cold_start) == ("memory", False)
    [entry] = _entries(cache_dir)
    assert first.attributes["wasm.cache.entry"] == str(entry)
    with Runtime(cache_dir=cache_dir) as rt:  # a new process would see the same
        second = rt.run(path)
    assert (second.cache, second.cold_start) == ("disk", False)
    assert second.outcome == Outcome.OK and second.stdout == first.stdout
    assert oct(cache_dir.stat().st_mode & 0o777) == "0o700"


@pytest.mark.parametrize("damage", ["flip", "truncate", "garbage"])
def test_a_damaged_entry_is_detected_and_recompiled(c_modules: dict[str, Path], cache_dir: Path, damage: str) -> None:
    path = c_modules["crash"]
    with Runtime(cache_dir=cache_dir) as rt:
        assert rt.run(path).cache == "miss"
    [entry] = _entries(cache_dir)
    data = bytearray(entry.read_bytes())
    if damage == "flip":  # one byte in the middle: wasmtime itself would not notice
        data[len(data) // 2] ^= 0x40
    elif damage == "truncate":
        del data[len(data) // 3 :]
    else:
        data[:] = os.urandom(len(data))
    entry.write_bytes(bytes(data))
    with Runtime(cache_dir=cache_dir) as rt:
        rec = rt.run(path)
    assert rec.outcome == Outcome.TRAP and rec.trap is not None and rec.trap.frames[0].func_name == "innermost"
    assert rec.cache == "miss" and rec.cold_start
    expected = {"flip": "corrupted", "truncate": "truncated", "garbage": "corrupted"}[damage]
    assert expected in rec.attributes["wasm.cache.note"]
    [fresh] = _entries(cache_dir)
    with Runtime(cache_dir=cache_dir) as rt:
        assert rt.run(path).cache == "disk"
    assert fresh.read_bytes() != bytes(data)


def test_an_entry_wasmtime_refuses_is_recompiled(c_modules: dict[str, Path], cache_dir: Path) -> None:
    """Right size and CRC, but not something this wasmtime accepts (another version,
    another CPU): wasmtime says no, the entry goes."""
    import zlib

    path = c_modules["hello"]
    with Runtime(cache_dir=cache_dir) as rt:
        rt.run(path)
    [entry] = _entries(cache_dir)
    junk = b"\x7fELF" + b"\x00" * 4092
    sha = entry.name.split("-")[0]
    entry.unlink()
    forged = entry.parent / f"{sha}-{len(junk)}-{zlib.crc32(junk):08x}.cwasm"
    forged.write_bytes(junk)
    with Runtime(cache_dir=cache_dir) as rt:
        rec = rt.run(path)
    assert rec.outcome == Outcome.OK and rec.cache == "miss"
    assert "refused by wasmtime" in rec.attributes["wasm.cache.note"]
    assert not forged.exists() and len(_entries(cache_dir)) == 1


_WRITER = """
import sys
from wasmscope.runtime import Runtime
with Runtime(cache_dir=sys.argv[1]) as rt:
    rec = rt.run(sys.argv[2])
print(rec.cache, rec.outcome)
"""


def test_concurrent_writers_end_with_one_valid_entry(c_modules: dict[str, Path], cache_dir: Path) -> None:
    path = c_modules["escape"]
    procs = [
        subprocess.Popen([sys.executable, "-c", _WRITER, str(cache_dir), str(path)], stdout=subprocess.PIPE, text=True)
        for _ in range(4)
    ]
    outs = [p.communicate(timeout=300)[0].split() for p in procs]
    assert all(p.returncode == 0 for p in procs)
    assert all(out[1] == "ok" for out in outs)
    assert {out[0] for out in outs} <= {"miss", "disk"}
    entries = _entries(cache_dir)
    assert len(entries) == 1
    leftovers = [p for p in cache_dir.rglob(".tmp-*")]
    assert leftovers == []
    with Runtime(cache_dir=cache_dir) as rt:
        assert rt.run(path).cache == "disk"


def test_threads_of_one_runtime_compile_once(wat_modules: dict[str, Path], cache_dir: Path) -> None:
    path = wat_modules["flood"]
    caches: list[str] = []
    with Runtime(cache_dir=cache_dir) as rt:
        threads = [threading.Thread(target=lambda: caches.append(rt.run(path, limits=None).cache)) for _ in range(3)]
        for t in threads:
            t.start()
        for t in threads:
            t.join()
    assert sorted(caches) == ["memory", "memory", "miss"]


def test_a_folder_others_can_write_is_not_used(c_modules: dict[str, Path], tmp_path: Path) -> None:
    shared = tmp_path / "shared"
    shared.mkdir()
    shared.chmod(0o777)
    with Runtime(cache_dir=shared) as rt:
        rec = rt.run(c_modules["hello"])
    assert rec.outcome == Outcome.OK and rec.cache == "none" and rec.cold_start
    assert _entries(shared) == []


def test_no_cache(c_modules: dict[str, Path], cache_dir: Path) -> None:
    with Runtime(cache=False, cache_dir=cache_dir) as rt:
        assert rt.run(c_modules["hello"]).cache == "none"
        assert rt.run(c_modules["hello"]).cache == "memory"
    assert not cache_dir.exists()


def test_prune_removes_least_recently_used(c_modules: dict[str, Path], cache_dir: Path) -> None:
    with Runtime(cache_dir=cache_dir) as rt:
        rt.run(c_modules["hello"])
        rt.run(c_modules["crash"])
    entries = _entries(cache_dir)
    assert len(entries) == 2
    oldest = min(entries, key=lambda p: p.stat().st_mtime)
    os.utime(oldest, (1, 1))
    disk = DiskCache(cache_dir)
    removed = disk.prune(max_bytes=max(p.stat().st_size for p in entries))
    assert removed == oldest.stat().st_size if oldest.exists() else removed > 0
    assert not oldest.exists() and len(_entries(cache_dir)) == 1
    disk.clear()
    assert _entries(cache_dir) == []


def test_default_cache_dir(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    monkeypatch.setenv("WASMSCOPE_CACHE_DIR", str(tmp_path / "a"))
    assert default_cache_dir() == tmp_path / "a"
    monkeypatch.delenv("WASMSCOPE_CACHE_DIR")
    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path / "xdg"))
    assert default_cache_dir() == tmp_path / "xdg" / "wasmscope"
    monkeypatch.delenv("XDG_CACHE_HOME")
    assert default_cache_dir() == Path.home() / ".cache" / "wasmscope"
