"""Findings as the guard's producers make them, one of each kind, for the events,
OCSF and dashboard tests (built by hand: the producers are other parts of guard)."""

from __future__ import annotations

from wasmscope.guard.findings import EventName, Finding, Outcome, Severity
from wasmscope.runtime.host_calls import HostCall


def passwd_denied() -> Finding:
    """The README's example: a guest opens /etc/passwd under a policy without it."""
    call = HostCall(seq=4, func="path_open", args={"fd": 3, "dirflags": 1, "oflags": 0, "fs_rights_base": 2},
                    errno=76, path="/etc/passwd", denied=True)  # fmt: skip
    return Finding(EventName.DENIED, "fs.path", Severity.ERROR, "path_open of /etc/passwd denied by the policy",
                   "filesystem", Outcome.DENIED, target="/etc/passwd",
                   suggestion='filesystem.read = ["/etc/passwd"]', call=call, details={"mode": "enforce"})  # fmt: skip


def env_violation() -> Finding:
    call = HostCall(seq=1, func="environ_get", args={"environ": 1024, "environ_buf": 2048}, errno=0)
    return Finding(EventName.VIOLATION, "env.variable", Severity.WARN, "read of AWS_SECRET_ACCESS_KEY outside the allowlist",
                   "environment", Outcome.ALLOWED, target="AWS_SECRET_ACCESS_KEY",
                   suggestion='environment.allow = ["AWS_SECRET_ACCESS_KEY"]', call=call)  # fmt: skip


def exit_code() -> Finding:
    call = HostCall(seq=9, func="proc_exit", args={"rval": 3}, errno=None)
    return Finding(EventName.VIOLATION, "exit.code", Severity.WARN, "exit code 3 not in the expected codes",
                   "process-exit", Outcome.ALLOWED, target="3", suggestion="process.exit_codes = [0, 3]", call=call)  # fmt: skip


def socket_denied() -> Finding:
    call = HostCall(seq=2, func="sock_accept", args={"fd": 4, "flags": 0}, errno=76, denied=True)
    return Finding(EventName.DENIED, "sockets.accept", Severity.ERROR, "sock_accept denied", "sockets",
                   Outcome.DENIED, target="fd 4", suggestion="sockets.accept = true", call=call)  # fmt: skip


def random_budget() -> Finding:
    call = HostCall(seq=7, func="random_get", args={"buf": 4096, "buf_len": 1 << 20}, errno=76, nbytes=1 << 20,
                    denied=True, over_budget=True)  # fmt: skip
    return Finding(EventName.LIMIT, "budget.random_bytes", Severity.WARN, "random_get of 1048576 bytes over the budget",
                   "random", Outcome.DENIED, target="1048576", suggestion="budgets.random_bytes = 1048576",
                   call=call, details={"budget": 65536, "used": 1 << 20})  # fmt: skip


def fuel_anomaly() -> Finding:
    return Finding(EventName.ANOMALY, "anomaly.fuel", Severity.WARN, "fuel 2400000 is 9.1 MADs above the median",
                   "resources", Outcome.UNKNOWN, target="fuel",
                   details={"value": 2_400_000, "median": 1_200_000, "score": 9.1, "input_class": "small"})  # fmt: skip


def sequence_anomaly() -> Finding:
    return Finding(EventName.ANOMALY, "anomaly.sequence", Severity.WARN, "a host-call sequence never seen",
                   "sequence", Outcome.UNKNOWN,
                   details={"sequence": ["fd_write", "path_open", "fd_read", "fd_close", "path_open", "fd_read"]})  # fmt: skip


def advisory() -> Finding:
    return Finding(EventName.ADVISORY, "runtime.advisory", Severity.WARN, "wasmtime 25.0.0 has a published advisory",
                   "runtime", target="GHSA-xxxx-yyyy-zzzz", details={"wasmtime": "25.0.0"})  # fmt: skip


def all_findings() -> list[Finding]:
    return [passwd_denied(), env_violation(), exit_code(), socket_denied(), random_budget(), fuel_anomaly(),
            sequence_anomaly(), advisory()]  # fmt: skip
