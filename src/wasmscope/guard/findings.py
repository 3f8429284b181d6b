"""A security finding: what the policy check, the audit and the detectors report,
and what :mod:`wasmscope.guard.events` turns into OpenTelemetry log records and OCSF.

Every producer (``policy`` evaluation, ``sequences``, ``resources``, ``advisories``,
``sanitize``) returns :class:`Finding` values; none of them knows about telemetry.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from enum import IntEnum, StrEnum
from typing import Any

from wasmscope.runtime.host_calls import HostCall

__all__ = ["EventName", "Finding", "Outcome", "Severity"]


class EventName(StrEnum):
    """The OpenTelemetry event names (``event.name`` / LogRecord EventName)."""

    DENIED = "wasm.policy.denied"  # the policy refused a call or a link (enforce / kill)
    VIOLATION = "wasm.policy.violation"  # the guest did what the policy does not allow (monitor)
    LIMIT = "wasm.limit.exceeded"  # a limit or budget stopped the guest (fuel, memory, output...)
    ANOMALY = "wasm.anomaly.detected"  # a foreign host-call sequence or a resource outlier
    OUTPUT = "wasm.output.sanitized"  # terminal escapes or control bytes in the guest's output
    ADVISORY = "wasm.runtime.advisory"  # the wasmtime in use has a published advisory
    DROPPED = "wasm.audit.dropped"  # the audit ring lost records (count in the finding)


class Severity(IntEnum):
    """OpenTelemetry SeverityNumber values used here."""

    INFO = 9
    WARN = 13
    ERROR = 17
    FATAL = 21


class Outcome(StrEnum):
    """ECS ``event.outcome``-like result of what the guest attempted."""

    DENIED = "denied"  # enforce: the call got an errno
    KILLED = "killed"  # kill: the instance trapped
    ALLOWED = "allowed"  # monitor: it went through, and is reported
    UNKNOWN = "unknown"


@dataclass(frozen=True, slots=True)
class Finding:
    """``rule`` is a stable id (``fs.path``, ``env.variable``, ``budget.random_bytes``,
    ``import.module``, ``anomaly.sequence``, ``anomaly.fuel``...). ``category`` is the
    capability family of ``wasmscope.analysis.capabilities`` (``filesystem``,
    ``environment``, ``clocks``, ``random``, ``sockets``, ``stdio``, ``process-exit``)
    or ``resources`` / ``sequence`` / ``runtime`` for the detectors. ``target`` is what
    was asked for (a path, a variable, an import, a host). ``suggestion`` is one TOML
    policy line that would allow it (``[filesystem] read = ["/data/**"]`` style, as
    ``section.key = value``). ``call`` is the host call behind it, when there is one;
    ``details`` holds extra values, exported as ``wasm.<key>`` attributes."""

    name: EventName
    rule: str
    severity: Severity
    message: str
    category: str
    outcome: Outcome = Outcome.UNKNOWN
    target: str | None = None
    suggestion: str | None = None
    call: HostCall | None = None
    details: Mapping[str, Any] = field(default_factory=dict)

    def to_json(self) -> dict[str, Any]:
        """The finding as JSON (``--json``, reports); the host call as its fields."""
        return {
            "event": str(self.name), "rule": self.rule, "severity": int(self.severity),
            "outcome": str(self.outcome), "category": self.category, "target": self.target,
            "message": self.message, "suggestion": self.suggestion, "details": dict(self.details),
        }  # fmt: skip
