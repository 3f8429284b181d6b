"""Exact counts from the module's own counters, and a run that is the same
instrumented or not (stdout, exit code, outcome)."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

import wasmscope
from wasmscope.runtime import Limits, Outcome, Runtime
from wasmscope.runtime.record import CALLS_IN_JSON


def test_fib_25_calls_fib_exactly_242785_times(prt: Runtime, progs: dict[str, Path]) -> None:
    rec, prof = wasmscope.profile(progs["fib"], runtime=prt)
    assert rec.outcome == Outcome.OK and rec.stdout == b"fib(25) = 75025\n"
    assert prof.calls["fib"] == 242785
    assert rec.call_counts is not None and rec.call_counts["fib"] == 242785
    assert next(iter(rec.call_counts)) == "fib"  # most called first
    assert rec.attributes["wasm.instrumented"] is True


def test_host_calls_count_every_fd_write(prt: Runtime, progs: dict[str, Path]) -> None:
    rec, prof = wasmscope.profile(progs["writes"], runtime=prt)
    assert rec.stdout == b"line\n" * 37
    assert prof.host_calls["wasi_snapshot_preview1.fd_write"] == 37
    assert rec.host_calls is not None and rec.host_calls["wasi_snapshot_preview1.fd_write"] == 37
    # imports are not functions of the guest: they are never in calls
    assert not any(name.startswith("wasi_snapshot_preview1.") for name in prof.calls)


def test_run_with_instrument_gives_counts_without_a_sampler(prt: Runtime, progs: dict[str, Path]) -> None:
    plain = prt.run(progs["fib"])
    counted = prt.run(progs["fib"], instrument=True)
    assert plain.call_counts is None and plain.host_calls is None
    assert counted.call_counts is not None and counted.call_counts["fib"] == 242785
    # identified as the original module, whatever runs
    assert counted.module.sha256 == plain.module.sha256
    assert counted.peak_memory == plain.peak_memory  # the books are not the guest's memory
    assert counted.attributes["wasm.memory.count"] == plain.attributes["wasm.memory.count"]


def test_exact_memory_stats_leave_the_books_out(tmp_path: Path, progs: dict[str, Path]) -> None:
    with Runtime(cache_dir=tmp_path, memory_stats="exact") as rt:
        plain = rt.run(progs["fib"])
        counted = rt.run(progs["fib"], instrument=True)
    assert counted.peak_memory == plain.peak_memory
    assert counted.attributes["wasm.memory.count"] == plain.attributes["wasm.memory.count"]


def test_record_json_keeps_the_top_calls(prt: Runtime, progs: dict[str, Path]) -> None:
    rec = prt.run(progs["fib"], instrument=True)
    doc = json.loads(json.dumps(rec.to_json()))
    assert doc["call_counts"]["fib"] == 242785
    assert doc["host_calls"]["wasi_snapshot_preview1.fd_write"] >= 1
    rec.call_counts = {f"f{i}": i + 1 for i in range(CALLS_IN_JSON + 10)}
    doc = rec.to_json()
    assert len(doc["call_counts"]) == CALLS_IN_JSON
    assert min(doc["call_counts"].values()) == 11  # the most called kept
    assert doc["call_counts_omitted"] == {"functions": 10, "calls": sum(range(1, 11))}


# -- the same run, instrumented or not ------------------------------------------------------

SKIP = {"escape"}  # needs a prepared sandbox folder (tests/runtime covers it)


@pytest.mark.parametrize("name", ["crash", "flood", "hello", "loop", "membomb", "oob", "recursion", "shadowstack"])
def test_same_output_and_exit_instrumented(prt: Runtime, c_modules: dict[str, Path], name: str) -> None:
    # Only the loop needs a short timeout; the others end on their own, and a short one could
    # stop a slow run of theirs on a loaded machine (the instrumented run is the slower).
    lim = Limits(timeout=0.5 if name == "loop" else 120, memory_limit=32 << 20, max_output=256 << 10)
    args = ["exit=7", "x"] if name == "hello" else []
    plain = prt.run(c_modules[name], args, limits=lim, env={"GREETING": "hi"}, stdin=b"some input\n")
    inst = prt.run(c_modules[name], args, limits=lim, env={"GREETING": "hi"}, stdin=b"some input\n", instrument=True)
    assert inst.outcome == plain.outcome, (inst.error, inst.trap)
    assert inst.exit_code == plain.exit_code
    if name not in ("flood", "loop"):  # stopped at a time or a cap: how far they got varies
        assert inst.stdout == plain.stdout
        assert inst.stderr == plain.stderr
    if plain.trap is not None:
        assert inst.trap is not None and inst.trap.kind == plain.trap.kind


def test_same_output_for_the_profile_programs(prt: Runtime, progs: dict[str, Path]) -> None:
    for name, path in progs.items():
        args = ["2000"] if name == "share" else (["200000"] if name == "long" else [])
        plain = prt.run(path, args)
        inst = prt.run(path, args, instrument=True)
        assert (inst.outcome, inst.exit_code, inst.stdout) == (plain.outcome, plain.exit_code, plain.stdout), name


def test_a_component_is_refused_in_one_line(prt: Runtime, tmp_path: Path) -> None:
    comp = tmp_path / "empty-component.wasm"
    comp.write_bytes(b"\x00asm\x0d\x00\x01\x00")
    from wasmscope.errors import UsageError

    with pytest.raises(UsageError, match=r"component.*not supported yet") as info:
        wasmscope.profile(comp, runtime=prt)
    assert "\n" not in str(info.value)


def test_span_attributes_carry_the_counts(prt: Runtime, progs: dict[str, Path]) -> None:
    from wasmscope.telemetry import semconv as sc
    from wasmscope.telemetry.mapping import span_attributes

    rec = prt.run(progs["fib"], instrument=True)
    a = span_attributes(rec)
    assert a[sc.WASM_CALLS_TOTAL] == sum((rec.call_counts or {}).values())
    assert json.loads(str(a[sc.WASM_CALLS_TOP]))["fib"] == 242785
    assert json.loads(str(a[sc.WASM_HOST_CALLS]))["wasi_snapshot_preview1.fd_write"] >= 1
    assert sc.WASM_CALLS_TOTAL not in span_attributes(prt.run(progs["fib"]))
