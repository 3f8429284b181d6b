"""A module's imports against a policy, before anything runs (``wasmscope guard check``).

Every import of a core module (``module.name``) and every import of a component
(its WIT interfaces and functions) is put into its capability family
(:mod:`wasmscope.analysis.capabilities`) and given a verdict:

* ``deny``: an ``[imports] deny`` glob names it, or it is not WASI and no
  ``[imports] allow`` glob names it (the host would have to provide it), or
  ``[imports] strict`` is on and no section grants its family: the module is
  refused at link time in ``enforce`` and ``kill`` (a ``wasm.policy.denied``
  finding; reported as a violation in ``monitor``);
* ``ungranted``: WASI, but no section grants its family: it links, and every
  call is refused at run time in ``enforce`` (a warning);
* ``allow``: an ``[imports] allow`` glob or a granting section.

Only the import section (or the component's import sections) is decoded, so even
the 69 MB yosys module is checked in milliseconds.
"""

from __future__ import annotations

import os
from dataclasses import dataclass

from wasmscope._files import read_file
from wasmscope.analysis.capabilities import (
    WASI_PREVIEW1_MODULES,
    classify_import,
    classify_interface,
)
from wasmscope.binary.component import Component, decode
from wasmscope.guard import _preview1 as p1
from wasmscope.guard._verdict import breach, suggest
from wasmscope.guard.findings import EventName, Finding, Severity
from wasmscope.guard.policy import Policy

__all__ = ["ImportVerdict", "check_imports", "import_verdicts", "refuses"]

# Families every policy grants (calls on held descriptors, exit, argv/env, polling).
_ALWAYS_FAMILIES = frozenset(
    {"stdio", "process-exit", "environment", "io", "poll", "scheduling", "linking", "wasi:cli"}
)
# Component families and the policy section that grants them.
_FAMILY_SECTION = {
    "filesystem": "filesystem",
    "clocks": "clocks",
    "random": "random",
    "sockets": "sockets",
    "http": "sockets",
}


@dataclass(frozen=True, slots=True)
class ImportVerdict:
    """One import: ``qualified`` (``module.name`` or the interface), its family, and
    ``verdict`` (``allow``, ``ungranted`` or ``deny``) with the reason."""

    qualified: str
    kind: str
    family: str
    verdict: str
    reason: str
    section: str | None = None  # the policy section that grants its family, if one does


def _imports(data: bytes) -> tuple[str, list[tuple[str, str, str]]]:
    """(``module`` / ``component``, [(module, name, kind)]); a component's imports have
    the interface or function name as module and an empty name."""
    obj = decode(data)
    if isinstance(obj, Component):
        return "component", [(i.name, "", i.kind) for i in obj.imports]
    kinds = {0: "func", 1: "table", 2: "memory", 3: "global", 4: "tag"}
    return "module", [(i.module, i.name, kinds.get(i.kind, "func")) for i in obj.imports]


def _verdict(policy: Policy, module: str, name: str, kind: str, component: bool) -> ImportVerdict:
    qualified = f"{module}.{name}" if name else module
    if component:
        family = classify_interface(module) or f"module:{module}"
    else:
        family = classify_import(module, name)
        if family.startswith("module:") and kind in ("memory", "table", "global"):
            family = "linking"

    def verdict(word: str, reason: str, section: str | None = None) -> ImportVerdict:
        if word == "ungranted" and policy.imports.strict:
            word, reason = "deny", reason + " ([imports] strict)"
        return ImportVerdict(qualified, kind, family, word, reason, section)

    listed = policy.import_verdict(qualified)
    if listed is not None:
        return verdict(listed, f"an [imports] {listed} glob names it")
    section: str | None
    if not component and module in WASI_PREVIEW1_MODULES:
        section = p1.SECTION.get(name)
        if section is None:
            return verdict("ungranted", f"{name} is not a WASI preview 1 function")
        if section == p1.ALWAYS:
            return verdict("allow", "always granted")
    elif family in _ALWAYS_FAMILIES:
        return verdict("allow", "always granted")
    elif module.startswith("wasi:"):
        # a component's wasi:http/outgoing-handler is an outbound connection: [sockets]
        section = _FAMILY_SECTION.get(family)
        if section is None:
            return verdict("ungranted", "no section grants this WASI interface")
    else:
        return verdict("deny", "not WASI, and no [imports] allow glob names it")
    if policy.granted(section):
        return verdict("allow", f"granted by [{section}]", section)
    return verdict("ungranted", f"no [{section}] section grants it", section)


def _read(module: bytes | str | os.PathLike[str]) -> bytes:
    if isinstance(module, bytes | bytearray | memoryview):
        return bytes(module)
    return read_file(module, "file")


def import_verdicts(
    module: bytes | str | os.PathLike[str], policy: Policy
) -> tuple[str, list[ImportVerdict]]:
    """(``module`` / ``component``, the verdict of every import, in order). Raises
    :class:`~wasmscope.errors.DecodeError` for a malformed binary."""
    kind, imports = _imports(_read(module))
    component = kind == "component"
    return kind, [_verdict(policy, m, n, k, component) for m, n, k in imports]


def check_imports(
    module: bytes | str | os.PathLike[str], policy: Policy, mode: str | None = None
) -> list[Finding]:
    """The findings of a module's imports under ``policy`` (``mode``: the policy's own
    by default). A ``wasm.policy.denied`` finding means the caller refuses to link it
    (:func:`refuses`)."""
    chosen = policy.mode if mode is None else mode
    refuse = chosen != "monitor"
    _, verdicts = import_verdicts(module, policy)
    findings: list[Finding] = []
    for v in verdicts:
        if v.verdict == "allow":
            continue
        if v.verdict == "deny":
            findings.append(breach(
                "import.denied", v.family if not v.family.startswith("module:") else "linking",
                f"import {v.qualified} ({v.family}) is outside the policy: {v.reason}"
                + ("; the module is refused" if refuse else ""),
                refused=refuse, severity=Severity.ERROR if refuse else Severity.WARN, target=v.qualified,
                suggestion=suggest("imports", "allow", [v.qualified]), details={"family": v.family, "kind": v.kind},
            ))  # fmt: skip
        else:
            line = _grant_line(v.section or v.family)
            findings.append(breach(
                "import.ungranted", v.family,
                f"import {v.qualified} ({v.family}): {v.reason}"
                + ("; its calls will be refused at run time" if refuse else ""),
                refused=False, severity=Severity.WARN if refuse else Severity.INFO, target=v.qualified,
                suggestion=line, details={"family": v.family, "kind": v.kind},
            ))  # fmt: skip
    return findings


def _grant_line(family: str) -> str | None:
    return {
        "filesystem": suggest("filesystem", "dirs", ["/data:ro"]),
        "clocks": suggest("clocks", "allow", ["monotonic", "realtime"]),
        "random": suggest("random", "max_bytes", "4KiB"),
        "sockets": suggest("sockets", "allow", ["HOST:PORT"]),
    }.get(family)


def refuses(findings: list[Finding]) -> bool:
    """Whether the static check refuses to link the module."""
    return any(f.name == EventName.DENIED and f.rule == "import.denied" for f in findings)
