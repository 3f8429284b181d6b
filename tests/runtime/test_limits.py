"""Limits and their human spellings; settings that would abort the process are refused."""

from __future__ import annotations

import pytest

from wasmscope.errors import UsageError
from wasmscope.runtime.engine import EngineSettings
from wasmscope.runtime.limits import (
    DEFAULT_MAX_OUTPUT,
    Limits,
    format_size,
    parse_duration,
    parse_size,
)


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("0", 0),
        ("4096", 4096),
        ("64MiB", 64 << 20),
        ("64 mib", 64 << 20),
        ("1.5GiB", 3 << 29),
        ("2GB", 2_000_000_000),
        ("10k", 10_000),
        ("100pages", 100 * 65536),
        ("1e3", 1000),
        (12, 12),
    ],
)
def test_parse_size(text: str | int, expected: int) -> None:
    assert parse_size(text) == expected


@pytest.mark.parametrize("text", ["", "MiB", "-1", "12 parsecs", "1e30GiB", "0x10"])
def test_parse_size_refuses(text: str) -> None:
    with pytest.raises(UsageError):
        parse_size(text)


@pytest.mark.parametrize(
    ("text", "expected"),
    [("2s", 2.0), ("250ms", 0.25), ("1.5", 1.5), ("2m", 120.0), ("1h", 3600.0), ("500us", 0.0005), (3, 3.0)],
)
def test_parse_duration(text: str | float, expected: float) -> None:
    assert parse_duration(text) == pytest.approx(expected)


@pytest.mark.parametrize("text", ["0", "-1s", "soon", "1 fortnight", "nan"])
def test_parse_duration_refuses(text: str) -> None:
    with pytest.raises(UsageError):
        parse_duration(text)


def test_limits_parse_and_defaults() -> None:
    lim = Limits.parse(memory_limit="64MiB", timeout="2s", fuel="1e9", max_output="1MiB", max_wasm_stack="1MiB")
    assert lim == Limits(64 << 20, 2.0, 10**9, 1 << 20, 1 << 20)
    assert Limits().max_output == DEFAULT_MAX_OUTPUT
    assert Limits.parse(max_output="none").max_output is None
    with pytest.raises(UsageError):
        Limits.parse(fuel="lots")


def test_wasm_stack_above_2mib_is_refused() -> None:
    """wasmtime-py aborts the interpreter (SIGABRT) on a deep recursion with a bigger
    Wasm stack than the host thread can hold: refused with a message that says why."""
    Limits(max_wasm_stack=2 << 20)  # the limit itself is fine
    with pytest.raises(UsageError, match="aborts"):
        Limits(max_wasm_stack=(2 << 20) + 1)
    with pytest.raises(UsageError, match="aborts"):
        EngineSettings(max_wasm_stack=8 << 20)


def test_format_size() -> None:
    assert format_size(64 << 20) == "64 MiB"
    assert format_size(1536) == "1.5 KiB"
    assert format_size(10) == "10 B"
    assert format_size(None) == "-"


def test_engine_fingerprint_tracks_settings() -> None:
    a = EngineSettings()
    assert a.fingerprint() == EngineSettings().fingerprint()
    assert a.fingerprint() != EngineSettings(consume_fuel=True).fingerprint()
    assert a.fingerprint() != EngineSettings(exact_memory=True).fingerprint()
    # Parallel compilation does not change the code: same cache entries.
    assert a.fingerprint() == EngineSettings(parallel_compilation=False).fingerprint()
