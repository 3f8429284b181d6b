"""Usage of a run, and learning: the learned policy passes every run it was learned
from, and a run that adds one behaviour fails it; what a policy grants unused."""

from __future__ import annotations

import json
import tomllib
from collections.abc import Callable
from pathlib import Path

import pytest

from tests.guard.conftest import call, log_of, open_call, record
from wasmscope.errors import UsageError
from wasmscope.guard.learn import (
    escape_glob,
    headroom,
    headroom_bytes,
    learn,
    learned_notes,
    unused,
)
from wasmscope.guard.policy import parse_policy
from wasmscope.guard.usage import Usage
from wasmscope.runtime.host_calls import AuditLog
from wasmscope.runtime.options import RunOptions
from wasmscope.runtime.record import InvocationRecord
from wasmscope.runtime.wasi import DirSpec

Run = tuple[InvocationRecord, AuditLog, RunOptions]


@pytest.fixture
def world(tmp_path: Path) -> Callable[[dict[str, str]], RunOptions]:
    for name in ("data", "out"):
        (tmp_path / name).mkdir()

    def make(env: dict[str, str]) -> RunOptions:
        return RunOptions(
            env=env,
            dirs=[
                DirSpec(str(tmp_path / "data"), "/data", True),
                DirSpec(str(tmp_path / "out"), "/out"),
            ],
        )

    return make


def benign(i: int, options: RunOptions, extra: list | None = None, **record_kw: object) -> Run:  # type: ignore[type-arg]
    """A run that reads its config and one input file of /data/in, writes one result."""
    calls = [
        call("environ_sizes_get"), call("environ_get"),
        open_call("config.ini", fd=3, result=10), call("fd_read", fd=10, nbytes=100), call("fd_close", fd=10),
        open_call(f"in/input-{i}.csv", fd=3, result=10), call("fd_close", fd=10),
        open_call(f"result-{i}.txt", fd=4, write=True, result=11), call("fd_write", fd=11, nbytes=20),
        call("fd_close", fd=11),
        *[call("clock_time_get", id=1, precision=0) for _ in range(3 + i % 3)],
        call("random_get", buf=0, buf_len=16, nbytes=16),
        call("fd_write", fd=1, nbytes=30 + i),
        *(extra or []),
    ]  # fmt: skip
    log = log_of(
        *calls, random_bytes=16 * (1 + sum(1 for c in extra or [] if c.func == "random_get"))
    )
    rec = record(
        [f"data/in/input-{i}.csv", "--mode=fast" if i % 2 else "--mode=slow"],
        stdout=b"x" * (30 + i),
        **record_kw,
    )  # type: ignore[arg-type]
    return rec, log, options


def test_usage_of_a_run(world: Callable[[dict[str, str]], RunOptions]) -> None:
    rec, log, options = benign(1, world({"LANG": "C"}))
    u = Usage.from_run(rec, log, options)
    assert u.files_read == ["/data/config.ini", "/data/in/input-1.csv"]
    assert u.files_written == ["/out/result-1.txt"]
    assert u.dirs == {"/data": "ro", "/out": "rw"}
    assert u.env == ["LANG"]
    assert u.clocks == {"monotonic": 4} and u.clock_calls == 4
    assert u.random_bytes == 16 and u.random_calls == 1
    assert u.exit_code == 0 and u.open_fds_peak == 1 and u.output_bytes == 31
    assert u.host_calls == len(log.calls) and u.calls["path_open"] == 3
    assert u.module == "ab" * 32
    again = Usage.from_json(json.loads(json.dumps(u.to_json())))
    assert again == u
    assert Usage.from_json(json.dumps(u.to_json())) == u


def test_traversal_tricks_are_not_part_of_what_a_run_uses(
    world: Callable[[dict[str, str]], RunOptions],
) -> None:
    rec, log, options = benign(
        1, world({}), extra=[open_call("../../etc/passwd", fd=3, errno=76, result=None)]
    )
    assert "/etc/passwd" not in Usage.from_run(rec, log, options).files_read
    assert Usage.from_run(record(), None, None) == Usage(module="ab" * 32, exit_code=0)


@pytest.mark.parametrize(
    ("doc", "message"),
    [("[1]", "expected a JSON object"), ("{", "not JSON"), ('{"schema": 9}', "schema 9"),
     ('{"files": []}', "unknown key 'files'"), ('{"env": "HOME"}', "'env' must be a list of strings"),
     ('{"dirs": {"/d": "rx"}}', "'dirs' must be"), ('{"host_calls": -1}', "'host_calls' must be a whole number")],
)  # fmt: skip
def test_bad_usage_json(doc: str, message: str) -> None:
    with pytest.raises(UsageError, match=message):
        Usage.from_json(doc)


def learned_from(runs: list[Run]):  # type: ignore[no-untyped-def]
    usages = [Usage.from_run(*r) for r in runs]
    policy = learn(usages)
    # what is written is what is used
    policy = parse_policy(
        tomllib.loads(policy.to_toml(notes=learned_notes(usages))), "learned.toml"
    )
    return policy, usages


def test_the_learned_policy_passes_every_run_it_was_learned_from(
    world: Callable[[dict[str, str]], RunOptions],
) -> None:
    runs = [benign(i, world({"LANG": "C", "TZ": "UTC"})) for i in range(10)]
    policy, _ = learned_from(runs)
    assert policy.filesystem.read == ("/data/config.ini", "/data/in/*")
    assert policy.filesystem.write == ("/out/*",)
    assert [d.text for d in policy.filesystem.dirs] == ["/data:ro", "/out:rw"]
    assert policy.environment == ("LANG", "TZ")
    assert policy.arguments == ("*.csv", "--mode=*")
    assert (
        policy.clocks is not None
        and policy.clocks.allow == ("monotonic",)
        and policy.clocks.max_calls == 50
    )
    assert policy.random is not None and policy.random.max_bytes == 4096
    assert policy.exit_codes == (0,)
    for rec, log, options in runs:
        assert policy.evaluate(rec, log, options) == []
        shaped, shaping = policy.shape(options, "enforce")
        assert shaping == [] and shaped.env == options.env
    # and new benign runs with other inputs pass too
    for i in range(10, 20):
        assert policy.evaluate(*benign(i, world({"LANG": "C", "TZ": "UTC"}))) == []


VARIANTS: dict[str, tuple[dict[str, object], str]] = {
    "an extra variable read": (
        {"env": {"LANG": "C", "TZ": "UTC", "AWS_SECRET": "s3cr3t-value"}},
        "env.read",
    ),
    "a new file": ({"extra": [open_call("secret.key", fd=3, result=12)]}, "fs.read"),
    "a path traversal": (
        {"extra": [open_call("../data/secret.key", fd=4, result=12)]},
        "fs.traversal",
    ),
    "a file outside the inputs": (
        {"extra": [open_call("private/keys.pem", fd=3, result=12)]},
        "fs.read",
    ),
    "a write in the read-only dir": (
        {"extra": [open_call("config.ini", fd=3, write=True, result=12)]},
        "fs.write",
    ),
    "a clock loop": (
        {"extra": [call("clock_time_get", id=1, precision=0) for _ in range(100)]},
        "clocks.loop",
    ),
    "another clock": ({"extra": [call("clock_time_get", id=0, precision=0)]}, "clocks.clock"),
    "an output burst": (
        {"extra": [call("fd_write", fd=1, nbytes=9000)], "stdout_bytes": 9000},
        "budget.output_bytes",
    ),
    "a huge random_get": (
        {"extra": [call("random_get", buf=0, buf_len=1 << 20, nbytes=1 << 20)]},
        "random.huge",
    ),
    "an odd exit code": ({"exit_code": 3}, "exit.code"),
}


@pytest.mark.parametrize("variant", sorted(VARIANTS))
def test_a_run_that_adds_one_behaviour_fails_it(
    world: Callable[[dict[str, str]], RunOptions], variant: str
) -> None:
    env = {"LANG": "C", "TZ": "UTC"}
    policy, _ = learned_from([benign(i, world(env)) for i in range(10)])
    change, rule = VARIANTS[variant]
    kw = dict(change)
    options = world(kw.pop("env", env))  # type: ignore[arg-type]
    extra = kw.pop("extra", None)
    stdout_bytes = kw.pop("stdout_bytes", None)
    rec, log, opts = benign(11, options, extra=extra, **kw)  # type: ignore[arg-type]
    if stdout_bytes is not None:
        rec.stdout_bytes = stdout_bytes  # type: ignore[assignment]
    rules = {f.rule for f in policy.evaluate(rec, log, opts)}
    assert rule in rules, rules


def test_unused_grants_of_a_current_policy(world: Callable[[dict[str, str]], RunOptions]) -> None:
    usages = [Usage.from_run(*benign(i, world({"LANG": "C"}))) for i in range(5)]
    current = parse_policy(tomllib.loads("""
[filesystem]
dirs = ["/data:rw", "/out:rw", "/tmp:rw"]
read = ["/data/**", "/data/old/*"]
[environment]
allow = ["LANG", "HOME"]
[clocks]
allow = ["monotonic", "realtime"]
[random]
max_bytes = "1GiB"
[sockets]
allow = ["db:5432"]
[exit]
codes = [0, 2]
[budgets]
host_calls = 1000000
"""), "current.toml")  # fmt: skip
    lines = [str(u) for u in unused(current, usages)]
    assert "filesystem.dirs /tmp:rw: no run went through it: remove it" in lines
    assert "filesystem.dirs /data:rw: no run wrote in it: make it /data:ro" in lines
    assert "filesystem.read '/data/old/*': matches no path a run used: remove it" in lines
    assert "environment.allow 'HOME': no run read such a variable: remove it" in lines
    assert "clocks.allow 'realtime': no run read it: remove it" in lines
    assert "sockets.allow 'db:5432': no run used a socket: remove it" in lines
    assert "exit.codes 2: no run exited with it: remove it" in lines
    assert any(
        line.startswith("random.max_bytes 1073741824: the largest run used 16") for line in lines
    )
    assert any(
        line.startswith("budgets.host_calls 1000000: the largest run used") for line in lines
    )
    assert not [line for line in lines if "/out" in line]
    assert unused(learn(usages), usages) == []


def test_headroom_and_escaping() -> None:
    assert [headroom(n) for n in (0, 1, 7, 40, 120, 3000)] == [20, 20, 50, 100, 500, 10000]
    assert [headroom_bytes(n) for n in (0, 100, 3000, 5000)] == [4096, 4096, 8192, 16384]
    assert escape_glob("a[1]*?.txt") == "a[[]1][*][?].txt"
    with pytest.raises(UsageError, match="nothing to learn"):
        learn([])


def test_globs_at_the_root_and_in_a_relative_preopen() -> None:
    root = [Usage(files_read=[f"/f{i}"], dirs={"/": "ro"}) for i in range(3)]
    assert learn(root).filesystem.read == ("/*",)
    rel = [
        Usage(files_read=[f"x{i}.txt"], files_written=["out.log"], dirs={".": "rw"})
        for i in range(3)
    ]
    policy = learn(rel)
    assert policy.filesystem.read == ("*",) and policy.filesystem.write == ("out.log",)
    assert parse_policy(tomllib.loads(policy.to_toml()), "rel") == policy


def test_negative_numbers_are_values_not_flags() -> None:
    """A real sorter of numbers: each negative number seen was learned as a flag of
    its own (a list of hundreds), and one not seen would be a violation where no
    "*" covered it."""
    usages = [Usage(argv=[str(n), str(-n), str(-3 * n), "-v", "--mode=fast"]) for n in range(1, 40)]
    assert learn(usages).arguments == ("*", "--mode=fast", "-v")
