"""The handlers of ``examples/serve/`` (the serve part of ``make demo``) answer as the
demo and the README say, their manifest loads, the demo script runs end to end on
127.0.0.1, and the plain Python peer of ``benchmarks/serve.py`` answers exactly what
the C hello handler does."""

from __future__ import annotations

import asyncio
import importlib.util
import json
import shutil
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from tests.runtime.conftest import clang_19

httpx = pytest.importorskip("httpx")

from wasmscope.gateway.app import Gateway  # noqa: E402
from wasmscope.gateway.auth import wrap  # noqa: E402
from wasmscope.gateway.keys import hash_key  # noqa: E402
from wasmscope.gateway.manifest import key_table, load  # noqa: E402

ROOT = Path(__file__).resolve().parents[2]
EXAMPLES = ROOT / "examples" / "serve"
KEY = "wsk_example-test-key"


@pytest.fixture(scope="module")
def site(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """examples/serve built, with its manifest and a [[key]] for KEY."""
    clang = clang_19()
    out = tmp_path_factory.mktemp("examples-serve")
    for src in sorted(EXAMPLES.glob("*.c")):
        proc = subprocess.run([clang, "--target=wasm32-wasi", "-O2", str(src), "-o", str(out / f"{src.stem}.wasm")], capture_output=True, text=True, check=False)
        if proc.returncode != 0:
            pytest.skip(f"clang-19 cannot build WASI programs here ({src.name}): {proc.stderr[-400:]}")
    entry = key_table("test", hash_key(KEY, scheme="pbkdf2-sha256", iterations=1000))
    (out / "app.toml").write_text((EXAMPLES / "app.toml").read_text() + "\n" + entry)
    return out


@pytest.fixture(scope="module")
def app(site: Path, shared_runtime: Any) -> Iterator[Any]:
    manifest = load(str(site / "app.toml"))
    gateway = Gateway(manifest, runtime=shared_runtime)
    gateway.prepare()
    try:
        yield wrap(gateway, manifest)
    finally:
        gateway.close()


def request(app: Any, method: str, url: str, **kwargs: Any) -> Any:
    async def main() -> Any:
        transport = httpx.ASGITransport(app=app, client=("127.0.0.1", 1234))
        async with httpx.AsyncClient(transport=transport, base_url="http://127.0.0.1:8080") as client:
            return await client.request(method, url, **kwargs)

    return asyncio.run(main())


def test_hello(app: Any) -> None:
    r = request(app, "GET", "/hello?world")
    assert (r.status_code, r.headers["content-type"], r.content) == (200, "text/plain", b"hello world\n")


def test_api_needs_a_key_and_describes_the_request(app: Any) -> None:
    assert request(app, "GET", "/api/orders").status_code == 401
    assert request(app, "GET", "/api/orders", headers={"X-API-Key": "wsk_wrong"}).status_code == 401
    r = request(app, "POST", "/api/orders/7?dry_run=1", headers={"Authorization": f"Bearer {KEY}"}, content=b'{"a": "b"}')
    assert r.status_code == 200
    assert r.headers["content-type"] == "application/json"
    assert r.json() == {"method": "POST", "path": "/orders/7", "query": "dry_run=1", "body_bytes": 10, "api_version": "1"}
    too_big = request(app, "POST", "/api/orders", headers={"Authorization": f"Bearer {KEY}"}, content=b"x" * 5000)
    assert too_big.status_code == 413


def test_api_escapes_json(app: Any) -> None:
    r = request(app, "GET", '/api/a"b?q=\\', headers={"Authorization": f"Bearer {KEY}"})
    assert r.status_code == 200
    doc = json.loads(r.content)
    assert doc["path"] == '/a"b'
    assert doc["query"] == "q=%5C" or doc["query"] == "q=\\"


def test_spin_times_out(app: Any) -> None:
    r = request(app, "GET", "/spin")
    assert r.status_code == 504
    assert r.json()["outcome"] == "timeout"


def test_crash_traps_unless_the_order_is_json(app: Any) -> None:
    r = request(app, "GET", "/crash?oops")
    assert r.status_code == 500
    assert r.json()["outcome"] == "trap"
    ok = request(app, "GET", "/crash?{}")
    assert (ok.status_code, ok.content) == (200, b"order accepted\n")


def test_benchmark_peer_answers_like_the_c_hello(app: Any) -> None:
    spec = importlib.util.spec_from_file_location("_hello_asgi", ROOT / "benchmarks" / "_hello_asgi.py")
    assert spec is not None and spec.loader is not None
    peer = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(peer)
    wasm = request(app, "GET", "/hello")
    plain = request(peer.app, "GET", "/hello")
    assert plain.status_code == wasm.status_code == 200
    assert plain.content == wasm.content == peer.BODY
    assert plain.headers["content-type"] == wasm.headers["content-type"]


def test_demo_script_end_to_end(tmp_path: Path) -> None:
    """examples/serve/demo.py (make demo-serve): builds, serves on 127.0.0.1, sends
    traffic, reads a trace back, stops the server (exit 0, nothing left behind)."""
    if shutil.which("clang-19") is None:
        pytest.skip("clang-19 is not installed (make sysdeps)")
    proc = subprocess.run(
        [sys.executable, str(EXAMPLES / "demo.py"), "--out", str(tmp_path), "--requests", "40"],
        capture_output=True, text=True, timeout=300, check=False, cwd=tmp_path,
    )  # fmt: skip
    assert proc.returncode == 0, proc.stdout[-3000:] + proc.stderr[-3000:]
    out = proc.stdout
    assert "HTTP/1.1 504 Gateway Timeout" in out
    assert "wasmscope_http_requests_total" in out
    assert "server stopped (SIGINT, exit status 0)" in out
    assert "one trace (GET /hello)" in out
    assert "=== where to look" in out
    spans = [json.loads(line) for line in (tmp_path / "telemetry.jsonl").read_text().splitlines()]
    servers = {s["span_id"]: s for s in spans if s.get("signal") == "span" and s["name"] == "GET /hello"}
    # the invocation is folded into the server span; its children are the phases
    assert servers and all(s["attributes"]["faas.trigger"] == "http" and s["attributes"]["faas.invocation_id"] for s in servers.values())
    children = [s for s in spans if s.get("signal") == "span" and s.get("parent_span_id") in servers and s["name"] == "execute"]
    assert children and all(c["trace_id"] == servers[c["parent_span_id"]]["trace_id"] for c in children)
