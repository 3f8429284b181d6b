"""Policy.evaluate on audit logs made by hand: each hostile behaviour of the issue's
corpus gives the right rule, event, target and suggested policy line."""

from __future__ import annotations

import tomllib
from pathlib import Path

import pytest

from tests.guard.conftest import TRUNC, call, log_of, open_call, record
from wasmscope.guard.findings import EventName, Finding, Outcome, Severity
from wasmscope.guard.policy import Policy, parse_policy
from wasmscope.runtime.host_calls import AuditLog
from wasmscope.runtime.options import RunOptions
from wasmscope.runtime.wasi import DirSpec

POLICY = """
[filesystem]
dirs = ["/etc:ro", "/data:ro", "/out:rw"]
read = ["/etc/hostname", "/data/**", "/out/**"]
[environment]
allow = ["LANG"]
[arguments]
allow = ["--fast", "*.txt"]
[clocks]
allow = ["monotonic"]
max_calls = 10
max_sleep = "100ms"
[random]
max_bytes = 64
[exit]
codes = [0]
[budgets]
host_calls = 100
output_bytes = 1000
open_fds = 4
"""


@pytest.fixture
def policy() -> Policy:
    return parse_policy(tomllib.loads(POLICY), "p.toml")


@pytest.fixture
def options(tmp_path: Path) -> RunOptions:
    dirs = []
    for name in ("etc", "data", "out"):
        (tmp_path / name).mkdir()
        dirs.append(DirSpec(str(tmp_path / name), f"/{name}", name != "out"))
    return RunOptions(env={"LANG": "C", "AWS_SECRET_KEY": "hunter2-secret"}, dirs=dirs)


def only(findings: list[Finding], rule: str) -> Finding:
    found = [f for f in findings if f.rule == rule]
    assert len(found) == 1, (rule, findings)
    return found[0]


def test_a_clean_run_has_no_findings(policy: Policy, options: RunOptions) -> None:
    log = log_of(open_call("hostname", fd=3, result=8), open_call("x/y.csv", fd=4, result=6), call("fd_close", fd=6),
                 open_call("new.txt", fd=5, write=True, result=7), call("fd_write", fd=7, nbytes=10),
                 call("clock_time_get", id=1, precision=0), call("fd_write", fd=1, nbytes=5))  # fmt: skip
    assert policy.evaluate(record(["--fast", "a.txt"]), log, options) == []


def test_reading_etc_passwd_suggests_the_line_that_allows_it(
    policy: Policy, options: RunOptions
) -> None:
    f = only(policy.evaluate(record(), log_of(open_call("passwd", fd=3)), options), "fs.read")
    assert f.name == EventName.VIOLATION and f.outcome == Outcome.ALLOWED
    assert f.target == "/etc/passwd"
    assert f.suggestion == 'filesystem.read = ["/etc/passwd"]'
    assert f.call is not None and f.call.func == "path_open"
    assert f.category == "filesystem"


def test_a_refused_call_is_a_denial(policy: Policy, options: RunOptions) -> None:
    denied = open_call("passwd", fd=3, errno=76, denied=True, result=None)
    f = only(policy.evaluate(record(), log_of(denied), options), "fs.read")
    assert f.name == EventName.DENIED and f.outcome == Outcome.DENIED
    killed = open_call("passwd", fd=3, errno=None, killed=True, denied=True, result=None)
    f = only(policy.evaluate(record(), log_of(killed), options), "fs.read")
    assert f.outcome == Outcome.KILLED and f.severity >= Severity.ERROR


def test_a_dir_the_policy_does_not_grant(policy: Policy, tmp_path: Path) -> None:
    (tmp_path / "home").mkdir()
    options = RunOptions(dirs=[DirSpec(str(tmp_path / "home"), "/home")])
    f = only(policy.evaluate(record(), log_of(open_call(".ssh/id_rsa", fd=3)), options), "fs.read")
    assert f.target == "/home/.ssh/id_rsa"
    assert f.suggestion == 'filesystem.dirs = ["/home:ro"]'


@pytest.mark.parametrize(
    ("path", "kind"),
    [("../etc/passwd", "parent"), ("a/../../etc/passwd", "escape"), ("/etc/passwd", "absolute"),
     ("ok.txt\0../x", "nul"), ("hostname/", "trailing-slash")],
)  # fmt: skip
def test_path_traversal_attempts_are_named(
    policy: Policy, options: RunOptions, path: str, kind: str
) -> None:
    refused = open_call(path, fd=3, errno=76, result=None)
    f = only(policy.evaluate(record(), log_of(refused), options), "fs.traversal")
    assert f.details["traversal"] == kind
    assert f.target == path
    assert f.name == EventName.DENIED  # the runtime refused it
    assert f.severity == (Severity.INFO if kind == "trailing-slash" else Severity.ERROR)
    went_through = open_call(path, fd=3)
    assert (
        only(policy.evaluate(record(), log_of(went_through), options), "fs.traversal").name
        == EventName.VIOLATION
    )


def test_a_symlink_pointing_out_is_refused_by_the_runtime(
    policy: Policy, options: RunOptions
) -> None:
    link = open_call("link-to-root/etc/shadow", fd=4, errno=76, result=None)  # /data/... is allowed
    f = only(policy.evaluate(record(), log_of(link), options), "fs.escape")
    assert f.target == "/data/link-to-root/etc/shadow"
    assert f.name == EventName.DENIED


def test_writes_and_truncation_in_a_read_only_preopen(policy: Policy, options: RunOptions) -> None:
    create = open_call("new.csv", fd=4, write=True, errno=2, result=None)
    f = only(policy.evaluate(record(), log_of(create), options), "fs.write")
    assert f.target == "/data/new.csv" and f.name == EventName.DENIED  # EACCES from the :ro preopen
    assert f.suggestion == 'filesystem.dirs = ["/data:rw"]'
    trunc = call("path_open", fd=4, oflags=TRUNC, fs_rights_base=2, path="a.csv", result=6)
    assert (
        only(policy.evaluate(record(), log_of(trunc), options), "fs.write").details["access"]
        == "write"
    )
    # a descriptor opened for reading, then truncated or written
    opened = open_call("a.csv", fd=4, result=6)
    findings = policy.evaluate(
        record(), log_of(opened, call("fd_filestat_set_size", fd=6, size=0, errno=63)), options
    )
    f = only(findings, "fs.write")
    assert f.details["access"] == "truncate" and f.target == "/data/a.csv"
    findings = policy.evaluate(record(), log_of(opened, call("fd_write", fd=6, nbytes=3)), options)
    assert only(findings, "fs.write").outcome == Outcome.ALLOWED


def test_paths_through_a_descriptor_the_guest_opened(policy: Policy, options: RunOptions) -> None:
    sub = call(
        "path_open", fd=4, oflags=2, fs_rights_base=1 << 14, path="sub", result=9
    )  # /data/sub
    findings = policy.evaluate(record(), log_of(sub, open_call("../../etc/shadow", fd=9)), options)
    assert only(findings, "fs.traversal").details["traversal"] == "parent"
    f = only(
        policy.evaluate(record(), log_of(sub, open_call("x.csv", fd=9, write=True)), options),
        "fs.write",
    )
    assert f.target == "/data/sub/x.csv"
    closed = policy.evaluate(
        record(), log_of(sub, call("fd_close", fd=9), open_call("x.csv", fd=9, write=True)), options
    )
    assert closed == []  # fd 9 is no longer known: nothing can be said of the path


def test_environment_read_and_exfiltration(policy: Policy, options: RunOptions) -> None:
    log = log_of(call("environ_sizes_get"), call("environ_get"))
    findings = policy.evaluate(record(stdout=b"key=hunter2-secret\n"), log, options)
    assert only(findings, "env.read").target == "AWS_SECRET_KEY"
    f = only(findings, "env.exfiltration")
    assert f.target == "AWS_SECRET_KEY" and f.severity == Severity.ERROR
    assert "hunter2" not in f.message  # the value itself is never repeated
    quiet = policy.evaluate(record(stdout=b"hello\n"), log_of(), options)
    assert quiet == []


def test_exit_codes_and_arguments(policy: Policy, options: RunOptions) -> None:
    findings = policy.evaluate(record(["--fast", "--rm", "b.bin"], exit_code=3), log_of(), options)
    assert only(findings, "exit.code").suggestion == "exit.codes = [0, 3]"
    assert {f.target for f in findings if f.rule == "args.value"} == {"--rm", "b.bin"}


def test_clock_loops_clock_ids_and_long_sleeps(policy: Policy, options: RunOptions) -> None:
    calls = [call("clock_time_get", id=1, precision=0) for _ in range(50)]
    calls.append(call("clock_time_get", id=0, precision=0))
    calls.append(call("poll_oneoff", nsubscriptions=1, duration_ns=3_000_000_000))
    findings = policy.evaluate(record(), log_of(*calls), options)
    loop = only(findings, "clocks.loop")
    assert loop.details["calls"] == 51 and loop.suggestion == "clocks.max_calls = 200"
    assert only(findings, "clocks.clock").target == "realtime"
    sleep = only(findings, "clocks.sleep")
    assert sleep.details["seconds"] == 3.0


def test_clocks_not_granted(options: RunOptions) -> None:
    bare = parse_policy({}, "empty")
    f = only(
        bare.evaluate(record(), log_of(call("clock_time_get", id=1, errno=76, denied=True)), None),
        "clocks.call",
    )
    assert f.name == EventName.DENIED and f.target == "clock_time_get"


def test_huge_random_get(policy: Policy, options: RunOptions) -> None:
    huge = call(
        "random_get",
        buf=0,
        buf_len=1 << 20,
        nbytes=1 << 20,
        errno=76,
        denied=True,
        over_budget=True,
    )
    findings = policy.evaluate(record(), log_of(huge, random_bytes=0), options)
    f = only(findings, "random.huge")
    assert f.details["bytes"] == 1 << 20 and f.name == EventName.DENIED
    assert only(findings, "budget.random_bytes").name == EventName.LIMIT
    none = parse_policy({}, "empty").evaluate(
        record(), log_of(call("random_get", buf=0, buf_len=8, nbytes=8)), None
    )
    assert only(none, "random.call").suggestion == 'random.max_bytes = "4KiB"'


def test_descriptor_exhaustion_and_the_open_fds_budget(policy: Policy, options: RunOptions) -> None:
    calls = [open_call(f"x{i}.csv", fd=4, result=10 + i) for i in range(6)]
    calls.append(open_call("y.csv", fd=4, errno=33, result=None))
    findings = policy.evaluate(record(), log_of(*calls), options)
    assert only(findings, "fd.exhaustion").target == "path_open"
    f = only(findings, "budget.open_fds")
    assert f.details == {"limit": 4, "used": 6, "count": 1}


def test_budgets_crossed(policy: Policy, options: RunOptions) -> None:
    calls = [call("fd_write", fd=1, nbytes=100) for _ in range(120)]
    calls[-1].over_budget = True
    calls[-1].denied = True
    findings = policy.evaluate(record(), log_of(*calls, output_bytes=11_900), options)
    host = only(findings, "budget.host_calls")
    assert host.details["used"] == 120 and host.suggestion == "budgets.host_calls = 500"
    out = only(findings, "budget.output_bytes")
    assert (
        out.category == "stdio" and out.outcome == Outcome.DENIED
    )  # the call that crossed it was refused


def test_a_call_over_the_host_calls_budget_is_not_over_its_own(
    policy: Policy, options: RunOptions
) -> None:
    """A real clock loop crossed the 100 calls; the fd_write and random_get after it
    were over budget, and were reported as over the output and random budgets, which
    they were far below (or which the policy did not set)."""
    calls = [call("clock_time_get", id=1, precision=0) for _ in range(100)]
    calls += [call("fd_write", fd=1, nbytes=20, result=20, over_budget=True)]
    calls += [call("random_get", buf=0, buf_len=8, nbytes=8, over_budget=True)]
    findings = policy.evaluate(record(), log_of(*calls, host_calls=102, output_bytes=20), options)
    budgets = {f.rule: f.details["count"] for f in findings if f.rule.startswith("budget.")}
    assert budgets == {"budget.host_calls": 3}  # two calls and the total
    bare = parse_policy({"budgets": {"host_calls": 1}}, "bare")
    over = [
        call("fd_write", fd=1, nbytes=5, result=5),
        call("random_get", buf=0, buf_len=8, nbytes=8, over_budget=True),
    ]
    rules = {f.rule for f in bare.evaluate(record(), log_of(*over), None)}
    assert "budget.random_bytes" not in rules and "budget.host_calls" in rules


def test_the_same_breach_is_reported_once_with_a_count(policy: Policy, options: RunOptions) -> None:
    findings = policy.evaluate(
        record(), log_of(*[open_call("passwd", fd=3) for _ in range(50)]), options
    )
    assert len(findings) == 1 and findings[0].details["count"] == 50


def test_dropped_records_are_never_silent(policy: Policy, options: RunOptions) -> None:
    log = AuditLog(counts={"fd_write": 5000}, calls=[], dropped=904)
    f = only(policy.evaluate(record(), log, options), "audit.dropped")
    assert f.name == EventName.DROPPED and f.details["dropped"] == 904


def test_a_count_only_log_and_no_log_at_all(policy: Policy, options: RunOptions) -> None:
    counts = AuditLog(counts={"clock_time_get": 40, "random_get": 1})
    findings = policy.evaluate(record(), counts, options)
    assert only(findings, "clocks.loop").details["calls"] == 40
    bare = parse_policy({}, "empty")
    assert only(bare.evaluate(record(), counts, None), "random.call").details["count"] == 1
    assert only(policy.evaluate(record(exit_code=2), None, options), "exit.code").target == "2"


def test_details_are_scalars(policy: Policy, options: RunOptions) -> None:
    calls = [open_call("passwd", fd=3, errno=None, killed=True, denied=True, result=None)]
    calls += [call("clock_time_get", id=i % 2, precision=0) for i in range(20)]
    calls += [call("random_get", buf=0, buf_len=1000, nbytes=1000, over_budget=True)]
    findings = policy.evaluate(record(exit_code=9), log_of(*calls, host_calls=500), options)
    assert len(findings) >= 5
    for f in findings:
        assert all(isinstance(v, str | int | float | bool) for v in f.details.values()), f.details
