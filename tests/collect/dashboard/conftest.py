"""Fixtures of the dashboard tests: a store of the test's database filled with a
realistic scenario, and an in-process client (httpx over ASGI)."""

from __future__ import annotations

import asyncio
import uuid
from collections.abc import Iterator
from dataclasses import dataclass, field
from typing import Any

import httpx
import pytest

from tests.collect.dashboard import data
from tests.collect.dashboard.data import NOW, Inv
from wasmscope.collect.dashboard import Dashboard
from wasmscope.collect.receiver.sink import Signal
from wasmscope.collect.store import Store

XSS_SCRIPT = "<script>alert(1)</script>"
XSS_IMG = '"><img src=x onerror=alert(1)>'
HOSTILE = "O'Brien \"q\" \\back\\slash\\ ünïcødé 🚀 ' OR 1=1; DROP TABLE otel_traces; -- {x:String}"
TRAP_FRAMES = (("resize_rows", "src/resize.rs", 88), ("main", "src/main.rs", 12), ("_start", "crt1.c", 3))


@dataclass
class Scenario:
    invs: list[Inv] = field(default_factory=list)

    def of(self, function: str) -> list[Inv]:
        return [i for i in self.invs if i.function == function]


def scenario() -> Scenario:
    s = Scenario()
    # resize: 40 invocations over the last 50 minutes, 1..40 ms; 4 cold; 3 traps, 2 out of fuel, 1 timeout.
    outcomes = ["ok"] * 34 + ["trap"] * 3 + ["out_of_fuel"] * 2 + ["timeout"]
    for i in range(40):
        outcome = outcomes[i]
        s.invs.append(Inv(
            "resize", ago=3000 - i * 70, duration_ms=float(i + 1), outcome=outcome, cold=i < 4,
            fuel=1_000_000 if outcome == "out_of_fuel" else 10_000 * (i + 1), fuel_limit=1_000_000,
            memory=65536 * (1 + i % 8), max_memory=1024 * 1024,
            trap_code="memory_out_of_bounds" if outcome == "trap" else "",
            message="wasm trap: out of bounds memory access" if outcome == "trap" else "",
            frames=TRAP_FRAMES if outcome == "trap" else (),
            stdout=[f"resized image {i} to 640x480"], stderr=["warning: slow path"] if i % 10 == 0 else [],
            attrs={"tenant": "acme" if i % 2 else "globex"},
        ))  # fmt: skip
    # hello over serve: 20 invocations, all ok, another service.
    for i in range(20):
        s.invs.append(Inv("hello", ago=1800 - i * 30, duration_ms=2.0 + i * 0.05, http_route="/hello", service="edge",
                          stdout=[], stderr=[f"hello {i}"]))  # fmt: skip
    # Hostile names and values, and the XSS strings everywhere telemetry reaches the page.
    s.invs.append(Inv(XSS_SCRIPT, ago=600, duration_ms=5.0, outcome="trap", trap_code=XSS_IMG, module=XSS_IMG + ".wasm",
                      message=XSS_SCRIPT, frames=((XSS_IMG, XSS_SCRIPT, 1),), stdout=[XSS_SCRIPT, XSS_IMG],
                      attrs={"note": XSS_IMG, XSS_SCRIPT: "k"}))  # fmt: skip
    s.invs.append(Inv("hostile", ago=500, duration_ms=3.0, attrs={"tenant": HOSTILE}, stdout=[f"line with {HOSTILE}"]))
    return s


def seed(store: Store) -> Scenario:
    """Write the scenario, an inspect report, a profile and a few metrics."""
    s = scenario()
    data.write(store, s.invs)
    store.write(Signal.LOGS, data.report_request([data.inspect_record("resize.wasm")]))
    resize = s.of("resize")[5]
    store.write(Signal.LOGS, data.report_request([data.profile_record(trace_id=resize.trace_id, span_id=resize.span_id)]))
    store.write(Signal.METRICS, data.metrics_request())
    return s


@pytest.fixture(scope="module")
def shared(chdb_backend: Any) -> Iterator[tuple[Store, Scenario]]:
    """One seeded database for a module's read-only tests (seeding once is faster)."""
    name = f"t_dash_{uuid.uuid4().hex[:10]}"
    st = Store(chdb_backend, name)
    st.ensure_schema()
    yield st, seed(st)
    chdb_backend.command(f"DROP DATABASE IF EXISTS {name}")


@pytest.fixture
def store(chdb_backend: Any, database: str) -> Store:
    st = Store(chdb_backend, database)
    st.ensure_schema()
    return st


@pytest.fixture
def seeded(store: Store) -> Scenario:
    return seed(store)


def clock() -> float:
    return NOW


@pytest.fixture
def app(store: Store) -> Dashboard:
    return Dashboard(store, clock=clock, live_poll=0.01, live_lifetime=0.0)


class Client:
    """A synchronous face on httpx's ASGI transport (one event loop a call)."""

    def __init__(self, app: Any) -> None:
        self.app = app

    def request(self, method: str, url: str, **kw: Any) -> httpx.Response:
        async def go() -> httpx.Response:
            transport = httpx.ASGITransport(app=self.app)
            async with httpx.AsyncClient(transport=transport, base_url="http://dash") as c:
                return await c.request(method, url, **kw)

        return asyncio.run(go())

    def get(self, url: str, **kw: Any) -> httpx.Response:
        return self.request("GET", url, **kw)

    def post(self, url: str, **kw: Any) -> httpx.Response:
        return self.request("POST", url, **kw)


@pytest.fixture
def client(app: Dashboard) -> Iterator[Client]:
    yield Client(app)
