"""Shared helpers of the guard tests: host calls, audit logs and records made by hand
(the in-module audit that fills them is tested on its own), and the C guests."""

from __future__ import annotations

import itertools
from collections.abc import Iterator
from typing import Any

import pytest

from tests.guard.support import sdk_log_filters_kept
from tests.runtime.conftest import (  # noqa: F401  (real guests for check)
    c_modules,
    lib_wasm,
    python_command_component,
)
from wasmscope.runtime.host_calls import AuditLog, HostCall
from wasmscope.runtime.record import InvocationRecord, ModuleIdentity

_seq = itertools.count()

# path_open rights as wasi-libc asks them: reading, and writing.
READ = 1 << 1
WRITE = 1 << 6
CREAT, TRUNC = 1, 8


def call(func: str, errno: int | None = 0, **kw: Any) -> HostCall:
    """A HostCall: keyword arguments that are HostCall fields go there, the rest into args."""
    fields = {k: kw.pop(k) for k in list(kw) if k in HostCall.__dataclass_fields__}
    return HostCall(seq=next(_seq), func=func, args=kw, errno=errno, **fields)


def open_call(
    path: str, fd: int = 3, write: bool = False, result: int | None = 5, **kw: Any
) -> HostCall:
    rights = WRITE if write else READ
    oflags = CREAT if write else 0
    return call("path_open", fd=fd, dirflags=0, oflags=oflags, fs_rights_base=rights,
                fs_rights_inheriting=0, fdflags=0, path=path, result=result, **kw)  # fmt: skip


def log_of(*calls: HostCall, **totals: int) -> AuditLog:
    counts: dict[str, int] = {}
    for c in calls:
        counts[c.func] = counts.get(c.func, 0) + 1
    return AuditLog(counts=counts, calls=list(calls), totals=dict(totals))


def record(
    args: list[str] | None = None, exit_code: int | None = None, stdout: bytes = b"", **kw: Any
) -> InvocationRecord:
    return InvocationRecord(
        invocation_id="test", module=ModuleIdentity(sha256="ab" * 32, name="m.wasm", size=1), entry="_start",
        args=list(args or []), exit_code=exit_code, outcome="ok" if not exit_code else "exit",
        stdout=stdout, stdout_bytes=len(stdout), **kw,
    )  # fmt: skip


@pytest.fixture(autouse=True)
def _sdk_log_filters() -> Iterator[None]:
    """A Telemetry with OTLP filters the SDK exporters' loggers for the whole process;
    put them back after each guard test."""
    with sdk_log_filters_kept():
        yield
