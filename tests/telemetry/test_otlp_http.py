"""The one OTLP/HTTP client (serve's OTLP sink and the pushed reports) and the one
reader of the OTLP environment, against a real scripted HTTP server."""

from __future__ import annotations

import pytest

from tests.collect.push.scripted import Answer, scripted
from wasmscope.telemetry import _otlp_env
from wasmscope.telemetry._otlp_http import OtlpHttpClient
from wasmscope.telemetry._sinks import OtlpSink
from wasmscope.telemetry.exporters import Destination
from wasmscope.telemetry.stats import ExportCounter
from wasmscope.telemetry.tracecontext import make_sampler

EMPTY_LOGS = b"\x0a\x00"  # an ExportLogsServiceRequest with one empty ResourceLogs


def sink_client(slept: list[float]) -> OtlpHttpClient:
    """The policy of serve's sink: one retry, of errors too, after 0.5 s."""
    return OtlpHttpClient(
        "LOGS", headers={"x-k": "v"}, user_agent="wasmscope-otlp", gzip_above=0, max_retries=1, retry_errors=True,
        backoff=0.5, sleep=slept.append,
    )  # fmt: skip


def test_a_retryable_status_is_retried_after_retry_after() -> None:
    slept: list[float] = []
    client = sink_client(slept)
    with scripted(Answer(503, {"Retry-After": "0.1"}), Answer(200)) as srv:
        sent = client.post(f"{srv.url}/v1/logs", EMPTY_LOGS, 5.0)
        client.close()
    assert sent.ok and sent.attempts == 2 and slept == [0.1] == sent.waited
    assert [g.headers["x-k"] for g in srv.received] == ["v", "v"]
    assert srv.received[0].headers["content-encoding"] == "gzip"


def test_the_sink_raises_after_its_one_retry() -> None:
    sink = OtlpSink(
        Destination("otlp", "test", ExportCounter()), traces_url="", logs_url="", resource_msg=b"", scope_msg=b"",
        headers={},
    )  # fmt: skip
    with scripted(Answer(503), Answer(503), Answer(200)) as srv:
        with pytest.raises(RuntimeError, match="HTTP 503"):
            sink.post(f"{srv.url}/v1/logs", "LOGS", EMPTY_LOGS)
        sink.close()
    assert len(srv.received) == 2


def test_a_refused_connection_is_retried_only_when_asked() -> None:
    from tests.telemetry.otlp_stub import closed_port

    url = f"http://127.0.0.1:{closed_port()}/v1/logs"
    slept: list[float] = []
    sent = sink_client(slept).post(url, EMPTY_LOGS, 5.0)
    assert (
        not sent.ok
        and isinstance(sent.error, ConnectionRefusedError)
        and sent.attempts == 2
        and slept == [0.5]
    )
    once = OtlpHttpClient("LOGS", headers={}, user_agent="t", sleep=slept.append).post(
        url, EMPTY_LOGS, 5.0
    )
    assert once.attempts == 1 and isinstance(once.error, ConnectionRefusedError)


def test_the_otlp_environment_is_read_in_one_place(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("OTEL_EXPORTER_OTLP_HEADERS", "Api-Key=a%20b,bad")
    monkeypatch.setenv("OTEL_EXPORTER_OTLP_LOGS_HEADERS", "k=logs")
    monkeypatch.setenv("OTEL_EXPORTER_OTLP_COMPRESSION", "GZIP")
    monkeypatch.setenv("OTEL_EXPORTER_OTLP_TRACES_TIMEOUT", "2.5")
    monkeypatch.setenv(
        "OTEL_RESOURCE_ATTRIBUTES", "service.instance.id=i-1,deployment.environment=prod"
    )
    monkeypatch.setenv("OTEL_SERVICE_NAME", " shop ")
    monkeypatch.setenv("OTEL_TRACES_SAMPLER", "AlWays_Off")
    assert _otlp_env.headers("TRACES") == {"api-key": "a b"}
    assert _otlp_env.headers("LOGS") == {"k": "logs"}
    assert (
        _otlp_env.gzip_wanted("TRACES") and _otlp_env.timeout() == 2.5 and _otlp_env.timeout_set()
    )
    assert (
        _otlp_env.resource_attributes()["deployment.environment"] == "prod"
        and _otlp_env.instance_id_given()
    )
    assert _otlp_env.service_name() == "shop"
    assert _otlp_env.sampler() == ("always_off", None) and not make_sampler()(1, None)
