"""``serve --usage``: the usage of every request served, tallied as it happens.

Per request, one tuple of ten numbers and strings is appended to a list (about a
microsecond; ``list.append`` needs no lock under the GIL). numpy is imported only when
the tally becomes a :class:`~wasmscope.cost.records.UsageTable`, at shutdown.

    account = UsageAccount()
    gateway.telemetry = UsageTap(gateway.telemetry, account)   # sees every handler run
    ...
    table = account.table()

:class:`UsageTap` stands in front of the gateway's ``telemetry`` (as the metrics' tap
does): the record goes to the account, then to the real telemetry, if any.
"""

from __future__ import annotations

import json
import logging
import os
from collections.abc import Sequence
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from wasmscope.cost.records import UsageTable
    from wasmscope.guard.findings import Finding
    from wasmscope.runtime.record import InvocationRecord

__all__ = ["UsageAccount", "UsageTap"]

log = logging.getLogger("wasmscope.gateway")

_Row = tuple[Any, ...]  # route, module name, sha256, entry, start, end, cpu, fuel, peak, limit, host calls, outcome


class UsageAccount:
    """The usage of the invocations added so far."""

    def __init__(self) -> None:
        self._rows: list[_Row] = []

    def __len__(self) -> int:
        return len(self._rows)

    def add(self, record: InvocationRecord) -> None:
        host: float | None = None
        if record.host_calls is not None:
            host = float(sum(record.host_calls.values()))
        elif record.audit is not None:
            host = float(record.audit.total)
        m = record.module
        self._rows.append((record.attributes.get("http.route"), m.name, m.sha256, record.entry, record.start_ns,
                           record.end_ns, record.cpu_seconds, record.fuel_consumed, record.peak_memory,
                           record.memory_limit, host, record.outcome))  # fmt: skip

    def table(self) -> UsageTable:
        """The tally as a usage table (imports numpy)."""
        from wasmscope.cost.records import _Builder, function_of

        b = _Builder()
        nan = float("nan")
        for route, name, sha, entry, start, end, cpu, fuel, peak, limit, host, outcome in self._rows:
            b.add(function_of(route, name, entry), sha or name, start, end, cpu, fuel, peak, limit,
                  nan if host is None else host, outcome)  # fmt: skip
        return b.table()

    def write_jsonl(self, path: str | os.PathLike[str]) -> None:
        """The tally as JSON lines of records that :func:`~wasmscope.cost.records.read_usage`
        reads (what each worker of ``serve --workers N`` hands the parent)."""
        with open(path, "w", encoding="utf-8") as f:
            for route, name, sha, entry, start, end, cpu, fuel, peak, limit, host, outcome in self._rows:
                doc: dict[str, Any] = {
                    "module": {"name": name, "sha256": sha}, "entry": entry, "start_ns": start, "end_ns": end,
                    "cpu_seconds": cpu, "fuel_consumed": fuel, "peak_memory": peak, "memory_limit": limit,
                    "outcome": outcome, "attributes": {"http.route": route} if route else {},
                }  # fmt: skip
                if host is not None:
                    doc["audit"] = {"total": host}
                f.write(json.dumps(doc, separators=(",", ":")) + "\n")


class UsageTap:
    """Stands in for the gateway's ``telemetry``: adds each record to the account, then
    hands it to the real telemetry (if any), whose answer it returns."""

    def __init__(self, inner: Any, account: UsageAccount) -> None:
        self._inner = inner
        self.account = account

    def record_invocation(self, record: InvocationRecord, parent: str | None = None, **kwargs: Any) -> Any:
        try:
            self.account.add(record)
        except Exception as exc:  # accounting never fails a request
            log.warning("serve: usage accounting failed for invocation %s: %s", record.invocation_id, exc)
        if self._inner is None:
            return None
        return self._inner.record_invocation(record, parent=parent, **kwargs)

    def emit_findings(self, record: InvocationRecord, findings: Sequence[Finding], **kwargs: Any) -> int:
        if self._inner is None:
            return 0
        return int(self._inner.emit_findings(record, findings, **kwargs))

    def invocation_span(self, invocation_id: str) -> Any:
        return None if self._inner is None else self._inner.invocation_span(invocation_id)

    def __getattr__(self, name: str) -> Any:
        inner = self.__dict__.get("_inner")
        if inner is None:
            raise AttributeError(name)
        return getattr(inner, name)
