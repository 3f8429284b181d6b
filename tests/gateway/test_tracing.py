"""The HTTP server span middleware in-process (httpx's ASGI transport over
TracingMiddleware(Gateway)), spans in an in-memory Telemetry."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

httpx = pytest.importorskip("httpx")

from tests.gateway.test_app import TRACEPARENT, run, site  # noqa: E402, F401
from wasmscope.gateway.app import Gateway  # noqa: E402
from wasmscope.gateway.manifest import load_manifest  # noqa: E402
from wasmscope.gateway.tracing import TracingMiddleware  # noqa: E402

TRACE_ID = TRACEPARENT.split("-")[1]
PARENT_SPAN = TRACEPARENT.split("-")[2]


@pytest.fixture
def traced(site: Path, shared_runtime: Any) -> Iterator[tuple[TracingMiddleware, Any]]:  # noqa: F811
    telemetry_mod = pytest.importorskip("wasmscope.telemetry")
    try:
        tel = telemetry_mod.Telemetry.from_options(in_memory=True, trigger="http")
    except Exception as exc:  # the otel extra is missing
        pytest.skip(str(exc))
    gw = Gateway(load_manifest(site), runtime=shared_runtime, telemetry=tel)
    gw.prepare()
    try:
        yield TracingMiddleware(gw, tel, manifest=gw.manifest), tel
    finally:
        gw.close()
        tel.shutdown()


def _server_spans(tel: Any) -> list[dict[str, Any]]:
    return [s for s in tel.memory.span_dicts() if "http.response.status_code" in s["attributes"]]


def _by_id(tel: Any) -> dict[str, dict[str, Any]]:
    return {s["span_id"]: s for s in tel.memory.span_dicts()}


def _children(tel: Any, span: dict[str, Any]) -> list[dict[str, Any]]:
    return [s for s in tel.memory.span_dicts() if s["parent_span_id"] == span["span_id"]]


def test_one_server_span_with_http_and_faas_attributes_and_two_children(traced: tuple[TracingMiddleware, Any]) -> None:
    app, tel = traced
    r = run(lambda c: c.get("/hello?world", headers={"user-agent": "probe/1"}), app)
    assert r.status_code == 200
    (server,) = _server_spans(tel)
    assert server["name"] == "GET /hello"
    assert server["kind"] == "SERVER"
    assert server["parent_span_id"] in (None, "")
    a = server["attributes"]
    assert a["http.request.method"] == "GET"
    assert a["http.route"] == "/hello"
    assert a["url.path"] == "/hello"
    assert a["url.scheme"] == "http"
    assert a["http.response.status_code"] == 200
    assert a["server.address"] == "testserver"
    assert a["client.address"] == "192.0.2.1"
    assert a["user_agent.original"] == "probe/1"
    # the invocation is folded into the server span (FaaS conventions, HTTP trigger)
    assert a["faas.trigger"] == "http"
    assert a["faas.invocation_id"] == r.headers["x-wasmscope-invocation"]
    assert a["faas.coldstart"] is False  # compiled at prepare()
    assert a["faas.name"] == "hello.wasm"
    assert a["wasm.outcome"] == "ok"
    assert [s for s in tel.memory.span_dicts() if s["attributes"].get("faas.invocation_id")] == [server]
    children = _children(tel, server)
    assert sorted(c["name"] for c in children) == ["execute", "instantiate"]
    assert all(c["trace_id"] == server["trace_id"] and c["kind"] == "INTERNAL" for c in children)
    assert all(server["start_ns"] <= c["start_ns"] <= c["end_ns"] <= server["end_ns"] for c in children)
    assert len(tel.memory.span_dicts()) == 3
    # stdout is the HTTP response: no log record of it
    assert tel.memory.log_dicts() == []


def test_incoming_traceparent_is_honoured_and_handed_to_the_guest(traced: tuple[TracingMiddleware, Any]) -> None:
    app, tel = traced
    r = run(lambda c: c.get("/echo/x", headers={"traceparent": TRACEPARENT, "tracestate": "vendor=1"}), app)
    assert r.status_code == 200
    lines = dict(line.split("=", 1) for line in r.text.splitlines() if "=" in line)
    (server,) = _server_spans(tel)
    assert server["trace_id"] == TRACE_ID
    assert server["parent_span_id"] == PARENT_SPAN
    assert server["name"] == "GET /echo/..."
    guest = lines["TRACEPARENT"].split("-")
    assert guest[1] == TRACE_ID
    assert guest[2] == server["span_id"]  # the guest's parent is the server span, not the caller
    assert server["attributes"]["faas.invocation_id"] == r.headers["x-wasmscope-invocation"]
    assert {c["trace_id"] for c in _children(tel, server)} == {TRACE_ID}


def test_unsampled_traceparent_keeps_the_trace_but_records_no_span(traced: tuple[TracingMiddleware, Any]) -> None:
    app, tel = traced
    unsampled = TRACEPARENT[:-2] + "00"
    r = run(lambda c: c.get("/echo/x", headers={"traceparent": unsampled}), app)
    lines = dict(line.split("=", 1) for line in r.text.splitlines() if "=" in line)
    guest = lines["TRACEPARENT"].split("-")
    assert guest[1] == TRACE_ID and guest[2] != PARENT_SPAN and guest[3] == "00"
    assert tel.memory.span_dicts() == []


def test_guest_stderr_lines_are_log_records_of_the_server_span(traced: tuple[TracingMiddleware, Any]) -> None:
    app, tel = traced
    r = run(lambda c: c.get("/stderr", headers={"traceparent": TRACEPARENT}), app)
    assert r.status_code == 200
    (server,) = _server_spans(tel)
    logs = tel.memory.log_dicts()
    assert [(x["body"], x["severity_text"]) for x in logs] == [("handler log line", "WARN")]
    (line,) = logs
    assert line["trace_id"] == TRACE_ID and line["span_id"] == server["span_id"]
    assert line["attributes"] == {"log.iostream": "stderr", "faas.invocation_id": r.headers["x-wasmscope-invocation"]}


def test_error_body_trace_id_and_5xx_status(traced: tuple[TracingMiddleware, Any]) -> None:
    app, tel = traced
    r = run(lambda c: c.get("/fail"), app)
    assert r.status_code == 500
    (server,) = _server_spans(tel)
    assert r.json()["trace_id"] == server["trace_id"]
    assert server["attributes"]["http.response.status_code"] == 500
    assert server["status"]["code"] == "ERROR"
    assert server["status"]["description"] == "exit code 3"
    assert server["attributes"]["error.type"] == "exit"  # the FaaS error type says more than "500"
    assert server["attributes"]["wasm.exit_code"] == 3
    assert [e["name"] for e in server["events"]] == ["exception"]
    execute = next(c for c in _children(tel, server) if c["name"] == "execute")
    assert execute["status"]["code"] == "ERROR"


def test_unmatched_path_and_health(traced: tuple[TracingMiddleware, Any]) -> None:
    app, tel = traced
    assert run(lambda c: c.get("/nope"), app).status_code == 404
    assert run(lambda c: c.get("/healthz"), app).status_code == 200
    names = sorted(s["name"] for s in _server_spans(tel))
    assert names == ["GET", "GET /healthz"]
    by_name = {s["name"]: s for s in _server_spans(tel)}
    assert "http.route" not in by_name["GET"]["attributes"]
    assert by_name["GET"]["attributes"]["http.response.status_code"] == 404
    assert by_name["GET"]["status"]["code"] != "ERROR"  # a 4xx is not a server error


def test_invalid_traceparent_starts_a_new_trace(traced: tuple[TracingMiddleware, Any]) -> None:
    app, tel = traced
    r = run(lambda c: c.get("/echo/x", headers={"traceparent": "00-zz-00-01"}), app)
    lines = dict(line.split("=", 1) for line in r.text.splitlines() if "=" in line)
    (server,) = _server_spans(tel)
    assert server["parent_span_id"] in (None, "")
    assert lines["TRACEPARENT"].split("-")[1] == server["trace_id"]


def test_lifespan_passes_through(site: Path, shared_runtime: Any) -> None:  # noqa: F811
    seen: list[str] = []

    async def app(scope: Any, receive: Any, send: Any) -> None:
        seen.append(scope["type"])

    import asyncio

    async def noop() -> dict[str, Any]:
        return {}

    async def sink(_m: Any) -> None:
        return None

    asyncio.run(TracingMiddleware(app, object())({"type": "lifespan"}, noop, sink))
    assert seen == ["lifespan"]
