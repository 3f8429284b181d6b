"""What one run used, read from its record and audit log: the input of
:func:`wasmscope.guard.learn.learn`, stored one JSON object a line.

    usage = Usage.from_run(rec, rec.audit, options)
    line = json.dumps(usage.to_json())
    again = Usage.from_json(json.loads(line))

Paths are guest paths, normalized; the paths of calls that play a traversal trick
(``..`` out of the preopen, absolute, NUL) or go through a descriptor that is not
known are left out: they are never part of a normal run.
"""

from __future__ import annotations

import json
from collections import Counter
from collections.abc import Mapping
from dataclasses import asdict, dataclass, field, fields
from typing import TYPE_CHECKING, Any

from wasmscope.errors import UsageError
from wasmscope.guard import _preview1 as p1
from wasmscope.guard._paths import FdTable, preopens_of, traversal

if TYPE_CHECKING:
    from wasmscope.runtime.host_calls import AuditLog
    from wasmscope.runtime.options import RunOptions
    from wasmscope.runtime.record import InvocationRecord

__all__ = ["USAGE_SCHEMA", "Usage"]

USAGE_SCHEMA = 1
_TRICKS = frozenset({"nul", "absolute", "parent", "escape"})


@dataclass(slots=True)
class Usage:
    """``files_read`` / ``files_written``: guest paths the guest opened (attempts
    included: a probe for a missing file is part of what it does). ``dirs``: the
    preopens it went through, ``"rw"`` when it changed something in one. ``env``:
    the variables present when it called ``environ_get``. ``clocks``: calls per clock;
    ``clock_calls`` all clock calls (exact, from the counts); ``sleeps`` the
    ``poll_oneoff`` calls and ``max_sleep_ns`` the longest. ``calls``: every WASI
    function's count."""

    module: str | None = None  # sha256
    files_read: list[str] = field(default_factory=list)
    files_written: list[str] = field(default_factory=list)
    dirs: dict[str, str] = field(default_factory=dict)
    env: list[str] = field(default_factory=list)
    argv: list[str] = field(default_factory=list)
    clocks: dict[str, int] = field(default_factory=dict)
    clock_calls: int = 0
    sleeps: int = 0
    max_sleep_ns: int | None = None
    random_bytes: int = 0
    random_calls: int = 0
    exit_code: int | None = None
    open_fds_peak: int = 0
    output_bytes: int = 0
    host_calls: int = 0
    calls: dict[str, int] = field(default_factory=dict)

    @classmethod
    def from_run(
        cls, rec: InvocationRecord, log: AuditLog | None, options: RunOptions | None = None
    ) -> Usage:
        """What the run of ``rec`` used; ``options``: the (shaped) options it ran with."""
        table = FdTable(preopens_of(options.dirs) if options is not None else [])
        read: set[str] = set()
        written: set[str] = set()
        dirs: dict[str, str] = {}
        clocks: Counter[str] = Counter()
        max_sleep: int | None = None
        for call in log.calls if log is not None else ():
            resolved = None
            if call.func in p1.PATH_FUNCTIONS and traversal(call.path or "") not in _TRICKS:
                resolved = table.resolve(call)
                if resolved is not None and not call.denied:
                    path, preopen = resolved
                    write = p1.is_write(call)
                    if write:
                        written.add(path)
                        dirs[preopen.guest] = "rw"
                    else:
                        dirs.setdefault(preopen.guest, "ro")
                    if p1.is_read(call):
                        read.add(path)
            elif call.func in p1.FD_WRITES:
                entry = table.path_of(p1.arg(call, "fd"))
                if entry is not None and p1.arg(call, "fd") not in (0, 1, 2):
                    written.add(entry[0])
                    dirs[entry[1].guest] = "rw"
            elif call.func in ("clock_time_get", "clock_res_get"):
                clocks[p1.clock_name(call)] += 1
            elif call.func == "poll_oneoff" and call.duration_ns is not None:
                max_sleep = max(max_sleep or 0, call.duration_ns)
            table.after(call, resolved)
        counts = dict(log.counts) if log is not None else {}
        totals = log.totals if log is not None else {}
        env = sorted(
            (options.env or {}) if options is not None and counts.get("environ_get") else ()
        )
        code = rec.exit_code if rec.exit_code is not None else (0 if rec.outcome == "ok" else None)
        return cls(
            module=rec.module.sha256 or None,
            files_read=sorted(read),
            files_written=sorted(written),
            dirs=dict(sorted(dirs.items())),
            env=env,
            argv=list(rec.args),
            clocks=dict(sorted(clocks.items())),
            clock_calls=counts.get("clock_time_get", 0) + counts.get("clock_res_get", 0),
            sleeps=counts.get("poll_oneoff", 0),
            max_sleep_ns=max_sleep,
            random_bytes=totals.get("random_bytes", 0),
            random_calls=counts.get("random_get", 0),
            exit_code=code,
            open_fds_peak=totals.get("open_fds_peak", table.peak),
            output_bytes=totals.get("output_bytes", rec.stdout_bytes + rec.stderr_bytes),
            host_calls=log.total if log is not None else 0,
            calls=dict(sorted(counts.items())),
        )

    def to_json(self) -> dict[str, Any]:
        return {"schema": USAGE_SCHEMA, **asdict(self)}

    @classmethod
    def from_json(cls, doc: Mapping[str, Any] | str) -> Usage:
        """A usage from :meth:`to_json`'s object (or its JSON text); a
        :class:`~wasmscope.errors.UsageError` names what is wrong."""
        if isinstance(doc, str):
            try:
                doc = json.loads(doc)
            except json.JSONDecodeError as exc:
                raise UsageError(f"not a usage: not JSON ({exc})") from None
        if not isinstance(doc, Mapping):
            raise UsageError("not a usage: expected a JSON object")
        if doc.get("schema", USAGE_SCHEMA) != USAGE_SCHEMA:
            raise UsageError(
                f"usage schema {doc.get('schema')!r} is not {USAGE_SCHEMA}: record the runs again"
            )
        known = {f.name: f for f in fields(cls)}
        values: dict[str, Any] = {}
        for name, value in doc.items():
            if name == "schema":
                continue
            if name not in known:
                raise UsageError(f"not a usage: unknown key {name!r}")
            values[name] = value
        usage = cls(**values)
        _check_types(usage)
        return usage


def _check_types(u: Usage) -> None:
    def bad(name: str, what: str) -> UsageError:
        return UsageError(f"not a usage: {name!r} must be {what}")

    for name in ("files_read", "files_written", "env", "argv"):
        value = getattr(u, name)
        if not isinstance(value, list) or not all(isinstance(v, str) for v in value):
            raise bad(name, "a list of strings")
    for name in ("dirs",):
        if not isinstance(u.dirs, dict) or not all(v in ("ro", "rw") for v in u.dirs.values()):
            raise bad(name, 'an object of "ro" / "rw"')
    for name in ("clocks", "calls"):
        value = getattr(u, name)
        if not isinstance(value, dict) or not all(isinstance(v, int) for v in value.values()):
            raise bad(name, "an object of counts")
    for name in (
        "clock_calls",
        "sleeps",
        "random_bytes",
        "random_calls",
        "open_fds_peak",
        "output_bytes",
        "host_calls",
    ):
        value = getattr(u, name)
        if isinstance(value, bool) or not isinstance(value, int) or value < 0:
            raise bad(name, "a whole number >= 0")
    for name in ("max_sleep_ns", "exit_code"):
        value = getattr(u, name)
        if value is not None and (isinstance(value, bool) or not isinstance(value, int)):
            raise bad(name, "a whole number or null")
