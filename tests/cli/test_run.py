"""``wasmscope run`` as a user runs it: a real process, real exit codes and streams.

The C guests and hand-made modules come from ``tests/runtime/conftest.py``'s fixtures
(through ``tests/cli/conftest.py``); every run uses a fresh compiled-module cache folder."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
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


def wasmscope(env: dict[str, str], *args: str, stdin: bytes = b"", timeout: float = 300) -> subprocess.CompletedProcess[bytes]:
    return subprocess.run([sys.executable, "-c", CLI, "run", *args], input=stdin, capture_output=True, env=env, timeout=timeout)


def one_line_error(stderr: bytes) -> str:
    text = stderr.decode()
    assert "Traceback" not in text, text
    lines = text.strip().splitlines()
    assert len(lines) == 1, text
    assert lines[0].startswith("wasmscope: error: "), text
    return lines[0]


def test_guest_output_exit_code_and_summary(env: dict[str, str], c_modules: dict[str, Path]) -> None:
    env["GREETING"] = "inherited"
    done = wasmscope(
        env, "--env", "EXTRA=1", "--env-inherit", "GREETING", str(c_modules["hello"]), "--", "one", "exit=3",
        stdin=b"piped",
    )  # fmt: skip
    assert done.returncode == 3
    out = done.stdout.decode()
    assert "argv[1]=one\nargv[2]=exit=3\nGREETING=inherited\nstdin=piped\n" in out
    err = done.stderr.decode()
    assert err.startswith("done\n")  # the guest's stderr first, then the summary
    assert "wasmscope run: hello.wasm  module" in err
    assert "outcome      exit 3  (_start)" in err
    assert "start        cold (compiled, now cached on disk)" in err
    again = wasmscope(env, str(c_modules["hello"]))
    assert again.returncode == 0 and "start        cached (on disk)" in again.stderr.decode()


def test_trap_exit_status_and_frames(env: dict[str, str], c_modules: dict[str, Path]) -> None:
    done = wasmscope(env, str(c_modules["crash"]))
    assert done.returncode == 1
    err = done.stderr.decode()
    assert "outcome      trap" in err
    assert "trap         unreachable: wasm trap: wasm `unreachable` instruction executed" in err
    assert "#0  innermost" in err and "crash.c:" in err and "#2  outer_entry" in err


def test_timeout(env: dict[str, str], c_modules: dict[str, Path]) -> None:
    done = wasmscope(env, "--timeout", "200ms", str(c_modules["loop"]))
    assert done.returncode == 1
    assert done.stdout == b"spinning\n"
    assert "outcome      timeout" in done.stderr.decode()


def test_memory_limit_exact(env: dict[str, str], c_modules: dict[str, Path]) -> None:
    done = wasmscope(env, "--memory-stats", "exact", "--memory-limit", "16MiB", str(c_modules["membomb"]))
    assert done.returncode == 1
    err = done.stderr.decode()
    assert "outcome      out of memory" in err and "memory.grow refused" in err


def test_json_on_stdout_guest_output_on_stderr(env: dict[str, str], c_modules: dict[str, Path]) -> None:
    done = wasmscope(env, "--json", "--fuel", "1e9", str(c_modules["hello"]), "--", "x")
    assert done.returncode == 0
    doc = json.loads(done.stdout)
    assert doc["outcome"] == "ok" and doc["module"]["name"] == "hello.wasm" and doc["args"] == ["x"]
    assert doc["fuel_limit"] == 10**9 and 0 < doc["fuel_consumed"] < 10**9
    assert [p["name"] for p in doc["phases"]] == ["load", "compile", "instantiate", "execute"]
    assert "stdout" not in doc
    assert b"argv[1]=x" in done.stderr and b"done\n" in done.stderr


def test_report_and_quiet(env: dict[str, str], c_modules: dict[str, Path], tmp_path: Path) -> None:
    report = tmp_path / "run.json"
    done = wasmscope(env, "-q", "--report", str(report), str(c_modules["hello"]))
    assert done.returncode == 0
    assert done.stderr == b"done\n"  # nothing but the guest's own stderr
    doc = json.loads(report.read_text())
    assert doc["outcome"] == "ok" and doc["stdout_bytes"] == len(done.stdout)


def test_invoke_prints_results(env: dict[str, str], lib_wasm: Path) -> None:
    done = wasmscope(env, "-q", "--invoke", "wide", str(lib_wasm), "21")
    assert done.returncode == 0 and done.stdout == b"42\n7\n"
    done = wasmscope(env, "--invoke", "div", str(lib_wasm), "1", "0")
    assert done.returncode == 1 and "integer_division_by_zero" in done.stderr.decode()


def test_read_only_dir(env: dict[str, str], c_modules: dict[str, Path], tmp_path: Path) -> None:
    box = tmp_path / "box"
    box.mkdir()
    (box / "inside.txt").write_text("inside")
    done = wasmscope(env, "-q", "--dir", f"{box}::/sandbox:ro", str(c_modules["escape"]))
    assert done.returncode == 0
    assert b"OPENED /sandbox/inside.txt" in done.stdout and b"create-denied" in done.stdout


def test_output_cap(env: dict[str, str], c_modules: dict[str, Path]) -> None:
    done = wasmscope(env, "--max-output", "10KiB", str(c_modules["flood"]))
    assert done.returncode == 1
    assert len(done.stdout) == 10 * 1024
    assert "output limit" in done.stderr.decode() and "(truncated)" in done.stderr.decode()


@pytest.mark.parametrize(
    ("args", "status", "needle"),
    [
        (["{missing}"], 2, "no such file"),
        (["--max-wasm-stack", "4MiB", "{hello}"], 2, "whole process aborts"),
        (["--memory-limit", "lots", "{hello}"], 2, "invalid size"),
        (["--timeout", "-1", "{hello}"], 2, "duration"),
        (["--dir", "{missing}::/x", "{hello}"], 2, "not a directory"),
        (["--env", "NOEQUALS", "{hello}"], 2, "NAME=VALUE"),
        (["--telemetry", "carrier-pigeon", "{hello}"], 2, "--telemetry"),
        (["{garbage}"], 1, "not a WebAssembly module"),
        (["{import}"], 1, "unsatisfiable import `env::host_thing`"),
        (["{legacy}"], 1, "legacy exception handling"),
        (["--invoke", "nope", "{lib}"], 2, "no function named 'nope'"),
        (["--invoke", "add", "{lib}", "1"], 2, "takes 2 argument"),
    ],
)
def test_one_line_errors(
    env: dict[str, str], c_modules: dict[str, Path], lib_wasm: Path, legacy_eh_wasm: Path, tmp_path: Path,
    args: list[str], status: int, needle: str,
) -> None:  # fmt: skip
    import wasmtime

    garbage = tmp_path / "garbage.wasm"
    garbage.write_bytes(b"GIF89a not wasm")
    imp = tmp_path / "import.wasm"
    imp.write_bytes(wasmtime.wat2wasm('(module (import "env" "host_thing" (func)) (func (export "_start")))'))
    names = {
        "missing": str(tmp_path / "missing.wasm"),
        "hello": str(c_modules["hello"]),
        "garbage": str(garbage),
        "import": str(imp),
        "legacy": str(legacy_eh_wasm),
        "lib": str(lib_wasm),
    }
    done = wasmscope(env, *[a.format(**names) for a in args])
    assert done.returncode == status, done.stderr
    assert needle in one_line_error(done.stderr)


def test_missing_wasmtime_says_what_to_install(env: dict[str, str], c_modules: dict[str, Path], tmp_path: Path) -> None:
    fake = tmp_path / "fake"
    (fake / "wasmtime").mkdir(parents=True)
    (fake / "wasmtime" / "__init__.py").write_text("raise ImportError('No module named wasmtime')\n")
    env["PYTHONPATH"] = os.pathsep.join([str(fake), env.get("PYTHONPATH", "")])
    done = wasmscope(env, str(c_modules["hello"]))
    assert done.returncode == 2
    assert "pip install --force-reinstall wasmscope" in one_line_error(done.stderr)


def test_ctrl_c_stops_the_guest(env: dict[str, str], c_modules: dict[str, Path]) -> None:
    proc = subprocess.Popen(
        [sys.executable, "-c", CLI, "run", str(c_modules["loop"])],
        stdin=subprocess.DEVNULL, stdout=subprocess.PIPE, stderr=subprocess.PIPE, env=env,
        # as at a terminal: a test run started in the background (`cmd &`) ignores SIGINT,
        # and the child would inherit that
        preexec_fn=lambda: signal.signal(signal.SIGINT, signal.SIG_DFL),
    )  # fmt: skip
    try:
        assert proc.stdout is not None
        assert proc.stdout.readline() == b"spinning\n"
        time.sleep(0.1)
        proc.send_signal(signal.SIGINT)
        _out, err = proc.communicate(timeout=60)
    finally:
        if proc.poll() is None:  # never leave a spinning guest behind
            proc.kill()
            proc.wait()
    assert proc.returncode == 130
    assert "interrupted" in one_line_error(err)


def test_telemetry_jsonl_and_a_dead_receiver(env: dict[str, str], c_modules: dict[str, Path], tmp_path: Path) -> None:
    pytest.importorskip("opentelemetry.sdk")
    jsonl = tmp_path / "telemetry.jsonl"
    done = wasmscope(
        env, "--json", "--telemetry", f"jsonl:{jsonl}", "--otlp", "http://127.0.0.1:9", str(c_modules["crash"]),
    )  # fmt: skip
    assert done.returncode == 1  # the guest's trap, not the dead receiver
    doc = json.loads(done.stdout)
    assert doc["outcome"] == "trap"
    rows = [json.loads(line) for line in jsonl.read_text().splitlines()]
    spans = [r for r in rows if r["signal"] == "span"]
    assert len(spans) >= 4 and len({s["trace_id"] for s in spans}) == 1
    assert any(r["signal"] == "log" for r in rows)
    assert doc["telemetry"]["jsonl"]["spans"]["exported"] >= 4
    assert doc["telemetry"]["otlp"]["spans"]["failed"] >= 1
