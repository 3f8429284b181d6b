"""Guest output sanitized before it is logged: every terminal escape and control
character made visible and counted, a finding per stream, and both telemetry
pipelines neutralizing the log lines only when asked."""

from __future__ import annotations

from pathlib import Path

import pytest

from tests.telemetry.records import make_record
from wasmscope.guard.findings import EventName, Outcome, Severity
from wasmscope.guard.sanitize import neutralize, sanitize_bytes, sanitize_output, scan
from wasmscope.telemetry import Telemetry

ESC = "\x1b"
HOSTILE = (
    f"{ESC}[31mred{ESC}[0m "  # 2 CSI
    f"{ESC}]8;;https://evil.example/{ESC}\\click{ESC}]8;;{ESC}\\ "  # 2 OSC 8 (ST-terminated)
    f"{ESC}]52;c;ZXZpbA==\x07 "  # OSC 52 clipboard write (BEL-terminated)
    f"{ESC}]0;title\x07 "  # OSC (window title)
    f"{ESC}P1$qm{ESC}\\ "  # DCS
    f"{ESC}c "  # terminal reset
    "bell\x07 back\x08space nul\x00 "  # 3 C0
    "\x9b2J "  # C1 CSI
    "over\rwrite"  # a lone CR
)


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("plain text, tabs\tand unicode ünï 🚀", "plain text, tabs\tand unicode ünï 🚀"),
        (f"{ESC}[2J", "\\x1b[2J"),
        ("a\x00b\x7fc", "a\\x00b\\x7fc"),
        ("line\r\n", "line\r\n"),
        ("over\rwrite", "over\\x0dwrite"),
        ("\x9b31m", "\\x9b31m"),
        (f"{ESC}]52;c;ZXZpbA==\x07", "\\x1b]52;c;ZXZpbA==\\x07"),
    ],
)
def test_neutralize_makes_controls_visible(text: str, expected: str) -> None:
    assert neutralize(text) == expected


def test_nothing_a_terminal_acts_on_is_left() -> None:
    out = neutralize(HOSTILE)
    assert not any(c in out for c in "\x1b\x07\x08\x00\r\x9b")
    assert "click" in out and "https://evil.example/" in out  # the text stays readable


def test_scan_counts_each_kind() -> None:
    assert scan(HOSTILE) == {
        "csi": 3,
        "osc8": 2,
        "osc52": 1,
        "osc": 1,
        "dcs": 1,
        "esc": 1,
        "c0": 3,
        "cr": 1,
    }
    assert scan("clean\r\nlines\tonly\n") == {}
    assert scan(f"cut at the end {ESC}]8;;http://x") == {"osc8": 1}


def test_bytes_that_are_not_utf8_are_kept_as_escapes() -> None:
    text, counts = sanitize_bytes(b"raw \x9b2J, \x85 and \xff bytes " + ESC.encode() + b"[1m")
    assert counts == {"csi": 2, "c1": 1}  # 0x9b is the C1 CSI
    assert text == "raw \\x9b2J, \\x85 and \\udcff bytes \\x1b[1m"
    assert sanitize_bytes(b"fine\n") == ("fine\n", {})


def test_one_finding_per_stream_that_needs_it() -> None:
    rec = make_record(stdout=HOSTILE.encode(), stderr=f"warn {ESC}[33m!{ESC}[0m\n".encode())
    out, err = sanitize_output(rec)
    assert out.name is EventName.OUTPUT and out.rule == "output.control" and out.category == "stdio"
    assert (
        out.severity is Severity.ERROR and out.outcome is Outcome.ALLOWED and out.target == "stdout"
    )
    assert out.details["output.total"] == 13 and out.details["output.osc52"] == 1
    assert out.message.startswith(
        "stdout: 3 CSI sequences, 1 OSC sequence, 2 OSC 8 hyperlinks, 1 OSC 52 clipboard write"
    )
    assert (
        err.severity is Severity.WARN
        and err.message == "stderr: 2 CSI sequences neutralized before logging"
    )
    assert sanitize_output(make_record(stdout=b"hello\nworld\n")) == []


@pytest.mark.parametrize("trigger", ["other", "http"])
def test_pipelines_neutralize_log_lines_only_when_asked(trigger: str) -> None:
    line = f"{ESC}]52;c;ZXZpbA==\x07pwned"
    bodies = {}
    for flag in (False, True):
        t = Telemetry.from_options(in_memory=True, trigger=trigger, sanitize_output=flag)
        t.record_invocation(make_record(stdout=b"", stderr=(line + "\n").encode()))
        bodies[flag] = [r["body"] for r in t.memory.log_dicts()]
        t.shutdown()
    assert bodies[False] == [line]  # as the guest wrote it: unchanged without the flag
    assert bodies[True] == ["\\x1b]52;c;ZXZpbA==\\x07pwned"]


# The terminal-escape guest: writes an OSC 52 clipboard write, an OSC 8 hyperlink, a screen
# clear and a carriage return to stdout, and a coloured line to stderr, through fd_write.
ESCAPE_GUEST = r"""
(module
  (import "wasi_snapshot_preview1" "fd_write" (func $fd_write (param i32 i32 i32 i32) (result i32)))
  (memory (export "memory") 1)
  (data (i32.const 64) "\1b]52;c;ZXZpbA==\07\1b]8;;https://evil.example/\1b\\click\1b]8;;\1b\\\1b[2Jok\rfake\n")
  (data (i32.const 256) "\1b[31merror\1b[0m\n")
  (func $write (param $fd i32) (param $ptr i32) (param $len i32)
    (i32.store (i32.const 0) (local.get $ptr))
    (i32.store (i32.const 4) (local.get $len))
    (drop (call $fd_write (local.get $fd) (i32.const 0) (i32.const 1) (i32.const 8))))
  (func (export "_start")
    (call $write (i32.const 1) (i32.const 64) (i32.const 68))
    (call $write (i32.const 2) (i32.const 256) (i32.const 15)))
)
"""


def test_a_real_guest_writing_escapes_is_reported_and_logged_neutralized(tmp_path: Path) -> None:
    from wasmscope.runtime import Runtime

    wat = tmp_path / "escapes.wat"
    wat.write_text(ESCAPE_GUEST)
    with Runtime(cache_dir=tmp_path / "cache") as rt:
        rec = rt.run(wat)
    assert rec.outcome == "ok", rec.error
    assert rec.stdout.startswith(b"\x1b]52;c;") and rec.stderr == b"\x1b[31merror\x1b[0m\n"
    out, err = sanitize_output(rec)
    # the BEL ends the OSC 52: no control byte is counted apart
    assert out.details == {"output.stream": "stdout", "output.total": 5, "output.osc52": 1, "output.osc8": 2,
                           "output.csi": 1, "output.cr": 1}  # fmt: skip
    assert err.details["output.csi"] == 2
    t = Telemetry.from_options(in_memory=True, sanitize_output=True)
    t.record_invocation(rec)
    assert t.emit_findings(rec, [out, err]) == 2
    logs = t.memory.log_dicts()
    lines = [r["body"] for r in logs if not r.get("event_name")]
    assert lines == ["\\x1b]52;c;ZXZpbA==\\x07\\x1b]8;;https://evil.example/\\x1b\\click\\x1b]8;;\\x1b\\\\x1b[2Jok\\x0dfake",
                     "\\x1b[31merror\\x1b[0m"]  # fmt: skip
    assert all("\x1b" not in r["body"] for r in logs)
    assert [r["event_name"] for r in logs if r.get("event_name")] == ["wasm.output.sanitized"] * 2
    t.shutdown()
