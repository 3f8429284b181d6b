"""A Python handler built by componentize-py (a ``wasi:cli/run`` command component that
speaks WAGI: ``fixtures/pyhandler``) served by the gateway: in-process through httpx's
ASGI transport, and once end to end through ``wasmscope serve`` on 127.0.0.1. The
component is built once and kept in pytest's cache; so is its compiled code (the
shared compiled-module cache of the run tests). No test asserts a wall-clock time."""

from __future__ import annotations

import asyncio
import json
import logging
import os
import signal
import subprocess
import sys
from collections.abc import Awaitable, Callable, Iterator
from pathlib import Path
from typing import Any, TypeVar

import pytest

from tests.gateway.serving import free_port, wait_ready
from tests.runtime.conftest import kept_dir

httpx = pytest.importorskip("httpx")

from wasmscope.gateway.app import Gateway  # noqa: E402
from wasmscope.gateway.manifest import load_manifest  # noqa: E402
from wasmscope.runtime import Runtime  # noqa: E402

T = TypeVar("T")
READY_WAIT = 300.0  # seconds: a bound on compiling an 18 MB component on a cold cache, not a measurement

MANIFEST = """
[server]
timeout = "20s"

[[route]]
path = "/py/..."
module = "{wasm}"
max_concurrency = 8

[[route]]
path = "/py-slow/..."
module = "{wasm}"
timeout = "500ms"
"""


def run(coro_fn: Callable[[httpx.AsyncClient], Awaitable[T]], app: Any) -> T:
    async def main() -> T:
        transport = httpx.ASGITransport(app=app, client=("192.0.2.1", 1234))
        async with httpx.AsyncClient(transport=transport, base_url="http://testserver", timeout=60.0) as client:
            return await coro_fn(client)

    return asyncio.run(main())


def lines(text: str) -> dict[str, str]:
    """``key=value`` lines of the handler's text answer (and ``hello`` -> the name)."""
    out = {}
    for line in text.splitlines():
        if line.startswith("hello "):
            out["hello"] = line[len("hello ") :]
        else:
            key, _, value = line.partition("=")
            out[key] = value
    return out


@pytest.fixture(scope="module")
def compiled_cache(request: pytest.FixtureRequest) -> Path:
    """The run tests' compiled-module cache (kept between sessions): the component is
    compiled once, not once per session."""
    return kept_dir(request, "wasmscope-run-cache")


@pytest.fixture(scope="module")
def site(python_wagi_component: Path, tmp_path_factory: pytest.TempPathFactory) -> Path:
    path = tmp_path_factory.mktemp("pysite") / "app.toml"
    path.write_text(MANIFEST.format(wasm=python_wagi_component))
    return path


@pytest.fixture(scope="module")
def gateway(site: Path, compiled_cache: Path) -> Iterator[Gateway]:
    with Runtime(cache_dir=compiled_cache) as rt:
        gw = Gateway(load_manifest(site), runtime=rt)
        gw.prepare()
        yield gw
        gw.close()


def test_get_with_query_and_headers(gateway: Gateway) -> None:
    r = run(lambda c: c.get("/py/hello/there?name=tester&x=1", headers={"X-Greeting": "hey"}), gateway)
    assert r.status_code == 200, r.text
    assert r.headers["content-type"] == "text/plain; charset=utf-8"
    assert len(r.headers["x-wasmscope-invocation"]) == 16  # 64 bits, hex
    assert lines(r.text) == {
        "hello": "tester",
        "method": "GET",
        "path": "/hello/there",  # PATH_INFO: what follows the route's /py
        "query": "name=tester&x=1",
        "greeting": "hey",  # HTTP_X_GREETING
        "count": "1",
    }


def test_post_echoes_the_body(gateway: Gateway) -> None:
    body = bytes(range(256)) * 1024  # binary, 256 KiB: stdin in, stdout out (over several writes), unchanged
    r = run(lambda c: c.post("/py/echo", content=body), gateway)
    assert r.status_code == 200
    assert r.headers["content-type"] == "application/octet-stream"
    assert r.headers["x-body-length"] == str(len(body))
    assert r.content == body


def test_status_header(gateway: Gateway) -> None:
    r = run(lambda c: c.get("/py/missing?status=404&name=nobody"), gateway)
    assert r.status_code == 404
    assert lines(r.text)["hello"] == "nobody"


def test_python_exception_is_500_json(gateway: Gateway, caplog: pytest.LogCaptureFixture) -> None:
    caplog.set_level(logging.INFO, logger="wasmscope.gateway")
    r = run(lambda c: c.get("/py/boom?raise=1"), gateway)
    assert r.status_code == 500
    doc = r.json()
    assert doc["outcome"] == "trap" and doc["error"] == "the handler trapped"
    assert doc["invocation_id"] == r.headers["x-wasmscope-invocation"]
    assert "RuntimeError" not in r.text  # the guest's traceback is logged, never answered
    logged = "\n".join(rec.getMessage() for rec in caplog.records)
    assert "RuntimeError: the handler failed on purpose" in logged
    assert doc["invocation_id"] in logged


def test_a_loop_is_504_under_the_route_timeout(gateway: Gateway) -> None:
    r = run(lambda c: c.get("/py-slow/spin?loop=1"), gateway)
    assert r.status_code == 504
    assert r.json()["outcome"] == "timeout"
    assert gateway.in_flight("/py-slow/...") == 0
    ok = run(lambda c: c.get("/py-slow/after"), gateway)  # the route still serves
    assert ok.status_code == 200 and lines(ok.text)["count"] == "1"


def test_a_fresh_instance_per_request(gateway: Gateway) -> None:
    async def scenario(c: httpx.AsyncClient) -> list[str]:
        return [(await c.get(f"/py/n?name=r{i}")).text for i in range(4)]

    answers = run(scenario, gateway)
    assert [lines(a)["hello"] for a in answers] == ["r0", "r1", "r2", "r3"]
    assert [lines(a)["count"] for a in answers] == ["1"] * 4  # module state never leaks


def test_parallel_requests(gateway: Gateway) -> None:
    n = 6

    async def scenario(c: httpx.AsyncClient) -> list[httpx.Response]:
        gets = [c.get(f"/py/p{i}?name=client{i}") for i in range(n - 2)]
        posts = [c.post(f"/py/p{i}", content=f"body {i}".encode() * 100) for i in range(n - 2, n)]
        return list(await asyncio.gather(*gets, *posts))

    responses = run(scenario, gateway)
    assert [r.status_code for r in responses] == [200] * n
    for i, r in enumerate(responses[: n - 2]):
        assert lines(r.text)["hello"] == f"client{i}" and lines(r.text)["count"] == "1"
    for i, r in enumerate(responses[n - 2 :], start=n - 2):
        assert r.content == f"body {i}".encode() * 100
    assert len({r.headers["x-wasmscope-invocation"] for r in responses}) == n
    assert gateway.in_flight("/py/...") == 0


def test_serve_cli_end_to_end(site: Path, compiled_cache: Path) -> None:
    pytest.importorskip("uvicorn")
    port = free_port()
    cmd = [sys.executable, "-m", "wasmscope", "serve", str(site), "--port", str(port), "--cache-dir", str(compiled_cache)]
    proc = subprocess.Popen(cmd, stdout=subprocess.PIPE, stderr=subprocess.PIPE, env={**os.environ, "PYTHONUNBUFFERED": "1"})
    try:
        wait_ready(proc, f"http://127.0.0.1:{port}/readyz", READY_WAIT)
        with httpx.Client(base_url=f"http://127.0.0.1:{port}", timeout=60.0) as client:
            r = client.get("/py/e2e?name=cli", headers={"x-greeting": "over tcp"})
            assert r.status_code == 200 and lines(r.text)["greeting"] == "over tcp" and lines(r.text)["count"] == "1"
            invocation = r.headers["x-wasmscope-invocation"]
            r = client.post("/py/e2e", content=b"posted")
            assert r.status_code == 200 and r.content == b"posted"
            r = client.get("/py/e2e?raise=1")
            assert r.status_code == 500 and r.json()["outcome"] == "trap"
        proc.send_signal(signal.SIGTERM)
        out, err = proc.communicate(timeout=60)
        assert proc.returncode == 0, err.decode()
        log = [json.loads(line) for line in out.decode().splitlines() if line.startswith("{")]
        assert [(e["path"], e["status"]) for e in log if e["path"].startswith("/py/")] == [
            ("/py/e2e", 200), ("/py/e2e", 200), ("/py/e2e", 500),
        ]  # fmt: skip
        assert any(e["invocation_id"] == invocation and e["route"] == "/py/..." for e in log)
        assert "RuntimeError: the handler failed on purpose" in err.decode()
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait(timeout=30)
