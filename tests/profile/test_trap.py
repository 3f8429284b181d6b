"""A trap in an instrumented run reports the whole shadow stack, not wasmtime's 20
innermost frames; the frames wasmtime also saw keep their file:line."""

from __future__ import annotations

from pathlib import Path

import wasmscope
from wasmscope.runtime import Outcome, Runtime
from wasmscope.runtime.trap import WASMTIME_FRAME_LIMIT


def test_deep_trap_has_every_frame(prt: Runtime, progs: dict[str, Path]) -> None:
    plain = prt.run(progs["deep"])
    rec, _ = wasmscope.profile(progs["deep"], runtime=prt)
    assert rec.outcome == plain.outcome == Outcome.TRAP
    assert rec.stdout == plain.stdout == b"before\n"
    assert plain.trap is not None and rec.trap is not None
    assert len(plain.trap.frames) == WASMTIME_FRAME_LIMIT and plain.trap.frames_truncated
    frames = rec.trap.frames
    names = [f.func_name for f in frames]
    assert names[:100] == ["down"] * 100  # down(99) .. down(0): all of them
    assert "__original_main" in names[100:] and names[-1] is not None
    assert len(frames) > 100 > WASMTIME_FRAME_LIMIT
    assert not rec.trap.frames_truncated
    assert rec.trap.kind == plain.trap.kind == "integer_division_by_zero"
    # The innermost frames are wasmtime's, mapped back to the original code: same
    # offsets, hence the same DWARF lines as the uninstrumented run.
    for mine, theirs in zip(frames[:WASMTIME_FRAME_LIMIT], plain.trap.frames, strict=True):
        assert (mine.func_index, mine.module_offset, mine.file, mine.line, mine.column) == (
            theirs.func_index, theirs.module_offset, theirs.file, theirs.line, theirs.column
        )  # fmt: skip
    assert frames[0].file is not None and frames[0].file.endswith("deep.c") and frames[0].line == 4
    assert all(f.file is None for f in frames[WASMTIME_FRAME_LIMIT:])  # known by name only


def test_stack_overflow_reports_the_whole_recursion(prt: Runtime, c_modules: dict[str, Path]) -> None:
    rec = prt.run(c_modules["recursion"], instrument=True)
    assert rec.outcome == Outcome.STACK_OVERFLOW
    assert rec.trap is not None
    assert len(rec.trap.frames) > 1000
    assert rec.trap.frames[-1].func_name is not None


def test_a_timeout_reports_the_stack_where_it_stopped(prt: Runtime, c_modules: dict[str, Path]) -> None:
    from wasmscope.runtime import Limits

    rec = prt.run(c_modules["loop"], limits=Limits(timeout=0.2), instrument=True)
    assert rec.outcome == Outcome.TIMEOUT and rec.trap is not None
    names = [f.func_name for f in rec.trap.frames]
    assert "main" in names or "__original_main" in names
    assert names[-1] == "_start" or names[-1].startswith("_start")


def test_after_a_trap_the_next_run_starts_from_depth_zero(prt: Runtime, progs: dict[str, Path]) -> None:
    first = prt.run(progs["deep"], instrument=True)
    second = prt.run(progs["deep"], instrument=True)
    assert first.trap is not None and second.trap is not None
    assert len(first.trap.frames) == len(second.trap.frames)
