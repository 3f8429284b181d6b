"""``serve --usage``: the usage of the requests served, per route and in total, at
shutdown. In process (the serve app driven over ASGI) and as real processes (one, and
``--workers 2``), always killed in the end."""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import signal
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest

from tests.gateway.wat import HELLO, build
from wasmscope.cli import main
from wasmscope.cost.accounting import UsageAccount, UsageTap
from wasmscope.cost.records import read_usage
from wasmscope.cost.summary import summarize

httpx = pytest.importorskip("httpx")
pytest.importorskip("uvicorn")

from tests.gateway.serving import free_port, wait_ready  # noqa: E402

READY_WAIT = 120.0  # seconds; a generous bound on compiling the modules, not a measurement
ROOT = Path(__file__).resolve().parents[2]


def _manifest(folder: Path) -> Path:
    build(folder, hello=HELLO)
    manifest = folder / "app.toml"
    manifest.write_text('[server]\nmemory_limit = "32MiB"\n\n[[route]]\npath = "/a"\nmodule = "hello.wasm"\n\n'
                        '[[route]]\npath = "/b/..."\nmodule = "hello.wasm"\nfuel = 1000000\n')  # fmt: skip
    return manifest


def _get(app: Any, paths: list[str], bodies: list[bytes] | None = None) -> list[int]:
    async def run() -> list[int]:
        statuses = []
        for path in paths:
            sent: list[Any] = []

            async def receive() -> dict[str, Any]:
                return {"type": "http.request", "body": b"", "more_body": False}

            async def send(message: Any, sent: list[Any] = sent) -> None:
                sent.append(message)

            scope = {"type": "http", "asgi": {"version": "3.0"}, "http_version": "1.1", "method": "GET",
                     "scheme": "http", "path": path, "raw_path": path.encode(), "query_string": b"x",
                     "root_path": "", "headers": [(b"host", b"127.0.0.1")], "client": ("127.0.0.1", 5),
                     "server": ("127.0.0.1", 80)}  # fmt: skip
            await app(scope, receive, send)
            statuses.append(int(sent[0]["status"]))
            if bodies is not None:
                bodies.append(b"".join(m.get("body", b"") for m in sent[1:]))
        return statuses

    return asyncio.run(run())


def test_the_tap_accounts_every_handler_run_by_route(tmp_path: Path) -> None:
    from wasmscope.cli.serve import build_app

    ns = argparse.Namespace(target=str(_manifest(tmp_path)), telemetry=[], otlp=None, service_name=None, no_cache=False,
                            cache_dir=str(tmp_path / "cache"), no_reload=True, usage=True)  # fmt: skip
    asgi, gateway, _ = build_app(ns)
    try:
        gateway.prepare()
        assert _get(asgi, ["/a"] * 5 + ["/b/x"] * 3 + ["/missing", "/metrics"]) == [200] * 8 + [404, 200]
        tap = gateway.telemetry
        assert isinstance(tap, UsageTap) and len(tap.account) == 8
        s = summarize(tap.account.table())
        assert [(f.function, f.invocations) for f in s.functions] == [("/a", 5), ("/b/...", 3)]
        assert s.total.invocations == 8 and s.total.errors == 0
        assert s.functions[1].fuel.known == 3 and s.functions[0].fuel.known == 0  # only /b is metered
        assert s.total.peak_memory.max == 2 * 65536  # hello's two pages
        # the metrics still see every run, through the tap behind ours
        bodies: list[bytes] = []
        assert _get(asgi, ["/metrics"], bodies) == [200]
        assert b'wasmscope_memory_peak_bytes_count{route="/a"} 5.0' in bodies[0]
        assert b'wasmscope_fuel_consumed_total{route="/b/..."}' in bodies[0]
    finally:
        gateway.close()


def test_the_account_round_trips_through_json_lines(tmp_path: Path) -> None:
    from wasmscope.runtime.record import InvocationRecord, ModuleIdentity

    account = UsageAccount()
    m = ModuleIdentity("ab" * 32, "h.wasm", 10)
    account.add(InvocationRecord("1", m, "_start", start_ns=10, end_ns=5000, cpu_seconds=1e-6, fuel_consumed=7,
                                 peak_memory=65536, memory_limit=1 << 20, attributes={"http.route": "/r"}))  # fmt: skip
    account.add(InvocationRecord("2", m, "_start", start_ns=20, end_ns=30, outcome="trap", host_calls={"a.b": 2}))
    account.write_jsonl(tmp_path / "u.jsonl")
    a, b = account.table(), read_usage(tmp_path / "u.jsonl")
    assert list(a.function) == list(b.function) == ["/r", "h.wasm:_start"]
    for col in ("wall_s", "cpu_s", "fuel", "peak_memory", "memory_limit", "host_calls", "start_ns"):
        assert getattr(a, col).tolist() == pytest.approx(getattr(b, col).tolist(), nan_ok=True)
    assert list(b.outcome) == ["ok", "trap"]


def _serve(tmp_path: Path, *extra: str) -> tuple[int, str, Path]:
    manifest = _manifest(tmp_path)
    port = free_port()
    usage_json = tmp_path / "usage.json"
    cmd = [sys.executable, "-m", "wasmscope", "serve", str(manifest), "--port", str(port), "--no-access-log",
           "--cache-dir", str(tmp_path / "cache"), "--usage-price", "aws-lambda-arm64", "--usage-json", str(usage_json),
           *extra]  # fmt: skip
    env = {**os.environ, "PYTHONUNBUFFERED": "1", "PYTHONPATH": str(ROOT / "src")}
    proc = subprocess.Popen(cmd, stdout=subprocess.PIPE, stderr=subprocess.PIPE, env=env)
    base = f"http://127.0.0.1:{port}"
    try:
        wait_ready(proc, base + "/readyz", READY_WAIT)
        with httpx.Client(base_url=base, timeout=30.0) as client:
            for path in ["/a?1"] * 6 + ["/b/y?2"] * 4:
                assert client.get(path).status_code == 200
        proc.send_signal(signal.SIGTERM)
        _, err = proc.communicate(timeout=60)
        return proc.returncode, err.decode(), usage_json
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait(timeout=30)


@pytest.mark.parametrize("workers", [1, 2])
def test_serve_prints_the_usage_per_route_at_shutdown(tmp_path: Path, workers: int) -> None:
    code, err, usage_json = _serve(tmp_path, "--workers", str(workers))
    assert code == 0, err
    assert "wasmscope serve usage: 10 invocations of 2 functions" in err
    for text in ("wall time", "CPU time", "peak memory", "(total)", "cost under aws-lambda-arm64", "128 MB"):
        assert text in err
    doc = json.loads(usage_json.read_text())
    assert [(f["function"], f["invocations"]) for f in doc["functions"]] == [("/a", 6), ("/b/...", 4)]
    assert doc["total"]["invocations"] == 10 and doc["price"] == "aws-lambda-arm64"
    assert doc["total"]["cost"]["memory_mb"] == 128  # the 32 MiB limit at Lambda's smallest size


def test_a_bad_usage_price_is_a_usage_error_before_serving(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["serve", str(_manifest(tmp_path)), "--usage-price", "nowhere-cloud"]) == 2
    assert "nowhere-cloud" in capsys.readouterr().err
