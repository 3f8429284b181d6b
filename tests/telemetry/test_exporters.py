"""Console, JSONL and OTLP/HTTP exporters; failures are counted and logged, never raised."""

from __future__ import annotations

import io
import json
import logging
import subprocess
import sys
from collections.abc import Iterator, Sequence
from pathlib import Path
from typing import Any

import pytest
from opentelemetry.sdk.trace import ReadableSpan
from opentelemetry.sdk.trace.export import SpanExporter, SpanExportResult

from tests.telemetry.otlp_stub import OtlpStub, closed_port, start_stub
from tests.telemetry.records import make_record
from wasmscope.runtime.record import Outcome
from wasmscope.telemetry import Telemetry
from wasmscope.telemetry.exporters import Destination, GuardedSpanExporter
from wasmscope.telemetry.stats import ExportCounter


@pytest.fixture
def stub() -> Iterator[OtlpStub]:
    s = start_stub()
    yield s
    s.close()


# --- JSONL -----------------------------------------------------------------------------
def read_jsonl(path: Path) -> list[dict[str, Any]]:
    return [json.loads(line) for line in path.read_text(encoding="utf-8").splitlines()]


def test_jsonl_file_has_one_object_per_span_log_and_metric_point(tmp_path: Path) -> None:
    out = tmp_path / "telemetry.jsonl"
    with Telemetry.from_options(jsonl=out) as t:
        trace_id = t.record_invocation(make_record(Outcome.TRAP, stderr=b"bad\n"))
    rows = read_jsonl(out)
    spans = [r for r in rows if r["signal"] == "span"]
    logs = [r for r in rows if r["signal"] == "log"]
    metrics = [r for r in rows if r["signal"] == "metric"]
    assert len(spans) == 5 and len(logs) == 3 and metrics
    assert {r["signal"] for r in rows} == {"span", "log", "metric"}
    inv = next(s for s in spans if s["kind"] == "SERVER")
    assert inv["name"] == "hello.wasm"
    assert inv["trace_id"] == trace_id
    assert len(inv["span_id"]) == 16 and int(inv["span_id"], 16)
    assert inv["status"]["code"] == "ERROR"
    assert inv["events"][0]["name"] == "exception"
    assert inv["resource"]["service.name"] == "wasmscope"
    assert all(s["trace_id"] == trace_id for s in spans)
    assert [(r["body"], r["severity_text"]) for r in logs] == [
        ("hello", "INFO"),
        ("world", "INFO"),
        ("bad", "WARN"),
    ]
    assert all(r["trace_id"] == trace_id and r["span_id"] == inv["span_id"] for r in logs)
    names = {m["name"] for m in metrics}
    assert {"faas.errors", "faas.invoke_duration", "wasm.fuel.consumed"} <= names
    hist = next(m for m in metrics if m["name"] == "faas.invoke_duration")
    assert hist["kind"] == "histogram" and hist["count"] == 1 and hist["unit"] == "s"
    assert len(hist["bucket_counts"]) == len(hist["explicit_bounds"]) + 1
    assert t.stats.exported(exporter="jsonl", signal="spans") == 5
    assert t.stats.failed() == 0


def test_jsonl_appends(tmp_path: Path) -> None:
    out = tmp_path / "t.jsonl"
    for _ in range(2):
        with Telemetry.from_options(jsonl=str(out)) as t:
            t.record_invocation(make_record(stdout=b""))
    spans = [r for r in read_jsonl(out) if r["signal"] == "span"]
    assert len(spans) == 10 and len({s["trace_id"] for s in spans}) == 2


def test_jsonl_to_a_stream() -> None:
    buf = io.StringIO()
    with Telemetry.from_options(jsonl=buf) as t:
        t.record_invocation(make_record())
    rows = [json.loads(line) for line in buf.getvalue().splitlines()]
    assert sum(r["signal"] == "span" for r in rows) == 5
    assert not buf.closed  # a stream given by the caller is left open


# --- console ---------------------------------------------------------------------------
def test_console_lines_are_short_and_human() -> None:
    buf = io.StringIO()
    with Telemetry.from_options(console=buf) as t:
        trace_id = t.record_invocation(make_record(Outcome.TRAP, stderr=b"oops\n"))
    lines = buf.getvalue().splitlines()
    span_lines = [line for line in lines if line.startswith("span ")]
    log_lines = [line for line in lines if line.startswith("log ")]
    metric_lines = [line for line in lines if line.startswith("metric ")]
    assert len(span_lines) == 5 and len(log_lines) == 3 and metric_lines
    inv = next(line for line in span_lines if "hello.wasm" in line)
    assert "10.000 ms" in inv and "ERROR" in inv and f"trace={trace_id[:8]}" in inv
    assert "error.type=unreachable" in inv and "unreachable` instruction executed" in inv
    assert "log    WARN  stderr: oops" in log_lines[-1]
    assert any(line.startswith("metric faas.errors{") and "= 1 {error}" in line for line in metric_lines)
    assert all(len(line) < 400 for line in lines)


def test_console_defaults_to_stderr(capsys: pytest.CaptureFixture[str]) -> None:
    with Telemetry.from_options(console=True) as t:
        t.record_invocation(make_record())
    captured = capsys.readouterr()
    assert captured.out == ""
    assert "span   hello.wasm" in captured.err


# --- the guard -------------------------------------------------------------------------
class FlakyExporter(SpanExporter):
    def __init__(self) -> None:
        self.mode = "raise"

    def export(self, spans: Sequence[ReadableSpan]) -> SpanExportResult:
        if self.mode == "raise":
            raise ConnectionError("receiver down")
        if self.mode == "fail":
            return SpanExportResult.FAILURE
        return SpanExportResult.SUCCESS


def test_guard_counts_failures_and_logs_once_per_burst(caplog: pytest.LogCaptureFixture) -> None:
    counter = ExportCounter()
    inner = FlakyExporter()
    guard = GuardedSpanExporter(inner, Destination("flaky", "nowhere", counter))
    batch: Any = [object(), object()]
    with caplog.at_level(logging.INFO, logger="wasmscope.telemetry"):
        for _ in range(5):
            assert guard.export(batch) is SpanExportResult.FAILURE
        inner.mode = "fail"
        assert guard.export(batch) is SpanExportResult.FAILURE
        inner.mode = "ok"
        assert guard.export(batch) is SpanExportResult.SUCCESS
        inner.mode = "raise"
        guard.export(batch)
    stats = counter.snapshot()
    assert stats.failed("spans", "flaky") == 14
    assert stats.exported("spans", "flaky") == 2
    assert "ConnectionError: receiver down" in (stats.last_error or "")
    warnings = [r for r in caplog.records if r.levelno == logging.WARNING]
    assert len(warnings) == 2  # one per burst
    assert "could not export 2 spans to flaky nowhere" in warnings[0].getMessage()
    assert any("works again (12 items lost" in r.getMessage() for r in caplog.records)


def test_dead_otlp_receiver_is_counted_logged_and_never_raised(caplog: pytest.LogCaptureFixture) -> None:
    port = closed_port()
    with caplog.at_level(logging.DEBUG):
        t = Telemetry.from_options(otlp=f"http://127.0.0.1:{port}", otlp_timeout=1.0, in_memory=True)
        trace_id = t.record_invocation(make_record(stderr=b"e\n"))
        t.record_invocation(make_record(invocation_id="inv-2"))
        assert len(trace_id) == 32
        t.shutdown(timeout=10)
    s = t.stats
    assert s.failed("spans", "otlp") == 10
    assert s.failed("logs", "otlp") == 5
    assert s.failed("metrics", "otlp") > 0
    assert s.exported(exporter="otlp") == 0
    assert s.exported("spans", "memory") == 10 and s.failed(exporter="memory") == 0
    ours = [r for r in caplog.records if r.name == "wasmscope.telemetry" and r.levelno >= logging.WARNING]
    bursts = [r for r in ours if "could not export" in r.getMessage()]
    assert len(bursts) == 1 and f"127.0.0.1:{port}" in bursts[0].getMessage()
    assert any("items could not be exported to otlp" in r.getMessage() for r in ours)
    # The SDK exporters' own warnings (SDK >= 1.40 logs and retries instead of
    # raising) are turned into DEBUG records on our logger.
    sdk_loud = [
        r for r in caplog.records if r.name.startswith("opentelemetry.exporter") and r.levelno >= logging.WARNING
    ]
    assert sdk_loud == []


def test_otlp_env_endpoint_is_used_with_otlp_true(monkeypatch: pytest.MonkeyPatch) -> None:
    port = closed_port()
    monkeypatch.setenv("OTEL_EXPORTER_OTLP_ENDPOINT", f"http://127.0.0.1:{port}")
    t = Telemetry.from_options(otlp=True, otlp_timeout=0.5)
    t.record_invocation(make_record())
    t.shutdown(timeout=10)
    assert t.stats.failed("spans", "otlp") == 5
    assert t.destinations == {"otlp": f"http://127.0.0.1:{port}"}


# --- OTLP on the wire (a stub receiver) ---------------------------------------------------
def test_otlp_sends_spans_logs_metrics_with_env_headers(
    stub: OtlpStub, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("OTEL_EXPORTER_OTLP_HEADERS", "x-api-key=secret,x-tenant=lab")
    with Telemetry.from_options(otlp=stub.url) as t:
        trace_id = t.record_invocation(make_record(Outcome.TRAP, stderr=b"oops\n"))
    assert t.stats.failed() == 0
    assert t.stats.exported("spans", "otlp") == 5
    assert {r.path for r in stub.received} == {"/v1/traces", "/v1/logs", "/v1/metrics"}
    assert all(r.headers.get("x-api-key") == "secret" for r in stub.received)
    assert all(r.headers.get("x-tenant") == "lab" for r in stub.received)

    spans = [
        s
        for req in stub.of("/v1/traces")
        for rs in req.resource_spans
        for ss in rs.scope_spans
        for s in ss.spans
    ]
    inv = next(s for s in spans if s.name == "hello.wasm")
    assert inv.trace_id.hex() == trace_id
    assert inv.kind == 2  # SPAN_KIND_SERVER
    assert inv.status.code == 2  # STATUS_CODE_ERROR
    attrs = {a.key: a.value for a in inv.attributes}
    assert attrs["faas.coldstart"].bool_value is True
    assert attrs["wasm.fuel.consumed"].int_value == 12345
    assert attrs["wasm.trap.code"].string_value == "unreachable"
    assert inv.events[0].name == "exception"
    res = {a.key: a.value.string_value for a in stub.of("/v1/traces")[0].resource_spans[0].resource.attributes}
    assert res["service.name"] == "wasmscope"

    logs = [
        lr
        for req in stub.of("/v1/logs")
        for rl in req.resource_logs
        for sl in rl.scope_logs
        for lr in sl.log_records
    ]
    assert [lr.body.string_value for lr in logs] == ["hello", "world", "oops"]
    assert all(lr.trace_id.hex() == trace_id and lr.span_id == inv.span_id for lr in logs)

    metrics = {
        m.name: m
        for req in stub.of("/v1/metrics")
        for rm in req.resource_metrics
        for sm in rm.scope_metrics
        for m in sm.metrics
    }
    assert metrics["faas.errors"].sum.data_points[0].as_int == 1
    assert metrics["faas.invoke_duration"].histogram.data_points[0].count == 1
    assert metrics["faas.invoke_duration"].unit == "s"


def test_one_metric_reader_per_temporality(
    stub: OtlpStub, monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    monkeypatch.setenv("OTEL_EXPORTER_OTLP_METRICS_TEMPORALITY_PREFERENCE", "delta")
    out = tmp_path / "t.jsonl"
    with Telemetry.from_options(otlp=stub.url, jsonl=out, console=io.StringIO()) as t:
        t.record_invocation(make_record())
        t.force_flush()
        t.record_invocation(make_record(invocation_id="inv-2"))
    jsonl = [r for r in read_jsonl(out) if r.get("name") == "faas.invocations"]
    assert [r["value"] for r in jsonl] == [1, 2]
    assert {r["temporality"] for r in jsonl} == {"cumulative"}
    sums = [
        m.sum
        for req in stub.of("/v1/metrics")
        for rm in req.resource_metrics
        for sm in rm.scope_metrics
        for m in sm.metrics
        if m.name == "faas.invocations"
    ]
    assert [s.data_points[0].as_int for s in sums] == [1, 1]
    assert {s.aggregation_temporality for s in sums} == {1}  # DELTA


def test_interpreter_exit_flushes_without_an_explicit_shutdown(tmp_path: Path) -> None:
    out = tmp_path / "t.jsonl"
    code = (
        "import sys\n"
        "from tests.telemetry.records import make_record\n"
        "from wasmscope.telemetry import Telemetry\n"
        f"t = Telemetry.from_options(jsonl={str(out)!r}, otlp='http://127.0.0.1:{closed_port()}')\n"
        "t.record_invocation(make_record())\n"
    )
    proc = subprocess.run(
        [sys.executable, "-c", code], cwd=Path(__file__).parents[2], capture_output=True, text=True, timeout=60
    )
    assert proc.returncode == 0, proc.stderr
    assert sum(r["signal"] == "span" for r in read_jsonl(out)) == 5
    assert "could not export" in proc.stderr  # logged once, on stderr by default
    assert proc.stderr.count("could not export") == 1
