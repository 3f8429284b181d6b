"""One run against its policy: what the audit log, the exit code, the arguments and the
output show that the policy does not allow (:meth:`Policy.evaluate`).

Each finding names the requested target and, where one exists, the policy line
that would allow it. The same rule on the same target is reported once, with the
number of times in ``details["count"]`` (a loop of denied opens is one finding).
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Iterable, Mapping
from dataclasses import replace
from typing import TYPE_CHECKING

from wasmscope.guard import _preview1 as p1
from wasmscope.guard._paths import FdTable, Preopen, traversal
from wasmscope.guard._verdict import breach, round_up, suggest
from wasmscope.guard.findings import EventName, Finding, Outcome, Severity
from wasmscope.runtime.host_calls import AuditLog, HostCall

if TYPE_CHECKING:
    from wasmscope.guard.policy import Policy
    from wasmscope.runtime.options import RunOptions
    from wasmscope.runtime.record import InvocationRecord

__all__ = ["evaluate"]

# errnos with which the runtime itself refuses a path (read-only preopen, escape)
_REFUSED = frozenset(
    {p1.ERRNO["acces"], p1.ERRNO["perm"], p1.ERRNO["rofs"], p1.ERRNO["notcapable"]}
)
_ESCAPED = frozenset({p1.ERRNO["perm"], p1.ERRNO["notcapable"]})
_TRICKS = frozenset({"nul", "absolute", "parent", "escape"})
EXFIL_MIN_CHARS = 4  # shorter values appear in any output by chance
_BUDGET_OF = {"random_get": "random_bytes", "fd_write": "output_bytes", "fd_pwrite": "output_bytes",
              "path_open": "open_fds", "sock_accept": "open_fds"}  # fmt: skip
_BUDGET_CATEGORY = {
    "random_bytes": "random",
    "output_bytes": "stdio",
    "open_fds": "filesystem",
    "host_calls": "resources",
}


class _Findings:
    """Findings keyed by (rule, target): the first one kept, the others counted."""

    def __init__(self) -> None:
        self._by_key: dict[tuple[str, str | None], Finding] = {}
        self._counts: Counter[tuple[str, str | None]] = Counter()

    def add(self, finding: Finding, count: int = 1) -> None:
        key = (finding.rule, finding.target)
        if key not in self._by_key or (
            finding.outcome == Outcome.KILLED and self._by_key[key].outcome != Outcome.KILLED
        ):
            self._by_key[key] = finding
        elif "used" in finding.details and "used" not in self._by_key[key].details:
            # a budget crossed by a call, then its total: the suggestion must cover the total
            kept = self._by_key[key]
            self._by_key[key] = replace(kept, message=finding.message, suggestion=finding.suggestion,
                                        details={**kept.details, **finding.details})  # fmt: skip
        self._counts[key] += count

    def done(self) -> list[Finding]:
        return [
            replace(f, details={**f.details, "count": self._counts[k]})
            for k, f in self._by_key.items()
        ]


class _Run:
    def __init__(self, policy: Policy, options: RunOptions | None) -> None:
        self.policy = policy
        self.options = options
        self.out = _Findings()
        self.table = FdTable(policy.preopens(options))
        self.clock_calls: Counter[str] = Counter()
        self.sums = {"output_bytes": 0, "random_bytes": 0}  # as the thunks keep them

    # -- calls ------------------------------------------------------------------------
    def calls(self, calls: Iterable[HostCall]) -> None:
        for call in calls:
            resolved = None
            if call.func in p1.PATH_FUNCTIONS:
                resolved = self.path_call(call)
            elif call.func in p1.FD_WRITES:
                self.fd_write(call)
            elif call.func in ("clock_time_get", "clock_res_get"):
                self.clock_calls[p1.clock_name(call)] += 1
                self.clock(call)
            elif call.func == "poll_oneoff":
                self.sleep(call)
            elif call.func == "random_get":
                self.random(call)
            if call.over_budget:
                self.budget_call(call)
            self.add_to_sums(call)
            section = p1.SECTION.get(call.func, p1.ALWAYS)
            if section in ("clocks", "random", "sockets") and not self.policy.granted(section):
                self.ungranted(call.func, section, 1, call)
            if call.func == "path_open" and call.errno in (p1.ERRNO["mfile"], p1.ERRNO["nfile"]):
                self.out.add(breach("fd.exhaustion", "filesystem", "the guest ran out of file descriptors",
                                    refused=True, target="path_open", call=call))  # fmt: skip
            self.table.after(call, resolved)

    def path_call(self, call: HostCall) -> tuple[str, Preopen] | None:
        raw = call.path or ""
        kind = traversal(raw)
        if kind is not None:
            refused = call.denied or call.killed or call.errno not in (0, None)
            self.out.add(breach(
                "fs.traversal", "filesystem",
                f"path traversal attempt ({kind}): {call.func} {raw!r}"
                + (" was refused" if refused else " went through"),
                refused=refused, killed=call.killed,
                severity=Severity.INFO if kind == "trailing-slash" else Severity.ERROR,
                target=raw, call=call, details={"traversal": kind},
            ))  # fmt: skip
            if kind in _TRICKS:
                return None
        resolved = self.table.resolve(call)
        if resolved is None:
            if call.denied:
                self.out.add(breach("fs.path", "filesystem", f"{call.func} {raw!r} through a descriptor that is not a preopen",
                                    target=raw, call=call))  # fmt: skip
            return None
        path, preopen = resolved
        write = p1.is_write(call)
        ok, reason = self.policy.path_allowed(path, write)
        verb = "write" if write else "read"
        if not ok:
            why = {
                "dir": "no granted dir holds it",
                "read-only": "its dir is granted read-only",
                "glob": f"no {verb} glob names it",
            }[reason]
            refused = call.denied or call.killed or call.errno in _REFUSED
            self.out.add(breach(
                f"fs.{verb}", "filesystem", f"{call.func} {path}: the policy does not allow it ({why})",
                refused=refused, killed=call.killed, target=path, call=call,
                suggestion=self.policy.suggestion_for_path(path, write, reason, preopen.guest),
                details={"access": verb, "errno": call.errno},
            ))  # fmt: skip
        elif call.errno in _ESCAPED and not call.denied:
            self.out.add(breach(
                "fs.escape", "filesystem",
                f"{call.func} {path}: the runtime refused a path the policy allows (a symlink pointing out of {preopen.guest}?)",
                refused=True, target=path, call=call, details={"errno": call.errno},
            ))  # fmt: skip
        return resolved

    def fd_write(self, call: HostCall) -> None:
        fd = p1.arg(call, "fd")
        entry = self.table.path_of(fd)
        if entry is None or fd in (None, 0, 1, 2):
            return
        path = entry[0]
        ok, reason = self.policy.path_allowed(path, True)
        if ok:
            return
        what = "truncate" if call.func == "fd_filestat_set_size" else "write"
        self.out.add(breach(
            "fs.write", "filesystem", f"{call.func} on {path}: the policy does not allow the guest to {what} it",
            refused=call.denied or call.killed or call.errno in _REFUSED, killed=call.killed, target=path, call=call,
            suggestion=self.policy.suggestion_for_path(path, True, reason, entry[1].guest),
            details={"access": what, "errno": call.errno},
        ))  # fmt: skip

    def clock(self, call: HostCall) -> None:
        clocks = self.policy.clocks
        name = p1.clock_name(call)
        if clocks is not None and clocks.allow and name not in clocks.allow:
            self.out.add(breach(
                "clocks.clock", "clocks", f"{call.func} of the {name} clock, which the policy does not allow",
                target=name, call=call, suggestion=suggest("clocks", "allow", [*clocks.allow, name]),
            ))  # fmt: skip

    def sleep(self, call: HostCall) -> None:
        clocks = self.policy.clocks
        if clocks is None or clocks.max_sleep is None or call.duration_ns is None:
            return
        seconds = call.duration_ns / 1e9
        if seconds > clocks.max_sleep:
            self.out.add(breach(
                "clocks.sleep", "clocks", f"poll_oneoff waited {seconds:.3g} s, over max_sleep ({clocks.max_sleep:g} s)",
                target="poll_oneoff", call=call, suggestion=suggest("clocks", "max_sleep", f"{round_up(seconds * 2)}s"),
                details={"seconds": seconds},
            ))  # fmt: skip

    def random(self, call: HostCall) -> None:
        rules = self.policy.random
        asked = call.nbytes if call.nbytes is not None else p1.arg(call, "buf_len", "len")
        if rules is None or rules.max_bytes is None or asked is None or asked <= rules.max_bytes:
            return
        self.out.add(breach(
            "random.huge", "random", f"random_get of {asked} bytes in one call, over max_bytes ({rules.max_bytes})",
            target="random_get", call=call, severity=Severity.ERROR,
            suggestion=suggest("random", "max_bytes", round_up(asked * 2)), details={"bytes": asked},
        ))  # fmt: skip

    def budget_call(self, call: HostCall) -> None:
        """The budget a call crossed: its own (bytes, descriptors) when this call takes
        that sum over its limit, else the host-call count (a clock loop's fd_write
        after the 100th call is over the calls' budget, not the output's)."""
        name = _BUDGET_OF.get(call.func, "host_calls")
        if call.func in ("fd_write", "fd_pwrite") and p1.arg(call, "fd") not in (1, 2):
            name = "host_calls"
        if name in self.sums:
            limit = self.budget_of(name)
            if limit is None or self.sums[name] + (call.nbytes or 0) <= limit:
                name = "host_calls"
        self.limit(name, None, call)

    def add_to_sums(self, call: HostCall) -> None:
        if call.errno != 0 or call.nbytes is None:
            return
        if call.func == "random_get":
            self.sums["random_bytes"] += call.nbytes
        elif call.func in ("fd_write", "fd_pwrite") and p1.arg(call, "fd") in (1, 2):
            self.sums["output_bytes"] += call.result if call.result is not None else call.nbytes

    def budget_of(self, name: str) -> int | None:
        if name == "random_bytes":
            return self.policy.random.max_bytes if self.policy.random else None
        limit: int | None = getattr(self.policy.budgets, name, None)
        return limit

    def limit(self, name: str, used: int | None, call: HostCall | None = None) -> None:
        limit = self.budget_of(name)
        section, key = ("random", "max_bytes") if name == "random_bytes" else ("budgets", name)
        used_text = f" ({used})" if used is not None else ""
        refused = call is not None and (call.denied or call.killed)
        self.out.add(Finding(
            name=EventName.LIMIT, rule=f"budget.{name}", severity=Severity.WARN,
            message=f"the {name.replace('_', ' ')} budget ({limit}) was crossed{used_text}",
            category=_BUDGET_CATEGORY[name],
            outcome=(Outcome.KILLED if call is not None and call.killed else Outcome.DENIED if refused else Outcome.ALLOWED),
            target=name, call=call,
            suggestion=suggest(section, key, round_up(max(used or 0, limit or 0) * 2)) if limit is not None else None,
            details={k: v for k, v in (("limit", limit), ("used", used)) if v is not None},
        ))  # fmt: skip

    def ungranted(self, func: str, section: str, count: int, call: HostCall | None = None) -> None:
        line = {
            "clocks": suggest("clocks", "allow", ["monotonic", "realtime"]),
            "random": suggest("random", "max_bytes", "4KiB"),
            "sockets": suggest("sockets", "allow", ["HOST:PORT"]),
        }[section]
        refused = call.denied or call.killed if call is not None else self.policy.mode != "monitor"
        self.out.add(breach(
            f"{section}.call", section, f"the guest called {func}, and the policy grants no {section}",
            refused=refused, killed=call is not None and call.killed, target=func, call=call, suggestion=line,
        ), count)  # fmt: skip

    # -- the run as a whole -----------------------------------------------------------
    def totals(self, log: AuditLog, rec: InvocationRecord) -> None:
        p = self.policy
        counts = log.counts
        if not log.recorded:  # count-only: what the counts alone can tell
            for func, n in counts.items():
                section = p1.SECTION.get(func, p1.ALWAYS)
                if n and section in ("clocks", "random", "sockets") and not p.granted(section):
                    self.ungranted(func, section, n)
        clock_total = counts.get("clock_time_get", 0) + counts.get("clock_res_get", 0)
        if (
            p.clocks is not None
            and p.clocks.max_calls is not None
            and clock_total > p.clocks.max_calls
        ):
            self.out.add(breach(
                "clocks.loop", "clocks", f"{clock_total} clock calls, over max_calls ({p.clocks.max_calls}): a tight clock loop?",
                target="clock_time_get", suggestion=suggest("clocks", "max_calls", round_up(clock_total * 2)),
                details={"calls": clock_total, **{f"calls.{c}": n for c, n in self.clock_calls.items()}},
            ))  # fmt: skip
        totals = log.totals
        checks: list[tuple[str, int | None, int]] = [
            ("host_calls", p.budgets.host_calls, totals.get("host_calls", log.total)),
            (
                "output_bytes",
                p.budgets.output_bytes,
                totals.get("output_bytes", rec.stdout_bytes + rec.stderr_bytes),
            ),
            ("open_fds", p.budgets.open_fds, totals.get("open_fds_peak", self.table.peak)),
            (
                "random_bytes",
                p.random.max_bytes if p.random else None,
                totals.get("random_bytes", 0),
            ),
        ]
        for name, limit, used in checks:
            if limit is not None and used > limit:
                self.limit(name, used)
        if log.dropped:
            self.out.add(Finding(
                name=EventName.DROPPED, rule="audit.dropped", severity=Severity.WARN,
                message=f"the audit ring lost {log.dropped} host-call records (the counts stay exact)",
                category="runtime", details={"dropped": log.dropped},
            ))  # fmt: skip
        if counts.get("environ_get") and self.options is not None:
            for name in p.env_outside(self.options.env or {}):
                self.out.add(breach(
                    "env.read", "environment", f"the guest read the environment, which holds {name} outside the allowlist",
                    target=name, suggestion=suggest("environment", "allow", [name]),
                ))  # fmt: skip

    def record(self, rec: InvocationRecord, log: AuditLog | None) -> None:
        p = self.policy
        code = (
            rec.exit_code
            if rec.exit_code is not None
            else (0 if rec.outcome == "ok" else _exit_asked(log))
        )
        if code is not None and code not in p.exit_codes:
            self.out.add(breach(
                "exit.code", "process-exit", f"the guest exited with {code}; the policy expects {', '.join(map(str, p.exit_codes))}",
                target=str(code), suggestion=suggest("exit", "codes", sorted({*p.exit_codes, code})),
            ))  # fmt: skip
        for value in rec.args:
            if not p.arg_allowed(value):
                self.out.add(breach(
                    "args.value", "environment", f"argument {value!r} is not one the policy allows",
                    target=value, suggestion=suggest("arguments", "allow", [value]),
                ))  # fmt: skip
        self.exfiltration(rec)

    def exfiltration(self, rec: InvocationRecord) -> None:
        env: Mapping[str, str] = (self.options.env or {}) if self.options is not None else {}
        outside = [(n, env[n]) for n in self.policy.env_outside(env) if len(env[n]) >= EXFIL_MIN_CHARS]
        if not outside or not (rec.stdout or rec.stderr):
            return
        output = rec.stdout + b"\n" + rec.stderr
        for name, value in outside:
            if value.encode() in output:
                self.out.add(breach(
                    "env.exfiltration", "environment",
                    f"the value of {name}, a variable outside the allowlist, appears in the guest's output",
                    target=name, severity=Severity.ERROR, details={"variable": name},
                ))  # fmt: skip


def evaluate(
    policy: Policy, rec: InvocationRecord, log: AuditLog | None, options: RunOptions | None = None
) -> list[Finding]:
    """Findings of one run: ``rec`` (exit code, argv, output), ``log`` (the audit; None
    when the run was not audited) and ``options`` (the options it ran with, after
    :meth:`Policy.shape`: its preopens and environment)."""
    if log is not None and _clean(policy, rec, log, options):
        return []
    run = _Run(policy, options)
    if log is not None:
        run.calls(_calls_to_judge(log))
        run.totals(log, rec)
    run.record(rec, log)
    return run.out.done()


# Calls whose own arguments can make a finding, whatever the descriptor: paths, the
# families a policy grants or not, and what changes the descriptor table.
_PER_CALL = frozenset(
    {*p1.PATH_FUNCTIONS, "fd_close", "fd_renumber"}
    | {f for f, section in p1.SECTION.items() if section in ("clocks", "random", "sockets")}
)
_LOOKED_AT = _PER_CALL | p1.FD_WRITES
_STDIO = (0, 1, 2)


def _calls_to_judge(log: AuditLog) -> list[HostCall]:
    """The recorded calls :meth:`_Run.calls` has something to say about, decoded (see
    :func:`_judged`)."""
    keep = _judged(log)
    return log.calls if keep is None else log.calls_at(keep)


def _judged(log: AuditLog) -> list[int] | None:
    """The indices of the recorded calls :meth:`_Run.calls` has something to say
    about (None: all of them). A write to stdout or an ``environ_get`` never makes a
    finding, and most runs make only such calls. A run with a call the thunk flagged
    (denied, killed, over a budget) is judged whole: a budget's finding needs every
    sum before it."""
    if not log.recorded:
        return []
    cols = log.columns()
    if cols.flagged:
        return None
    funcs, fds = cols.func, cols.first_arg
    if _LOOKED_AT.isdisjoint(funcs):
        return []
    keep = [
        i for i, func in enumerate(funcs) if func in _PER_CALL or (func in p1.FD_WRITES and fds[i] not in _STDIO)
    ]
    return None if len(keep) == len(funcs) else keep


def _clean(policy: Policy, rec: InvocationRecord, log: AuditLog, options: RunOptions | None) -> bool:
    """Whether :func:`evaluate` would find nothing in the run, told without building
    its state: true of most runs, and serve judges every request. False whenever a
    check would need the whole evaluation."""
    counts, total = log.counts, log.total
    if log.dropped or not total or log.recorded != total:
        return False
    # A write to a descriptor can name a file only where the run has preopens or opens one.
    preopens = options.dirs if options is not None else policy.filesystem.dirs
    looked_at = _LOOKED_AT if preopens or "sock_accept" in counts else _PER_CALL
    if not looked_at.isdisjoint(counts) or log.flagged():
        return False
    code = rec.exit_code if rec.exit_code is not None else (0 if rec.outcome == "ok" else None)
    if code is None or code not in policy.exit_codes:
        return False
    if policy.arguments is not None and not all(map(policy.arg_allowed, rec.args)):
        return False
    env = options.env if options is not None else None
    if env and policy.env_outside(env):
        return False
    b, totals = policy.budgets, log.totals
    random_limit = policy.random.max_bytes if policy.random is not None else None
    for limit, used in (
        (b.host_calls, totals.get("host_calls", total)),
        (b.output_bytes, totals.get("output_bytes", rec.stdout_bytes + rec.stderr_bytes)),
        (b.open_fds, totals.get("open_fds_peak", 0)),
        (random_limit, totals.get("random_bytes", 0)),
    ):
        if limit is not None and used > limit:
            return False
    return True


def _exit_asked(log: AuditLog | None) -> int | None:
    """The code of the guest's last ``proc_exit``: the runtime refuses some codes (126 and
    over) with a trap, and the record then has none, but the guest did ask for it."""
    for call in reversed(log.calls if log is not None else ()):
        if call.func == "proc_exit":
            return p1.arg(call, "rval")
    return None
