"""telemetry/reports.py: the records (decoded with opentelemetry-proto), the profile
body, the URL, and push() against real HTTP servers on 127.0.0.1 (the telemetry tests'
OTLP stub, a scripted server for statuses and retries, servers that hang up or never
answer). Sleeps and clocks are injected: no test waits for a Retry-After."""

from __future__ import annotations

import email.utils
import hashlib
import importlib.util
import json
from pathlib import Path
from typing import Any

import pytest
from opentelemetry.proto.collector.logs.v1.logs_service_pb2 import (
    ExportLogsPartialSuccess,
    ExportLogsServiceResponse,
)

from tests.analysis.tools import TINY_MODULE
from tests.collect.push.scripted import Answer, raw_server, scripted
from tests.collect.push.support import attrs_of, the_record
from tests.telemetry.otlp_stub import closed_port, start_stub
from wasmscope.profile.model import LOST_NAME, Profile
from wasmscope.profile.sampler import LOST
from wasmscope.telemetry import reports
from wasmscope.telemetry import semconv as sc


def inspect_doc() -> dict[str, Any]:
    from wasmscope.analysis.report import build_report
    from wasmscope.binary.component import decode

    return build_report(decode(TINY_MODULE), path="tiny.wasm").to_json()


def inspect_record(clock: int = 1_700_000_000_123_456_789) -> reports.ReportRecord:
    sha = hashlib.sha256(TINY_MODULE).hexdigest()
    return reports.inspect_report_record(inspect_doc(), sha256=sha, name="tiny.wasm", clock=lambda: clock)


def toy_profile() -> Profile:
    # 0: an import; 1 main -> 2 fib (recursive) -> 3 leaf; 4 "dup" twice (5 too)
    names = ["wasi_snapshot_preview1.fd_write", "main", "fib", "leaf", "dup", "dup"]
    samples = {
        (1, 2, 2, 3): 5,
        (1, 2): 3,
        (1, 0): 2,
        (LOST, 2, 3): 1,
        (1, 4): 1,
        (1, 5): 1,
    }
    return Profile(
        module="toy.wasm", sha256="ab" * 32, names=names, n_imported=1,
        counts=[7, 1, 177, 40, 3, 0], samples=samples, duration_ns=26_000_000, rate=1000.0,
        empty_samples=2,
    )  # fmt: skip


# --- records -------------------------------------------------------------------------------------
def test_inspect_record_decodes_as_otlp() -> None:
    stub = start_stub()
    try:
        result = reports.push(stub.url, [inspect_record()], resource={"service.name": "svc", "x": 1})
        assert result.ok and result.status == 200 and result.attempts == 1 and not result.warning()
        (msg,) = stub.of("/v1/logs")
    finally:
        stub.close()
    assert attrs_of(msg.resource_logs[0].resource.attributes) == {"service.name": "svc", "x": 1}
    lr = the_record(msg)
    assert attrs_of(lr.attributes) == {
        sc.EVENT_NAME: sc.EVENT_INSPECT_REPORT,
        sc.WASM_MODULE_SHA256: hashlib.sha256(TINY_MODULE).hexdigest(),
        sc.WASM_MODULE_NAME: "tiny.wasm",
        sc.WASM_MODULE_SIZE: len(TINY_MODULE),
        sc.WASM_MODULE_KIND: "module",
    }
    assert lr.severity_number == 9 and lr.severity_text == "INFO"
    assert lr.time_unix_nano == lr.observed_time_unix_nano == 1_700_000_000_123_456_789
    assert lr.trace_id == b"" and lr.span_id == b"" and lr.flags == 0
    assert json.loads(lr.body.string_value) == inspect_doc()


def test_profile_body_counts_and_stacks() -> None:
    body = reports.profile_body(toy_profile())
    assert body["format"] == "wasmscope.profile/1" and body["unit"] == "samples"
    assert body["module"] == {"name": "toy.wasm", "sha256": "ab" * 32}
    assert body["samples"] == 13  # stacks only: the 2 empty samples are not in the percentages
    assert body["interval_s"] == pytest.approx(26e-3 / 15)
    fns = {f["name"]: f for f in body["functions"]}
    # exact calls from the counters; self = leaf samples; total once per sample even when recursive
    assert fns["fib"] == {"name": "fib", "calls": 177, "self": 3, "total": 9}
    assert fns["leaf"] == {"name": "leaf", "calls": 40, "self": 6, "total": 6}
    assert fns["main"] == {"name": "main", "calls": 1, "self": 0, "total": 12}
    assert fns["wasi_snapshot_preview1.fd_write"]["calls"] == 7
    assert fns["dup#4"]["calls"] == 3 and fns["dup#5"] == {"name": "dup#5", "calls": 0, "self": 1, "total": 1}
    assert LOST_NAME not in fns
    assert [f["name"] for f in body["functions"]][:2] == ["leaf", "fib"]  # ranked as the table
    assert sum(f["self"] for f in body["functions"]) == body["samples"] - 0
    assert body["stacks"][0] == {"frames": ["main", "fib", "fib", "leaf"], "value": 5}
    assert {"frames": [LOST_NAME, "fib", "leaf"], "value": 1} in body["stacks"]
    assert sum(s["value"] for s in body["stacks"]) == body["samples"]
    values = [s["value"] for s in body["stacks"]]
    assert values == sorted(values, reverse=True)


def test_profile_record_attributes_and_span_ids() -> None:
    from wasmscope.runtime.record import InvocationRecord, ModuleIdentity, Outcome

    rec = InvocationRecord(
        invocation_id="inv-1", module=ModuleIdentity(sha256="ab" * 32, name="toy.wasm", size=1234),
        entry="_start", outcome=Outcome.TRAP,
    )  # fmt: skip
    r = reports.profile_report_record(rec, toy_profile(), trace_id="0af7651916cd43dd8448eb211c80319c",
                                      span_id="b7ad6b7169203331", clock=lambda: 5)  # fmt: skip
    assert r.attributes == {
        sc.EVENT_NAME: sc.EVENT_PROFILE, sc.WASM_MODULE_SHA256: "ab" * 32, sc.WASM_MODULE_NAME: "toy.wasm",
        sc.WASM_MODULE_SIZE: 1234, sc.WASM_MODULE_KIND: "module", sc.FAAS_NAME: "toy.wasm", sc.FAAS_INVOCATION_ID: "inv-1",
        sc.WASM_OUTCOME: "trap",
    }  # fmt: skip
    stub = start_stub()
    try:
        assert reports.push(stub.url, [r], resource={}).ok
        lr = the_record(stub.of("/v1/logs")[0])
    finally:
        stub.close()
    assert lr.trace_id.hex() == "0af7651916cd43dd8448eb211c80319c" and lr.span_id.hex() == "b7ad6b7169203331"
    assert lr.flags == 1 and lr.time_unix_nano == 5
    assert json.loads(lr.body.string_value) == reports.profile_body(toy_profile())


def test_resource_service_name(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("OTEL_SERVICE_NAME", raising=False)
    monkeypatch.delenv("OTEL_RESOURCE_ATTRIBUTES", raising=False)
    assert reports.report_resource()["service.name"] == "wasmscope"
    assert reports.report_resource("mine")["service.name"] == "mine"
    monkeypatch.setenv("OTEL_SERVICE_NAME", "from-env")
    assert reports.report_resource()["service.name"] == "from-env"
    # without the SDK, the same precedence from the environment
    real_find_spec = importlib.util.find_spec
    monkeypatch.setattr(
        importlib.util, "find_spec", lambda name, *a: None if name.startswith("opentelemetry.sdk") else real_find_spec(name, *a)
    )
    monkeypatch.setenv("OTEL_RESOURCE_ATTRIBUTES", "service.name=attr,deployment.environment=dev%20x")
    env = reports.report_resource()
    assert env["service.name"] == "from-env" and env["deployment.environment"] == "dev x"
    assert "telemetry.sdk.name" not in env  # read here, not by the SDK
    monkeypatch.delenv("OTEL_SERVICE_NAME")
    assert reports.report_resource()["service.name"] == "attr"
    assert reports.report_resource("cli")["service.name"] == "cli"


@pytest.mark.parametrize(
    ("base", "url"),
    [
        ("http://127.0.0.1:4318", "http://127.0.0.1:4318/v1/logs"),
        ("http://127.0.0.1:4318/", "http://127.0.0.1:4318/v1/logs"),
        ("http://127.0.0.1:4318/v1/logs", "http://127.0.0.1:4318/v1/logs"),
        ("https://collect.example/otlp/", "https://collect.example/otlp/v1/logs"),
    ],
)
def test_logs_url(base: str, url: str) -> None:
    assert reports.logs_url(base) == url


@pytest.mark.parametrize("bad", ["127.0.0.1:4318", "ftp://h/", "http://", "http://h:port", "http://h/?a=1", ""])
def test_logs_url_rejects(bad: str) -> None:
    with pytest.raises(ValueError):
        reports.logs_url(bad)


# --- push: headers, compression ------------------------------------------------------------------
def test_token_header_from_argument_or_environment(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv(reports.TOKEN_ENV, raising=False)
    with scripted(Answer()) as srv:
        assert reports.push(srv.url, [inspect_record()], resource={}).ok
        monkeypatch.setenv(reports.TOKEN_ENV, "from-env")
        assert reports.push(srv.url, [inspect_record()], resource={}).ok
        assert reports.push(srv.url, [inspect_record()], token="explicit", resource={}).ok
    auth = [g.headers.get("authorization") for g in srv.received]
    assert auth == [None, "Bearer from-env", "Bearer explicit"]
    assert {g.path for g in srv.received} == {"/v1/logs"}
    assert {g.headers["content-type"] for g in srv.received} == {"application/x-protobuf"}


def test_big_request_is_gzipped() -> None:
    big = reports.ReportRecord(sc.EVENT_PROFILE, json.dumps({"x": "fib;" * 50_000}), {}, 1)
    with scripted(Answer()) as srv:
        assert reports.push(srv.url, [inspect_record()], resource={}).ok
        assert reports.push(srv.url, [big], resource={}).ok
    small, gz = srv.received
    assert "content-encoding" not in small.headers
    assert gz.headers["content-encoding"] == "gzip"
    assert int(gz.headers["content-length"]) < 20_000
    assert the_record(gz.message).body.string_value == big.body


# --- push: failures and retries --------------------------------------------------------------------
def test_connection_refused_is_a_warning() -> None:
    url = f"http://127.0.0.1:{closed_port()}"
    slept: list[float] = []
    result = reports.push(url, [inspect_record()], resource={}, sleep=slept.append)
    assert not result.ok and result.status is None and result.attempts == 1 and slept == []
    assert result.warning("the inspect report") == (
        f"could not push the inspect report to {url}/v1/logs: "
        "connection refused (is `wasmscope collect` or a collector running there?)"
    )


def test_retry_after_is_honoured_then_success() -> None:
    slept: list[float] = []
    with scripted(
        Answer(503, {"Retry-After": "2"}), Answer(429, {"Retry-After": "0"}), Answer(200)
    ) as srv:  # fmt: skip
        result = reports.push(srv.url, [inspect_record()], resource={}, sleep=slept.append)
    assert result.ok and result.attempts == 3 and slept == [2.0, 0.0] == result.waited
    assert len(srv.received) == 3
    bodies = {the_record(g.message).body.string_value for g in srv.received}
    assert len(bodies) == 1  # the same request each time


def test_retries_are_bounded_and_capped() -> None:
    slept: list[float] = []
    date = email.utils.formatdate(2_000_000_000, usegmt=True)  # far in the future
    with scripted(Answer(503, {"Retry-After": "120"}), Answer(429, {"Retry-After": date}), Answer(502)) as srv:
        result = reports.push(srv.url, [inspect_record()], resource={}, timeout=1000, sleep=slept.append)
    assert not result.ok and result.status == 502
    assert result.attempts == reports.MAX_RETRIES + 1 == len(srv.received)
    assert slept == [reports.MAX_RETRY_AFTER, reports.MAX_RETRY_AFTER, 1.0]  # capped; then backoff 0.25, 0.5, 1
    assert result.warning() == f"could not push the report to {srv.url}/v1/logs: HTTP 502 Bad Gateway after 4 attempts"


def test_no_retry_past_the_timeout() -> None:
    now = [100.0]
    slept: list[float] = []
    with scripted(Answer(503, {"Retry-After": "3"})) as srv:
        result = reports.push(srv.url, [inspect_record()], resource={}, timeout=2.0, sleep=slept.append,
                              clock=lambda: now[0])  # fmt: skip
    assert not result.ok and result.status == 503 and result.attempts == 1 and slept == []
    assert "HTTP 503 Service Unavailable" in result.warning()


@pytest.mark.parametrize(("status", "reason"), [(400, "Bad Request"), (401, "Unauthorized"), (413, "Request Entity Too Large")])
def test_other_statuses_are_not_retried(status: int, reason: str) -> None:
    with scripted(Answer(status, {"Retry-After": "1"})) as srv:
        result = reports.push(srv.url, [inspect_record()], resource={}, sleep=lambda _s: None)
    assert not result.ok and result.attempts == 1 and len(srv.received) == 1
    assert result.warning().endswith(f": HTTP {status} {reason}")


def test_partial_success_is_reported() -> None:
    resp = ExportLogsServiceResponse(partial_success=ExportLogsPartialSuccess(rejected_log_records=1, error_message="body too big"))
    with scripted(Answer(200, body=resp.SerializeToString())) as srv:
        result = reports.push(srv.url, [inspect_record()], resource={})
    assert result.ok and result.rejected == 1
    assert result.warning().endswith(": the collector rejected 1 record(s): body too big")
    empty = ExportLogsServiceResponse(partial_success=ExportLogsPartialSuccess()).SerializeToString()
    for body in (empty, b"\xff\xff", b"{}"):  # nothing rejected; not protobuf: ignored
        with scripted(Answer(200, body=body)) as srv:
            result = reports.push(srv.url, [inspect_record()], resource={})
        assert result.ok and result.rejected == 0 and result.warning() == "", body


def test_hang_up_and_silence() -> None:
    with raw_server("hangup") as url:
        result = reports.push(url, [inspect_record()], resource={})
    assert not result.ok and result.status is None
    assert "closed the connection" in result.warning() and url in result.warning()
    with raw_server("silent") as url:
        result = reports.push(url, [inspect_record()], resource={}, timeout=0.3)
    assert not result.ok and result.warning() == f"could not push the report to {url}/v1/logs: timed out"


def test_rarest_stacks_are_left_out_past_the_budget() -> None:
    whole = reports.profile_body(toy_profile())
    assert "stacks_omitted" not in whole
    one = len(json.dumps(whole["stacks"][0], separators=(",", ":"))) + 1
    two = one + len(json.dumps(whole["stacks"][1], separators=(",", ":"))) + 1
    cut = reports.profile_body(toy_profile(), max_stack_bytes=two)
    assert cut["stacks"] == whole["stacks"][:2]
    rest = whole["stacks"][2:]
    assert cut["stacks_omitted"] == {"stacks": len(rest), "value": sum(s["value"] for s in rest)}
    assert sum(s["value"] for s in cut["stacks"]) + cut["stacks_omitted"]["value"] == cut["samples"]
    assert cut["functions"] == whole["functions"]
    none = reports.profile_body(toy_profile(), max_stack_bytes=0)
    assert none["stacks"] == [] and none["stacks_omitted"]["value"] == none["samples"]


def test_a_bug_building_the_record_is_only_a_warning(capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch) -> None:
    import argparse

    from wasmscope.cli.inspect import push_report

    monkeypatch.delenv("WASMSCOPE_DEBUG", raising=False)

    def boom() -> reports.ReportRecord:
        raise ValueError("Out of range float values are not JSON compliant")

    with scripted(Answer()) as srv:
        assert not push_report(argparse.Namespace(push=srv.url, push_token=None), boom, "the report")
        assert push_report(argparse.Namespace(push=srv.url, push_token=None), inspect_record, "the report")
    assert len(srv.received) == 1
    assert capsys.readouterr().err == (
        "wasmscope: warning: could not push the report: internal error: ValueError: Out of range float "
        "values are not JSON compliant (set WASMSCOPE_DEBUG=1 for a traceback)\n"
    )


def test_https_trusts_otel_exporter_certificate(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    import ssl

    from tests.gateway.serving import self_signed

    cert, key = self_signed(tmp_path)
    ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
    ctx.load_cert_chain(cert, key)
    for name in ("OTEL_EXPORTER_OTLP_CERTIFICATE", "OTEL_EXPORTER_OTLP_LOGS_CERTIFICATE"):
        monkeypatch.delenv(name, raising=False)
    with scripted(Answer(), tls=ctx) as srv:
        untrusted = reports.push(srv.url, [inspect_record()], resource={})
        monkeypatch.setenv("OTEL_EXPORTER_OTLP_CERTIFICATE", str(cert))
        trusted = reports.push(srv.url, [inspect_record()], token="t", resource={})
        monkeypatch.setenv("OTEL_EXPORTER_OTLP_LOGS_CERTIFICATE", str(tmp_path / "missing.pem"))
        unreadable = reports.push(srv.url, [inspect_record()], resource={})
    assert srv.url.startswith("https://")
    assert not untrusted.ok and "the server's certificate is not trusted (self-signed certificate" in untrusted.warning()
    assert trusted.ok and len(srv.received) == 1 and srv.received[0].headers["authorization"] == "Bearer t"
    assert not unreadable.ok and unreadable.attempts == 1 and "TLS setup: " in unreadable.warning()
