"""The metrics middleware in-process (httpx's ASGI transport over
MetricsMiddleware(Gateway)): counters and histograms after known requests, /metrics
parsed with prometheus_client's own parser. No test asserts a wall-clock time."""

from __future__ import annotations

import asyncio
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

httpx = pytest.importorskip("httpx")
pytest.importorskip("prometheus_client")

from prometheus_client.parser import text_string_to_metric_families  # noqa: E402

from tests.gateway.test_app import hold, run, site  # noqa: E402, F401
from wasmscope.gateway.app import Gateway  # noqa: E402
from wasmscope.gateway.manifest import load_manifest  # noqa: E402
from wasmscope.gateway.metrics import CONTENT_TYPE, Metrics, MetricsMiddleware  # noqa: E402


def parse(text: str) -> dict[tuple[str, tuple[tuple[str, str], ...]], float]:
    """{(sample name, sorted labels): value}."""
    out: dict[tuple[str, tuple[tuple[str, str], ...]], float] = {}
    for family in text_string_to_metric_families(text):
        for s in family.samples:
            out[(s.name, tuple(sorted(s.labels.items())))] = s.value
    return out


def value(samples: dict[tuple[str, tuple[tuple[str, str], ...]], float], name: str, **labels: str) -> float:
    return samples.get((name, tuple(sorted(labels.items()))), 0.0)


@pytest.fixture
def metered(site: Path, shared_runtime: Any) -> Iterator[tuple[MetricsMiddleware, Gateway]]:  # noqa: F811
    gw = Gateway(load_manifest(site), runtime=shared_runtime)
    gw.prepare()
    try:
        yield MetricsMiddleware(gw, Metrics(), manifest=gw.manifest, gateway=gw), gw
    finally:
        gw.close()


def test_counters_and_histograms_after_known_requests(metered: tuple[MetricsMiddleware, Gateway]) -> None:
    app, gw = metered

    async def scenario(c: httpx.AsyncClient) -> tuple[list[int], str, httpx.Response]:
        codes = [(await c.get("/hello?a")).status_code, (await c.get("/hello?b")).status_code]
        codes.append((await c.get("/nope")).status_code)
        codes.append((await c.get("/fail")).status_code)
        codes.append((await c.get("/membomb")).status_code)
        codes.append((await c.get("/spin")).status_code)
        codes.append((await c.post("/small", content=b"x" * 64)).status_code)
        busy, gate = hold(c, gw)
        while gw.in_flight("/busy") < 1:
            assert not busy.done()
            await asyncio.sleep(0.01)
        during = (await c.get("/metrics")).text  # /busy is in flight now
        codes.append((await c.get("/busy")).status_code)
        gate.touch()
        codes.append((await busy).status_code)
        return codes, during, await c.get("/metrics")

    codes, during, final = run(scenario, app)
    assert codes == [200, 200, 404, 500, 500, 504, 413, 503, 200]
    assert final.status_code == 200
    assert final.headers["content-type"] == CONTENT_TYPE
    s = parse(final.text)
    assert value(parse(during), "wasmscope_requests_in_flight", route="/busy") == 1
    assert value(s, "wasmscope_requests_in_flight", route="/busy") == 0

    req = "wasmscope_http_requests_total"
    assert value(s, req, route="/hello", method="GET", status="200") == 2
    assert value(s, req, route="(unmatched)", method="GET", status="404") == 1
    assert value(s, req, route="/fail", method="GET", status="500") == 1
    assert value(s, req, route="/spin", method="GET", status="504") == 1
    assert value(s, req, route="/busy", method="GET", status="503") == 1
    assert value(s, req, route="/busy", method="GET", status="200") == 1
    assert value(s, req, route="/small", method="POST", status="413") == 1
    assert sum(v for (n, _), v in s.items() if n == req) == len(codes)  # /metrics itself is not counted

    assert value(s, "wasmscope_http_request_duration_seconds_count", route="/hello") == 2
    assert value(s, "wasmscope_http_request_duration_seconds_bucket", route="/hello", le="+Inf") == 2
    assert value(s, "wasmscope_http_request_duration_seconds_sum", route="/hello") > 0

    err = "wasmscope_invocation_errors_total"
    assert value(s, err, route="/fail", outcome="exit") == 1
    assert value(s, err, route="/membomb", outcome="out_of_memory") == 1
    assert value(s, err, route="/spin", outcome="timeout") == 1
    assert value(s, err, route="/hello", outcome="ok") == 0

    rej = "wasmscope_requests_rejected_total"
    assert value(s, rej, route="/busy", reason="saturated") == 1
    assert value(s, rej, route="/small", reason="too_large") == 1
    assert sum(v for (n, _), v in s.items() if n == rej) == 2

    assert value(s, "wasmscope_memory_peak_bytes_count", route="/hello") == 2
    assert value(s, "wasmscope_memory_peak_bytes_sum", route="/hello") > 0
    # the shared runtime may have compiled /hello before: at most one cold start per route here
    assert value(s, "wasmscope_coldstarts_total", route="/hello") <= 1


def test_fuel_is_counted(tmp_path: Path, wat_modules: dict[str, Path], shared_runtime: Any) -> None:
    manifest = tmp_path / "app.toml"
    manifest.write_text(f'[[route]]\npath = "/hello"\nmodule = "{wat_modules["hello"]}"\nfuel = "1e9"\n')
    gw = Gateway(load_manifest(manifest), runtime=shared_runtime)
    gw.prepare()
    try:
        app = MetricsMiddleware(gw, Metrics(), manifest=gw.manifest, gateway=gw)

        async def scenario(c: httpx.AsyncClient) -> str:
            await c.get("/hello?x")
            await c.get("/hello?y")
            return (await c.get("/metrics")).text

        s = parse(run(scenario, app))
        assert value(s, "wasmscope_fuel_consumed_total", route="/hello") > 0
    finally:
        gw.close()


def test_tap_keeps_the_telemetry(site: Path, shared_runtime: Any) -> None:  # noqa: F811
    telemetry_mod = pytest.importorskip("wasmscope.telemetry")
    try:
        tel = telemetry_mod.Telemetry.from_options(in_memory=True, trigger="http")
    except Exception as exc:  # the otel extra is missing
        pytest.skip(str(exc))
    gw = Gateway(load_manifest(site), runtime=shared_runtime, telemetry=tel)
    gw.prepare()
    try:
        app = MetricsMiddleware(gw, Metrics(), manifest=gw.manifest, gateway=gw)
        r = run(lambda c: c.get("/fail"), app)
        assert r.status_code == 500
        assert len(r.json()["trace_id"]) == 32
        assert any(s["attributes"].get("faas.invocation_id") == r.headers["x-wasmscope-invocation"] for s in tel.memory.span_dicts())
    finally:
        gw.close()
        tel.shutdown()


def test_health_is_counted_and_head_metrics(metered: tuple[MetricsMiddleware, Gateway]) -> None:
    app, _gw = metered

    async def scenario(c: httpx.AsyncClient) -> tuple[httpx.Response, str]:
        await c.get("/healthz")
        head = await c.head("/metrics")
        return head, (await c.get("/metrics")).text

    head, text = run(scenario, app)
    assert head.status_code == 200 and head.content == b""
    s = parse(text)
    assert value(s, "wasmscope_http_requests_total", route="/healthz", method="GET", status="200") == 1
    assert sum(v for (n, _), v in s.items() if n == "wasmscope_requests_rejected_total") == 0
