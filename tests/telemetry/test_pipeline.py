"""Telemetry with the in-memory exporters: spans, metrics and logs of one invocation."""

from __future__ import annotations

import subprocess
import sys
from collections.abc import Iterator
from typing import Any

import pytest

from tests.telemetry.records import MS, make_record
from wasmscope.errors import UsageError
from wasmscope.runtime.record import Outcome
from wasmscope.telemetry import SpanNode, Telemetry, semconv

PARENT_TRACE = "4bf92f3577b34da6a3ce929d0e0e4736"
PARENT_SPAN = "00f067aa0ba902b7"
TRACEPARENT = f"00-{PARENT_TRACE}-{PARENT_SPAN}-01"


@pytest.fixture
def tel() -> Iterator[Telemetry]:
    t = Telemetry.from_options(in_memory=True)
    yield t
    t.shutdown()


def spans_by_name(t: Telemetry) -> dict[str, dict[str, Any]]:
    return {s["name"]: s for s in t.memory.span_dicts()}


def points(t: Telemetry, name: str) -> list[dict[str, Any]]:
    return [p for p in t.memory.metric_points() if p["name"] == name]


# --- spans ---------------------------------------------------------------------------
def test_span_tree_names_kinds_and_times(tel: Telemetry) -> None:
    rec = make_record()
    trace_id = tel.record_invocation(rec)
    spans = spans_by_name(tel)
    assert set(spans) == {"hello.wasm", "load", "compile", "instantiate", "execute"}
    inv = spans["hello.wasm"]
    assert inv["trace_id"] == trace_id and len(trace_id) == 32
    assert inv["kind"] == "SERVER" and inv["parent_span_id"] is None
    assert (inv["start_ns"], inv["end_ns"]) == (rec.start_ns, rec.end_ns)
    for phase in rec.phases:
        child = spans[phase.name]
        assert child["kind"] == "INTERNAL"
        assert child["parent_span_id"] == inv["span_id"]
        assert child["trace_id"] == trace_id
        assert (child["start_ns"], child["end_ns"]) == (phase.start_ns, phase.end_ns)
        assert child["attributes"][semconv.WASM_PHASE] == phase.name
    assert spans["compile"]["attributes"]["wasmtime.cache"] == "miss"
    assert inv["status"]["code"] == "UNSET"
    assert inv["events"] == []


def test_invocation_span_attributes_follow_semconv(tel: Telemetry) -> None:
    rec = make_record(attributes={"http.route": "/hello", "none": None, "big": 2**70})
    tel.record_invocation(rec)
    a = spans_by_name(tel)["hello.wasm"]["attributes"]
    assert a[semconv.FAAS_TRIGGER] == "other"
    assert a[semconv.FAAS_INVOCATION_ID] == "inv-0001"
    assert a[semconv.FAAS_COLDSTART] is True
    assert a[semconv.FAAS_NAME] == "hello.wasm"
    assert a[semconv.FAAS_MAX_MEMORY] == 64 * 1024 * 1024
    assert a[semconv.WASM_MODULE_SHA256] == "ab" * 32
    assert a[semconv.WASM_MODULE_NAME] == "hello.wasm"
    assert a[semconv.WASM_MODULE_SIZE] == 4096
    assert a[semconv.WASM_ENTRY] == "_start"
    assert a[semconv.WASM_OUTCOME] == "ok"
    assert a[semconv.WASM_CACHE] == "miss"
    assert a[semconv.WASM_FUEL_CONSUMED] == 12345
    assert a[semconv.WASM_FUEL_LIMIT] == 1_000_000
    assert a[semconv.WASM_MEMORY_PEAK] == 131072
    assert a[semconv.WASM_MEMORY_GROW_COUNT] == 1
    assert a[semconv.WASM_TIMEOUT] == 5.0
    assert a[semconv.WASM_CPU_TIME] == 0.004
    assert a[semconv.WASM_STDOUT_BYTES] == 12
    assert a[semconv.WASM_STDERR_BYTES] == 0
    assert a["http.route"] == "/hello" and a["big"] == str(2**70) and "none" not in a
    for absent in (semconv.ERROR_TYPE, semconv.WASM_TRAP_CODE, semconv.WASM_EXIT_CODE):
        assert absent not in a
    # Every attribute we set is a semconv constant or the caller's own.
    names = {v for k, v in vars(semconv).items() if k.isupper() and isinstance(v, str)}
    assert set(a) - names == {"http.route", "big"}


def test_caller_attributes_never_override_conventions(tel: Telemetry) -> None:
    tel.record_invocation(make_record(attributes={semconv.WASM_OUTCOME: "fake"}))
    assert spans_by_name(tel)["hello.wasm"]["attributes"][semconv.WASM_OUTCOME] == "ok"


def test_trap_sets_error_status_exception_event_and_frames(tel: Telemetry) -> None:
    rec = make_record(Outcome.TRAP)
    tel.record_invocation(rec)
    spans = spans_by_name(tel)
    inv = spans["hello.wasm"]
    assert inv["status"] == {"code": "ERROR", "description": rec.trap.message}  # type: ignore[union-attr]
    assert inv["attributes"][semconv.ERROR_TYPE] == "unreachable"
    assert inv["attributes"][semconv.WASM_TRAP_CODE] == "unreachable"
    assert spans["execute"]["status"]["code"] == "ERROR"
    assert spans["compile"]["status"]["code"] == "UNSET"
    (event,) = inv["events"]
    assert event["name"] == "exception"
    e = event["attributes"]
    assert e[semconv.EXCEPTION_TYPE] == "unreachable"
    assert e[semconv.EXCEPTION_MESSAGE] == rec.trap.message  # type: ignore[union-attr]
    assert e[semconv.EXCEPTION_STACKTRACE].splitlines() == [
        "wasm trap: wasm `unreachable` instruction executed",
        "    at crash (func 7, @0x1a2) src/main.c:12:3",
        "    at main (func 3, @0x150)",
    ]
    assert e[semconv.CODE_FUNCTION_NAME] == "crash"
    assert e[semconv.CODE_FILE_PATH] == "src/main.c"
    assert e[semconv.CODE_LINE_NUMBER] == 12
    assert e[semconv.CODE_COLUMN_NUMBER] == 3


@pytest.mark.parametrize(
    ("outcome", "error_type", "description"),
    [
        (Outcome.TIMEOUT, "timeout", "interrupted: wall-clock limit 5 s"),
        (Outcome.EXIT, "exit", "exit code 3"),
        (Outcome.OUT_OF_FUEL, "out_of_fuel", "out of fuel"),
        (Outcome.ERROR, "error", "unknown import: `env::missing` has not been defined"),
    ],
)
def test_failed_outcomes(tel: Telemetry, outcome: str, error_type: str, description: str) -> None:
    rec = make_record(outcome)
    tel.record_invocation(rec)
    spans = spans_by_name(tel)
    inv = spans["hello.wasm"]
    assert inv["status"] == {"code": "ERROR", "description": description}
    assert inv["attributes"][semconv.ERROR_TYPE] == error_type
    assert inv["attributes"][semconv.WASM_OUTCOME] == outcome
    assert inv["events"][0]["attributes"][semconv.EXCEPTION_TYPE] == error_type
    last_phase = rec.phases[-1].name
    assert spans[last_phase]["status"]["code"] == "ERROR"
    if outcome == Outcome.EXIT:
        assert inv["attributes"][semconv.WASM_EXIT_CODE] == 3


def test_parent_traceparent_is_honoured(tel: Telemetry) -> None:
    trace_id = tel.record_invocation(make_record(), parent=TRACEPARENT)
    assert trace_id == PARENT_TRACE
    inv = spans_by_name(tel)["hello.wasm"]
    assert inv["trace_id"] == PARENT_TRACE
    assert inv["parent_span_id"] == PARENT_SPAN
    assert all(s["trace_id"] == PARENT_TRACE for s in tel.memory.span_dicts())
    assert all(r["trace_id"] == PARENT_TRACE for r in tel.memory.log_dicts())


def test_invalid_traceparent_starts_a_new_trace(tel: Telemetry, caplog: pytest.LogCaptureFixture) -> None:
    with caplog.at_level("WARNING", logger="wasmscope.telemetry"):
        t1 = tel.record_invocation(make_record(), parent="00-nothex-00f067aa0ba902b7-01")
        t2 = tel.record_invocation(make_record(), parent="garbage")
    assert len(t1) == 32 and t1 != PARENT_TRACE and t1 != t2
    assert sum("invalid traceparent" in r.getMessage() for r in caplog.records) == 1
    assert all(s["parent_span_id"] is None for s in tel.memory.span_dicts() if s["kind"] == "SERVER")


def test_unsampled_parent_records_no_span_but_keeps_trace_id(tel: Telemetry) -> None:
    trace_id = tel.record_invocation(make_record(), parent=f"00-{PARENT_TRACE}-{PARENT_SPAN}-00")
    assert trace_id == PARENT_TRACE
    assert tel.memory.span_dicts() == []
    assert [r["trace_id"] for r in tel.memory.log_dicts()] == [PARENT_TRACE, PARENT_TRACE]
    assert points(tel, "faas.invocations")[0]["value"] == 1


def test_extra_spans_nest_under_execute(tel: Telemetry) -> None:
    rec = make_record()
    ex = rec.phase("execute")
    assert ex is not None
    inner = SpanNode("leaf", ex.start_ns + 2 * MS, ex.start_ns + 3 * MS, {"code.function.name": "leaf"})
    node = SpanNode("main", ex.start_ns + 1 * MS, ex.start_ns + 4 * MS, children=[inner], error="boom")
    tel.record_invocation(rec, spans=[node])
    spans = spans_by_name(tel)
    assert spans["main"]["parent_span_id"] == spans["execute"]["span_id"]
    assert spans["leaf"]["parent_span_id"] == spans["main"]["span_id"]
    assert spans["leaf"]["attributes"] == {"code.function.name": "leaf"}
    assert spans["main"]["status"] == {"code": "ERROR", "description": "boom"}


def test_record_without_phases_or_times(tel: Telemetry) -> None:
    rec = make_record(phases=[], start_ns=0, end_ns=0)
    rec.start_ns = rec.end_ns = 0
    trace_id = tel.record_invocation(rec)
    (span,) = tel.memory.span_dicts()
    assert span["trace_id"] == trace_id
    assert span["start_ns"] == span["end_ns"] > 0


# --- logs ----------------------------------------------------------------------------
def test_guest_output_lines_become_correlated_log_records(tel: Telemetry) -> None:
    rec = make_record(stdout=b"hello\r\nw\xffrld\n\nlast", stderr=b"warning: x\n")
    trace_id = tel.record_invocation(rec)
    inv = spans_by_name(tel)["hello.wasm"]
    logs = tel.memory.log_dicts()
    assert [(r["attributes"][semconv.LOG_IOSTREAM], r["body"]) for r in logs] == [
        ("stdout", "hello"),
        ("stdout", "w\ufffdrld"),
        ("stdout", ""),
        ("stdout", "last"),
        ("stderr", "warning: x"),
    ]
    for r in logs:
        assert r["trace_id"] == trace_id
        assert r["span_id"] == inv["span_id"]
        assert r["attributes"][semconv.FAAS_INVOCATION_ID] == rec.invocation_id
    assert {r["severity_text"] for r in logs[:4]} == {"INFO"}
    assert logs[0]["severity_number"] == 9
    assert (logs[4]["severity_text"], logs[4]["severity_number"]) == ("WARN", 13)
    stdout_times = [r["time_ns"] for r in logs[:4]]
    assert stdout_times == sorted(stdout_times) and len(set(stdout_times)) == 4
    assert max(stdout_times) <= rec.phases[-1].end_ns


def test_guest_output_is_bounded_then_one_truncated_record() -> None:
    t = Telemetry.from_options(in_memory=True, max_log_lines=3, max_log_bytes=1 << 20)
    try:
        stdout = b"".join(b"line %d\n" % i for i in range(10))
        t.record_invocation(make_record(stdout=stdout))
        logs = t.memory.log_dicts()
        assert [r["body"] for r in logs[:3]] == ["line 0", "line 1", "line 2"]
        assert len(logs) == 4
        last = logs[3]
        assert last["attributes"][semconv.WASM_LOG_TRUNCATED] is True
        assert last["attributes"][semconv.WASM_LOG_DROPPED_LINES] == 7
        assert last["attributes"][semconv.WASM_LOG_DROPPED_BYTES] == 7 * 7
        assert last["severity_text"] == "WARN" and "truncated" in last["body"]
    finally:
        t.shutdown()


def test_guest_output_byte_bound_and_runtime_cap() -> None:
    t = Telemetry.from_options(in_memory=True, max_log_lines=100, max_log_bytes=10)
    try:
        t.record_invocation(make_record(stdout=b"abcd\nefgh\nijkl\n", stdout_truncated=True))
        bodies = [r["body"] for r in t.memory.log_dicts()]
        assert bodies[:2] == ["abcd", "efgh"]
        assert len(bodies) == 3 and "1 more lines" in bodies[2] and "output cap" in bodies[2]
    finally:
        t.shutdown()


def test_no_output_no_logs(tel: Telemetry) -> None:
    tel.record_invocation(make_record(stdout=b"", stderr=b""))
    assert tel.memory.log_dicts() == []


# --- metrics -------------------------------------------------------------------------
def test_metrics_values_and_units(tel: Telemetry) -> None:
    tel.record_invocation(make_record())
    tel.record_invocation(make_record(cold_start=False, invocation_id="inv-2"))
    tel.record_invocation(make_record(Outcome.TRAP, invocation_id="inv-3"))
    tel.record_invocation(make_record(Outcome.TIMEOUT, invocation_id="inv-4"))
    by_name: dict[str, list[dict[str, Any]]] = {}
    for p in tel.memory.metric_points():
        by_name.setdefault(p["name"], []).append(p)
    units = {name: ps[0]["unit"] for name, ps in by_name.items()}
    assert units == {spec.name: spec.unit for spec in semconv.METRICS}

    (inv,) = by_name["faas.invocations"]
    assert inv["value"] == 2 and inv["kind"] == "sum" and inv["monotonic"]
    assert inv["attributes"] == {"faas.trigger": "other", "faas.name": "hello.wasm", "wasm.outcome": "ok"}
    errors = {p["attributes"]["error.type"]: p["value"] for p in by_name["faas.errors"]}
    assert errors == {"unreachable": 1, "timeout": 1}
    assert sum(p["value"] for p in by_name["faas.timeouts"]) == 1
    assert sum(p["value"] for p in by_name["faas.coldstarts"]) == 3
    assert sum(p["value"] for p in by_name["wasm.fuel.consumed"]) == 4 * 12345

    durations = by_name["faas.invoke_duration"]
    assert sum(p["count"] for p in durations) == 4
    assert sum(p["sum"] for p in durations) == pytest.approx(4 * 0.005)
    assert durations[0]["explicit_bounds"] == list(semconv.DURATION_BUCKETS)
    init = by_name["faas.init_duration"]
    assert sum(p["sum"] for p in init) == pytest.approx(4 * 0.005)
    mem = by_name["faas.mem_usage"]
    assert sum(p["sum"] for p in mem) == 4 * 131072
    assert mem[0]["explicit_bounds"][0] == 65536.0
    assert sum(p["sum"] for p in by_name["faas.cpu_usage"]) == pytest.approx(4 * 0.004)
    assert {p["value"] for p in by_name["wasm.memory.peak"]} == {131072}


def test_trigger_is_configurable() -> None:
    t = Telemetry.from_options(in_memory=True, trigger=semconv.TRIGGER_HTTP)
    try:
        t.record_invocation(make_record())
        assert spans_by_name(t)["hello.wasm"]["attributes"]["faas.trigger"] == "http"
        assert points(t, "faas.invocations")[0]["attributes"]["faas.trigger"] == "http"
    finally:
        t.shutdown()


def test_error_outcome_records_no_invoke_duration(tel: Telemetry) -> None:
    tel.record_invocation(make_record(Outcome.ERROR))
    assert points(tel, "faas.invoke_duration") == []
    assert points(tel, "faas.errors")[0]["attributes"]["error.type"] == "error"


# --- resource ------------------------------------------------------------------------
def test_resource_defaults_and_env(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("OTEL_SERVICE_NAME", raising=False)
    monkeypatch.delenv("OTEL_RESOURCE_ATTRIBUTES", raising=False)
    with Telemetry.from_options(in_memory=True) as t:
        r = t.resource_attributes
        assert r["service.name"] == "wasmscope"
        assert r["telemetry.distro.name"] == "wasmscope"
        assert r["service.instance.id"]
    monkeypatch.setenv("OTEL_RESOURCE_ATTRIBUTES", "service.name=edge-fn,deployment.environment.name=lab")
    with Telemetry.from_options(in_memory=True) as t:
        assert t.resource_attributes["service.name"] == "edge-fn"
        assert t.resource_attributes["deployment.environment.name"] == "lab"
    monkeypatch.setenv("OTEL_SERVICE_NAME", "from-env")
    with Telemetry.from_options(in_memory=True) as t:
        assert t.resource_attributes["service.name"] == "from-env"
    with Telemetry.from_options(in_memory=True, service_name="explicit") as t:
        assert t.resource_attributes["service.name"] == "explicit"
        t.record_invocation(make_record())
        assert t.memory.span_dicts()[0]["resource"]["service.name"] == "explicit"


def test_two_pipelines_have_distinct_instance_ids() -> None:
    with Telemetry.from_options(in_memory=True) as a, Telemetry.from_options(in_memory=True) as b:
        assert a.resource_attributes["service.instance.id"] != b.resource_attributes["service.instance.id"]


# --- lifecycle and options -------------------------------------------------------------
def test_shutdown_is_idempotent_and_recording_after_it_is_a_no_op() -> None:
    t = Telemetry.from_options(in_memory=True)
    t.record_invocation(make_record())
    assert t.shutdown() is True
    assert t.shutdown() is True
    assert t.closed
    assert t.record_invocation(make_record(), parent=TRACEPARENT) == PARENT_TRACE
    assert t.record_invocation(make_record()) == ""
    assert t.force_flush() is True
    assert t.stats.exported("spans", "memory") == 5


def test_context_manager_shuts_down() -> None:
    with Telemetry.from_options(in_memory=True) as t:
        t.record_invocation(make_record())
    assert t.closed


def test_stats_count_exported_items(tel: Telemetry) -> None:
    tel.record_invocation(make_record(stderr=b"e\n"))
    s = tel.stats
    assert s.exported("spans") == 5
    assert s.exported("logs") == 3
    assert s.failed() == 0
    assert s.as_dict()["memory"]["spans"] == {"exported": 5, "failed": 0}


def test_a_broken_record_is_counted_not_raised(tel: Telemetry, caplog: pytest.LogCaptureFixture) -> None:
    rec = make_record()
    rec.module = None  # type: ignore[assignment]
    with caplog.at_level("WARNING", logger="wasmscope.telemetry"):
        assert tel.record_invocation(rec) == ""
    assert tel.stats.failed(exporter="pipeline") == 1
    assert "could not record invocation" in caplog.text


@pytest.mark.parametrize(
    "kwargs",
    [
        {"otlp": "127.0.0.1:4318"},
        {"otlp_timeout": 0},
        {"max_log_lines": -1},
        {"jsonl": "/nonexistent-dir/x/out.jsonl"},
    ],
)
def test_bad_options_are_usage_errors(kwargs: dict[str, Any]) -> None:
    with pytest.raises(UsageError):
        Telemetry.from_options(**kwargs)


def test_memory_requires_in_memory() -> None:
    with Telemetry.from_options() as t, pytest.raises(UsageError):
        _ = t.memory


def test_missing_sdk_is_a_usage_error(monkeypatch: pytest.MonkeyPatch) -> None:
    import importlib.util

    from wasmscope.telemetry import otel

    real = importlib.util.find_spec

    def fake(name: str, *a: Any) -> Any:
        return None if name.startswith("opentelemetry") else real(name, *a)

    monkeypatch.setattr(importlib.util, "find_spec", fake)
    with pytest.raises(UsageError, match="pip install --force-reinstall wasmscope"):
        otel.require()
    with pytest.raises(UsageError, match="pip install --force-reinstall wasmscope"):
        Telemetry.from_options(console=True)


def test_importing_the_package_loads_neither_opentelemetry_nor_wasmtime() -> None:
    code = (
        "import sys, wasmscope.telemetry as t\n"
        "from wasmscope.telemetry import semconv, SpanNode, Telemetry\n"
        "bad = sorted(m for m in sys.modules if m.startswith(('opentelemetry', 'wasmtime')))\n"
        "assert not bad, bad\n"
        "t.Telemetry.from_options(console=False).shutdown()\n"
        "assert 'opentelemetry.sdk' in sys.modules\n"
        "assert not [m for m in sys.modules if m.startswith('wasmtime')]\n"
    )
    subprocess.run([sys.executable, "-c", code], check=True, timeout=60)
