"""A :class:`~wasmscope.guard.policy.Policy` written as TOML, with a comment on every
key (``Policy.to_toml``); ``parse_policy`` reads it back to the same policy."""

from __future__ import annotations

import json
from collections.abc import Mapping
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from wasmscope.guard.policy import Policy

__all__ = ["format_duration", "format_size", "policy_toml"]

_HELP: dict[str, str] = {
    "mode": "monitor: record and report; enforce: refused calls get notcapable; kill: trap the guest",
    "filesystem.dirs": "preopens the guest may have, by guest path; :ro read-only, :rw read-write",
    "filesystem.read": "what it may open for reading (* one path segment, ** any depth)",
    "filesystem.write": "what it may create, write, truncate, rename or delete",
    "environment.allow": "variables (names or globs) the guest may see; the others are removed in enforce",
    "arguments.allow": "globs each argument after argv[0] must match",
    "clocks.allow": "clocks it may read: realtime, monotonic, process_cputime, thread_cputime",
    "clocks.max_calls": "clock calls per invocation (more is a tight clock loop)",
    "clocks.max_sleep": "longest single poll_oneoff (a sleep)",
    "random.max_bytes": "random_get bytes per invocation",
    "sockets.allow": "outbound hosts (HOST:PORT globs), for components",
    "exit.codes": "exit codes a run may end with",
    "budgets.host_calls": "WASI calls per invocation",
    "budgets.output_bytes": "bytes written to stdout and stderr per invocation",
    "budgets.open_fds": "descriptors the guest may hold open at once",
    "imports.allow": "imports linked whatever their family (module.name or interface globs)",
    "imports.deny": "imports refused at link time in enforce and kill",
    "imports.strict": "true: an import of a family no section grants is refused too",
}

_UNITS = (("GiB", 1 << 30), ("MiB", 1 << 20), ("KiB", 1 << 10))


def format_size(n: int) -> str | int:
    """``"64KiB"`` when exact in a binary unit, else the plain number."""
    for unit, factor in _UNITS:
        if n >= factor and n % factor == 0:
            return f"{n // factor}{unit}"
    return n


def format_duration(seconds: float) -> str:
    if seconds < 1:
        return f"{round(seconds * 1000, 3):g}ms"
    return f"{seconds:g}s"


def _value(v: Any) -> str:
    if isinstance(v, bool):
        return "true" if v else "false"
    if isinstance(v, tuple):
        v = list(v)
    return json.dumps(v, ensure_ascii=False)


def policy_toml(
    policy: Policy, comments: bool = True, notes: Mapping[str, str] | None = None
) -> str:
    """The TOML text of ``policy``; ``notes`` adds a comment to a key (``"clocks.max_calls"``)."""
    notes = notes or {}
    lines: list[str] = []

    def key(section: str | None, name: str, value: Any) -> None:
        full = f"{section}.{name}" if section else name
        if comments:
            lines.append(f"# {_HELP[full]}")
            if full in notes:
                lines.append(f"# ({notes[full]})")
        lines.append(f"{name} = {_value(value)}")

    def section(name: str) -> None:
        lines.append("")
        lines.append(f"[{name}]")

    if comments:
        lines.append("# wasmscope guard policy (reference: docs/guard.md)")
    key(None, "mode", policy.mode)
    fs = policy.filesystem
    if fs.dirs:
        section("filesystem")
        key("filesystem", "dirs", [d.text for d in fs.dirs])
        if fs.read is not None:
            key("filesystem", "read", fs.read)
        if fs.write is not None:
            key("filesystem", "write", fs.write)
    if policy.environment:
        section("environment")
        key("environment", "allow", policy.environment)
    if policy.arguments is not None:
        section("arguments")
        key("arguments", "allow", policy.arguments)
    if policy.clocks is not None:
        section("clocks")
        key("clocks", "allow", policy.clocks.allow)
        if policy.clocks.max_calls is not None:
            key("clocks", "max_calls", policy.clocks.max_calls)
        if policy.clocks.max_sleep is not None:
            key("clocks", "max_sleep", format_duration(policy.clocks.max_sleep))
    if policy.random is not None:
        section("random")
        if policy.random.max_bytes is not None:
            key("random", "max_bytes", format_size(policy.random.max_bytes))
    if policy.sockets:
        section("sockets")
        key("sockets", "allow", policy.sockets)
    section("exit")
    key("exit", "codes", policy.exit_codes)
    b = policy.budgets
    if (b.host_calls, b.output_bytes, b.open_fds) != (None, None, None):
        section("budgets")
        if b.host_calls is not None:
            key("budgets", "host_calls", b.host_calls)
        if b.output_bytes is not None:
            key("budgets", "output_bytes", format_size(b.output_bytes))
        if b.open_fds is not None:
            key("budgets", "open_fds", b.open_fds)
    imp = policy.imports
    if imp.allow or imp.deny or imp.strict:
        section("imports")
        if imp.allow:
            key("imports", "allow", imp.allow)
        if imp.deny:
            key("imports", "deny", imp.deny)
        if imp.strict:
            key("imports", "strict", True)
    return "\n".join(lines) + "\n"
