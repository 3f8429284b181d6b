"""GuardSession: the glue around each run (shaping said once, the ring sized from the
runs, sink failures counted, never raised)."""

from __future__ import annotations

import wasmtime

from wasmscope.guard.findings import EventName
from wasmscope.guard.policy import parse_policy
from wasmscope.guard.session import MIN_RING, GuardConfig, GuardSession
from wasmscope.runtime import Runtime
from wasmscope.runtime.host_calls import AuditSettings
from wasmscope.runtime.options import RunOptions

# n random_get calls of 8 bytes, then exit 0
CALLS_WAT = """
(module
  (import "wasi_snapshot_preview1" "random_get" (func $r (param i32 i32) (result i32)))
  (memory (export "memory") 1)
  (func (export "run") (param $n i32) (local $i i32)
    (block $done (loop $l
      (br_if $done (i32.ge_u (local.get $i) (local.get $n)))
      (drop (call $r (i32.const 64) (i32.const 8)))
      (local.set $i (i32.add (local.get $i) (i32.const 1)))
      (br $l)))))
"""
POLICY = {"mode": "enforce", "environment": {"allow": ["LANG"]}, "random": {"max_bytes": "1MiB"}}


def test_the_shaping_is_said_once_per_session_and_again_when_it_changes() -> None:
    session = GuardSession(GuardConfig(policy=parse_policy(POLICY), advisories=False), name="/r")
    options = RunOptions(env={"LANG": "C", "SECRET": "x", "HOME": "/root"})
    shaped, first = session.prepare(options)
    assert dict(shaped.env or {}) == {"LANG": "C"}
    assert [(f.rule, f.target, f.name) for f in first] == [("env.variable", "SECRET,HOME", EventName.DENIED)]
    assert session.prepare(options)[1] == []  # the same cut: not said again
    _, changed = session.prepare(RunOptions(env={"LANG": "C", "TOKEN": "t"}))
    assert [f.target for f in changed] == ["TOKEN"]


class _FailingSink:
    def write(self, *_: object) -> int:
        raise OSError("disk full")

    def close(self) -> None:
        pass


def test_the_ring_follows_the_runs_and_a_failing_sink_is_counted() -> None:
    wasm = wasmtime.wat2wasm(CALLS_WAT)
    session = GuardSession(
        GuardConfig(policy=parse_policy(POLICY), ocsf=_FailingSink(), advisories=False),  # type: ignore[arg-type]
        name="calls",
    )
    with Runtime(cache=False) as rt:
        def run(n: int) -> int:
            options, early = session.prepare(RunOptions())
            assert options.audit is not None
            ring = options.audit.ring_records
            rec = rt.invoke(wasm, "run", [n], options)
            assert rec.audit is not None and rec.audit.counts["random_get"] == n
            session.judge(rec, options, early)
            return ring

        assert run(10) == AuditSettings().ring_records  # nothing known yet: the full ring
        assert run(10) == MIN_RING
        assert run(100) == MIN_RING  # 100 calls overflow 64 records: counted, exact counts
        assert session.stats.dropped == 100 - MIN_RING
        assert run(100) == AuditSettings().ring_records  # after a drop: the full ring again
        assert run(100) == 256  # twice the most calls one run made, a power of two
    assert session.stats.findings[EventName.DROPPED] == 1
    assert session.stats.sink_failures["ocsf"] == 1  # only the run with a finding wrote
