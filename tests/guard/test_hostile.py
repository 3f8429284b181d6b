"""The hostile-guest corpus: real guests (``guests/hostile.c``, one attack per argv[1],
and inline WAT for what C cannot express), each contained by the limits or the
policy, each reported with its finding, in monitor, enforce and kill where they
differ; the events reach the sinks (telemetry, OCSF, the audit file); and the same
attacks as routes of one in-process Gateway, where a benign route answers 200 after
every hostile request. No test asserts a wall-clock time."""

from __future__ import annotations

import asyncio
import hashlib
import json
import subprocess
from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest

from tests.runtime.conftest import RECURSION_WAT, clang_19
from wasmscope.guard.findings import EventName, Finding, Outcome
from wasmscope.guard.policy import parse_policy
from wasmscope.guard.session import AuditFile, GuardConfig, GuardSession
from wasmscope.runtime.limits import Limits
from wasmscope.runtime.options import RunOptions
from wasmscope.runtime.record import InvocationRecord

GUEST = Path(__file__).parent / "guests" / "hostile.c"
MODES = ("monitor", "enforce", "kill")
NOTCAPABLE = 76
SECRET = "TOP-SECRET-on-the-host"
TOKEN = "s3cr3t-token-value"

WAT = {
    # 1024 pages (64 MiB) from the start: over any small memory limit before a line runs
    "bigmem": '(module (memory (export "memory") 1024) (func (export "_start")))',
    # an import no policy section grants and no WASI host provides
    "import": """(module (import "env" "host_log" (func $log (param i32)))
                  (memory (export "memory") 1) (func (export "_start") (call $log (i32.const 1))))""",
    "spin": '(module (memory (export "memory") 1) (func (export "_start") (loop $l (br $l))))',
    "recursion": RECURSION_WAT,
}


@pytest.fixture(scope="session")
def hostile(tmp_path_factory: pytest.TempPathFactory) -> Path:
    out = tmp_path_factory.mktemp("hostile") / "hostile.wasm"
    done = subprocess.run(
        [clang_19(), "--target=wasm32-wasi", "-O2", "-g", str(GUEST), "-o", str(out)],
        capture_output=True, text=True, timeout=300,
    )  # fmt: skip
    if done.returncode != 0:
        pytest.skip(f"clang-19 cannot build WASI programs here: {done.stderr[-400:]}")
    return out


@pytest.fixture(scope="session")
def wat(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Path]:
    import wasmtime

    folder = tmp_path_factory.mktemp("hostile-wat")
    out = {}
    for name, text in WAT.items():
        out[name] = folder / f"{name}.wasm"
        out[name].write_bytes(wasmtime.wat2wasm(text))
    return out


@pytest.fixture(scope="module")
def rt(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Any]:
    from wasmscope.runtime import Runtime

    with Runtime(cache_dir=tmp_path_factory.mktemp("hostile-cache")) as runtime:
        yield runtime


def make_world(root: Path) -> Path:
    """data/ (in.txt, and a symlink out pointing at a secret beside it), etc/passwd
    (a fake one, for a preopen at /etc) and the secret itself."""
    (root / "data").mkdir(parents=True)
    (root / "data" / "in.txt").write_text("hello\n")
    (root / "secret").write_text(SECRET)
    (root / "data" / "out").symlink_to(root / "secret")
    (root / "etc").mkdir()
    (root / "etc" / "passwd").write_text("root:x:0:0:root:/root:/bin/sh\n")
    return root


@pytest.fixture
def world(tmp_path: Path) -> Path:
    return make_world(tmp_path / "world")


@dataclass
class Run:
    rec: InvocationRecord
    findings: list[Finding]

    def of(self, rule: str, target: str | None = None) -> Finding:
        found = [
            f for f in self.findings if f.rule == rule and (target is None or f.target == target)
        ]
        assert found, f"no {rule} {target or ''} in {[(f.rule, f.target) for f in self.findings]}"
        return found[0]

    def rules(self) -> set[str]:
        return {f.rule for f in self.findings}

    @property
    def out(self) -> str:
        return self.rec.stdout.decode("utf-8", "replace")


def guarded(
    rt: Any, module: Path, args: Sequence[str], policy: dict[str, Any], mode: str, *,
    dirs: Sequence[str] = (), env: dict[str, str] | None = None, limits: Limits | None = None,
    **config: Any,
) -> Run:  # fmt: skip
    """One run as ``wasmscope run --policy`` does it: check, prepare, run, judge."""
    session = GuardSession(
        GuardConfig(policy=parse_policy(policy), mode=mode, advisories=False, **config),
        name="hostile",
    )
    assert not session.refuses(session.check(module))
    options = RunOptions(dirs=tuple(dirs), env=env or {}, limits=limits or Limits(timeout=10))
    options, early = session.prepare(options)
    rec = rt.run(module, list(args), options)
    return Run(rec, session.judge(rec, options, early))


def killed(run: Run, why: str = "which the policy does not allow") -> None:
    trap = run.rec.trap
    assert run.rec.outcome == "trap" and trap is not None and trap.kind == "policy_kill", trap
    assert trap.message.endswith(why), trap.message


def data_ro(world: Path) -> tuple[str]:
    return (f"{world / 'data'}::/data:ro",)


# -- limits ------------------------------------------------------------------------


def limit_finding(run: Run, rule: str, target: str, outcome: str) -> None:
    assert run.rec.outcome == outcome
    f = run.of(rule, target)
    assert (
        f.name is EventName.LIMIT
        and f.outcome is Outcome.KILLED
        and f.details["run.outcome"] == outcome
    )


def test_memory_bomb(rt: Any, hostile: Path) -> None:
    run = guarded(
        rt, hostile, ["membomb"], {}, "enforce", limits=Limits(memory_limit=16 << 20, timeout=10)
    )
    limit_finding(run, "limit.memory", "memory", "out_of_memory")
    assert run.of("limit.memory").details["limit"] == 16 << 20
    assert run.rec.peak_memory is not None and run.rec.peak_memory <= 16 << 20


def test_initial_memory_over_the_limit(rt: Any, wat: dict[str, Path]) -> None:
    run = guarded(
        rt, wat["bigmem"], [], {}, "enforce", limits=Limits(memory_limit=1 << 20, timeout=10)
    )
    limit_finding(run, "limit.memory", "memory", "out_of_memory")
    assert "initial memory" in run.of("limit.memory").message


def test_stack_exhaustion(rt: Any, hostile: Path, wat: dict[str, Path]) -> None:
    # Wasm's own call stack: wasmtime's stack limit traps it
    run = guarded(rt, wat["recursion"], [], {}, "monitor")
    limit_finding(run, "limit.stack", "stack", "stack_overflow")
    # C's stack lives in linear memory: it runs below address 0 first, a bounds trap
    # that the audit's look at the stack pointer tells from a stray pointer
    c = guarded(rt, hostile, ["stack"], {}, "monitor")
    limit_finding(c, "limit.stack", "stack", "stack_overflow")
    assert c.rec.trap is not None and "C stack ran out" in c.rec.trap.message
    # a stray pointer stays a bounds trap
    stray = guarded(rt, hostile, ["stray"], {}, "monitor")
    assert stray.rec.trap is not None and stray.rec.trap.kind == "memory_out_of_bounds"
    assert not [f for f in stray.findings if f.rule == "limit.stack"]


def test_cpu_spin_stopped_by_fuel_and_by_the_epoch(rt: Any, wat: dict[str, Path]) -> None:
    fuel = guarded(rt, wat["spin"], [], {}, "enforce", limits=Limits(fuel=1_000_000, timeout=30))
    limit_finding(fuel, "limit.fuel", "fuel", "out_of_fuel")
    assert fuel.of("limit.fuel").details["limit"] == 1_000_000
    epoch = guarded(rt, wat["spin"], [], {}, "enforce", limits=Limits(timeout=0.2))
    limit_finding(epoch, "limit.timeout", "timeout", "timeout")


@pytest.mark.parametrize("mode", MODES)
def test_output_flood(rt: Any, hostile: Path, mode: str) -> None:
    policy = {"budgets": {"output_bytes": "64KiB"}}
    # enforce: every write past the budget gets an errno and the guest loops on: the timeout ends it
    limits = Limits(timeout=0.3 if mode == "enforce" else 10, max_output=256 << 10)
    run = guarded(rt, hostile, ["flood"], policy, mode, limits=limits)
    budget = run.of("budget.output_bytes")
    assert budget.name is EventName.LIMIT and budget.details["limit"] == 64 << 10
    if mode == "monitor":  # it goes through, up to the output cap
        assert budget.outcome is Outcome.ALLOWED
        limit_finding(run, "limit.output", "output", "output_limit")
    elif mode == "enforce":
        assert budget.outcome is Outcome.DENIED and run.rec.stdout_bytes <= 64 << 10
        limit_finding(run, "limit.timeout", "timeout", "timeout")
    else:
        killed(run, "over a budget of the policy")
        assert budget.outcome is Outcome.KILLED and run.rec.stdout_bytes <= 64 << 10


def test_terminal_escapes_are_neutralized_in_the_logs(rt: Any, hostile: Path) -> None:
    from wasmscope.telemetry import Telemetry

    tel = Telemetry.from_options(in_memory=True, sanitize_output=True)
    try:
        session = GuardSession(
            GuardConfig(policy=parse_policy({}), telemetry=tel, advisories=False)
        )
        options, early = session.prepare(RunOptions())
        rec = rt.run(hostile, ["escapes"], options)
        tel.record_invocation(rec)
        findings = session.judge(rec, options, early)
        assert tel.memory is not None
        logs = tel.memory.log_dicts()
    finally:
        tel.shutdown(5.0)
    assert b"\x1b]52;" in rec.stdout  # the guest did write it
    f = next(f for f in findings if f.rule == "output.control")
    assert f.name is EventName.OUTPUT and f.target == "stdout"
    assert {f.details[f"output.{k}"] for k in ("osc52", "osc8", "csi", "cr")} == {1}
    lines = [r for r in logs if r["attributes"].get("log.iostream") == "stdout"]
    assert lines and not any(ch in r["body"] for r in lines for ch in "\x1b\x07\x08\r")
    assert any("\\x1b]52;" in r["body"] for r in lines)  # made visible, not dropped
    assert any(r.get("event_name") == "wasm.output.sanitized" for r in logs)


# -- the filesystem ------------------------------------------------------------------


@pytest.mark.parametrize("mode", MODES)
def test_path_traversal(rt: Any, hostile: Path, world: Path, mode: str) -> None:
    # monitor: the preopens alone, the runtime refuses each escape; enforce and kill: the
    # read glob is finer than the preopen, so each path is checked in the module
    policy: dict[str, Any] = {"filesystem": {"dirs": ["/data:ro"]}}
    if mode != "monitor":
        policy["filesystem"]["read"] = ["/data/in.txt"]
    run = guarded(rt, hostile, ["traversal"], policy, mode, dirs=data_ro(world))
    assert "OPENED" not in run.out and SECRET not in run.out
    kinds = {f.details["traversal"]: f for f in run.findings if f.rule == "fs.traversal"}
    if mode == "kill":  # the first escape ends it
        killed(run)
        assert set(kinds) == {"parent"} and kinds["parent"].outcome is Outcome.KILLED
        return
    assert set(kinds) == {"parent", "escape", "trailing-slash", "nul", "absolute"}
    assert {kinds[k].target for k in kinds} >= {
        "../etc/passwd",
        "a/../../etc/passwd",
        "/etc/passwd",
    }
    assert all(f.name is EventName.DENIED and f.outcome is Outcome.DENIED for f in kinds.values())
    assert kinds["trailing-slash"].severity < kinds["parent"].severity
    if mode == "enforce":
        assert run.out.count("Capabilities insufficient") >= 3 and f"errno {NOTCAPABLE}" in run.out


@pytest.mark.parametrize("mode", MODES)
def test_passwd_outside_the_policy(rt: Any, hostile: Path, world: Path, mode: str) -> None:
    """The README's example: /etc preopened (a fake passwd), the policy lets the guest
    read /etc/hostname only."""
    policy = {"filesystem": {"dirs": ["/etc:ro"], "read": ["/etc/hostname"]}}
    run = guarded(rt, hostile, ["passwd"], policy, mode, dirs=(f"{world / 'etc'}::/etc:ro",))
    f = run.of("fs.read", "/etc/passwd")
    assert f.suggestion == 'filesystem.read = ["/etc/passwd"]' and f.call is not None
    if mode == "monitor":
        assert (
            f.name is EventName.VIOLATION
            and f.outcome is Outcome.ALLOWED
            and "OPENED /etc/passwd" in run.out
        )
    elif mode == "enforce":
        assert (
            f.name is EventName.DENIED
            and f.call.errno == NOTCAPABLE
            and "denied /etc/passwd" in run.out
        )
    else:
        killed(run)
        assert f.outcome is Outcome.KILLED


@pytest.mark.parametrize("mode", MODES)
def test_symlink_pointing_out_of_the_preopen(
    rt: Any, hostile: Path, world: Path, mode: str
) -> None:
    run = guarded(
        rt, hostile, ["symlink"], {"filesystem": {"dirs": ["/data:ro"]}}, mode, dirs=data_ro(world)
    )
    assert (
        SECRET not in run.out and "denied /data/out" in run.out
    )  # the runtime refuses it in every mode
    f = run.of("fs.escape", "/data/out")
    assert f.name is EventName.DENIED and f.outcome is Outcome.DENIED


@pytest.mark.parametrize("mode", MODES)
def test_writes_and_truncation_in_a_read_only_preopen(
    rt: Any, hostile: Path, world: Path, mode: str
) -> None:
    policy = {"filesystem": {"dirs": ["/data:ro"], "read": ["/data/*.txt"]}}
    run = guarded(
        rt, hostile, ["write-ro"], policy, mode, dirs=(f"{world / 'data'}::/data",)
    )  # rw on the host side
    in_txt = world / "data" / "in.txt"
    assert run.of("fs.dir", "/data").suggestion == 'filesystem.dirs = ["/data:rw"]'
    trunc = run.of("fs.write", "/data/in.txt")
    assert trunc.suggestion == 'filesystem.dirs = ["/data:rw"]'
    if mode == "monitor":  # reported, and it went through
        assert trunc.outcome is Outcome.ALLOWED and in_txt.read_text() == ""
        assert (world / "data" / "new.txt").exists() and run.of("fs.write", "/data/new.txt")
        return
    assert in_txt.read_text() == "hello\n" and not (world / "data" / "new.txt").exists()
    if mode == "enforce":
        assert trunc.name is EventName.DENIED and trunc.outcome is Outcome.DENIED
        assert run.of("fs.write", "/data/new.txt").outcome is Outcome.DENIED
    else:
        killed(run)
        assert trunc.outcome is Outcome.KILLED


# -- the environment, the clocks, random bytes, descriptors, exit codes -------------------


@pytest.mark.parametrize("mode", MODES)
def test_environment_exfiltration(rt: Any, hostile: Path, mode: str) -> None:
    env = {"SECRET_TOKEN": TOKEN, "LANG": "C"}
    run = guarded(rt, hostile, ["env"], {"environment": {"allow": ["LANG"]}}, mode, env=env)
    variable = run.of("env.variable", "SECRET_TOKEN")
    assert variable.suggestion == 'environment.allow = ["SECRET_TOKEN"]'
    if mode == "monitor":
        assert f"token={TOKEN}" in run.out and variable.outcome is Outcome.ALLOWED
        exfil = run.of("env.exfiltration", "SECRET_TOKEN")
        assert exfil.name is EventName.VIOLATION and exfil.severity > variable.severity
        assert "env.read" in run.rules()
    else:  # removed before the guest started
        assert "token=(none)" in run.out and TOKEN not in run.out
        assert variable.name is EventName.DENIED and "env.exfiltration" not in run.rules()


def test_tight_clock_loop(rt: Any, hostile: Path) -> None:
    run = guarded(rt, hostile, ["clock", "5000"], {"clocks": {"max_calls": 1000}}, "enforce")
    f = run.of("clocks.loop")
    assert f.name is EventName.VIOLATION and f.details["calls"] == 5000
    assert f.suggestion == "clocks.max_calls = 10000"


def test_long_sleep_with_a_short_timeout(rt: Any, hostile: Path) -> None:
    # An hour's sleep blocks in the host call, out of the epoch's reach: the thunk cuts
    # it to the run's timeout, and the guest is stopped when it is back.
    run = guarded(
        rt,
        hostile,
        ["sleep", "3600"],
        {"clocks": {"max_sleep": "100ms"}},
        "monitor",
        limits=Limits(timeout=0.2),
    )
    limit_finding(run, "limit.timeout", "timeout", "timeout")
    f = run.of("clocks.sleep", "poll_oneoff")
    assert (
        0.1 < f.details["seconds"] < 60  # cut: not the hour asked for
        and f.suggestion is not None
        and f.suggestion.startswith("clocks.max_sleep = ")
    )


@pytest.mark.parametrize("mode", MODES)
def test_huge_random_get(rt: Any, hostile: Path, mode: str) -> None:
    run = guarded(rt, hostile, ["random", "100"], {"random": {"max_bytes": 128}}, mode)
    huge = run.of("random.huge", "random_get")  # 256 bytes a call, over the whole budget
    assert huge.details["bytes"] == 256 and huge.suggestion == "random.max_bytes = 1000"
    budget = run.of("budget.random_bytes")
    if mode == "monitor":
        assert "random 25600 bytes" in run.out and huge.outcome is Outcome.ALLOWED
        # the suggestion covers what the run used in all, not only the call that crossed it
        assert budget.details["used"] == 25600 and budget.suggestion == "random.max_bytes = 100000"
    elif mode == "enforce":
        assert (
            "random 0 bytes" in run.out
            and huge.outcome is Outcome.DENIED
            and budget.outcome is Outcome.DENIED
        )
    else:
        killed(run, "over a budget of the policy")
        assert budget.outcome is Outcome.KILLED


@pytest.mark.parametrize("mode", MODES)
def test_descriptor_exhaustion(rt: Any, hostile: Path, world: Path, mode: str) -> None:
    policy = {"filesystem": {"dirs": ["/data:ro"]}, "budgets": {"open_fds": 16}}
    run = guarded(rt, hostile, ["fds", "100"], policy, mode, dirs=data_ro(world))
    f = run.of("budget.open_fds", "open_fds")
    assert f.name is EventName.LIMIT and f.details["limit"] == 16
    if mode == "monitor":
        assert "opened 100" in run.out and f.outcome is Outcome.ALLOWED
        assert f.details["used"] == 100 and f.suggestion == "budgets.open_fds = 200"
    elif mode == "enforce":
        assert "opened 16" in run.out and f.outcome is Outcome.DENIED
    else:
        killed(run, "over a budget of the policy")
        assert f.outcome is Outcome.KILLED


@pytest.mark.parametrize(("code", "trapped"), [(3, False), (42, False), (255, True), (1000, True)])
def test_odd_exit_codes(rt: Any, hostile: Path, code: int, trapped: bool) -> None:
    run = guarded(rt, hostile, ["exit", str(code)], {}, "enforce")
    # wasmtime refuses codes from 126 with a trap; the guest's proc_exit still tells
    assert run.rec.outcome == ("trap" if trapped else "exit")
    f = run.of("exit.code", str(code))
    assert f.name is EventName.VIOLATION and f.suggestion == f"exit.codes = [0, {code}]"


@pytest.mark.parametrize("mode", MODES)
def test_an_import_outside_the_policy(rt: Any, wat: dict[str, Path], mode: str) -> None:
    session = GuardSession(GuardConfig(policy=parse_policy({}), mode=mode, advisories=False))
    static = session.check(wat["import"])
    f = next(f for f in static if f.rule == "import.denied")
    assert f.target == "env.host_log" and f.suggestion == 'imports.allow = ["env.host_log"]'
    if mode == "monitor":  # reported; it links as far as the policy goes (no host provides it)
        assert not session.refuses(static) and f.name is EventName.VIOLATION
    else:
        assert (
            session.refuses(static) and f.name is EventName.DENIED and f.outcome is Outcome.DENIED
        )


# -- the sinks -----------------------------------------------------------------------------


def test_the_events_reach_the_ocsf_and_audit_files(
    rt: Any, hostile: Path, world: Path, tmp_path: Path
) -> None:
    from wasmscope.guard.ocsf import OcsfWriter, class_of

    ocsf_path, audit_path = tmp_path / "events.ocsf.jsonl", tmp_path / "audit.jsonl"
    ocsf, audit = OcsfWriter(ocsf_path), AuditFile(audit_path)
    try:
        runs = [
            guarded(rt, hostile, ["traversal"], {"filesystem": {"dirs": ["/data:ro"]}}, "enforce",
                    dirs=data_ro(world), ocsf=ocsf, audit_file=audit),
            guarded(rt, hostile, ["env"], {}, "monitor", env={"SECRET_TOKEN": TOKEN}, ocsf=ocsf, audit_file=audit),
            guarded(rt, hostile, ["membomb"], {}, "monitor", limits=Limits(memory_limit=16 << 20, timeout=10),
                    ocsf=ocsf, audit_file=audit),
        ]  # fmt: skip
    finally:
        ocsf.close()
        audit.close()
    events = [json.loads(line) for line in ocsf_path.read_text().splitlines()]
    findings = [f for r in runs for f in r.findings]
    assert len(events) == len(findings)
    for event, finding in zip(events, findings, strict=True):
        assert event["class_uid"] == class_of(finding)
        assert event["unmapped"]["wasm"]["rule_id"] == finding.rule
        assert event["metadata"]["correlation_uid"] in {r.rec.invocation_id for r in runs}
    classes = {e["unmapped"]["wasm"]["rule_id"]: e["class_uid"] for e in events}
    assert (
        classes["fs.traversal"] == 1001
        and classes["env.exfiltration"] == 1007
        and classes["limit.memory"] == 1007
    )
    lines = [json.loads(line) for line in audit_path.read_text().splitlines()]
    calls = [c for r in runs for c in (r.rec.audit.calls if r.rec.audit else [])]
    assert len(lines) == len(calls) and {line["invocation_id"] for line in lines} <= {
        r.rec.invocation_id for r in runs
    }
    opens = [line for line in lines if line["func"] == "path_open"]
    assert any(line.get("path") == "../etc/passwd" for line in opens)


# -- serve: the host serves on -------------------------------------------------------------

ROUTES: list[tuple[str, str, str]] = [
    # (path, TOML of the route after path, the guard event expected; "" when none)
    (
        "/membomb",
        'module = "{hostile}"\nargv = ["membomb"]\nmemory_limit = "16MiB"',
        "wasm.limit.exceeded",
    ),
    ("/bigmem", 'module = "{bigmem}"\nmemory_limit = "1MiB"', "wasm.limit.exceeded"),
    ("/recursion", 'module = "{recursion}"', "wasm.limit.exceeded"),
    ("/stack", 'module = "{hostile}"\nargv = ["stack"]', ""),
    ("/fuel", 'module = "{spin}"\nfuel = 1000000', "wasm.limit.exceeded"),
    ("/epoch", 'module = "{spin}"\ntimeout = "200ms"', "wasm.limit.exceeded"),
    (
        "/flood",
        'module = "{hostile}"\nargv = ["flood"]\nmax_response_bytes = "256KiB"\n'
        '[route.policy]\nmode = "kill"\n[route.policy.budgets]\noutput_bytes = "64KiB"',
        "wasm.limit.exceeded",
    ),
    (
        "/escapes",
        'module = "{hostile}"\nargv = ["escapes"]\n[route.policy]\nmode = "monitor"',
        "wasm.output.sanitized",
    ),
    (
        "/traversal",
        'module = "{hostile}"\nargv = ["traversal"]\ndirs = ["{data}::/data:ro"]\n[route.policy]\n'
        'mode = "enforce"\n[route.policy.filesystem]\ndirs = ["/data:ro"]\nread = ["/data/in.txt"]',
        "wasm.policy.denied",
    ),
    (
        "/symlink",
        'module = "{hostile}"\nargv = ["symlink"]\ndirs = ["{data}::/data:ro"]\n[route.policy]\n'
        'mode = "enforce"\n[route.policy.filesystem]\ndirs = ["/data:ro"]',
        "wasm.policy.denied",
    ),
    (
        "/write-ro",
        'module = "{hostile}"\nargv = ["write-ro"]\ndirs = ["{data}::/data"]\n[route.policy]\n'
        'mode = "enforce"\n[route.policy.filesystem]\ndirs = ["/data:ro"]',
        "wasm.policy.denied",
    ),
    (
        "/env",
        'module = "{hostile}"\nargv = ["env"]\nenv = {{ SECRET_TOKEN = "{token}" }}\n[route.policy]\n'
        'mode = "monitor"\n[route.policy.environment]\nallow = ["LANG"]',
        "wasm.policy.violation",
    ),
    (
        "/clock",
        'module = "{hostile}"\nargv = ["clock", "5000"]\n[route.policy]\n[route.policy.clocks]\n'
        "max_calls = 1000",
        "wasm.policy.violation",
    ),
    (
        "/sleep",
        'module = "{hostile}"\nargv = ["sleep", "3600"]\ntimeout = "200ms"\n[route.policy]\n'
        '[route.policy.clocks]\nmax_sleep = "100ms"',
        "wasm.policy.violation",
    ),
    (
        "/random",
        'module = "{hostile}"\nargv = ["random", "100"]\n[route.policy]\nmode = "kill"\n'
        "[route.policy.random]\nmax_bytes = 128",
        "wasm.limit.exceeded",
    ),
    (
        "/fds",
        'module = "{hostile}"\nargv = ["fds", "100"]\ndirs = ["{data}::/data:ro"]\n[route.policy]\n'
        'mode = "enforce"\n[route.policy.filesystem]\ndirs = ["/data:ro"]\n[route.policy.budgets]\nopen_fds = 16',
        "wasm.limit.exceeded",
    ),
    (
        "/exit",
        'module = "{hostile}"\nargv = ["exit", "3"]\n[route.policy]',
        "wasm.policy.violation",
    ),
    ("/import", 'module = "{import_}"\n[route.policy]\nmode = "enforce"', "wasm.policy.denied"),
]


@pytest.fixture(scope="module")
def served(
    hostile: Path, wat: dict[str, Path], rt: Any, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[tuple[Any, Any, Path, Path]]:
    pytest.importorskip("httpx")
    pytest.importorskip("prometheus_client")
    from tests.gateway import wat as gateway_wat
    from wasmscope.gateway.app import Gateway
    from wasmscope.gateway.manifest import load_manifest
    from wasmscope.gateway.metrics import Metrics, MetricsMiddleware
    from wasmscope.guard.ocsf import OcsfWriter

    root = tmp_path_factory.mktemp("hostile-serve")
    world = make_world(root / "world")
    hello = gateway_wat.build(root, hello=gateway_wat.HELLO)["hello"]
    names = {"hostile": hostile, "bigmem": wat["bigmem"], "recursion": wat["recursion"], "spin": wat["spin"],
             "import_": wat["import"], "data": world / "data", "token": TOKEN}  # fmt: skip
    text = f'[server]\ntimeout = "10s"\n\n[[route]]\npath = "/hello"\nmodule = "{hello}"\n'
    text += '[route.policy]\nmode = "enforce"\n'
    for path, body, _ in ROUTES:
        text += (
            f'\n[[route]]\npath = "{path}"\n'
            + body.format(**{k: str(v) for k, v in names.items()})
            + "\n"
        )
    manifest = root / "app.toml"
    manifest.write_text(text)
    ocsf_path = root / "events.ocsf.jsonl"
    gw = Gateway(
        load_manifest(manifest),
        runtime=rt,
        guard=GuardConfig(ocsf=OcsfWriter(ocsf_path), advisories=False),
    )
    gw.prepare()
    try:
        yield (
            MetricsMiddleware(gw, Metrics(), manifest=gw.manifest, gateway=gw),
            gw,
            world,
            ocsf_path,
        )
    finally:
        gw.close()


def test_the_host_serves_on_through_every_attack(served: tuple[Any, Any, Path, Path]) -> None:
    import httpx
    from prometheus_client.parser import text_string_to_metric_families

    app, _gw, world, ocsf_path = served

    async def scenario(
        client: httpx.AsyncClient,
    ) -> tuple[dict[str, httpx.Response], list[int], str]:
        answers, benign = {}, []
        for path, _, _ in ROUTES:
            answers[path] = await client.get(path)
            benign.append((await client.get("/hello?still-here")).status_code)
        return answers, benign, (await client.get("/metrics")).text

    async def main() -> tuple[dict[str, httpx.Response], list[int], str]:
        transport = httpx.ASGITransport(app=app, client=("192.0.2.1", 1234))
        async with httpx.AsyncClient(transport=transport, base_url="http://testserver") as client:
            return await scenario(client)

    answers, benign, metrics = asyncio.run(main())
    assert benign == [200] * len(ROUTES)
    assert all(r.status_code >= 400 for r in answers.values()), {
        p: r.status_code for p, r in answers.items()
    }
    assert SECRET not in answers["/symlink"].text and TOKEN not in answers["/env"].text
    assert "refuses to link" in answers["/import"].text and answers["/import"].status_code == 500
    assert (world / "data" / "in.txt").read_text() == "hello\n"  # enforce kept the read-only file
    samples: dict[tuple[str, str, str], float] = {}
    for family in text_string_to_metric_families(metrics):
        for s in family.samples:
            samples[(s.name, s.labels.get("route", ""), s.labels.get("event", ""))] = s.value
    for path, _, event in ROUTES:
        if event:
            assert samples.get(("wasmscope_guard_findings_total", path, event), 0) >= 1, (
                path,
                event,
            )
    assert samples[("wasmscope_guard_host_calls_total", "/traversal", "")] > 0
    assert samples[("wasmscope_guard_host_calls_total", "/hello", "")] > 0
    events = [json.loads(line) for line in ocsf_path.read_text().splitlines()]
    rules = {e["unmapped"]["wasm"]["rule_id"] for e in events}
    assert {"limit.memory", "limit.fuel", "limit.timeout", "fs.traversal", "fs.escape", "fs.write",
            "env.exfiltration", "clocks.loop", "random.huge", "budget.open_fds", "exit.code",
            "output.control", "import.denied"} <= rules  # fmt: skip


@pytest.mark.parametrize("mode", ["monitor", "kill"])
def test_run_policy_from_the_command_line(
    hostile: Path, world: Path, tmp_path: Path, mode: str, capsys: pytest.CaptureFixture[str]
) -> None:
    """``wasmscope run --policy --guard-mode --audit --ocsf``: the same guard, its files."""
    from wasmscope.cli import main

    policy = tmp_path / "p.toml"
    policy.write_text('[filesystem]\ndirs = ["/data:ro"]\nread = ["/data/in.txt"]\n')
    audit, ocsf = tmp_path / "audit.jsonl", tmp_path / "events.ocsf.jsonl"
    argv = ["run", "--policy", str(policy), "--guard-mode", mode, "--audit", str(audit), "--ocsf", str(ocsf),
            "--dir", f"{world / 'data'}::/data:ro", "--json", str(hostile), "traversal"]  # fmt: skip
    main(argv)
    doc = json.loads(capsys.readouterr().out)
    rules = [f["rule"] for f in doc["guard"]["findings"]]
    events = [json.loads(line) for line in ocsf.read_text().splitlines()]
    assert [e["unmapped"]["wasm"]["rule_id"] for e in events] == rules and "fs.traversal" in rules
    calls = [json.loads(line) for line in audit.read_text().splitlines()]
    assert any(c["func"] == "path_open" and c.get("path") == "../etc/passwd" for c in calls)
    if mode == "kill":
        assert doc["outcome"] == "trap" and doc["trap"]["kind"] == "policy_kill"
        assert any(c.get("killed") for c in calls)
    else:
        assert doc["outcome"] == "ok" and not any(c.get("killed") for c in calls)


def test_a_module_that_can_sleep_never_runs_on_the_event_loop(
    hostile: Path, wat: dict[str, Path]
) -> None:
    """A sleep waits in the host call, where neither the epoch nor serve's inline budget
    reaches it: run on the event loop's thread, one request would stall every other."""
    from wasmscope.runtime.identity import ModuleSource

    def source(path: Path) -> ModuleSource:
        data = path.read_bytes()
        return ModuleSource(data, hashlib.sha256(data).hexdigest(), str(path))

    assert source(hostile).may_block  # it imports poll_oneoff
    assert not source(wat["spin"]).may_block and not source(wat["bigmem"]).may_block


def test_run_reports_a_refused_import_to_the_sinks(
    wat: dict[str, Path], tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    from wasmscope.cli import main

    policy, ocsf = tmp_path / "p.toml", tmp_path / "events.ocsf.jsonl"
    policy.write_text('mode = "enforce"\n')
    assert main(["run", "--policy", str(policy), "--ocsf", str(ocsf), str(wat["import"])]) == 1
    assert "env.host_log" in capsys.readouterr().err
    (event,) = [json.loads(line) for line in ocsf.read_text().splitlines()]
    wasm = event["unmapped"]["wasm"]
    assert wasm["rule_id"] == "import.denied" and wasm["target"] == "env.host_log"
    assert event["class_uid"] == 6003 and event["disposition"] == "Blocked"
