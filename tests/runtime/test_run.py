"""Running real guests (C built with clang-19 + wasi-libc, hand-made modules): the record
of each, containment (timeout, memory, stack, output, directories) and failures that
must be one clean record, not a crash. No wall-clock time is asserted."""

from __future__ import annotations

import hashlib
import io
import threading
from pathlib import Path
from typing import Any

import pytest

from tests.runtime.conftest import FIXTURES
from wasmscope.errors import UsageError
from wasmscope.runtime import Limits, Outcome, Runtime
from wasmscope.runtime.record import InvocationRecord


def _line_of(source: Path, needle: str) -> int:
    for n, line in enumerate(source.read_text().splitlines(), 1):
        if needle in line:
            return n
    raise AssertionError(f"{needle!r} not in {source}")


# -- the ordinary run ---------------------------------------------------------------------


def test_hello_args_env_stdin(runtime: Runtime, c_modules: dict[str, Path]) -> None:
    path = c_modules["hello"]
    rec = runtime.run(path, ["one", "two words"], env={"GREETING": "hi"}, stdin=b"from stdin")
    assert rec.outcome == Outcome.OK and rec.exit_code == 0 and rec.trap is None
    assert rec.stdout.decode().splitlines() == [
        "argc=3",
        "argv[0]=hello.wasm",
        "argv[1]=one",
        "argv[2]=two words",
        "GREETING=hi",
        "stdin=from stdin",
        "stdin_bytes=10",
    ]
    assert rec.stderr == b"done\n"
    assert (rec.stdout_bytes, rec.stderr_bytes) == (len(rec.stdout), 5)
    assert not rec.stdout_truncated and not rec.stderr_truncated
    assert rec.entry == "_start" and rec.args == ["one", "two words"]
    m = rec.module
    assert m.sha256 == hashlib.sha256(path.read_bytes()).hexdigest()
    assert (m.name, m.kind, m.size, m.path) == ("hello.wasm", "module", path.stat().st_size, str(path))
    assert "language" in m.producers and any(v.startswith("C") for v in m.producers["language"])
    assert [p.name for p in rec.phases] == ["load", "compile", "instantiate", "execute"]
    assert all(p.end_ns >= p.start_ns for p in rec.phases)
    assert rec.start_ns <= rec.phases[0].start_ns and rec.phases[-1].end_ns <= rec.end_ns
    assert rec.cpu_seconds is not None and rec.cpu_seconds >= 0
    assert rec.cpu_seconds == round(rec.cpu_seconds, 6)  # to the microsecond
    assert rec.peak_memory is not None and rec.peak_memory >= 65536 and rec.peak_memory % 65536 == 0
    assert rec.memory_grow_count is not None
    assert rec.attributes["wasm.memory.grow_count_method"] == "sampled"
    assert rec.attributes["wasm.runtime"].startswith("wasmtime ")
    assert len(rec.invocation_id) == 16
    doc = rec.to_json()
    assert "stdout" not in doc and doc["outcome"] == "ok" and doc["module"]["name"] == "hello.wasm"


@pytest.mark.parametrize("code", [1, 3, 42, 125])
def test_exit_codes(runtime: Runtime, c_modules: dict[str, Path], code: int) -> None:
    rec = runtime.run(c_modules["hello"], [f"exit={code}"])
    assert rec.outcome == Outcome.EXIT
    assert rec.exit_code == code
    assert rec.trap is None and rec.failed


def test_exit_status_wasmtime_refuses(runtime: Runtime, c_modules: dict[str, Path]) -> None:
    """wasmtime (like `wasmtime run`) refuses proc_exit codes of 126 and more: a trap."""
    rec = runtime.run(c_modules["hello"], ["exit=200"])
    assert rec.outcome == Outcome.TRAP and rec.exit_code is None
    assert rec.trap is not None and "invalid exit status" in rec.trap.message
    assert [f.func_name for f in rec.trap.frames][:3] == ["__wasi_proc_exit", "_Exit", "exit"]


def test_stdin_from_a_file_and_argv0(runtime: Runtime, c_modules: dict[str, Path], tmp_path: Path) -> None:
    (tmp_path / "in.txt").write_bytes(b"file input")
    rec = runtime.run(c_modules["hello"], stdin=tmp_path / "in.txt", argv0="prog")
    assert b"argv[0]=prog\n" in rec.stdout and b"stdin=file input" in rec.stdout


def test_output_streams_to_sinks_while_captured(runtime: Runtime, c_modules: dict[str, Path]) -> None:
    out, err = io.BytesIO(), io.BytesIO()
    rec = runtime.run(c_modules["hello"], ["x"], stdout=out, stderr=err)
    assert out.getvalue() == rec.stdout and err.getvalue() == rec.stderr == b"done\n"


def test_bytes_and_text_modules(runtime: Runtime, tmp_path: Path) -> None:
    rec = runtime.run(b"\x00asm\x01\x00\x00\x00\x01\x04\x01\x60\x00\x00\x03\x02\x01\x00\x07\x0a\x01\x06_start\x00\x00\x0a\x04\x01\x02\x00\x0b")
    assert rec.outcome == Outcome.OK and rec.module.name == "<bytes>" and rec.module.path is None
    wat = tmp_path / "tiny.wat"
    wat.write_text('(module $tiny (func (export "_start")))')
    rec = runtime.run(wat)
    assert rec.outcome == Outcome.OK and rec.module.name == "tiny.wat"


# -- containment --------------------------------------------------------------------------


def test_infinite_loop_ends_at_the_timeout(runtime: Runtime, wat_modules: dict[str, Path]) -> None:
    rec = runtime.run(wat_modules["loop"], limits=Limits(timeout=0.3))
    assert rec.outcome == Outcome.TIMEOUT and rec.timeout == 0.3
    assert rec.trap is not None and rec.trap.kind == "timeout" and "timeout" in rec.trap.message
    assert rec.stdout == b"spinning\n"
    names = [f.func_name for f in rec.trap.frames]
    assert "_start" in names


def test_concurrent_stores_do_not_interrupt_each_other(runtime: Runtime, lib_wasm: Path) -> None:
    """One engine, one epoch ticker: a short deadline on one store must not stop another."""
    results: dict[str, InvocationRecord] = {}

    def go(name: str, func: str, args: list[int], limits: Limits) -> None:
        results[name] = runtime.invoke(lib_wasm, func, args, limits=limits)

    threads = [
        threading.Thread(target=go, args=("spin", "spin", [], Limits(timeout=0.2))),
        threading.Thread(target=go, args=("spin2", "spin", [], Limits(timeout=0.4))),
        threading.Thread(target=go, args=("count", "count", [300_000_000], Limits(timeout=120))),
    ]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert results["spin"].outcome == Outcome.TIMEOUT
    assert results["spin2"].outcome == Outcome.TIMEOUT
    assert results["count"].outcome == Outcome.OK and results["count"].results == [300_000_000]


def test_memory_bomb_stops_at_the_limit_sampled(runtime: Runtime, c_modules: dict[str, Path]) -> None:
    limit = 32 << 20
    rec = runtime.run(c_modules["membomb"], limits=Limits(memory_limit=limit))
    assert rec.outcome == Outcome.OUT_OF_MEMORY and rec.memory_limit == limit
    assert b"malloc failed after" in rec.stderr
    assert rec.trap is not None and rec.trap.kind == "out_of_memory"
    assert "heuristic" in rec.trap.message and "unreachable" in rec.trap.message
    assert rec.peak_memory is not None and limit - (2 << 20) < rec.peak_memory <= limit
    assert rec.trap.frames and rec.trap.frames[0].func_name == "abort"


def test_memory_bomb_stops_at_the_limit_exact(exact_runtime: Runtime, c_modules: dict[str, Path]) -> None:
    limit = 32 << 20
    rec = exact_runtime.run(c_modules["membomb"], limits=Limits(memory_limit=limit))
    assert rec.outcome == Outcome.OUT_OF_MEMORY
    assert rec.trap is not None and "exact" in rec.trap.message
    assert rec.attributes["wasm.memory.grow_count_method"] == "exact"
    assert rec.attributes["wasm.memory.grow_refused"] >= 1
    assert rec.memory_grow_count is not None and rec.memory_grow_count >= 20  # 1 MiB blocks
    assert rec.peak_memory is not None and rec.peak_memory <= limit


def test_without_a_limit_a_failure_is_not_out_of_memory(runtime: Runtime, c_modules: dict[str, Path]) -> None:
    rec = runtime.run(c_modules["crash"])
    assert rec.outcome == Outcome.TRAP


def test_grow_counts(runtime: Runtime, exact_runtime: Runtime, lib_wasm: Path) -> None:
    for rt in (runtime, exact_runtime):
        rec = rt.invoke(lib_wasm, "grow", [3])
        assert rec.results == [1]  # the old size in pages
        assert rec.peak_memory == 4 * 65536
        assert rec.memory_grow_count == 1
        assert rec.attributes["wasm.memory.observed"] in ("all", "exported")


def test_initial_memory_over_the_limit(runtime: Runtime, exact_runtime: Runtime) -> None:
    import wasmtime

    big = wasmtime.wat2wasm('(module (memory 2000) (func (export "_start")))')
    for rt in (runtime, exact_runtime):
        rec = rt.run(big, limits=Limits(memory_limit=1 << 20))
        assert rec.outcome == Outcome.OUT_OF_MEMORY, rec
        assert rec.trap is not None and "initial memory" in rec.trap.message


def test_deep_recursion_is_a_stack_overflow_trap(runtime: Runtime, wat_modules: dict[str, Path]) -> None:
    rec = runtime.run(wat_modules["recursion"])
    assert rec.outcome == Outcome.STACK_OVERFLOW
    assert rec.trap is not None and rec.trap.kind == "stack_overflow"
    assert rec.trap.frames_truncated  # wasmtime keeps the 20 innermost
    assert {f.func_name for f in rec.trap.frames} == {"dive"}


def test_smaller_wasm_stack_overflows_sooner(runtime: Runtime, wat_modules: dict[str, Path]) -> None:
    rec = runtime.run(wat_modules["recursion"], limits=Limits(max_wasm_stack=64 << 10))
    assert rec.outcome == Outcome.STACK_OVERFLOW


def test_shadow_stack_overflow_is_an_out_of_bounds_trap(runtime: Runtime, c_modules: dict[str, Path]) -> None:
    """clang keeps address-taken locals on a 64 KiB stack in linear memory: running
    off it is a memory access out of bounds, not a Wasm stack overflow."""
    rec = runtime.run(c_modules["shadowstack"])
    assert rec.outcome == Outcome.TRAP
    assert rec.trap is not None and rec.trap.kind == "memory_out_of_bounds"
    assert rec.trap.frames[0].func_name == "dive"


def test_stdout_flood_is_capped_and_marked_truncated(runtime: Runtime, wat_modules: dict[str, Path]) -> None:
    cap = 64 << 10
    rec = runtime.run(wat_modules["flood"], limits=Limits(max_output=cap))
    assert rec.outcome == Outcome.OUTPUT_LIMIT
    assert rec.trap is not None and rec.trap.kind == "output_limit"
    assert rec.stdout_truncated and not rec.stderr_truncated
    assert len(rec.stdout) == cap and rec.stdout_bytes > cap
    assert set(rec.stdout) <= {ord("x"), ord("\n")}


def test_a_preopened_directory_cannot_be_escaped(runtime: Runtime, c_modules: dict[str, Path], tmp_path: Path) -> None:
    sandbox = tmp_path / "sandbox"
    sandbox.mkdir()
    (sandbox / "inside.txt").write_text("inside")
    secret = tmp_path / "secret"
    secret.write_text("TOPSECRET")
    (sandbox / "link-out").symlink_to("../secret")
    for read_only in (False, True):
        spec = f"{sandbox}::/sandbox" + (":ro" if read_only else "")
        rec = runtime.run(c_modules["escape"], [str(secret)], dirs=[spec])
        out = rec.stdout.decode()
        assert rec.outcome == Outcome.OK, out
        assert "OPENED /sandbox/inside.txt (6 bytes: inside)" in out
        assert "TOPSECRET" not in out and "escaped=0" in out
        assert sum(line.startswith("denied ") for line in out.splitlines()) == 4
        assert ("create-denied /sandbox/new.txt" in out) == read_only
        if not read_only:
            assert (sandbox / "new.txt").exists()
            (sandbox / "new.txt").unlink()


# -- traps and symbols ------------------------------------------------------------------------


def test_trap_frames_carry_names_and_source_lines(runtime: Runtime, c_modules: dict[str, Path]) -> None:
    rec = runtime.run(c_modules["crash"])
    assert rec.outcome == Outcome.TRAP and rec.stdout == b"about to trap\n"
    trap = rec.trap
    assert trap is not None and trap.kind == "unreachable" and not trap.frames_truncated
    names = [f.func_name for f in trap.frames]
    assert names[:4] == ["innermost", "middle", "outer_entry", "main"]
    assert all(f.module_offset is not None and f.func_index is not None for f in trap.frames[:4])
    pytest.importorskip("wasmscope.analysis.dwarf")
    src = FIXTURES / "crash.c"
    expected = [
        _line_of(src, "__builtin_trap();"),
        _line_of(src, "innermost(x + 1);"),
        _line_of(src, "    middle(x);"),
        _line_of(src, "outer_entry(argc);"),
    ]
    assert [f.line for f in trap.frames[:4]] == expected
    assert all(f.file is not None and f.file.endswith("crash.c") for f in trap.frames[:4])


def test_out_of_bounds_trap(runtime: Runtime, c_modules: dict[str, Path]) -> None:
    rec = runtime.run(c_modules["oob"])
    assert rec.outcome == Outcome.TRAP
    assert rec.trap is not None and rec.trap.kind == "memory_out_of_bounds"
    assert rec.trap.frames[0].line == _line_of(FIXTURES / "oob.c", "printf")


def test_trap_in_a_start_function(runtime: Runtime) -> None:
    import wasmtime

    wasm = wasmtime.wat2wasm('(module (func $boot unreachable) (start $boot) (func (export "_start")))')
    rec = runtime.run(wasm)
    assert rec.outcome == Outcome.TRAP
    assert rec.trap is not None and rec.trap.frames[0].func_name == "boot"
    assert rec.phase("execute") is None


# -- modules that cannot start: one line, not a traceback ---------------------------------------


def test_unsatisfiable_import_is_named(runtime: Runtime) -> None:
    import wasmtime

    wasm = wasmtime.wat2wasm('(module (import "env" "host_thing" (func (param i32))) (func (export "_start")))')
    rec = runtime.run(wasm)
    assert rec.outcome == Outcome.ERROR
    assert rec.error is not None and "env::host_thing" in rec.error and "\n" not in rec.error


def test_legacy_exception_handling_is_explained(runtime: Runtime, legacy_eh_wasm: Path) -> None:
    rec = runtime.run(legacy_eh_wasm)
    assert rec.outcome == Outcome.ERROR
    assert rec.error is not None and "legacy exception handling" in rec.error and "\n" not in rec.error
    # Our decoder reads it all the same.
    from wasmscope.runtime.identity import load_source

    assert load_source(legacy_eh_wasm).has_legacy_exceptions() is not None


@pytest.mark.parametrize(
    ("data", "needle"),
    [
        (b"this is not wasm", "not a WebAssembly module"),
        (b"\x00asm\x01\x00\x00\x00\x01\x05", "not a valid WebAssembly module"),
        (b"", "not a valid WebAssembly module"),
    ],
)
def test_malformed_modules(runtime: Runtime, tmp_path: Path, data: bytes, needle: str) -> None:
    path = tmp_path / "bad.wasm"
    path.write_bytes(data)
    rec = runtime.run(path)
    assert rec.outcome == Outcome.ERROR
    assert rec.error is not None and needle in rec.error and "\n" not in rec.error


def test_missing_file_is_a_usage_error(runtime: Runtime, tmp_path: Path) -> None:
    with pytest.raises(UsageError, match="no such file"):
        runtime.run(tmp_path / "missing.wasm")
    with pytest.raises(UsageError, match="not a file"):
        runtime.run(tmp_path)


def test_a_module_without_start(runtime: Runtime, lib_wasm: Path) -> None:
    rec = runtime.run(lib_wasm)
    assert rec.outcome == Outcome.ERROR and rec.error is not None and "--invoke" in rec.error


# -- --invoke and fuel -------------------------------------------------------------------------


def test_invoke_numbers(runtime: Runtime, lib_wasm: Path) -> None:
    assert runtime.invoke(lib_wasm, "add", ["2", "40"]).results == [42]
    assert runtime.invoke(lib_wasm, "add", [2**32 - 1, 1]).results == [0]
    assert runtime.invoke(lib_wasm, "mul", ["1.5", 4]).results == [6.0]
    assert runtime.invoke(lib_wasm, "wide", ["0x7fffffff"]).results == [2**32 - 2, 7]
    rec = runtime.invoke(lib_wasm, "inits")
    assert rec.results == [1] and rec.entry == "inits"  # _initialize ran once first


def test_invoke_trap_and_usage_errors(runtime: Runtime, lib_wasm: Path) -> None:
    rec = runtime.invoke(lib_wasm, "div", [1, 0])
    assert rec.outcome == Outcome.TRAP and rec.results is None
    assert rec.trap is not None and rec.trap.kind == "integer_division_by_zero"
    assert rec.trap.frames[0].func_name == "divide"
    with pytest.raises(UsageError, match="takes 2"):
        runtime.invoke(lib_wasm, "add", [1])
    with pytest.raises(UsageError, match="integer"):
        runtime.invoke(lib_wasm, "add", ["x", 1])
    with pytest.raises(UsageError, match="no function named"):
        runtime.invoke(lib_wasm, "nope")


def test_fuel_is_metered_and_runs_out(runtime: Runtime, lib_wasm: Path) -> None:
    rec = runtime.invoke(lib_wasm, "count", [1000], limits=Limits(fuel=10**6))
    assert rec.outcome == Outcome.OK and rec.results == [1000]
    assert rec.fuel_limit == 10**6 and rec.fuel_consumed is not None and 1000 < rec.fuel_consumed < 10**6
    rec = runtime.invoke(lib_wasm, "count", [10**9], limits=Limits(fuel=10**5))
    assert rec.outcome == Outcome.OUT_OF_FUEL
    assert rec.trap is not None and rec.trap.kind == "out_of_fuel"
    assert rec.fuel_consumed == 10**5


# -- telemetry hook and API ---------------------------------------------------------------------


class _Sink:
    def __init__(self, fail: bool = False) -> None:
        self.records: list[InvocationRecord] = []
        self.fail = fail

    def record_invocation(self, record: InvocationRecord) -> Any:
        self.records.append(record)
        if self.fail:
            raise ConnectionRefusedError("receiver down")
        return "trace"


def test_telemetry_gets_every_record_and_never_fails_a_run(c_modules: dict[str, Path], tmp_path: Path) -> None:
    ok, bad = _Sink(), _Sink(fail=True)
    with Runtime(cache_dir=tmp_path / "c", telemetry=ok) as rt:
        rec = rt.run(c_modules["hello"])
        rt.run(c_modules["crash"])
    assert [r.outcome for r in ok.records] == [Outcome.OK, Outcome.TRAP] and ok.records[0] is rec
    with Runtime(cache_dir=tmp_path / "c", telemetry=bad) as rt:
        assert rt.run(c_modules["hello"]).outcome == Outcome.OK
        assert rt.telemetry_errors == 1


def test_real_telemetry_pipeline(c_modules: dict[str, Path], tmp_path: Path) -> None:
    pytest.importorskip("opentelemetry.sdk")
    from wasmscope.telemetry import Telemetry

    with Telemetry.from_options(in_memory=True) as tel, Runtime(cache_dir=tmp_path / "c", telemetry=tel) as rt:
        rec = rt.run(c_modules["crash"])
        tel.force_flush()
        spans = tel.memory.span_dicts()
        logs = tel.memory.log_dicts()
    assert rec.outcome == Outcome.TRAP
    names = {s["name"] for s in spans}
    assert len(spans) >= 4 and len({s["trace_id"] for s in spans}) == 1, names
    assert any("about to trap" in str(r) for r in logs)


def test_module_level_run_and_runtime_lifecycle(c_modules: dict[str, Path], tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    import wasmscope

    monkeypatch.setenv("WASMSCOPE_CACHE_DIR", str(tmp_path / "default-cache"))
    monkeypatch.setattr("wasmscope.runtime.runner._DEFAULT", None)
    rec = wasmscope.run(c_modules["hello"], ["a"])
    assert rec.outcome == Outcome.OK and b"argv[1]=a" in rec.stdout
    assert (tmp_path / "default-cache").is_dir()
    rt = wasmscope.Runtime(cache=False)
    rec = rt.run(c_modules["hello"])
    assert rec.cache == "none" and rec.cold_start
    assert rt.run(c_modules["hello"]).cache == "memory"
    rt.close()
    rt.close()
    with pytest.raises(UsageError, match="closed"):
        rt.run(c_modules["hello"])
    with pytest.raises(UsageError):
        Runtime(memory_stats="guess")


def test_a_threads_output_capture_is_released_when_the_thread_ends(runtime: Runtime, c_modules: dict[str, Path]) -> None:
    """Servers retire worker threads (a reload makes new pools): their capture files
    must not stay open until the Runtime closes."""
    import gc
    import os

    def open_fds() -> int:
        return len(os.listdir("/proc/self/fd"))

    runtime.run(str(c_modules["hello"]), ["warm"])  # this thread's own capture, kept
    before = open_fds()
    outputs: list[bytes] = []
    threads = [threading.Thread(target=lambda: outputs.append(runtime.run(str(c_modules["hello"]), ["t"]).stdout)) for _ in range(6)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    gc.collect()
    assert len(outputs) == 6 and all(outputs)
    assert open_fds() <= before
    runtime.run(str(c_modules["hello"]), ["again"])  # this thread's capture still works
