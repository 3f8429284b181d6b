"""The least-privilege policy that every observed run passes (``wasmscope guard learn``),
and what a current policy grants that no run used.

How a policy is learned from :class:`~wasmscope.guard.usage.Usage` values:

* ``filesystem``: the dirs the runs went through (``:rw`` only where one wrote);
  the files read and written, where ``GLOB_MIN`` (3) files or more of one directory
  become ``dir/*`` (the next run reads another file there);
* ``environment``: every variable present when a run read its environment;
* ``arguments``: flags as seen (``--name=value`` with several values becomes
  ``--name=*``); other values with the same extension, ``GLOB_MIN`` or more,
  become ``*.ext`` (``*`` without an extension); a negative number is a value,
  not a flag;
* ``clocks``: the clocks read (``monotonic`` when a run only slept);
  ``max_calls`` and ``max_sleep`` with headroom;
* ``random``: granted when a run asked for random bytes, ``max_bytes`` with headroom;
* ``exit``: every exit code seen;
* ``budgets``: host calls, output bytes and open descriptors with headroom.

Headroom: twice the largest value seen, and at least 16 more, rounded up to 1, 2 or
5 times a power of ten (sizes: to a power of two, 4 KiB at least), so that the
ordinary spread between runs does not alert while an order of magnitude does.
"""

from __future__ import annotations

import fnmatch
import json
import posixpath
import re
from collections import defaultdict
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass

from wasmscope.errors import UsageError
from wasmscope.guard._paths import glob_matches, under
from wasmscope.guard._toml_out import format_size
from wasmscope.guard._verdict import round_up
from wasmscope.guard.policy import (
    CLOCKS,
    BudgetRules,
    ClockRules,
    DirGrant,
    FilesystemRules,
    Policy,
    RandomRules,
    whole_dir_glob,
)
from wasmscope.guard.usage import Usage

__all__ = [
    "GLOB_MIN",
    "Unused",
    "escape_glob",
    "headroom",
    "headroom_bytes",
    "learn",
    "learned_notes",
    "unused",
]

GLOB_MIN = 3
MIN_EXTRA = 16
MIN_BYTES = 4096
OVER_GRANT = 10  # a budget this many times the largest use is reported as unused room


def headroom(n: int) -> int:
    return round_up(max(2 * n, n + MIN_EXTRA))


def headroom_bytes(n: int) -> int:
    want = max(2 * n, MIN_BYTES)
    return 1 << (want - 1).bit_length()


def _globbed(paths: Iterable[str], glob_min: int) -> tuple[str, ...]:
    by_dir: dict[str, set[str]] = defaultdict(set)
    for p in paths:
        by_dir[posixpath.dirname(p)].add(p)
    out: set[str] = set()
    for parent, files in by_dir.items():
        if len(files) >= glob_min:
            out.add(f"{escape_glob(parent.rstrip('/'))}/*" if parent else "*")
        else:
            out.update(escape_glob(f) for f in files)
    return tuple(sorted(out))


_NUMBER = re.compile(r"-\d+(\.\d*)?([eE][-+]?\d+)?")


def _argument_globs(values: Iterable[str], glob_min: int) -> tuple[str, ...]:
    flags: dict[str, set[str]] = defaultdict(set)
    others: dict[str, set[str]] = defaultdict(set)
    for v in values:
        if v.startswith("-") and not _NUMBER.fullmatch(v):
            name, eq, value = v.partition("=")
            flags[name + eq].add(value)
        else:
            others[posixpath.splitext(v)[1]].add(v)
    out: set[str] = set()
    for name, seen in flags.items():
        if name.endswith("=") and len(seen) > 1:
            out.add(name + "*")
        else:
            out.update(escape_glob(name + s) for s in seen)
    for ext, seen in others.items():
        if len(seen) >= glob_min:
            out.add(f"*{escape_glob(ext)}")
        else:
            out.update(escape_glob(s) for s in seen)
    return tuple(sorted(out))


def learn(usages: Sequence[Usage], mode: str = "monitor", glob_min: int = GLOB_MIN) -> Policy:
    """The least-privilege policy all of ``usages`` pass (see the module docstring)."""
    if not usages:
        raise UsageError("nothing to learn from: no runs (record some with the audit on)")
    dirs: dict[str, bool] = {}  # guest -> read-only
    for u in usages:
        for guest, access in u.dirs.items():
            dirs[guest] = dirs.get(guest, True) and access != "rw"
    read = _globbed({p for u in usages for p in u.files_read}, glob_min)
    written = _globbed({p for u in usages for p in u.files_written}, glob_min)
    fs = FilesystemRules(
        dirs=tuple(DirGrant(g, ro) for g, ro in sorted(dirs.items())),
        read=read if dirs else None,
        write=written if any(not ro for ro in dirs.values()) else None,
    )
    clock_names = {c for u in usages for c in u.clocks}
    clocks = None
    if clock_names or any(u.clock_calls or u.sleeps for u in usages):
        allow = tuple(c for c in CLOCKS if c in clock_names) or ("monotonic",)
        sleeps = [u.max_sleep_ns for u in usages if u.max_sleep_ns is not None]
        clocks = ClockRules(
            allow=allow,
            max_calls=headroom(max(u.clock_calls for u in usages)),
            max_sleep=round_up(max(sleeps) * 2 / 1e6) / 1e3 if sleeps else None,
        )
    random = None
    if any(u.random_calls or u.random_bytes for u in usages):
        random = RandomRules(headroom_bytes(max(u.random_bytes for u in usages)))
    return Policy(
        mode=mode,
        filesystem=fs,
        environment=tuple(sorted({escape_glob(v) for u in usages for v in u.env})),
        arguments=_argument_globs((a for u in usages for a in u.argv), glob_min),
        clocks=clocks,
        random=random,
        exit_codes=tuple(sorted({u.exit_code for u in usages if u.exit_code is not None})) or (0,),
        budgets=BudgetRules(
            host_calls=headroom(max(u.host_calls for u in usages)),
            output_bytes=headroom_bytes(max(u.output_bytes for u in usages)),
            open_fds=headroom(max(u.open_fds_peak for u in usages)),
        ),
        source="<learned>",
    )


def learned_notes(usages: Sequence[Usage]) -> dict[str, str]:
    """Comments for :meth:`Policy.to_toml` saying what each learned ceiling comes from."""
    n = len(usages)
    runs = f"{n} run{'s' if n != 1 else ''}"
    notes = {
        "budgets.host_calls": f"largest of {runs}: {max(u.host_calls for u in usages)}",
        "budgets.output_bytes": f"largest of {runs}: {max(u.output_bytes for u in usages)} bytes",
        "budgets.open_fds": f"largest of {runs}: {max(u.open_fds_peak for u in usages)}",
        "clocks.max_calls": f"largest of {runs}: {max(u.clock_calls for u in usages)}",
        "random.max_bytes": f"largest of {runs}: {max(u.random_bytes for u in usages)} bytes",
    }
    sleeps = [u.max_sleep_ns for u in usages if u.max_sleep_ns is not None]
    if sleeps:
        notes["clocks.max_sleep"] = f"longest of {runs}: {max(sleeps) / 1e6:.3g} ms"
    return notes


@dataclass(frozen=True, slots=True)
class Unused:
    """A grant of the current policy that no run used: ``key`` (``filesystem.dirs``),
    the ``value`` granted and a ``note`` on what to do."""

    key: str
    value: str
    note: str

    def __str__(self) -> str:
        return f"{self.key} {self.value}: {self.note}"


def unused(policy: Policy, usages: Sequence[Usage]) -> list[Unused]:
    """What ``policy`` grants and none of ``usages`` used."""
    out: list[Unused] = []
    fs = policy.filesystem
    read = {p for u in usages for p in u.files_read}
    written = {p for u in usages for p in u.files_written}
    used_dirs: dict[str, str] = {}
    for u in usages:
        for guest, access in u.dirs.items():
            used_dirs[guest] = "rw" if access == "rw" or used_dirs.get(guest) == "rw" else "ro"
    for d in fs.dirs:
        if d.guest not in used_dirs and not any(under(d.guest, p) for p in read | written):
            out.append(Unused("filesystem.dirs", d.text, "no run went through it: remove it"))
        elif not d.read_only and not any(under(d.guest, p) for p in written):
            out.append(
                Unused("filesystem.dirs", d.text, f"no run wrote in it: make it {d.guest}:ro")
            )
    for key, globs, paths in (
        ("filesystem.read", fs.read, read),
        ("filesystem.write", fs.write, written),
    ):
        for g in globs or ():
            if g in {whole_dir_glob(d.guest) for d in fs.dirs}:
                continue
            if not any(glob_matches(g, p) for p in paths):
                out.append(Unused(key, repr(g), "matches no path a run used: remove it"))
    env_seen = {v for u in usages for v in u.env}
    for g in policy.environment:
        if not any(fnmatch.fnmatchcase(v, g) for v in env_seen):
            out.append(
                Unused("environment.allow", repr(g), "no run read such a variable: remove it")
            )
    argv = {a for u in usages for a in u.argv}
    for g in policy.arguments or ():
        if not any(fnmatch.fnmatchcase(a, g) for a in argv):
            out.append(Unused("arguments.allow", repr(g), "no run had such an argument: remove it"))
    if policy.clocks is not None:
        clocks_seen = {c for u in usages for c in u.clocks}
        if not clocks_seen and not any(u.clock_calls or u.sleeps for u in usages):
            out.append(
                Unused("clocks", "[clocks]", "no run read a clock or slept: remove the section")
            )
        else:
            for c in policy.clocks.allow:
                if c not in clocks_seen:
                    out.append(Unused("clocks.allow", repr(c), "no run read it: remove it"))
        _room(
            out,
            "clocks.max_calls",
            policy.clocks.max_calls,
            max(u.clock_calls for u in usages),
            headroom,
        )
    if policy.random is not None:
        if not any(u.random_calls or u.random_bytes for u in usages):
            out.append(
                Unused("random", "[random]", "no run asked for random bytes: remove the section")
            )
        else:
            _room(
                out,
                "random.max_bytes",
                policy.random.max_bytes,
                max(u.random_bytes for u in usages),
                headroom_bytes,
            )
    if policy.sockets and not any(f.startswith("sock_") for u in usages for f in u.calls):
        out.extend(
            Unused("sockets.allow", repr(h), "no run used a socket: remove it")
            for h in policy.sockets
        )
    codes = {u.exit_code for u in usages}
    for code in policy.exit_codes:
        if code not in codes:
            out.append(Unused("exit.codes", str(code), "no run exited with it: remove it"))
    b = policy.budgets
    _room(out, "budgets.host_calls", b.host_calls, max(u.host_calls for u in usages), headroom)
    _room(
        out,
        "budgets.output_bytes",
        b.output_bytes,
        max(u.output_bytes for u in usages),
        headroom_bytes,
    )
    _room(out, "budgets.open_fds", b.open_fds, max(u.open_fds_peak for u in usages), headroom)
    return out


def _room(
    out: list[Unused], key: str, limit: int | None, used: int, fit: Callable[[int], int]
) -> None:
    suggested = fit(used)
    if limit is None or limit <= max(OVER_GRANT * max(used, 1), suggested):
        return
    shown = format_size(suggested) if key.endswith("_bytes") else suggested
    out.append(
        Unused(
            key,
            str(limit),
            f"the largest run used {used}: {key.split('.')[1]} = {json.dumps(shown)} would do",
        )
    )


def escape_glob(text: str) -> str:
    """``text`` as a glob that matches only itself."""
    return "".join(f"[{c}]" if c in "*?[" else c for c in text)
