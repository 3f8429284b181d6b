"""What the store cannot keep, removed from a decoded request and counted for OTLP's
``partial_success``.

Rejected (each one an item: a span, a data point, a log record):

- a span whose ``trace_id`` is not 16 bytes or is all zeros, whose ``span_id`` is not
  8 bytes or is all zeros (trace.proto: such ids are invalid and both are required),
  whose ``parent_span_id`` is neither empty nor 8 bytes, or one of whose links has
  such a ``trace_id`` or ``span_id``;
- a log record whose ``trace_id`` / ``span_id`` is set but not 16 / 8 bytes (both are
  optional in logs.proto);
- a histogram data point whose ``bucket_counts`` is neither empty nor one longer
  than ``explicit_bounds`` (metrics.proto), and a data point with an exemplar whose
  set ids have the wrong length.

A metric without data (none of gauge, sum, histogram, exponential histogram,
summary) is removed too; it holds no data point, so it is reported as a warning
(``partial_success`` with 0 rejected and a message, as the specification allows).

The common case, nothing wrong, reads only the ids and the list lengths (no
re-serialization, no per-attribute work); the request is rebuilt only when
something must go.
"""

from __future__ import annotations

from collections import Counter
from dataclasses import dataclass
from typing import Any

from wasmscope.collect.receiver.sink import Signal

__all__ = ["Checked", "check"]

_Z16 = bytes(16)
_Z8 = bytes(8)


@dataclass(frozen=True, slots=True)
class Checked:
    """The outcome of :func:`check`: items kept, items rejected, and the message
    for ``partial_success`` ("" when there is nothing to say)."""

    items: int
    rejected: int
    message: str = ""

    @property
    def partial(self) -> bool:
        """True when the answer must carry ``partial_success``."""
        return bool(self.rejected or self.message)


def _span_fault(span: Any) -> str | None:
    t = span.trace_id
    if len(t) != 16 or t == _Z16:
        return "a trace_id that is not 16 bytes or is all zeros"
    s = span.span_id
    if len(s) != 8 or s == _Z8:
        return "a span_id that is not 8 bytes or is all zeros"
    p = span.parent_span_id
    if p and len(p) != 8:
        return "a parent_span_id that is neither empty nor 8 bytes"
    for link in span.links:
        lt, ls = link.trace_id, link.span_id
        if len(lt) != 16 or lt == _Z16 or len(ls) != 8 or ls == _Z8:
            return "a link whose trace_id or span_id is invalid"
    return None


def _spans_ok(spans: Any) -> bool:
    """The fast test of a scope's spans (the common case: all well formed)."""
    for span in spans:
        t = span.trace_id
        s = span.span_id
        p = span.parent_span_id
        if len(t) != 16 or len(s) != 8 or t == _Z16 or s == _Z8 or (p and len(p) != 8):
            return False
        if span.links and _span_fault(span) is not None:
            return False
    return True


def _summary(rejected: int, what: str, reasons: Counter[str]) -> str:
    parts = ", ".join(f"{n} with {reason}" for reason, n in reasons.most_common())
    return f"{rejected} {what} rejected: {parts}"


def _check_traces(request: Any) -> Checked:
    items = 0
    reasons: Counter[str] = Counter()
    for rs in request.resource_spans:
        for ss in rs.scope_spans:
            spans = ss.spans
            items += len(spans)
            if _spans_ok(spans):
                continue
            bad = []
            for i, span in enumerate(spans):
                fault = _span_fault(span)
                if fault is not None:
                    bad.append(i)
                    reasons[fault] += 1
            for i in reversed(bad):
                del spans[i]
    rejected = sum(reasons.values())
    if not rejected:
        return Checked(items, 0)
    return Checked(items - rejected, rejected, _summary(rejected, "spans", reasons))


def _log_fault(record: Any) -> str | None:
    t = record.trace_id
    if t and len(t) != 16:
        return "a trace_id that is neither empty nor 16 bytes"
    s = record.span_id
    if s and len(s) != 8:
        return "a span_id that is neither empty nor 8 bytes"
    return None


def _check_logs(request: Any) -> Checked:
    items = 0
    reasons: Counter[str] = Counter()
    for rl in request.resource_logs:
        for sl in rl.scope_logs:
            records = sl.log_records
            items += len(records)
            bad = []
            for i, record in enumerate(records):
                t = record.trace_id
                s = record.span_id
                if (t and len(t) != 16) or (s and len(s) != 8):
                    bad.append(i)
                    reasons[_log_fault(record) or "invalid ids"] += 1
            for i in reversed(bad):
                del records[i]
    rejected = sum(reasons.values())
    if not rejected:
        return Checked(items, 0)
    return Checked(items - rejected, rejected, _summary(rejected, "log records", reasons))


def _exemplars_ok(point: Any) -> bool:
    for ex in point.exemplars:
        t, s = ex.trace_id, ex.span_id
        if (t and len(t) != 16) or (s and len(s) != 8):
            return False
    return True


def _check_points(kind: str, points: Any, reasons: Counter[str]) -> None:
    bad = []
    histogram = kind == "histogram"
    for i, point in enumerate(points):
        if histogram:
            n = len(point.bucket_counts)
            if n and n != len(point.explicit_bounds) + 1:
                bad.append(i)
                reasons["bucket_counts that is neither empty nor one longer than explicit_bounds"] += 1
                continue
        if kind != "summary" and point.exemplars and not _exemplars_ok(point):
            bad.append(i)
            reasons["an exemplar whose trace_id or span_id has the wrong length"] += 1
    for i in reversed(bad):
        del points[i]


def _check_metrics(request: Any) -> Checked:
    items = 0
    empty = 0
    reasons: Counter[str] = Counter()
    for rm in request.resource_metrics:
        for sm in rm.scope_metrics:
            metrics = sm.metrics
            no_data = []
            for i, metric in enumerate(metrics):
                kind = metric.WhichOneof("data")
                if kind is None:
                    no_data.append(i)
                    continue
                points = getattr(metric, kind).data_points
                items += len(points)
                if kind in ("histogram", "gauge", "sum", "exponential_histogram", "summary"):
                    _check_points(kind, points, reasons)
            for i in reversed(no_data):
                del metrics[i]
            empty += len(no_data)
    rejected = sum(reasons.values())
    messages = []
    if rejected:
        messages.append(_summary(rejected, "data points", reasons))
    if empty:
        messages.append(f"{empty} metrics without data (no gauge, sum, histogram or summary) dropped")
    return Checked(items - rejected, rejected, "; ".join(messages))


_CHECKS = {Signal.TRACES: _check_traces, Signal.METRICS: _check_metrics, Signal.LOGS: _check_logs}


def check(signal: Signal, request: Any) -> Checked:
    """Removes from ``request`` (an ``Export*ServiceRequest`` of ``signal``) what the
    store cannot keep; returns the counts and the ``partial_success`` message."""
    return _CHECKS[signal](request)
