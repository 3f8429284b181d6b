"""``wasmscope profile`` as a user runs it: a real process, real exit codes, the table
and the files it writes."""

from __future__ import annotations

import gzip
import json
import os
import subprocess
import sys
import xml.etree.ElementTree as ET
from pathlib import Path

import pytest

CLI = "import sys; from wasmscope.cli import main; sys.exit(main())"


@pytest.fixture
def env(tmp_path: Path) -> dict[str, str]:
    e = dict(os.environ)
    e["WASMSCOPE_CACHE_DIR"] = str(tmp_path / "cache")
    e["NO_COLOR"] = "1"
    e.pop("WASMSCOPE_DEBUG", None)
    return e


def profile(env: dict[str, str], *args: str, cwd: Path | None = None) -> subprocess.CompletedProcess[bytes]:
    return subprocess.run(
        [sys.executable, "-c", CLI, "profile", *args], capture_output=True, env=env, timeout=300, cwd=cwd, input=b""
    )


def one_line_error(stderr: bytes) -> str:
    text = stderr.decode()
    assert "Traceback" not in text, text
    lines = text.strip().splitlines()
    assert len(lines) == 1, text
    assert lines[0].startswith("wasmscope: error: "), text
    return lines[0]


def test_top_table_with_exact_calls(env: dict[str, str], progs: dict[str, Path]) -> None:
    done = profile(env, "--top", "40", str(progs["fib"]))
    assert done.returncode == 0, done.stderr.decode()
    assert done.stdout == b"fib(25) = 75025\n"  # the guest's stdout, alone
    err = done.stderr.decode()
    assert "wasmscope profile: fib.wasm  module" in err
    assert "outcome      ok (exit 0)  (_start)" in err
    lines = err.splitlines()
    header = next(i for i, line in enumerate(lines) if line.split() == ["function", "calls", "self", "%", "total", "%"])
    table = lines[header + 1 :]
    assert 5 < len(table) <= 40
    fib = next(line for line in table if line.split()[0] == "fib")
    assert fib.split()[1] == "242,785"
    assert "host calls (" in err and "wasi_snapshot_preview1.fd_write" in err


def test_files_written(env: dict[str, str], progs: dict[str, Path], tmp_path: Path) -> None:
    done = profile(env, "--format", "pprof", "--svg", "flame.svg", "--report", "rec.json", str(progs["share"]), "--", "4000", cwd=tmp_path)
    assert done.returncode == 0, done.stderr.decode()
    err = done.stderr.decode()
    assert "wrote share.pb.gz (pprof)\nwrote flame.svg (flame graph)\n" in err
    assert gzip.decompress((tmp_path / "share.pb.gz").read_bytes())
    ET.parse(tmp_path / "flame.svg")
    rec = json.loads((tmp_path / "rec.json").read_text())
    assert rec["call_counts"]["a"] == 12000 and rec["call_counts"]["b"] == 4000
    done = profile(env, "-q", "-o", str(tmp_path / "p.json"), str(progs["share"]), "--", "100")
    assert done.returncode == 0
    assert done.stderr.decode() == f"wrote {tmp_path / 'p.json'} (speedscope)\n"
    assert json.loads((tmp_path / "p.json").read_text())["profiles"][0]["type"] == "sampled"
    done = profile(env, "-q", "--format", "collapsed", "--output=x.txt", str(progs["share"]), "--", "4000", cwd=tmp_path)
    assert done.returncode == 0 and (tmp_path / "x.txt").read_text().count(";") >= 1


def test_trap_exit_status_and_whole_stack(env: dict[str, str], progs: dict[str, Path]) -> None:
    done = profile(env, str(progs["deep"]))
    assert done.returncode == 1
    assert done.stdout == b"before\n"
    err = done.stderr.decode()
    assert "trap         integer_division_by_zero" in err
    assert "stack        103 frames, innermost first" in err  # down x100, main, _start, its export
    assert "    #0  down  " in err and "deep.c:4" in err
    assert "(x" in err  # the recursion folded on one line


def test_exit_code_of_the_guest(env: dict[str, str], c_modules: dict[str, Path]) -> None:
    done = profile(env, "-q", str(c_modules["hello"]), "--", "exit=7")
    assert done.returncode == 7
    assert b"argv[1]=exit=7" in done.stdout


def test_one_line_errors(env: dict[str, str], tmp_path: Path, legacy_eh_wasm: Path) -> None:
    comp = tmp_path / "component.wasm"
    comp.write_bytes(b"\x00asm\x0d\x00\x01\x00")
    done = profile(env, str(comp))
    assert done.returncode == 2
    assert "is a component" in one_line_error(done.stderr) and "not supported yet" in done.stderr.decode()
    done = profile(env, str(tmp_path / "missing.wasm"))
    assert done.returncode == 2 and "no such file" in one_line_error(done.stderr)
    done = profile(env, "--rate", "0", str(comp))
    assert done.returncode == 2 and "--rate" in one_line_error(done.stderr)
    bad = tmp_path / "bad.wasm"
    bad.write_bytes(b"\x00asm\x01\x00\x00\x00\x01\xff")
    done = profile(env, str(bad))
    assert done.returncode == 1 and "cannot be instrumented" in one_line_error(done.stderr)
    done = profile(env, "--svg", str(tmp_path / "no" / "such" / "dir.svg"), str(legacy_eh_wasm))
    assert done.returncode == 1 and "legacy exception" in one_line_error(done.stderr)


def test_help_lists_profile() -> None:
    done = subprocess.run([sys.executable, "-c", CLI, "--help"], capture_output=True, timeout=60)
    assert b"  profile   run a WASI module instrumented and sampled" in done.stdout
    done = subprocess.run([sys.executable, "-c", CLI, "profile", "--help"], capture_output=True, timeout=60)
    for option in (b"--rate HZ", b"--top N", b"--format", b"--svg PATH", b"--spans-threshold MS", b"--dir", b"--timeout", b"--otlp"):
        assert option in done.stdout
