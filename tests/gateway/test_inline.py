"""Handlers run inline (on the event loop's thread) within the inline budget, else again
from scratch on the route's threads; only the final run is reported. No outcome here
depends on how fast the machine is: a handler that must answer inline gets a budget no
load can exceed, one that must not is the /spin loop (it exceeds any budget), and the
strike and backoff windows run on the gateway's injected clock. The handlers are WAT
(:mod:`tests.gateway.wat`): these tests need no clang."""

from __future__ import annotations

import asyncio
import math
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest

httpx = pytest.importorskip("httpx")

from wasmscope.gateway.app import INLINE_BACKOFF, INLINE_STRIKES, Gateway  # noqa: E402
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
path = "/sandboxed"
module = "{hello}"
dirs = ["sandbox::/sandbox"]
"""

NO_LOAD_EXCEEDS = 20.0  # seconds: an inline budget the hello handler always finishes within


class Sink:
    """A gateway telemetry that keeps the records it is given."""

    def __init__(self) -> None:
        self.records: list[Any] = []

    def record_invocation(self, record: Any, parent: str | None = None) -> None:
        self.records.append(record)


class Clock:
    """The gateway's clock, moved by the test."""

    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now


@pytest.fixture
def site(wat_modules: dict[str, Path], tmp_path: Path) -> Path:
    (tmp_path / "sandbox").mkdir()
    path = tmp_path / "app.toml"
    path.write_text(MANIFEST.format(**{k: str(v) for k, v in wat_modules.items()}))
    return path


MakeGateway = Callable[..., Gateway]


@pytest.fixture(params=["on-demand", "pooling"])
def make_gateway(request: pytest.FixtureRequest, site: Path, shared_runtime: Any, gateway_cache: Path) -> Iterator[MakeGateway]:
    made: list[Gateway] = []

    def make(**options: Any) -> Gateway:
        if request.param == "pooling":
            gw = Gateway(load_manifest(site), cache_dir=str(gateway_cache), pooling=True, telemetry=Sink(), **options)
        else:
            gw = Gateway(load_manifest(site), runtime=shared_runtime, telemetry=Sink(), **options)
        made.append(gw)
        gw.prepare()
        return gw

    yield make
    for gw in made:
        gw.close()


def get(app: Any, *paths: str) -> list[Any]:
    async def main() -> list[Any]:
        transport = httpx.ASGITransport(app=app, client=("192.0.2.1", 1234))
        async with httpx.AsyncClient(transport=transport, base_url="http://testserver") as client:
            return [await client.get(p) for p in paths]

    return asyncio.run(main())


def threads_started(gw: Gateway, path: str) -> int:
    return gw.route_pool(path).workers.started


def records(gw: Gateway) -> list[Any]:
    sink = gw.telemetry
    assert isinstance(sink, Sink)
    return sink.records


def test_small_handlers_answer_inline_without_a_thread(make_gateway: MakeGateway) -> None:
    gateway = make_gateway(inline_budget=NO_LOAD_EXCEEDS)
    answers = get(gateway, *[f"/hello?n{i}" for i in range(20)])
    assert [(r.status_code, r.text) for r in answers] == [(200, f"hello n{i}\n") for i in range(20)]
    assert threads_started(gateway, "/hello") == 0
    sink = records(gateway)
    assert [r.invocation_id for r in sink] == [r.headers["x-wasmscope-invocation"] for r in answers]
    assert all(r.outcome == "ok" and r.timeout == 30.0 for r in sink)  # the route's limits, not the budget's
    assert gateway.in_flight("/hello") == 0


def test_a_handler_past_the_budget_runs_again_on_a_thread_with_its_own_limits(make_gateway: MakeGateway) -> None:
    clock = Clock()
    gateway = make_gateway(clock=clock)
    pool = gateway.route_pool("/spin")
    first = get(gateway, "/spin")[0]
    assert first.status_code == 504 and first.json()["outcome"] == "timeout"
    assert threads_started(gateway, "/spin") == 1
    assert len(records(gateway)) == 1  # the stopped inline attempt is not reported
    rec = records(gateway)[0]
    assert rec.invocation_id == first.headers["x-wasmscope-invocation"] and rec.timeout == 0.3  # the route's limit
    assert rec.seconds("execute") >= 0.3  # ran to the route's timeout, not the budget (a load only adds to it)
    assert pool.inline_strike == clock.now and pool.inline_after == -math.inf  # one strike: still inline
    assert gateway.in_flight("/spin") == 0
    assert gateway.route_pool("/hello").inline_after == -math.inf  # other routes stay inline


def test_two_strikes_within_the_window_put_the_route_on_its_threads_for_a_while(make_gateway: MakeGateway) -> None:
    clock = Clock()
    gateway = make_gateway(clock=clock)
    pool = gateway.route_pool("/spin")
    assert get(gateway, "/spin")[0].status_code == 504
    clock.now += INLINE_STRIKES + 0.5  # a lone strike per window: still inline
    assert get(gateway, "/spin")[0].status_code == 504
    assert pool.inline_strike == clock.now and pool.inline_after == -math.inf
    clock.now += INLINE_STRIKES / 2  # the second within the window: on threads for INLINE_BACKOFF
    assert get(gateway, "/spin")[0].status_code == 504
    struck = clock.now
    assert pool.inline_strike == struck and pool.inline_after == struck + INLINE_BACKOFF
    clock.now = struck + INLINE_BACKOFF - 0.1  # still backing off: straight to a thread, no new strike
    assert get(gateway, "/spin")[0].status_code == 504
    assert pool.inline_strike == struck
    clock.now = struck + INLINE_BACKOFF  # over: inline again (and it strikes again)
    assert get(gateway, "/spin")[0].status_code == 504
    assert pool.inline_strike == clock.now
    assert len(records(gateway)) == 5  # one per request, whichever way it ran
    assert gateway.route_pool("/hello").inline_after == -math.inf


def test_routes_with_preopened_directories_never_run_inline(make_gateway: MakeGateway) -> None:
    gateway = make_gateway(inline_budget=NO_LOAD_EXCEEDS)
    assert get(gateway, "/sandboxed?x")[0].text == "hello x\n"
    assert threads_started(gateway, "/sandboxed") == 1


def test_inline_can_be_turned_off(site: Path, shared_runtime: Any) -> None:
    gw = Gateway(load_manifest(site), runtime=shared_runtime, inline_budget=None)
    gw.prepare()
    try:
        assert get(gw, "/hello")[0].status_code == 200
        assert threads_started(gw, "/hello") == 1
    finally:
        gw.close()
