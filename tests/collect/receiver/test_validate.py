"""validate: what the store cannot keep is removed and counted, the rest is left as
it was (item counts for the sink, messages for partial_success)."""

from __future__ import annotations

from typing import Any

from opentelemetry.proto.collector.metrics.v1.metrics_service_pb2 import ExportMetricsServiceRequest

from tests.collect.receiver.otlp_data import (
    child_spans_request,
    logs_request,
    metrics_request,
    trace_request,
)
from wasmscope.collect.receiver.sink import Signal
from wasmscope.collect.receiver.validate import check


def spans(req: Any) -> list[Any]:
    return [s for rs in req.resource_spans for ss in rs.scope_spans for s in ss.spans]


def test_valid_requests_are_untouched_and_counted() -> None:
    for signal, req, items in ((Signal.TRACES, trace_request(100), 100), (Signal.TRACES, child_spans_request(), 3),
                               (Signal.METRICS, metrics_request(), 5), (Signal.LOGS, logs_request(), 8)):  # fmt: skip
        before = req.SerializeToString()
        checked = check(signal, req)
        assert (checked.items, checked.rejected, checked.message, checked.partial) == (items, 0, "", False)
        assert req.SerializeToString() == before


def test_spans_with_bad_ids_are_removed_and_counted() -> None:
    req = trace_request(10)
    s = spans(req)
    s[1].trace_id = b"\x01" * 15
    s[2].trace_id = bytes(16)  # all zeros: invalid
    s[3].span_id = b""
    s[4].span_id = bytes(8)
    s[5].parent_span_id = b"\x01" * 4
    s[6].links.add(trace_id=b"\x01" * 16, span_id=b"\x02" * 7)
    s[7].parent_span_id = b"\x01" * 8  # fine
    s[8].links.add(trace_id=b"\x01" * 16, span_id=b"\x02" * 8)  # fine
    keep = [x.SerializeToString() for i, x in enumerate(s) if i not in (1, 2, 3, 4, 5, 6)]
    checked = check(Signal.TRACES, req)
    assert (checked.items, checked.rejected) == (4, 6)
    assert [x.SerializeToString() for x in spans(req)] == keep
    assert checked.message.startswith("6 spans rejected: ")
    assert "2 with a trace_id that is not 16 bytes or is all zeros" in checked.message
    assert "1 with a link whose trace_id or span_id is invalid" in checked.message


def test_all_spans_rejected_leaves_nothing_to_deliver() -> None:
    req = trace_request(3)
    for s in spans(req):
        s.trace_id = b"short"
    checked = check(Signal.TRACES, req)
    assert (checked.items, checked.rejected) == (0, 3)
    assert spans(req) == []


def test_log_records_with_bad_set_ids_are_removed() -> None:
    req = logs_request()
    records = req.resource_logs[0].scope_logs[0].log_records
    records[1].trace_id = b"\x01" * 8
    records[3].span_id = b"\x01" * 16
    records[5].trace_id = b""  # no ids at all is fine for a log record
    n = len(records)
    checked = check(Signal.LOGS, req)
    assert (checked.items, checked.rejected) == (n - 2, 2)
    assert len(records) == n - 2
    assert "log records rejected" in checked.message


def test_metric_without_data_is_dropped_with_a_warning_and_bad_points_are_rejected() -> None:
    req = metrics_request()
    metrics = req.resource_metrics[0].scope_metrics[0].metrics
    metrics.add(name="no.data")
    bad = metrics[2].histogram.data_points.add(count=1, bucket_counts=[1, 0], explicit_bounds=[1.0, 2.0])
    assert bad.count == 1
    metrics[1].sum.data_points.add(as_int=1).exemplars.add(span_id=b"\x01" * 3)
    checked = check(Signal.METRICS, req)
    assert (checked.items, checked.rejected) == (5, 2)
    assert [m.name for m in metrics] == ["wasm.memory.peak", "faas.invocations", "faas.invoke_duration",
                                         "wasm.fuel.consumed", "latency.summary"]  # fmt: skip
    assert len(metrics[2].histogram.data_points) == 1
    assert "2 data points rejected" in checked.message
    assert "1 metrics without data" in checked.message


def test_only_a_metric_without_data_is_a_warning_with_zero_rejected() -> None:
    req = ExportMetricsServiceRequest()
    req.resource_metrics.add().scope_metrics.add().metrics.add(name="empty")
    checked = check(Signal.METRICS, req)
    assert (checked.items, checked.rejected, checked.partial) == (0, 0, True)
    assert checked.message
