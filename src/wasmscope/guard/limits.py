"""A run that a runtime limit stopped, as a finding (``wasm.limit.exceeded``).

The limits (fuel, the wall-clock timeout, the memory limit, the Wasm stack, the output
cap) are the runtime's, not the policy's: they contain a memory bomb, a CPU spin or
an output flood whatever the policy says, and :func:`limit_findings` reports each
stop with the limit as its target. No suggestion: raising the limit is rarely the fix.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from wasmscope.guard.findings import EventName, Finding, Outcome, Severity
from wasmscope.runtime.record import Outcome as RunOutcome

if TYPE_CHECKING:
    from wasmscope.runtime.record import InvocationRecord

__all__ = ["LIMIT_RULES", "limit_findings"]

#: The run outcome -> (rule, target, what happened).
LIMIT_RULES: dict[str, tuple[str, str, str]] = {
    RunOutcome.OUT_OF_FUEL: ("limit.fuel", "fuel", "the guest ran out of fuel"),
    RunOutcome.TIMEOUT: (
        "limit.timeout",
        "timeout",
        "the guest was stopped at the wall-clock timeout",
    ),
    RunOutcome.OUT_OF_MEMORY: (
        "limit.memory",
        "memory",
        "the guest's memory reached the memory limit",
    ),
    RunOutcome.STACK_OVERFLOW: ("limit.stack", "stack", "the guest exhausted its stack"),
    RunOutcome.OUTPUT_LIMIT: ("limit.output", "output", "the guest wrote more than the output cap"),
}


def limit_findings(record: InvocationRecord) -> list[Finding]:
    """One finding when a runtime limit stopped ``record``'s run, else none."""
    rule = LIMIT_RULES.get(record.outcome)
    if rule is None:
        return []
    name, target, what = rule
    limit = {
        "fuel": record.fuel_limit,
        "timeout": record.timeout,
        "memory": record.memory_limit,
    }.get(target)
    details: dict[str, object] = {"run.outcome": record.outcome}
    if limit is not None:
        details["limit"] = limit
    if record.trap is not None:
        details["trap.kind"] = record.trap.kind
    cause = f": {record.trap.message}" if record.trap is not None else ""
    return [Finding(
        EventName.LIMIT, name, Severity.WARN, f"{what}{cause}", "resources", Outcome.KILLED,
        target=target, details=details,
    )]  # fmt: skip
