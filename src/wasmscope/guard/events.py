"""Findings as security events: one OpenTelemetry log record per :class:`Finding`.

A :class:`SecurityEvent` is plain data (no OpenTelemetry object) that both telemetry
pipelines emit (:meth:`wasmscope.telemetry.Telemetry.emit_findings`): the SDK's
``Logger.emit`` and serve's direct pipeline. Each carries

- the event name, in the LogRecord ``EventName`` field and the ``event.name`` attribute;
- the severity number and text of the finding, and its message as a plain body;
- ECS ``event.kind`` (``alert`` for denials, violations and anomalies, ``event``
  otherwise), ``event.category``, ``event.type``, ``event.outcome``, ``event.action``;
- ``security_rule.*`` (the OpenTelemetry registry), ``file.path`` for filesystem targets;
- ``wasm.*``: module, rule, target, suggested policy line, invocation, the host call
  (``wasm.host_call.func/errno/seq/path``, ``wasm.host_call.args.<parameter>``) and
  each ``Finding.details`` entry as ``wasm.<key>``;

and is emitted with the trace and span ids of the invocation's span, so that a
backend shows it in the invocation's trace. The mapping tables are in
``docs/guard-events.md``.
"""

from __future__ import annotations

import json
import time
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from wasmscope.guard.findings import EventName, Finding, Outcome, Severity
from wasmscope.telemetry import mapping
from wasmscope.telemetry import semconv as sc

if TYPE_CHECKING:
    from wasmscope.runtime.record import InvocationRecord

__all__ = [
    "ALERT_NAMES",
    "SecurityEvent",
    "ecs_categories",
    "ecs_outcome",
    "ecs_types",
    "event_time_ns",
    "security_event",
    "security_events",
]

#: The event names whose ECS ``event.kind`` is ``alert``; every other is ``event``.
ALERT_NAMES = frozenset({EventName.DENIED, EventName.VIOLATION, EventName.ANOMALY})

#: ECS ``event.category`` by the finding's capability family (or detector).
_CATEGORIES: dict[str, tuple[str, ...]] = {
    "filesystem": ("file",),
    "environment": ("process",),
    "argv": ("process",),
    "process": ("process",),
    "process-exit": ("process",),
    "stdio": ("process",),
    "sockets": ("network",),
    "network": ("network",),
    "clocks": ("host",),
    "random": ("host",),
    "resources": ("host",),
    "sequence": ("intrusion_detection",),
    "runtime": ("configuration", "vulnerability"),
    "import": ("configuration",),
    "imports": ("configuration",),
    "policy": ("configuration",),
}
#: What each ECS category allows for ``event.type`` beside denied/allowed.
_ACCESS_TYPE = {"file": "access", "process": "access", "network": "connection", "host": "access"}

_ECS_OUTCOMES = {
    Outcome.DENIED: "failure",  # the call got an errno: it failed, for the guest
    Outcome.KILLED: "failure",
    Outcome.ALLOWED: "success",
    Outcome.UNKNOWN: "unknown",
}


@dataclass(frozen=True, slots=True)
class SecurityEvent:
    """One log record to emit: times in unix ns, attributes OTLP-ready (str, int,
    float, bool or tuples of str)."""

    event_name: str
    time_ns: int
    severity_number: int
    severity_text: str
    body: str
    attributes: Mapping[str, Any]


def ecs_categories(finding: Finding) -> tuple[str, ...]:
    """ECS ``event.category`` of a finding: its capability family's, and
    ``intrusion_detection`` for anomalies (first) and for denials and violations (after:
    ECS expects their ``allowed``/``denied`` types in that category)."""
    cats = _CATEGORIES.get(finding.category, ("host",))
    if "intrusion_detection" in cats:
        return cats
    if finding.name is EventName.ANOMALY:
        return ("intrusion_detection", *cats)
    if finding.name in (EventName.DENIED, EventName.VIOLATION):
        return (*cats, "intrusion_detection")
    return cats


def ecs_types(finding: Finding) -> tuple[str, ...]:
    """ECS ``event.type``: what was done (access, connection...) and whether it was
    let through (allowed) or not (denied); ``info`` when neither applies."""
    out: list[str] = []
    cats = ecs_categories(finding)
    if finding.name in (EventName.DENIED, EventName.VIOLATION, EventName.LIMIT):
        access = next((_ACCESS_TYPE[c] for c in cats if c in _ACCESS_TYPE), None)
        if access is not None:
            out.append(access)
        if finding.outcome in (Outcome.DENIED, Outcome.KILLED):
            out.append("denied")
        elif finding.outcome is Outcome.ALLOWED:
            out.append("allowed")
        if finding.outcome is Outcome.KILLED and "process" in cats:
            out.append("end")
    if finding.name is EventName.ANOMALY:
        out.append("indicator")
    return tuple(out) or ("info",)


def ecs_outcome(finding: Finding) -> str:
    return _ECS_OUTCOMES.get(finding.outcome, "unknown")


def event_time_ns(record: InvocationRecord) -> int:
    """When the findings of an invocation happened, as far as is known: no later than
    the end of its ``execute`` phase (else the invocation's end, else now)."""
    execute = record.phase("execute")
    if execute is not None and execute.end_ns:
        return execute.end_ns
    return record.end_ns or time.time_ns()


def _value(v: Any) -> Any:
    """An OTLP attribute value: scalars as they are, sequences of scalars as tuples of
    text, anything else as JSON text."""
    if isinstance(v, bool | int | float | str):
        return v
    if isinstance(v, list | tuple) and all(isinstance(x, str | int | float | bool) for x in v):
        return tuple(str(x) for x in v)
    try:
        return json.dumps(v, sort_keys=True, default=str)
    except (TypeError, ValueError):
        return str(v)


def _severity_text(severity: Severity | int) -> str:
    try:
        return Severity(severity).name
    except ValueError:
        return "INFO"


def security_event(
    finding: Finding, record: InvocationRecord, time_ns: int | None = None
) -> SecurityEvent:
    """The log record of ``finding``, found in the invocation ``record``."""
    m = record.module
    kind = "alert" if finding.name in ALERT_NAMES else "event"
    attrs: dict[str, Any] = {
        sc.EVENT_NAME: str(finding.name),
        sc.EVENT_KIND: kind,
        sc.EVENT_CATEGORY: ecs_categories(finding),
        sc.EVENT_TYPE: ecs_types(finding),
        sc.EVENT_OUTCOME: ecs_outcome(finding),
        sc.EVENT_ACTION: finding.rule,
        sc.SECURITY_RULE_NAME: finding.rule,
        sc.SECURITY_RULE_CATEGORY: finding.category,
        sc.SECURITY_RULE_RULESET_NAME: sc.GUARD_RULESET,
        sc.WASM_RULE_ID: finding.rule,
        sc.WASM_MODULE_SHA256: m.sha256,
        sc.WASM_MODULE_NAME: m.name,
        sc.WASM_INVOCATION_ID: record.invocation_id,
        sc.FAAS_INVOCATION_ID: record.invocation_id,
        sc.FAAS_NAME: mapping.span_name(record),
        sc.WASM_ENTRY: record.entry,
    }
    if finding.target is not None:
        attrs[sc.WASM_TARGET] = finding.target
        if finding.category == "filesystem":
            attrs[sc.FILE_PATH] = finding.target
    if finding.suggestion is not None:
        attrs[sc.WASM_POLICY_SUGGESTION] = finding.suggestion
    call = finding.call
    if call is not None:
        attrs[sc.WASM_HOST_CALL_FUNC] = call.func
        attrs[sc.WASM_HOST_CALL_SEQ] = call.seq
        if call.errno is not None:
            attrs[sc.WASM_HOST_CALL_ERRNO] = call.errno
        if call.path is not None:
            attrs[sc.WASM_HOST_CALL_PATH] = call.path
        for name, value in call.args.items():
            attrs[f"{sc.WASM_HOST_CALL_ARGS}.{name}"] = value
    for key, value in finding.details.items():
        name = f"wasm.{key}"
        if name not in attrs and value is not None:  # the fields above win
            attrs[name] = _value(value)
    at = time_ns if time_ns is not None else event_time_ns(record)
    return SecurityEvent(str(finding.name), at, int(finding.severity), _severity_text(finding.severity),
                         finding.message, attrs)  # fmt: skip


def security_events(record: InvocationRecord, findings: Iterable[Finding]) -> list[SecurityEvent]:
    """The log records of an invocation's findings, in order, at distinct times (a
    backend keeps them in this order)."""
    found = list(findings)
    at = event_time_ns(record)
    n = len(found)
    return [security_event(f, record, at - (n - 1 - i)) for i, f in enumerate(found)]
