"""Audited runs (``RunOptions.audit``) with real guests: WAT modules that call
preview 1 functions directly and C programs built with clang-19 + wasi-libc."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from tests.instrument.support import compile_c
from wasmscope.errors import UsageError
from wasmscope.runtime import Runtime
from wasmscope.runtime.host_calls import (
    ERRNO_NOTCAPABLE,
    Action,
    AuditLog,
    AuditSettings,
    Budgets,
    HostCall,
)
from wasmscope.runtime.record import AUDIT_CALLS_IN_JSON, Outcome

wasmtime = pytest.importorskip("wasmtime")

ERRNO_BADF = 8

# fd_write "hello\n" to fd 1, path_open "../a\0b" on fd 3, random_get 16 bytes; imports
# clock_time_get, so the thunks can time the calls.
CALLS_WAT = r"""
(module
  (import "wasi_snapshot_preview1" "fd_write" (func $fd_write (param i32 i32 i32 i32) (result i32)))
  (import "wasi_snapshot_preview1" "path_open"
    (func $path_open (param i32 i32 i32 i32 i32 i64 i64 i32 i32) (result i32)))
  (import "wasi_snapshot_preview1" "random_get" (func $random_get (param i32 i32) (result i32)))
  (import "wasi_snapshot_preview1" "clock_time_get" (func $clock (param i32 i64 i32) (result i32)))
  (memory (export "memory") 1)
  (data (i32.const 16) "\20\00\00\00\06\00\00\00")
  (data (i32.const 32) "hello\n")
  (data (i32.const 64) "../a\00b")
  (func (export "_start")
    (drop (call $fd_write (i32.const 1) (i32.const 16) (i32.const 1) (i32.const 8)))
    (drop (call $path_open (i32.const 3) (i32.const 0) (i32.const 64) (i32.const 6) (i32.const 0)
      (i64.const 0x40) (i64.const 0) (i32.const 0) (i32.const 100)))
    (drop (call $random_get (i32.const 200) (i32.const 16)))))
"""

# A path pointer past the end of memory: wasmtime traps in path_open; the thunk must
# not trap first (it copies nothing), and the record stays without an errno.
OOB_WAT = r"""
(module
  (import "wasi_snapshot_preview1" "path_open"
    (func $path_open (param i32 i32 i32 i32 i32 i64 i64 i32 i32) (result i32)))
  (memory (export "memory") 1)
  (func (export "_start")
    (drop (call $path_open (i32.const 3) (i32.const 0) (i32.const 65530) (i32.const 100) (i32.const 0)
      (i64.const 0) (i64.const 0) (i32.const 0) (i32.const 100)))))
"""

# random_get of 1 byte, N times (N from the only argument of "run").
LOOP_WAT = r"""
(module
  (import "wasi_snapshot_preview1" "random_get" (func $random_get (param i32 i32) (result i32)))
  (memory (export "memory") 1)
  (func (export "run") (param $n i32) (result i32)
    (local $i i32) (local $bad i32)
    (block $done (loop $l
      (br_if $done (i32.ge_u (local.get $i) (local.get $n)))
      (local.set $bad (i32.add (local.get $bad) (i32.ne (call $random_get (i32.const 64) (i32.const 1)) (i32.const 0))))
      (local.set $i (i32.add (local.get $i) (i32.const 1)))
      (br $l)))
    (local.get $bad)))
"""

FILES_C = r"""
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <unistd.h>

/* Prints SECRET, then opens each argument, reads it and (unless KEEP is set) closes it. */
int main(int argc, char **argv) {
    const char *v = getenv("SECRET");
    printf("SECRET=%s\n", v ? v : "-");
    int keep = getenv("KEEP") != 0;
    for (int i = 1; i < argc; i++) {
        int fd = open(argv[i], O_RDONLY);
        if (fd < 0) { printf("%s: cannot open\n", argv[i]); continue; }
        char buf[64];
        int n = (int)read(fd, buf, sizeof buf);
        printf("%s: %d bytes\n", argv[i], n);
        if (!keep) close(fd);
    }
    return 0;
}
"""


@pytest.fixture(scope="module")
def calls_wasm() -> bytes:
    return bytes(wasmtime.wat2wasm(CALLS_WAT))


@pytest.fixture(scope="module")
def loop_wasm() -> bytes:
    return bytes(wasmtime.wat2wasm(LOOP_WAT))


@pytest.fixture(scope="module")
def files_wasm(tmp_path_factory: pytest.TempPathFactory) -> bytes:
    out = tmp_path_factory.mktemp("audit-c") / "files.wasm"
    return compile_c(FILES_C, out, "-O2").read_bytes()


@pytest.fixture
def data_dir(tmp_path: Path) -> Path:
    d = tmp_path / "data"
    d.mkdir()
    (d / "a.txt").write_text("alpha\n")
    (d / "b.txt").write_text("bravo!\n")
    (d / "c.txt").write_text("charlie\n")
    return d


def _calls(rec_audit: AuditLog | None, func: str) -> list[HostCall]:
    assert rec_audit is not None
    return [c for c in rec_audit.calls if c.func == func]


def test_every_call_decoded(runtime: Runtime, calls_wasm: bytes) -> None:
    rec = runtime.run(calls_wasm, audit=AuditSettings())
    assert rec.outcome == Outcome.OK and rec.stdout == b"hello\n"
    log = rec.audit
    assert log is not None
    assert log.counts == {"fd_write": 1, "path_open": 1, "random_get": 1}
    assert [c.seq for c in log.calls] == [1, 2, 3]
    write, opened, rand = log.calls
    assert write.args == {"fd": 1, "iovs": 16, "iovs_len": 1, "nwritten": 8}
    assert (write.errno, write.result, write.nbytes, write.path) == (0, 6, 6, None)
    assert opened.path == "../a\x00b" and not opened.path_truncated
    assert opened.args["fs_rights_base"] == 0x40 and opened.args["opened_fd"] == 100
    assert opened.errno == ERRNO_BADF and opened.result is None  # no preopen at fd 3
    assert (rand.func, rand.nbytes, rand.errno) == ("random_get", 16, 0)
    for c in log.calls:  # the module imports clock_time_get: every call is timed
        assert c.duration_ns is not None and c.duration_ns >= 0
        assert not (c.denied or c.over_budget or c.killed)
    assert log.dropped == 0
    assert log.totals == {
        "host_calls": 3,
        "random_bytes": 16,
        "output_bytes": 6,
        "open_fds_peak": 0,
    }


def test_a_bad_pointer_traps_as_it_would_unaudited(runtime: Runtime) -> None:
    data = bytes(wasmtime.wat2wasm(OOB_WAT))
    plain = runtime.run(data)
    rec = runtime.run(data, audit=AuditSettings())
    assert rec.outcome == plain.outcome == Outcome.TRAP
    assert (
        rec.trap is not None and plain.trap is not None and rec.trap.message == plain.trap.message
    )
    (call,) = _calls(rec.audit, "path_open")
    assert call.path == "" and call.path_truncated and call.errno is None


def test_without_audit_nothing_changes(runtime: Runtime, calls_wasm: bytes) -> None:
    rec = runtime.run(calls_wasm)
    assert rec.audit is None and rec.stdout == b"hello\n"
    assert "audit" not in rec.to_json()


def test_count_only(runtime: Runtime, calls_wasm: bytes) -> None:
    rec = runtime.run(calls_wasm, audit=AuditSettings(record=False))
    assert rec.audit is not None
    assert rec.audit.calls == [] and rec.audit.total == 3 and rec.audit.dropped == 0
    assert rec.audit.totals["output_bytes"] == 6


def test_max_path_cuts_the_path(runtime: Runtime, calls_wasm: bytes) -> None:
    rec = runtime.run(calls_wasm, audit=AuditSettings(max_path=3))
    opened = _calls(rec.audit, "path_open")[0]
    assert opened.path == "../" and opened.path_truncated


def test_deny_returns_the_errno_without_calling(runtime: Runtime, calls_wasm: bytes) -> None:
    rec = runtime.run(calls_wasm, audit=AuditSettings(actions={"fd_write": Action.DENY}))
    assert rec.outcome == Outcome.OK and rec.stdout == b""
    write = _calls(rec.audit, "fd_write")[0]
    assert (
        write.denied
        and write.errno == ERRNO_NOTCAPABLE
        and write.result is None
        and write.duration_ns is None
    )
    rec = runtime.run(
        calls_wasm, audit=AuditSettings(actions={"path_open": Action.DENY}, deny_errno=63)
    )
    assert {c.errno for c in _calls(rec.audit, "path_open")} == {63}


def test_kill_traps_with_a_clear_reason(runtime: Runtime, calls_wasm: bytes) -> None:
    rec = runtime.run(calls_wasm, audit=AuditSettings(actions={"path_open": Action.KILL}))
    assert rec.outcome == Outcome.TRAP
    assert rec.trap is not None and rec.trap.kind == "policy_kill"
    assert "killed by the host-call policy" in rec.trap.message and "path_open" in rec.trap.message
    assert rec.trap.frames[0].func_name == "wasi_snapshot_preview1.path_open"  # the thunk's frame
    assert rec.stdout == b"hello\n"  # what ran before the kill ran
    log = rec.audit
    assert log is not None and log.counts == {"fd_write": 1, "path_open": 1}
    last = log.calls[-1]
    assert (
        last.func == "path_open" and last.killed and last.errno is None and last.path == "../a\x00b"
    )


def test_check_asks_the_host(runtime: Runtime, files_wasm: bytes, data_dir: Path) -> None:
    asked: list[HostCall] = []

    def check(call: HostCall) -> bool:
        asked.append(call)
        return call.path == "a.txt"

    settings = AuditSettings(actions={"path_open": Action.CHECK}, check=check)
    args = ["/data/a.txt", "/data/b.txt"]
    rec = runtime.run(files_wasm, args, audit=settings, dirs=[f"{data_dir}::/data"])
    assert rec.outcome == Outcome.OK
    assert b"/data/a.txt: 6 bytes" in rec.stdout and b"/data/b.txt: cannot open" in rec.stdout
    assert [c.path for c in asked] == ["a.txt", "b.txt"] and all(c.errno is None for c in asked)
    a, b = _calls(rec.audit, "path_open")
    assert a.errno == 0 and a.result is not None and not a.denied
    assert b.denied and b.errno == ERRNO_NOTCAPABLE

    def broken(call: HostCall) -> bool:
        raise RuntimeError("policy store down")

    rec = runtime.run(files_wasm, args, audit=AuditSettings(actions={"path_open": Action.CHECK}, check=broken), dirs=[f"{data_dir}::/data"])  # fmt: skip
    assert (
        rec.outcome == Outcome.OK and rec.stdout.count(b"cannot open") == 2
    )  # a failing check denies


def test_c_guest_same_output_and_its_calls(
    runtime: Runtime, files_wasm: bytes, data_dir: Path
) -> None:
    args = ["/data/a.txt", "/data/../../etc/passwd", "/data/nope"]
    opts = {"dirs": [f"{data_dir}::/data"], "env": {"SECRET": "s3"}}
    plain = runtime.run(files_wasm, args, **opts)
    rec = runtime.run(files_wasm, args, audit=AuditSettings(), **opts)
    assert rec.stdout == plain.stdout and rec.exit_code == plain.exit_code
    assert b"SECRET=s3" in rec.stdout
    log = rec.audit
    assert log is not None
    assert log.counts["environ_get"] == 1 and log.counts["environ_sizes_get"] == 1
    opened = _calls(log, "path_open")
    assert [c.path for c in opened] == ["a.txt", "../../etc/passwd", "nope"]
    assert opened[0].errno == 0 and isinstance(opened[0].result, int)
    assert opened[1].errno not in (None, 0) and opened[1].result is None  # out of the preopen
    assert opened[2].errno == 44  # noent
    read = _calls(log, "fd_read")[0]
    assert read.args["fd"] == opened[0].result and read.result == 6 and read.nbytes is not None
    close = _calls(log, "fd_close")[0]
    assert close.args["fd"] == opened[0].result and close.errno == 0
    assert log.totals["open_fds_peak"] == 1
    assert log.totals["output_bytes"] == len(rec.stdout) + len(rec.stderr)


def test_budgets(runtime: Runtime, calls_wasm: bytes, files_wasm: bytes, data_dir: Path) -> None:
    rec = runtime.run(calls_wasm, audit=AuditSettings(budgets=Budgets(host_calls=2)))
    assert [(c.func, c.over_budget, c.denied) for c in rec.audit.calls] == [  # type: ignore[union-attr]
        ("fd_write", False, False), ("path_open", False, False), ("random_get", True, True),
    ]  # fmt: skip
    rec = runtime.run(calls_wasm, audit=AuditSettings(budgets=Budgets(random_bytes=15)))
    rand = _calls(rec.audit, "random_get")[0]
    assert (
        rand.over_budget
        and rand.denied
        and rec.audit is not None
        and rec.audit.totals["random_bytes"] == 0
    )
    rec = runtime.run(calls_wasm, audit=AuditSettings(budgets=Budgets(output_bytes=5)))
    assert rec.stdout == b"" and _calls(rec.audit, "fd_write")[0].over_budget
    rec = runtime.run(calls_wasm, audit=AuditSettings(budgets=Budgets(output_bytes=6)))
    assert rec.stdout == b"hello\n"
    # open descriptors: KEEP leaves each file open, the second open is over
    args = ["/data/a.txt", "/data/b.txt", "/data/c.txt"]
    opts = {"dirs": [f"{data_dir}::/data"], "env": {"KEEP": "1"}}
    rec = runtime.run(files_wasm, args, audit=AuditSettings(budgets=Budgets(open_fds=1)), **opts)
    assert rec.stdout.count(b"cannot open") == 2
    assert [c.over_budget for c in _calls(rec.audit, "path_open")] == [False, True, True]
    assert rec.audit is not None and rec.audit.totals["open_fds_peak"] == 1
    # over_budget=KILL
    rec = runtime.run(
        calls_wasm, audit=AuditSettings(budgets=Budgets(host_calls=1), over_budget=Action.KILL)
    )
    assert rec.outcome == Outcome.TRAP and rec.trap is not None and rec.trap.kind == "policy_kill"


def test_a_tiny_ring_drops_an_exact_count(runtime: Runtime, loop_wasm: bytes) -> None:
    n = 5000
    rec = runtime.invoke(loop_wasm, "run", [n], audit=AuditSettings(ring_records=4))
    assert rec.results == [0]
    log = rec.audit
    assert log is not None and log.counts == {"random_get": n}
    assert log.dropped > 0 and len(log.calls) + log.dropped == n
    seqs = [c.seq for c in log.calls]
    assert seqs == sorted(set(seqs)) and seqs[0] == 1


def test_a_large_ring_drops_nothing(runtime: Runtime, loop_wasm: bytes) -> None:
    rec = runtime.invoke(loop_wasm, "run", [3000], audit=AuditSettings(ring_records=4096))
    assert rec.audit is not None and rec.audit.dropped == 0
    assert [c.seq for c in rec.audit.calls] == list(range(1, 3001))


def test_json_is_compact(runtime: Runtime, loop_wasm: bytes) -> None:
    rec = runtime.invoke(loop_wasm, "run", [AUDIT_CALLS_IN_JSON + 7], audit=AuditSettings())
    out = rec.to_json()
    json.dumps(out)
    audit = out["audit"]
    assert audit["counts"] == {"random_get": AUDIT_CALLS_IN_JSON + 7} and audit["dropped"] == 0
    assert len(audit["calls"]) == AUDIT_CALLS_IN_JSON and audit["calls_omitted"] == 7
    assert (
        audit["calls"][0]["func"] == "random_get"
        and audit["totals"]["host_calls"] == AUDIT_CALLS_IN_JSON + 7
    )


def test_composes_with_the_counters(runtime: Runtime, files_wasm: bytes, data_dir: Path) -> None:
    args = ["/data/a.txt"]
    opts = {"dirs": [f"{data_dir}::/data"]}
    plain = runtime.run(files_wasm, args, **opts)
    rec = runtime.run(files_wasm, args, audit=AuditSettings(), instrument=True, **opts)
    assert rec.stdout == plain.stdout
    assert rec.audit is not None and rec.host_calls is not None and rec.call_counts
    for name, n in rec.audit.counts.items():
        assert rec.host_calls[f"wasi_snapshot_preview1.{name}"] == n


def test_one_module_serves_every_policy(tmp_path: Path, calls_wasm: bytes) -> None:
    with Runtime(cache_dir=tmp_path / "cache") as rt:
        first = rt.run(calls_wasm, audit=AuditSettings())
        second = rt.run(
            calls_wasm, audit=AuditSettings(actions={"fd_write": Action.DENY}, record=False)
        )
        assert first.cache == "miss" and second.cache == "memory"
        assert second.stdout == b""
    with Runtime(cache_dir=tmp_path / "cache") as rt:  # the audited bytes and code come from disk
        third = rt.run(calls_wasm, audit=AuditSettings())
        assert third.cache == "disk" and third.audit is not None and len(third.audit.calls) == 3


def test_nothing_to_audit(runtime: Runtime) -> None:
    data = bytes(wasmtime.wat2wasm('(module (func (export "_start")))'))
    rec = runtime.run(data, audit=AuditSettings())
    assert rec.outcome == Outcome.OK and rec.audit == AuditLog()


def test_refused_settings(runtime: Runtime, calls_wasm: bytes) -> None:
    with pytest.raises(UsageError, match="check"):
        runtime.run(calls_wasm, audit=AuditSettings(actions={"path_open": Action.CHECK}))
    with pytest.raises(UsageError, match="power of two"):
        runtime.run(calls_wasm, audit=AuditSettings(ring_records=3))


def test_kill_with_the_counters_keeps_the_shadow_stack(
    runtime: Runtime, files_wasm: bytes, data_dir: Path
) -> None:
    settings = AuditSettings(actions={"path_open": Action.KILL})
    rec = runtime.run(
        files_wasm, ["/data/a.txt"], audit=settings, instrument=True, dirs=[f"{data_dir}::/data"]
    )
    assert rec.outcome == Outcome.TRAP and rec.trap is not None and rec.trap.kind == "policy_kill"
    assert rec.trap.frames and rec.trap.frames[0].func_name == "wasi_snapshot_preview1.path_open"
    assert rec.host_calls is not None and rec.host_calls["wasi_snapshot_preview1.path_open"] == 1


def test_a_small_memory_limit_shrinks_the_ring(runtime: Runtime, loop_wasm: bytes) -> None:
    from wasmscope.runtime.limits import Limits

    rec = runtime.invoke(
        loop_wasm, "run", [100], audit=AuditSettings(), limits=Limits(memory_limit=1 << 20)
    )
    assert rec.outcome == Outcome.OK and rec.results == [0]
    assert rec.audit is not None and len(rec.audit.calls) == 100 and rec.audit.dropped == 0


@pytest.mark.parametrize("stats", ["sampled", "exact"])
def test_the_audit_memory_is_not_the_guests(
    runtime: Runtime, exact_runtime: Runtime, calls_wasm: bytes, stats: str
) -> None:
    rt = runtime if stats == "sampled" else exact_runtime
    plain = rt.run(calls_wasm)
    rec = rt.run(calls_wasm, audit=AuditSettings())
    assert rec.peak_memory == plain.peak_memory
    assert rec.attributes["wasm.memory.count"] == plain.attributes["wasm.memory.count"]


def test_a_component_runs_unaudited(runtime: Runtime, python_command_component: Path) -> None:
    rec = runtime.run(python_command_component, audit=AuditSettings())
    assert rec.outcome == Outcome.OK and b"hi" in rec.stdout
    assert rec.audit is None
