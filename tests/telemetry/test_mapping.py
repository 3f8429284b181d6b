"""The pure mapping from records to attributes, failures and log lines."""

from __future__ import annotations

from tests.telemetry.records import make_record
from wasmscope.runtime.record import Frame, Outcome, TrapInfo
from wasmscope.telemetry import mapping


def test_clean_attributes() -> None:
    out = mapping.clean_attributes(
        {
            "s": "x", "b": True, "i": 3, "f": 1.5, "none": None,
            "big": 2**64, "neg": -(2**63), "bytes": b"\x01\xff",
            "ints": [1, 2], "strs": ("a", "b"), "mixed": [1, "a"], "empty": [],
            "bools": [True, False], "d": {"k": 1}, "obj": object,
        }
    )  # fmt: skip
    assert out["s"] == "x" and out["b"] is True and out["i"] == 3 and out["f"] == 1.5
    assert "none" not in out
    assert out["big"] == str(2**64) and out["neg"] == -(2**63)
    assert out["bytes"] == "01ff"
    assert out["ints"] == (1, 2) and out["strs"] == ("a", "b") and out["bools"] == (True, False)
    assert out["mixed"] == '[1,"a"]' and out["empty"] == ()
    assert out["d"] == '{"k":1}'
    assert out["obj"] == str(object)


def test_guest_lines_splitting() -> None:
    g = mapping.guest_lines("stdout", b"a\r\nb\n\nc", max_lines=10, max_bytes=100)
    assert g.lines == ["a", "b", "", "c"] and not g.truncated
    assert mapping.guest_lines("stdout", b"", max_lines=10, max_bytes=100).lines == []
    assert mapping.guest_lines("stdout", b"\n", max_lines=10, max_bytes=100).lines == [""]
    bad = mapping.guest_lines("stderr", b"\xc3(\n", max_lines=10, max_bytes=100)
    assert bad.lines == ["\ufffd("]


def test_guest_lines_bounds() -> None:
    g = mapping.guest_lines("stdout", b"1\n22\n333\n4444\n", max_lines=2, max_bytes=100)
    assert g.lines == ["1", "22"] and g.dropped_lines == 2 and g.dropped_bytes == 9
    g = mapping.guest_lines("stdout", b"1\n22\n333\n", max_lines=10, max_bytes=5)
    assert g.lines == ["1", "22"] and g.dropped_lines == 1 and g.dropped_bytes == 4
    long = mapping.guest_lines("stdout", b"x" * 100 + b"\ny\n", max_lines=10, max_bytes=1000, max_line_bytes=10)
    assert long.lines == ["x" * 10 + " [...]", "y"]
    assert mapping.guest_lines("stdout", b"", max_lines=1, max_bytes=1, capped=True).truncated
    zero = mapping.guest_lines("stdout", b"a\n", max_lines=0, max_bytes=100)
    assert zero.lines == [] and zero.dropped_lines == 1


def test_format_frame() -> None:
    assert mapping.format_frame(Frame(1, "f", 0x10)) == "f (func 1, @0x10)"
    assert mapping.format_frame(Frame(2, None, None)) == "func[2] (func 2)"
    assert mapping.format_frame(Frame(None, None, None)) == "<unknown>"
    assert mapping.format_frame(Frame(1, "f", None, "a.c", 3)) == "f (func 1) a.c:3"
    assert mapping.format_frame(Frame(1, "f", None, "a.c", 3, 4)) == "f (func 1) a.c:3:4"


def test_stacktrace_mentions_truncated_frames() -> None:
    trap = TrapInfo("stack_overflow", "call stack exhausted", [Frame(1, "rec", 5)], frames_truncated=True)
    assert mapping.format_stacktrace(trap).splitlines() == [
        "call stack exhausted",
        "    at rec (func 1, @0x5)",
        "    ... (outer frames not captured)",
    ]


def test_a_deep_stacktrace_keeps_both_ends() -> None:
    frames = [Frame(i, f"f{i}", None) for i in range(50_000)]  # innermost first
    lines = mapping.format_stacktrace(TrapInfo("stack_overflow", "call stack exhausted", frames)).splitlines()
    inner, outer = mapping.STACKTRACE_INNER, mapping.STACKTRACE_OUTER
    assert len(lines) == 1 + inner + 1 + outer
    assert lines[1] == "    at f0 (func 0)" and lines[inner] == f"    at f{inner - 1} (func {inner - 1})"
    assert lines[inner + 1] == f"    ... {50_000 - inner - outer} frames left out ..."
    assert lines[-1] == "    at f49999 (func 49999)"
    exact = [Frame(i, None, None) for i in range(inner + outer)]
    assert len(mapping.format_stacktrace(TrapInfo("trap", "x", exact)).splitlines()) == 1 + inner + outer


def test_failure() -> None:
    assert mapping.failure(make_record()) is None
    f = mapping.failure(make_record(Outcome.STACK_OVERFLOW))
    assert f is not None and (f.error_type, f.description) == ("stack_overflow", "stack overflow")
    f = mapping.failure(make_record(Outcome.TIMEOUT, trap=None))
    assert f is not None and f.description == "timed out after 5 s"
    f = mapping.failure(make_record(Outcome.TRAP))
    assert f is not None and f.error_type == "unreachable"
    assert f.exception["code.function.name"] == "crash"


def test_durations() -> None:
    rec = make_record()
    assert abs(mapping.invoke_seconds(rec) - 0.005) < 1e-9
    assert abs((mapping.init_seconds(rec) or 0) - 0.005) < 1e-9
    bare = make_record(phases=[])
    assert abs(mapping.invoke_seconds(bare) - 0.010) < 1e-9
    assert mapping.init_seconds(bare) is None
