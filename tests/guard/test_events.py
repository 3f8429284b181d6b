"""Findings as OpenTelemetry log records: the ECS and wasm.* mapping, both telemetry
pipelines in memory (the SDK's for `run`, the direct one for `serve`), failures
counted and never raised, and the records as the collect receiver gets them over
real OTLP/HTTP."""

from __future__ import annotations

import logging
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from tests.guard import findings_data as fd
from tests.telemetry.records import make_record
from wasmscope.guard.events import security_event, security_events
from wasmscope.guard.findings import EventName, Finding, Outcome, Severity
from wasmscope.telemetry import Telemetry
from wasmscope.telemetry import semconv as sc

TRACEPARENT = "00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01"


def test_a_denied_open_maps_to_ecs_and_wasm_attributes() -> None:
    rec = make_record()
    ev = security_event(fd.passwd_denied(), rec)
    assert ev.event_name == "wasm.policy.denied"
    assert (ev.severity_number, ev.severity_text) == (17, "ERROR")
    assert ev.body == "path_open of /etc/passwd denied by the policy"
    execute = rec.phase("execute")
    assert execute is not None and ev.time_ns == execute.end_ns
    a = ev.attributes
    assert a["event.name"] == "wasm.policy.denied"
    assert a["event.kind"] == "alert"
    assert a["event.category"] == ("file", "intrusion_detection") and a["event.type"] == (
        "access",
        "denied",
    )
    assert a["event.outcome"] == "failure" and a["event.action"] == "fs.path"
    assert (
        a["security_rule.name"] == "fs.path"
        and a["security_rule.ruleset.name"] == "wasmscope.guard"
    )
    assert a["wasm.module.sha256"] == "ab" * 32 and a["wasm.module.name"] == "hello.wasm"
    assert a["wasm.rule.id"] == "fs.path" and a["wasm.target"] == "/etc/passwd" == a["file.path"]
    assert a["wasm.policy.suggestion"] == 'filesystem.read = ["/etc/passwd"]'
    assert a["wasm.invocation.id"] == "inv-0001" == a["faas.invocation_id"]
    assert a["wasm.host_call.func"] == "path_open" and a["wasm.host_call.errno"] == 76
    assert a["wasm.host_call.path"] == "/etc/passwd" and a["wasm.host_call.args.fd"] == 3
    assert a["wasm.mode"] == "enforce"


@pytest.mark.parametrize(
    ("finding", "kind", "category", "types", "outcome"),
    [
        (
            fd.env_violation(),
            "alert",
            ("process", "intrusion_detection"),
            ("access", "allowed"),
            "success",
        ),
        (
            fd.exit_code(),
            "alert",
            ("process", "intrusion_detection"),
            ("access", "allowed"),
            "success",
        ),
        (
            fd.socket_denied(),
            "alert",
            ("network", "intrusion_detection"),
            ("connection", "denied"),
            "failure",
        ),
        (fd.random_budget(), "event", ("host",), ("access", "denied"), "failure"),
        (fd.fuel_anomaly(), "alert", ("intrusion_detection", "host"), ("indicator",), "unknown"),
        (fd.sequence_anomaly(), "alert", ("intrusion_detection",), ("indicator",), "unknown"),
        (fd.advisory(), "event", ("configuration", "vulnerability"), ("info",), "unknown"),
    ],
)
def test_ecs_fields_of_each_kind_of_finding(finding: Finding, kind: str, category: tuple[str, ...],
                                            types: tuple[str, ...], outcome: str) -> None:  # fmt: skip
    a = security_event(finding, make_record()).attributes
    assert (a["event.kind"], a["event.category"], a["event.type"], a["event.outcome"]) == (
        kind,
        category,
        types,
        outcome,
    )


def test_details_become_wasm_attributes_and_never_override_the_fields() -> None:
    f = Finding(EventName.ANOMALY, "anomaly.sequence", Severity.WARN, "m", "sequence",
                details={"sequence": ["fd_write", "path_open"], "rule.id": "forged", "nested": {"a": 1}, "none": None})  # fmt: skip
    a = security_event(f, make_record()).attributes
    assert a["wasm.sequence"] == ("fd_write", "path_open")
    assert a["wasm.rule.id"] == "anomaly.sequence"
    assert a["wasm.nested"] == '{"a": 1}' and "wasm.none" not in a


def test_events_of_one_invocation_keep_their_order_in_time() -> None:
    events = security_events(make_record(), fd.all_findings())
    times = [e.time_ns for e in events]
    assert times == sorted(times) and len(set(times)) == len(times)


def _security_logs(t: Telemetry) -> list[dict[str, Any]]:
    return [r for r in t.memory.log_dicts() if r.get("event_name")]


def test_sdk_pipeline_emits_event_records_in_the_invocation_trace() -> None:
    t = Telemetry.from_options(in_memory=True)
    rec = make_record()
    trace_id = t.record_invocation(rec)
    assert t.emit_findings(rec, fd.all_findings()) == 8
    t.force_flush()
    sdk = [r for r in t.memory.logs() if r.log_record.event_name]
    assert [r.log_record.event_name for r in sdk][:2] == [
        "wasm.policy.denied",
        "wasm.policy.violation",
    ]
    logs = _security_logs(t)
    ids = t.invocation_span(rec.invocation_id)
    assert ids is not None and ids[0] == trace_id
    assert {(r["trace_id"], r["span_id"]) for r in logs} == {ids}
    first = logs[0]
    assert first["attributes"]["event.category"] == ["file", "intrusion_detection"]
    assert first["severity_number"] == 17 and first["severity_text"] == "ERROR"
    # the guest's stdout lines are still there, without an event name
    assert [r["body"] for r in t.memory.log_dicts() if not r.get("event_name")] == [
        "hello",
        "world",
    ]
    t.shutdown()


def test_direct_pipeline_emits_under_the_request_span() -> None:
    t = Telemetry.from_options(in_memory=True, trigger="http")
    rec = make_record(cold_start=False, cache="memory")
    req = t.start_request("GET /hello", {"http.request.method": "GET"}, TRACEPARENT)
    assert req is not None
    t.record_invocation(rec, req.traceparent)
    t.end_request(req)
    assert t.emit_findings(rec, [fd.passwd_denied()], traceparent=req.traceparent) == 1
    (log,) = _security_logs(t)
    assert log["event_name"] == "wasm.policy.denied"
    assert log["trace_id"] == TRACEPARENT[3:35] and log["span_id"] == f"{req.span_id:016x}"
    assert log["attributes"]["wasm.host_call.args.fd"] == 3
    t.shutdown()


def test_an_unknown_invocation_still_emits_without_trace_ids() -> None:
    t = Telemetry.from_options(in_memory=True)
    assert t.emit_findings(make_record(invocation_id="never-recorded"), [fd.advisory()]) == 1
    (log,) = _security_logs(t)
    assert log["trace_id"] is None and log["span_id"] is None
    t.shutdown()


def test_failures_are_counted_never_raised(caplog: pytest.LogCaptureFixture) -> None:
    caplog.set_level(logging.WARNING, "wasmscope.telemetry")
    t = Telemetry.from_options(in_memory=True)
    rec = make_record()
    rec.module = None  # type: ignore[assignment]  # a bad record
    assert t.emit_findings(rec, [fd.passwd_denied(), fd.advisory()]) == 0
    assert t.stats.failed("logs") == 2
    assert any("could not emit the findings" in r.getMessage() for r in caplog.records)
    assert t.emit_findings(make_record(), []) == 0
    t.shutdown()
    assert t.emit_findings(make_record(), [fd.advisory()]) == 0  # after shutdown: nothing


def test_findings_of_a_run_outcome_use_the_outcome_enum() -> None:
    f = Finding(
        EventName.LIMIT, "limit.fuel", Severity.ERROR, "out of fuel", "resources", Outcome.KILLED
    )
    a = security_event(f, make_record()).attributes
    assert a["event.outcome"] == "failure" and a["event.type"] == ("access", "denied")


# --- over real OTLP/HTTP, into the collect receiver ---------------------------------------------
@pytest.fixture
def receiver() -> Iterator[tuple[str, Any]]:
    pytest.importorskip("uvicorn")
    from tests.collect.receiver.serving import serve
    from wasmscope.collect.receiver.http import OtlpHttpApp
    from wasmscope.collect.receiver.sink import InMemorySink

    sink = InMemorySink()
    with serve(OtlpHttpApp(sink)) as url:
        yield url, sink


@pytest.mark.parametrize("trigger", ["other", "http"])
def test_records_arrive_at_the_collect_receiver(receiver: tuple[str, Any], trigger: str) -> None:
    from wasmscope.collect.receiver.sink import Signal

    url, sink = receiver
    t = Telemetry.from_options(otlp=url, trigger=trigger, service_name="guard-e2e")
    rec = make_record(stderr=b"a warning\n")
    trace_id = t.record_invocation(rec)
    assert t.emit_findings(rec, [fd.passwd_denied(), fd.fuel_anomaly()]) == 2
    assert t.shutdown(timeout=15)
    assert t.stats.failed() == 0, t.stats
    records = [lr for s, req, _ in sink.requests if s is Signal.LOGS
               for rl in req.resource_logs for sl in rl.scope_logs for lr in sl.log_records]  # fmt: skip
    events = [r for r in records if r.event_name]
    assert [r.event_name for r in events] == ["wasm.policy.denied", "wasm.anomaly.detected"]
    first = events[0]
    assert first.trace_id.hex() == trace_id and first.severity_number == 17
    assert first.body.string_value == "path_open of /etc/passwd denied by the policy"
    attrs = {kv.key: kv.value for kv in first.attributes}
    assert attrs[sc.EVENT_NAME].string_value == "wasm.policy.denied"
    assert [v.string_value for v in attrs[sc.EVENT_TYPE].array_value.values] == ["access", "denied"]
    assert attrs[sc.WASM_HOST_CALL_ERRNO].int_value == 76
    assert attrs[sc.WASM_POLICY_SUGGESTION].string_value == 'filesystem.read = ["/etc/passwd"]'


# --- and through a real collector (rotel) --------------------------------------------------------
@pytest.mark.parametrize("trigger", ["other", "http"])
def test_records_arrive_at_rotel(tmp_path: Path, trigger: str) -> None:
    from tests._rotel import rotel_agent
    from tests.telemetry.test_rotel import Rotel, wait_for

    debug = ["--debug-log", "logs", "--debug-log-verbosity", "detailed"]
    with rotel_agent(tmp_path, "--exporter", "blackhole", *debug) as agent:
        col = Rotel(agent.proc, agent.port, agent.out)
        t = Telemetry.from_options(otlp=col.url, trigger=trigger, service_name="guard-rotel")
        rec = make_record()
        trace_id = t.record_invocation(rec)
        assert t.emit_findings(rec, [fd.passwd_denied()]) == 1
        assert t.shutdown(timeout=15)
        assert t.stats.failed() == 0, t.stats

        def ready(blocks: list[Any]) -> bool:
            return any(b.kind == "LogRecord" and "event.name" in b.attrs for b in blocks)

        (log,) = [
            b for b in wait_for(col, ready) if b.kind == "LogRecord" and "event.name" in b.attrs
        ]
    assert log.fields["Trace ID"] == trace_id
    assert log.fields["Body"] == "Str(path_open of /etc/passwd denied by the policy)"
    assert log.attrs["event.name"] == "Str(wasm.policy.denied)"
    assert log.attrs["wasm.policy.suggestion"] == 'Str(filesystem.read = ["/etc/passwd"])'
    assert log.attrs["wasm.host_call.errno"] == "Int(76)"
    assert log.fields["EventName"] == "wasm.policy.denied"  # the LogRecord field, in both pipelines
