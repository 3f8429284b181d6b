"""Handlers run inline (on the event loop's thread) within the inline budget, else again
from scratch on the route's threads; only the final run is reported. No test asserts a
wall-clock time."""

from __future__ import annotations

import asyncio
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

httpx = pytest.importorskip("httpx")

from wasmscope.gateway.app import Gateway  # noqa: E402
from wasmscope.gateway.manifest import load_manifest  # noqa: E402

MANIFEST = """
[[route]]
path = "/hello"
module = "{hello}"

[[route]]
path = "/spin"
module = "{spin}"
timeout = "300ms"

[[route]]
path = "/escape"
module = "{escape}"
dirs = ["sandbox::/sandbox"]
"""


class Sink:
    """A gateway telemetry that keeps the records it is given."""

    def __init__(self) -> None:
        self.records: list[Any] = []

    def record_invocation(self, record: Any, parent: str | None = None) -> None:
        self.records.append(record)


@pytest.fixture
def site(wagi_modules: dict[str, Path], tmp_path: Path) -> Path:
    (tmp_path / "sandbox").mkdir()
    path = tmp_path / "app.toml"
    path.write_text(MANIFEST.format(**{k: str(v) for k, v in wagi_modules.items()}))
    return path


@pytest.fixture(params=["on-demand", "pooling"])
def gateway(request: pytest.FixtureRequest, site: Path, shared_runtime: Any, gateway_cache: Path) -> Iterator[Gateway]:
    if request.param == "pooling":
        gw = Gateway(load_manifest(site), cache_dir=str(gateway_cache), pooling=True, telemetry=Sink())
    else:
        gw = Gateway(load_manifest(site), runtime=shared_runtime, telemetry=Sink())
    gw.prepare()
    yield gw
    gw.close()


def get(app: Any, *paths: str) -> list[Any]:
    async def main() -> list[Any]:
        transport = httpx.ASGITransport(app=app, client=("192.0.2.1", 1234))
        async with httpx.AsyncClient(transport=transport, base_url="http://testserver") as client:
            return [await client.get(p) for p in paths]

    return asyncio.run(main())


def threads_started(gw: Gateway, path: str) -> int:
    return gw.route_pool(path).workers.started


def test_small_handlers_answer_inline_without_a_thread(gateway: Gateway) -> None:
    answers = get(gateway, *[f"/hello?n{i}" for i in range(20)])
    assert [(r.status_code, r.text) for r in answers] == [(200, f"hello n{i}\n") for i in range(20)]
    assert threads_started(gateway, "/hello") == 0
    sink = gateway.telemetry
    assert isinstance(sink, Sink)
    assert [r.invocation_id for r in sink.records] == [r.headers["x-wasmscope-invocation"] for r in answers]
    assert all(r.outcome == "ok" and r.timeout == 30.0 for r in sink.records)  # the route's limits, not the budget's
    assert gateway.in_flight("/hello") == 0


def test_a_handler_past_the_budget_runs_again_on_a_thread_with_its_own_limits(gateway: Gateway) -> None:
    state = gateway.route_pool("/spin")
    first = get(gateway, "/spin")[0]
    assert first.status_code == 504 and first.json()["outcome"] == "timeout"
    assert threads_started(gateway, "/spin") == 1
    sink = gateway.telemetry
    assert isinstance(sink, Sink)
    assert len(sink.records) == 1  # the stopped inline attempt is not reported
    rec = sink.records[0]
    assert rec.invocation_id == first.headers["x-wasmscope-invocation"] and rec.timeout == 0.3
    assert rec.seconds("execute") is not None and rec.seconds("execute") >= 0.3  # the full timeout, on the thread
    assert state.inline_after <= time.monotonic()  # one strike: still inline
    assert get(gateway, "/spin")[0].status_code == 504
    assert state.inline_after > time.monotonic()  # two within INLINE_STRIKES: on threads for a while
    assert gateway.in_flight("/spin") == 0
    assert get(gateway, "/hello")[0].status_code == 200 and threads_started(gateway, "/hello") == 0  # other routes stay inline


def test_routes_with_preopened_directories_never_run_inline(gateway: Gateway) -> None:
    assert get(gateway, "/escape")[0].status_code in (200, 500)
    assert threads_started(gateway, "/escape") == 1


def test_inline_can_be_turned_off(site: Path, shared_runtime: Any) -> None:
    gw = Gateway(load_manifest(site), runtime=shared_runtime, inline_budget=None)
    gw.prepare()
    try:
        assert get(gw, "/hello")[0].status_code == 200
        assert threads_started(gw, "/hello") == 1
    finally:
        gw.close()
