"""The policy file: parsing, every error naming file, key and fix, the TOML round trip,
the audit settings it builds and the shaping of a run's WASI world."""

from __future__ import annotations

import tomllib
from pathlib import Path

import pytest

from tests.guard.conftest import call, open_call
from wasmscope.errors import UsageError
from wasmscope.guard.findings import EventName, Outcome
from wasmscope.guard.policy import (
    BudgetRules,
    ClockRules,
    DirGrant,
    FilesystemRules,
    Policy,
    load_policy,
    parse_policy,
)
from wasmscope.runtime.host_calls import Action
from wasmscope.runtime.options import RunOptions
from wasmscope.runtime.wasi import DirSpec

FULL = """
mode = "enforce"
[filesystem]
dirs = ["/data:ro", "/out:rw"]
read = ["/data/*.csv"]
write = ["/out/**"]
[environment]
allow = ["LANG", "LC_*"]
[arguments]
allow = ["--verbose", "*.txt"]
[clocks]
allow = ["realtime", "monotonic"]
max_calls = 100
max_sleep = "500ms"
[random]
max_bytes = "64KiB"
[sockets]
allow = ["api.example.com:443"]
[exit]
codes = [0, 1]
[budgets]
host_calls = 1000
output_bytes = "1MiB"
open_fds = 16
[imports]
allow = ["env.log_*"]
deny = ["wasi_snapshot_preview1.sock_*"]
strict = true
"""


def parse(text: str, source: str = "p.toml") -> Policy:
    return parse_policy(tomllib.loads(text), source)


def test_every_key_is_read() -> None:
    p = parse(FULL)
    assert p.mode == "enforce"
    assert p.filesystem == FilesystemRules(
        (DirGrant("/data", True), DirGrant("/out", False)), ("/data/*.csv",), ("/out/**",)
    )
    assert p.environment == ("LANG", "LC_*")
    assert p.arguments == ("--verbose", "*.txt")
    assert p.clocks == ClockRules(("realtime", "monotonic"), 100, 0.5)
    assert p.random is not None and p.random.max_bytes == 64 * 1024
    assert p.sockets == ("api.example.com:443",)
    assert p.exit_codes == (0, 1)
    assert p.budgets == BudgetRules(1000, 1 << 20, 16)
    assert p.imports.allow == ("env.log_*",) and p.imports.deny == (
        "wasi_snapshot_preview1.sock_*",
    )
    assert p.imports.strict


def test_an_empty_policy_grants_nothing_but_the_basics() -> None:
    p = parse("")
    assert p.mode == "monitor"
    assert not p.granted("filesystem") and not p.granted("clocks") and not p.granted("random")
    assert not p.granted("sockets") and p.granted("always")
    assert p.arguments is None and p.arg_allowed("anything")
    assert p.exit_codes == (0,)
    assert not p.env_allowed("HOME")


def test_to_toml_reads_back_the_same_policy() -> None:
    p = parse(FULL)
    text = p.to_toml()
    assert "# " in text  # every key has its comment
    assert parse(text) == p
    assert parse(p.to_toml(comments=False)) == p
    assert parse(Policy().to_toml()) == Policy()


@pytest.mark.parametrize(
    ("text", "message"),
    [
        ('mode = "strict"', 'p.toml: key \'mode\': expected "monitor", "enforce" or "kill"'),
        ("colour = 1", "p.toml: unknown key(s) 'colour' (known: mode, filesystem"),
        ("filesystem = 1", "p.toml: key 'filesystem': expected a table: write [filesystem]"),
        (
            "[filesystem]\ndir = []",
            "p.toml: [filesystem]: unknown key(s) 'dir' (known: dirs, read, write)",
        ),
        (
            "[filesystem]\ndirs = [1]",
            "p.toml: [filesystem] key 'dirs': expected a list of non-empty strings, like dirs = [\"/data:ro\"]",
        ),
        (
            '[filesystem]\ndirs = ["/a/../b"]',
            "[filesystem] key 'dirs': '/a/../b': expected a guest path",
        ),
        ('[filesystem]\ndirs = ["/a", "/a:rw"]', "the same guest path appears twice"),
        (
            '[filesystem]\ndirs = ["/a"]\nread = ["/b/*"]',
            "[filesystem] key 'read': '/b/*' is in none of the dirs (/a): add its dir to dirs",
        ),
        (
            '[filesystem]\ndirs = ["/a:ro"]\nwrite = ["/a/x"]',
            "[filesystem] key 'write': '/a/x' is only in read-only dirs: mark its dir \":rw\" in dirs",
        ),
        (
            '[clocks]\nallow = ["cpu"]',
            "[clocks] key 'allow': unknown clock(s) 'cpu' (known: realtime, monotonic",
        ),
        ("[clocks]\nmax_calls = -1", "[clocks] key 'max_calls': expected a whole number >= 0"),
        ('[clocks]\nmax_sleep = "soon"', "[clocks] key 'max_sleep':"),
        ('[random]\nmax_bytes = "lots"', "[random] key 'max_bytes': invalid size"),
        (
            "[random]\nmax_bytes = true",
            "[random] key 'max_bytes': expected a size, like max_bytes = \"64KiB\"",
        ),
        (
            '[exit]\ncodes = ["0"]',
            "[exit] key 'codes': expected a list of whole numbers, like codes = [0, 1]",
        ),
        ("[budgets]\nopen_fds = 1.5", "[budgets] key 'open_fds': expected a whole number >= 0"),
        ('[imports]\nstrict = "yes"', "[imports] key 'strict': expected true or false"),
    ],
)
def test_errors_name_the_file_the_key_and_the_fix(text: str, message: str) -> None:
    with pytest.raises(UsageError) as info:
        parse(text)
    assert message in str(info.value)
    assert str(info.value).startswith("p.toml")


def test_load_policy_errors(tmp_path: Path) -> None:
    with pytest.raises(UsageError, match="no such policy file"):
        load_policy(tmp_path / "none.toml")
    bad = tmp_path / "bad.toml"
    bad.write_text("mode = \n")
    with pytest.raises(UsageError, match=r"bad\.toml: not valid TOML"):
        load_policy(bad)
    bad.write_bytes(b"\xff\xfe")
    with pytest.raises(UsageError, match="not valid TOML"):
        load_policy(bad)
    with pytest.raises(UsageError, match="is a directory"):
        load_policy(tmp_path)
    good = tmp_path / "good.toml"
    good.write_text(FULL)
    assert load_policy(good).source == str(good)


# -- audit settings ----------------------------------------------------------------------


def test_monitor_allows_every_call_and_keeps_the_budgets() -> None:
    s = parse(FULL).audit_settings("monitor")
    assert s.record and not s.actions and s.check is None
    assert s.over_budget == Action.ALLOW
    assert (
        s.budgets.host_calls,
        s.budgets.random_bytes,
        s.budgets.output_bytes,
        s.budgets.open_fds,
    ) == (1000, 65536, 1 << 20, 16)


def test_enforce_refuses_the_families_not_granted() -> None:
    s = parse("[filesystem]\ndirs = ['/data']").audit_settings("enforce")
    assert s.actions["clock_time_get"] == Action.DENY
    assert s.actions["poll_oneoff"] == Action.DENY
    assert s.actions["random_get"] == Action.DENY
    assert s.actions["sock_accept"] == Action.DENY
    # stdio, exit, argv, environ and the preopen listing wasi-libc does at start-up stay
    for func in (
        "fd_write",
        "proc_exit",
        "args_get",
        "environ_get",
        "fd_prestat_get",
        "fd_prestat_dir_name",
    ):
        assert s.actions.get(func, Action.ALLOW) == Action.ALLOW
    # the preopens alone say it all: no path call comes back to Python
    assert "path_open" not in s.actions and s.check is None
    assert s.over_budget == Action.DENY
    kill = parse("").audit_settings("kill")
    assert kill.actions["path_open"] == Action.KILL and kill.over_budget == Action.KILL


def test_whole_dir_globs_need_no_check_finer_ones_do() -> None:
    whole = parse(
        "[filesystem]\ndirs = ['/data', '/out:rw']\nread = ['/data/**', '/out/**']\nwrite = ['/out/**']"
    )
    assert whole.audit_settings("enforce").check is None
    finer = parse("[filesystem]\ndirs = ['/data']\nread = ['/data/*.csv']")
    s = finer.audit_settings("enforce")
    assert s.actions["path_open"] == Action.CHECK and s.actions["path_unlink_file"] == Action.CHECK
    assert s.check is not None


def test_the_check_matches_the_normalized_path_against_the_globs() -> None:
    p = parse(FULL)
    check = p.audit_settings("enforce").check
    assert check is not None
    assert check(open_call("a.csv", fd=3))
    assert check(open_call("sub/../a.csv", fd=3))  # normalized first
    assert not check(open_call("a.txt", fd=3))
    assert not check(open_call("a.csv", fd=3, write=True))  # /data is read-only
    assert check(open_call("x/y.bin", fd=4, write=True))
    assert not check(open_call("../data/a.csv", fd=4))  # leaves its preopen
    assert not check(open_call("/data/a.csv", fd=3))  # absolute
    assert not check(open_call("a.csv\0.txt", fd=3))  # NUL
    assert not check(open_call("a.csv", fd=9))  # not a preopen: cannot be resolved
    assert not check(call("path_unlink_file", fd=3, path="a.csv"))  # a change in a read-only dir
    assert check(call("path_filestat_get", fd=3, flags=0, path="b.csv"))


def test_the_check_follows_the_runs_preopen_order(tmp_path: Path) -> None:
    (tmp_path / "o").mkdir()
    (tmp_path / "d").mkdir()
    p = parse(FULL)
    options = RunOptions(
        dirs=[DirSpec(str(tmp_path / "o"), "/out"), DirSpec(str(tmp_path / "d"), "/data", True)]
    )
    check = p.audit_settings("enforce", options).check
    assert check is not None
    assert check(open_call("new.txt", fd=3, write=True))  # fd 3 is /out in this run
    assert check(open_call("a.csv", fd=4))


def test_an_unknown_mode_is_a_usage_error() -> None:
    with pytest.raises(UsageError, match="unknown guard mode"):
        parse("").audit_settings("loud")


# -- shaping -----------------------------------------------------------------------------


def test_enforce_cuts_the_world_to_the_policy(tmp_path: Path) -> None:
    for name in ("data", "out", "secret"):
        (tmp_path / name).mkdir()
    p = parse(FULL)
    options = RunOptions(
        env={"LANG": "C", "LC_ALL": "C", "AWS_SECRET": "hunter2"},
        dirs=[
            f"{tmp_path / 'data'}::/data:rw",
            DirSpec(str(tmp_path / "out"), "/out"),
            DirSpec(str(tmp_path / "secret"), "/secret"),
        ],
    )
    shaped, findings = p.shape(options, "enforce")
    assert shaped.env == {"LANG": "C", "LC_ALL": "C"}
    assert [(d.guest, d.read_only) for d in shaped.dirs] == [("/data", True), ("/out", False)]  # type: ignore[union-attr]
    by_target = {f.target: f for f in findings}
    assert set(by_target) == {"AWS_SECRET", "/data", "/secret"}
    assert all(f.name == EventName.DENIED and f.outcome == Outcome.DENIED for f in findings)
    assert by_target["AWS_SECRET"].suggestion == 'environment.allow = ["AWS_SECRET"]'
    assert by_target["/secret"].suggestion == 'filesystem.dirs = ["/secret:rw"]'
    assert by_target["/data"].suggestion == 'filesystem.dirs = ["/data:rw"]'
    assert (
        options.env is not None and "AWS_SECRET" in options.env
    )  # the caller's options stay as they were


def test_monitor_changes_nothing_and_reports(tmp_path: Path) -> None:
    (tmp_path / "secret").mkdir()
    options = RunOptions(
        env={"AWS_SECRET": "x"}, dirs=[DirSpec(str(tmp_path / "secret"), "/secret")]
    )
    shaped, findings = parse(FULL).shape(options, "monitor")
    assert shaped is options
    assert {f.target for f in findings} == {"AWS_SECRET", "/secret"}
    assert all(f.name == EventName.VIOLATION and f.outcome == Outcome.ALLOWED for f in findings)


def test_read_and_write_as_wasi_libc_asks_for_them() -> None:
    from wasmscope.guard._preview1 import is_read, is_write

    every = (1 << 30) - 1
    removed = (1 << 0) | (1 << 1) | (1 << 6) | (1 << 8) | (1 << 14) | (1 << 22)
    rdonly = (every & ~removed) | (1 << 1) | (1 << 14)  # open(path, O_RDONLY)
    wronly = (every & ~removed) | (1 << 0) | (1 << 6) | (1 << 8) | (1 << 22)  # O_WRONLY
    reader = call("path_open", fd=3, oflags=0, fs_rights_base=rdonly, path="a")
    writer = call("path_open", fd=3, oflags=0, fs_rights_base=wronly, path="a")
    assert is_read(reader) and not is_write(reader)
    assert is_write(writer) and not is_read(writer)
    stat = call("path_open", fd=3, oflags=2, fs_rights_base=0, path="d")  # a directory, no rights
    assert is_read(stat) and not is_write(stat)


def test_a_preopen_named_with_a_trailing_slash_is_the_same_dir(tmp_path: Path) -> None:
    shaped, findings = parse(FULL).shape(
        RunOptions(dirs=[DirSpec(str(tmp_path), "/data/", True)]), "enforce"
    )
    assert findings == [] and len(shaped.dirs) == 1
