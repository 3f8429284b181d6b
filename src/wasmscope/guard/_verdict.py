"""How a policy check turns into a :class:`Finding`: the event name and outcome from
what happened to the call, and the suggested policy line in one spelling."""

from __future__ import annotations

import json
from collections.abc import Mapping
from typing import Any

from wasmscope.guard.findings import EventName, Finding, Outcome, Severity
from wasmscope.runtime.host_calls import HostCall

__all__ = ["breach", "round_up", "suggest"]


def suggest(section: str, key: str, value: Any) -> str:
    """One policy line, ``section.key = value`` with the value in TOML (JSON's
    strings, numbers and arrays of them are TOML too)."""
    return f"{section}.{key} = {json.dumps(value, ensure_ascii=False)}"


def breach(
    rule: str,
    category: str,
    message: str,
    *,
    refused: bool | None = None,
    killed: bool | None = None,
    severity: Severity = Severity.WARN,
    target: str | None = None,
    suggestion: str | None = None,
    call: HostCall | None = None,
    details: Mapping[str, Any] | None = None,
) -> Finding:
    """What the guest (or its host configuration) did outside the policy: DENIED when it
    was refused or killed, VIOLATION when it went through (monitor). ``refused`` and
    ``killed`` default to what the audit recorded of ``call``. ``details`` values are
    scalars (they become ``wasm.<key>`` attributes); None values are left out."""
    if refused is None:
        refused = call is not None and call.denied
    if killed is None:
        killed = call is not None and call.killed
    if killed:
        name, outcome = EventName.DENIED, Outcome.KILLED
        severity = max(severity, Severity.ERROR)
    elif refused:
        name, outcome = EventName.DENIED, Outcome.DENIED
    else:
        name, outcome = EventName.VIOLATION, Outcome.ALLOWED
    return Finding(
        name=name,
        rule=rule,
        severity=severity,
        message=message,
        category=category,
        outcome=outcome,
        target=target,
        suggestion=suggestion,
        call=call,
        details={k: v for k, v in (details or {}).items() if v is not None},
    )


def round_up(n: float) -> int:
    """``n`` rounded up to 1, 2 or 5 times a power of ten (suggested ceilings)."""
    if n <= 1:
        return 1
    scale = 1
    while True:
        for step in (1, 2, 5):
            if step * scale >= n:
                return step * scale
        scale *= 10
