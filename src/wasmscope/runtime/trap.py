"""How an invocation ended: wasmtime's exceptions -> :class:`Outcome` + :class:`TrapInfo`.

wasmtime-py raises three unrelated things out of a call:

- ``ExitTrap`` (a ``WasmtimeError``, *not* a ``Trap``): ``proc_exit`` / ``wasi:cli/exit``,
  with ``.code``; 0 is a normal end.
- ``Trap``: a Wasm trap with a ``trap_code`` (unreachable, out of bounds, stack
  overflow, out of fuel, interrupt, ...) and ``frames`` (the 20 innermost only).
- ``WasmtimeError``: anything else: our watchdog stopping the guest (the watch says
  why), a trap inside a component call (the code only survives in the message), a link
  or host failure.

Frames are symbolized with our own name-section decoder (wasmtime's names are the
fallback) and, when the module carries DWARF and :mod:`wasmscope.analysis.dwarf` is
installed, with ``file:line:column``.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from wasmscope.runtime.limits import format_size
from wasmscope.runtime.record import Frame, Outcome, TrapInfo

if TYPE_CHECKING:
    from wasmscope.runtime.identity import ModuleSource
    from wasmscope.runtime.memory import MemoryTracker
    from wasmscope.runtime.watchdog import Watch

__all__ = ["Ending", "classify", "first_line", "link_error_message", "symbolize"]

WASMTIME_FRAME_LIMIT = 20  # wasm_trap_trace keeps at most this many innermost frames

_TRAP_KINDS = {
    "UNREACHABLE": "unreachable",
}
_MESSAGE_KINDS = (
    ("call stack exhausted", "stack_overflow"),
    ("out of bounds memory access", "memory_out_of_bounds"),
    ("unreachable", "unreachable"),
    ("all fuel consumed", "out_of_fuel"),
    ("interrupt", "interrupt"),
    ("integer divide by zero", "integer_division_by_zero"),
    ("integer overflow", "integer_overflow"),
    ("indirect call type mismatch", "bad_signature"),
    ("uninitialized element", "indirect_call_to_null"),
    ("undefined element", "table_out_of_bounds"),
    ("invalid conversion to integer", "bad_conversion_to_integer"),
    ("null reference", "null_reference"),
)


@dataclass(slots=True)
class Ending:
    outcome: str
    exit_code: int | None = None
    trap: TrapInfo | None = None
    error: str | None = None


def first_line(text: str) -> str:
    for line in text.strip().splitlines():
        if line.strip():
            return line.strip()
    return text.strip()


def cause(message: str) -> str:
    """The innermost cause of a wasmtime error message (the last ``Caused by`` entry),
    without the backtrace that wasmtime puts first."""
    text = message.strip()
    if "Caused by:" in text:
        tail = text.rsplit("Caused by:", 1)[1]
        lines = [
            re.sub(r"^\s*\d+:\s*", "", line).strip()
            for line in tail.strip().splitlines()
            if line.strip()
        ]
        if lines:
            return lines[-1]
    if text.startswith("error while executing at wasm backtrace"):
        return "error while executing"
    return first_line(text)


def _trap_kind_from_code(code: Any) -> str:
    if code is None:
        return "trap"
    name = str(getattr(code, "name", code))
    return _TRAP_KINDS.get(name, name.lower())


def _trap_kind_from_message(message: str) -> str:
    low = message.lower()
    for needle, kind in _MESSAGE_KINDS:
        if needle in low:
            return kind
    return "trap"


# -- frames -------------------------------------------------------------------------------


@dataclass(slots=True)
class RawFrame:
    func_index: int
    module_offset: int
    func_name: str | None
    module_name: str | None


def raw_frames(exc: BaseException) -> list[RawFrame]:
    """The guest frames carried by a ``Trap`` or a ``WasmtimeError`` (innermost first)."""
    from wasmscope.runtime import _wasmtime_internals as internals

    try:
        return [RawFrame(*frame) for frame in internals.trap_frames(exc)]
    except Exception:
        return []


def symbolize(frames: list[RawFrame], source: ModuleSource | None) -> list[Frame]:
    names: dict[int, str] = {}
    lines = None
    if source is not None and source.kind == "module":
        try:
            names = source.function_names()
        except Exception:
            names = {}
        lines = source.line_table()
    out = []
    for raw in frames:
        offset: int | None = raw.module_offset
        if offset is not None and offset >= 2**63:  # wasmtime's "unknown" (-1 as u64)
            offset = None
        frame = Frame(
            func_index=raw.func_index,
            func_name=names.get(raw.func_index) or raw.func_name,
            module_offset=offset,
        )
        if lines is not None and offset is not None:
            try:
                hit = lines.lookup_module_offset(offset)
            except Exception:
                hit = None
            if hit is not None and hit[1]:
                frame.file, frame.line, frame.column = hit[0], hit[1], hit[2] or None
        out.append(frame)
    return out


# -- classification ----------------------------------------------------------------------------


COMPONENT_LINK_ERROR = "but a matching implementation was not found in the linker"


def link_error_message(message: str) -> str:
    """One line for a failed link / instantiation, naming the import when one is missing."""
    m = re.search(r"unknown import: `([^`]*)` has not been defined", message)
    if m:
        return f"unsatisfiable import `{m.group(1)}`: not provided by the host (WASI)"
    m = re.search(r"incompatible import type for `([^`]*)`", message)
    if m:
        return f"import `{m.group(1)}` has a type the host does not provide"
    m = re.search(rf"component imports \w+ `([^`]*)`, {COMPONENT_LINK_ERROR}", message)
    if m:
        return f"unsatisfiable import `{m.group(1)}`: not provided by the host (WASI 0.2), or not with this type ({cause(message)})"
    return cause(message)


def _oom(tracker: MemoryTracker | None, memory_limit: int | None) -> str | None:
    """Why this failure counts as out-of-memory, or None."""
    if memory_limit is None or tracker is None:
        return None
    if tracker.method == "exact":
        if tracker.refused:
            n = tracker.refused
            return (
                f"memory.grow refused {n} time{'s' if n != 1 else ''} at the {format_size(memory_limit)} "
                "limit (exact: counted by the memory creator)"
            )
        return None
    slack = max(tracker.largest_grow, 65536)
    for size in tracker.peaks.values():
        if size + slack > memory_limit:
            return (
                f"memory of {format_size(size)} within one grow ({format_size(slack)}) of the "
                f"{format_size(memory_limit)} limit (heuristic: grows are sampled)"
            )
    return None


def classify(
    exc: BaseException | None,
    *,
    watch: Watch | None,
    source: ModuleSource | None,
    tracker: MemoryTracker | None = None,
    memory_limit: int | None = None,
    fuel_limited: bool = False,
) -> Ending:
    """The ending of a call that raised ``exc`` (None: it returned)."""
    from wasmtime import ExitTrap, Trap, WasmtimeError

    if exc is None:
        return Ending(Outcome.OK, exit_code=0)
    ending: Ending
    if isinstance(exc, ExitTrap):
        code = int(exc.code)
        ending = Ending(Outcome.OK if code == 0 else Outcome.EXIT, exit_code=code)
    elif watch is not None and watch.reason is not None:
        from wasmscope.runtime import watchdog

        outcome = {
            watchdog.TIMEOUT: Outcome.TIMEOUT,
            watchdog.OUTPUT_LIMIT: Outcome.OUTPUT_LIMIT,
        }.get(watch.reason, Outcome.TRAP)
        message = cause(str(exc))
        if watch.reason == watchdog.TIMEOUT and watch.deadline is not None:
            message = "stopped at the wall-clock timeout (epoch interruption)"
        elif watch.reason == watchdog.OUTPUT_LIMIT and watch.capture is not None:
            message = (
                f"stopped for writing more than the output cap of {format_size(watch.capture.cap)}"
            )
        frames = raw_frames(exc)
        ending = Ending(
            outcome,
            trap=TrapInfo(
                watch.reason,
                message,
                symbolize(frames, source),
                len(frames) >= WASMTIME_FRAME_LIMIT,
            ),
        )
    elif isinstance(exc, Trap):
        kind = _trap_kind_from_code(exc.trap_code)
        frames = raw_frames(exc)
        outcome = {
            "stack_overflow": Outcome.STACK_OVERFLOW,
            "out_of_fuel": Outcome.OUT_OF_FUEL,
            "interrupt": Outcome.TIMEOUT,
        }.get(kind, Outcome.TRAP)
        ending = Ending(
            outcome,
            trap=TrapInfo(
                kind,
                cause(exc.message),
                symbolize(frames, source),
                len(frames) >= WASMTIME_FRAME_LIMIT,
            ),
        )
    elif isinstance(exc, WasmtimeError):
        message = str(exc)
        frames = raw_frames(exc)
        if frames or "wasm trap" in message:
            kind = _trap_kind_from_message(cause(message))
            outcome = {
                "stack_overflow": Outcome.STACK_OVERFLOW,
                "out_of_fuel": Outcome.OUT_OF_FUEL,
                "interrupt": Outcome.TIMEOUT,
            }.get(kind, Outcome.TRAP)
            ending = Ending(
                outcome,
                trap=TrapInfo(
                    kind,
                    cause(message),
                    symbolize(frames, source),
                    len(frames) >= WASMTIME_FRAME_LIMIT,
                ),
            )
        else:
            ending = Ending(Outcome.ERROR, error=cause(message))
    else:
        ending = Ending(Outcome.ERROR, error=f"{type(exc).__name__}: {exc}")
    if (
        fuel_limited
        and ending.outcome == Outcome.TRAP
        and ending.trap
        and ending.trap.kind == "out_of_fuel"
    ):
        ending.outcome = Outcome.OUT_OF_FUEL
    if ending.outcome in (Outcome.TRAP, Outcome.EXIT):
        why = _oom(tracker, memory_limit)
        if why is not None:
            before = ending.trap.message if ending.trap else f"exit code {ending.exit_code}"
            frames_ = ending.trap.frames if ending.trap else []
            truncated = ending.trap.frames_truncated if ending.trap else False
            ending.trap = TrapInfo("out_of_memory", f"{why}; then: {before}", frames_, truncated)
            ending.outcome = Outcome.OUT_OF_MEMORY
    return ending
