"""Limits on one invocation, and the parsers for their human spellings.

    Limits(memory_limit=parse_size("64MiB"), timeout=parse_duration("2s"), fuel=10**9)

Every field is optional; ``None`` means unlimited. ``max_output`` is the cap on
*each* of stdout and stderr (default 64 MiB: the capture lives in memory).
``max_wasm_stack`` above 2 MiB is refused: wasmtime-py then aborts the whole
Python process on deep recursion (see DESIGN.md), it does not trap.

No wasmtime import here: the CLI parses its flags before loading the runtime.
"""

from __future__ import annotations

import math
import re
from dataclasses import dataclass

from wasmscope.errors import UsageError

__all__ = [
    "DEFAULT_MAX_OUTPUT",
    "MAX_WASM_STACK_LIMIT",
    "Limits",
    "format_size",
    "parse_duration",
    "parse_size",
]

MAX_WASM_STACK_LIMIT = 2 * 1024 * 1024  # above this, a stack overflow kills the process
DEFAULT_MAX_OUTPUT = 64 * 1024 * 1024

_SIZE_UNITS = {
    "": 1,
    "b": 1,
    "k": 1000,
    "kb": 1000,
    "m": 1000**2,
    "mb": 1000**2,
    "g": 1000**3,
    "gb": 1000**3,
    "t": 1000**4,
    "tb": 1000**4,
    "ki": 1024,
    "kib": 1024,
    "mi": 1024**2,
    "mib": 1024**2,
    "gi": 1024**3,
    "gib": 1024**3,
    "ti": 1024**4,
    "tib": 1024**4,
    "page": 65536,
    "pages": 65536,
}
_DURATION_UNITS = {
    "": 1.0,
    "s": 1.0,
    "sec": 1.0,
    "ms": 1e-3,
    "us": 1e-6,
    "µs": 1e-6,
    "m": 60.0,
    "min": 60.0,
    "h": 3600.0,
}
_NUMBER = re.compile(r"^\s*([0-9]+(?:\.[0-9]*)?|\.[0-9]+)(?:e([+-]?[0-9]+))?\s*([a-zµ]*)\s*$", re.I)


def _split(text: str, what: str) -> tuple[float, str]:
    m = _NUMBER.match(text)
    if not m:
        raise UsageError(f"invalid {what}: {text!r}")
    value = float(m.group(1))
    if m.group(2):
        value *= 10.0 ** int(m.group(2))
    return value, m.group(3).lower()


def parse_size(text: str | int) -> int:
    """Bytes from ``"64MiB"``, ``"1.5 GB"``, ``"100 pages"`` (64 KiB each) or a plain count.

    Binary (KiB, MiB, GiB; also Ki, Mi, Gi) and decimal (kB, MB, GB; also k, M, G)
    units, case-insensitive."""
    if isinstance(text, int):
        if text < 0:
            raise UsageError(f"invalid size: {text} (negative)")
        return text
    value, unit = _split(text, "size")
    factor = _SIZE_UNITS.get(unit)
    if factor is None:
        raise UsageError(f"invalid size unit in {text!r}: use B, KiB, MiB, GiB, kB, MB, GB or pages")
    result = value * factor
    if not math.isfinite(result) or result >= 2**64:
        raise UsageError(f"size too large: {text!r}")
    return int(result)


def parse_duration(text: str | float) -> float:
    """Seconds from ``"2s"``, ``"250ms"``, ``"1.5"``, ``"2m"`` (minutes) or ``"1h"``."""
    if isinstance(text, int | float):
        value = float(text)
    else:
        number, unit = _split(text, "duration")
        factor = _DURATION_UNITS.get(unit)
        if factor is None:
            raise UsageError(f"invalid duration unit in {text!r}: use ms, s, m or h")
        value = number * factor
    if not math.isfinite(value) or value <= 0:
        raise UsageError(f"invalid duration: {text!r} (must be positive)")
    return value


def format_size(n: int | None) -> str:
    """``67108864`` -> ``"64 MiB"``; exact binary units when they divide, else one decimal."""
    if n is None:
        return "-"
    for unit, factor in (("GiB", 1024**3), ("MiB", 1024**2), ("KiB", 1024)):
        if n >= factor:
            if n % factor == 0:
                return f"{n // factor} {unit}"
            return f"{n / factor:.1f} {unit}"
    return f"{n} B"


@dataclass(frozen=True, slots=True)
class Limits:
    memory_limit: int | None = None  # bytes, per linear memory (as wasmtime's store limiter)
    timeout: float | None = None  # seconds of wall-clock time for instantiate + execute
    fuel: int | None = None  # units of wasmtime fuel; turns fuel metering on
    max_output: int | None = DEFAULT_MAX_OUTPUT  # bytes kept of each of stdout and stderr
    max_wasm_stack: int | None = None  # bytes; wasmtime's default (512 KiB) when None

    def __post_init__(self) -> None:
        if self.memory_limit is not None and self.memory_limit < 0:
            raise UsageError("memory limit must not be negative")
        if self.timeout is not None and not (self.timeout > 0 and math.isfinite(self.timeout)):
            raise UsageError("timeout must be a positive number of seconds")
        if self.fuel is not None and not 0 <= self.fuel < 2**64:
            raise UsageError("fuel must be between 0 and 2**64-1")
        if self.max_output is not None and self.max_output < 0:
            raise UsageError("output cap must not be negative")
        if self.max_wasm_stack is not None:
            if self.max_wasm_stack <= 0:
                raise UsageError("max wasm stack must be positive")
            if self.max_wasm_stack > MAX_WASM_STACK_LIMIT:
                raise UsageError(
                    f"max wasm stack {format_size(self.max_wasm_stack)} is refused: above "
                    f"{format_size(MAX_WASM_STACK_LIMIT)}, wasmtime overflows the host stack and "
                    "the whole process aborts instead of trapping"
                )

    @classmethod
    def parse(
        cls,
        *,
        memory_limit: str | int | None = None,
        timeout: str | float | None = None,
        fuel: str | int | None = None,
        max_output: str | int | None = DEFAULT_MAX_OUTPUT,
        max_wasm_stack: str | int | None = None,
    ) -> Limits:
        """Limits from strings as typed on a command line (``"64MiB"``, ``"2s"``, ``"1e9"``);
        ``max_output="none"`` means uncapped."""

        def size(v: str | int | None) -> int | None:
            if v is None or (isinstance(v, str) and v.strip().lower() in ("none", "unlimited")):
                return None
            return parse_size(v)

        fuel_value: int | None
        if fuel is None:
            fuel_value = None
        elif isinstance(fuel, int):
            fuel_value = fuel
        else:
            number, unit = _split(fuel, "fuel")
            if unit:
                raise UsageError(f"invalid fuel: {fuel!r} (a number of units)")
            fuel_value = int(number)
        return cls(
            memory_limit=size(memory_limit),
            timeout=None if timeout is None else parse_duration(timeout),
            fuel=fuel_value,
            max_output=size(max_output),
            max_wasm_stack=size(max_wasm_stack),
        )
