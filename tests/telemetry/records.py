"""InvocationRecords built by hand, so telemetry tests do not need the runtime."""

from __future__ import annotations

import time
from typing import Any

from wasmscope.runtime.record import (
    Frame,
    InvocationRecord,
    ModuleIdentity,
    Outcome,
    Phase,
    TrapInfo,
)

MS = 1_000_000


def make_record(
    outcome: str = Outcome.OK,
    *,
    invocation_id: str = "inv-0001",
    name: str = "hello.wasm",
    start_ns: int | None = None,
    stdout: bytes = b"hello\nworld\n",
    stderr: bytes = b"",
    **overrides: Any,
) -> InvocationRecord:
    """A 10 ms invocation: load 1 ms, compile 3 ms, instantiate 1 ms, execute 5 ms."""
    t0 = start_ns if start_ns is not None else time.time_ns() - 20 * MS
    phases = [
        Phase("load", t0, t0 + 1 * MS),
        Phase("compile", t0 + 1 * MS, t0 + 4 * MS, {"wasmtime.cache": "miss"}),
        Phase("instantiate", t0 + 4 * MS, t0 + 5 * MS),
        Phase("execute", t0 + 5 * MS, t0 + 10 * MS),
    ]
    fields: dict[str, Any] = dict(
        invocation_id=invocation_id,
        module=ModuleIdentity(sha256="ab" * 32, name=name, size=4096),
        entry="_start",
        start_ns=t0,
        end_ns=t0 + 10 * MS,
        cold_start=True,
        cache="miss",
        phases=phases,
        cpu_seconds=0.004,
        fuel_limit=1_000_000,
        fuel_consumed=12345,
        memory_limit=64 * 1024 * 1024,
        peak_memory=2 * 65536,
        memory_grow_count=1,
        timeout=5.0,
        outcome=outcome,
        stdout=stdout,
        stderr=stderr,
        stdout_bytes=len(stdout),
        stderr_bytes=len(stderr),
    )
    if outcome == Outcome.TRAP:
        fields["trap"] = TrapInfo(
            kind="unreachable",
            message="wasm trap: wasm `unreachable` instruction executed",
            frames=[Frame(7, "crash", 0x1A2, "src/main.c", 12, 3), Frame(3, "main", 0x150)],
        )
    elif outcome == Outcome.TIMEOUT:
        fields["trap"] = TrapInfo(kind="interrupt", message="interrupted: wall-clock limit 5 s")
    elif outcome == Outcome.EXIT:
        fields["exit_code"] = 3
    elif outcome == Outcome.ERROR:
        fields["phases"] = phases[:2]
        fields["error"] = "unknown import: `env::missing` has not been defined"
    fields.update(overrides)
    return InvocationRecord(**fields)
