"""A tap in front of the gateway's ``telemetry``: it sees every handler run (and the
guard's findings) before the real telemetry, if any, whose answers it returns.

    gateway.telemetry = MetricsTap(gateway.telemetry, metrics)

The metrics (:mod:`wasmscope.gateway.metrics`) and ``serve --usage``
(:mod:`wasmscope.cost.accounting`) each put one there. What a tap does fails alone: it
is logged, never raised into the request.
"""

from __future__ import annotations

import logging
from collections.abc import Sequence
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from wasmscope.guard.findings import Finding
    from wasmscope.runtime.record import InvocationRecord

__all__ = ["TelemetryTap"]

log = logging.getLogger("wasmscope.gateway")


class TelemetryTap:
    """Subclasses say what they do with a record (:meth:`observe`) and with a run's
    findings (:meth:`observe_findings`); ``what`` names them in the log."""

    what = "the tap"

    def __init__(self, inner: Any) -> None:
        self._inner = inner

    def observe(self, record: InvocationRecord) -> None:
        """Called with each handler run's record, before the telemetry."""

    def observe_findings(self, record: InvocationRecord, findings: Sequence[Finding]) -> None:
        """Called with each run's security findings, before the telemetry."""

    def record_invocation(self, record: InvocationRecord, parent: str | None = None, **kwargs: Any) -> Any:
        try:
            self.observe(record)
        except Exception as exc:  # a tap never fails a request
            log.warning("serve: %s failed for invocation %s: %s", self.what, record.invocation_id, exc)
        if self._inner is None:
            return None
        return self._inner.record_invocation(record, parent=parent, **kwargs)

    def emit_findings(self, record: InvocationRecord, findings: Sequence[Finding], **kwargs: Any) -> int:
        try:
            self.observe_findings(record, findings)
        except Exception as exc:
            log.warning("serve: %s failed for invocation %s: %s", self.what, record.invocation_id, exc)
        if self._inner is None:
            return 0
        return int(self._inner.emit_findings(record, findings, **kwargs))

    def invocation_span(self, invocation_id: str) -> Any:
        return None if self._inner is None else self._inner.invocation_span(invocation_id)

    def __getattr__(self, name: str) -> Any:
        inner = self.__dict__.get("_inner")  # not self._inner: copy and pickle ask before __init__
        if inner is None:
            raise AttributeError(name)
        return getattr(inner, name)
