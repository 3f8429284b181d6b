"""``wasmscope serve --workers 2`` as a real process: /metrics summed over the worker
processes (prometheus_client's multi-process mode), the metrics folder removed at
the end. The process is always killed in the end."""

from __future__ import annotations

import contextlib
import os
import shutil
import signal
import socket
import subprocess
import sys
import time
from pathlib import Path

import pytest

httpx = pytest.importorskip("httpx")
pytest.importorskip("uvicorn")
pytest.importorskip("prometheus_client")

from prometheus_client.parser import text_string_to_metric_families  # noqa: E402

from tests.gateway.serving import free_port, wait_ready  # noqa: E402

READY_WAIT = 120.0  # seconds; a generous bound on compiling the modules, not a measurement
SCRAPE_WAIT = 60.0  # seconds; a generous bound on Prometheus scraping, not a measurement
N = 24


def _requests_total(text: str, route: str) -> float:
    total = 0.0
    for family in text_string_to_metric_families(text):
        for s in family.samples:
            if s.name == "wasmscope_http_requests_total" and s.labels.get("route") == route:
                total += s.value
    return total


def test_metrics_are_summed_over_workers(wat_modules: dict[str, Path], tmp_path: Path) -> None:
    manifest = tmp_path / "app.toml"
    manifest.write_text(f'[[route]]\npath = "/hello"\nmodule = "{wat_modules["hello"]}"\n')
    tmp = tmp_path / "tmp"
    tmp.mkdir()
    port = free_port()
    cmd = [sys.executable, "-m", "wasmscope", "serve", str(manifest), "--port", str(port), "--workers", "2",
           "--cache-dir", str(tmp_path / "cache"), "--no-access-log"]  # fmt: skip
    env = {**os.environ, "PYTHONUNBUFFERED": "1", "TMPDIR": str(tmp)}
    env.pop("PROMETHEUS_MULTIPROC_DIR", None)
    proc = subprocess.Popen(cmd, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, env=env)
    base = f"http://127.0.0.1:{port}"
    try:
        wait_ready(proc, base + "/readyz", READY_WAIT)
        assert len(list(tmp.iterdir())) == 1  # the metrics folder
        for i in range(N):  # a new connection each: the workers share the socket
            r = httpx.get(f"{base}/hello?n{i}", timeout=30.0)
            assert r.status_code == 200
        for _ in range(4):  # whichever worker answers, the sum is the same
            m = httpx.get(base + "/metrics", timeout=30.0)
            assert m.status_code == 200
            assert _requests_total(m.text, "/hello") == N
        proc.send_signal(signal.SIGINT)
        proc.wait(timeout=60)
        assert list(tmp.iterdir()) == []  # the metrics folder is removed
    finally:
        _stop(proc)


def test_a_real_prometheus_scrapes_the_workers(wat_modules: dict[str, Path], tmp_path: Path) -> None:
    prometheus = shutil.which("prometheus")
    if prometheus is None:
        pytest.skip("the prometheus binary is absent (Debian package prometheus: make sysdeps)")
    manifest = tmp_path / "app.toml"
    manifest.write_text(f'[[route]]\npath = "/hello"\nmodule = "{wat_modules["hello"]}"\n')
    port, prom_port = free_port(), free_port()
    config = tmp_path / "prometheus.yml"
    config.write_text(
        "global:\n  scrape_interval: 1s\n  scrape_timeout: 1s\n"
        f"scrape_configs:\n  - job_name: wasmscope\n    static_configs:\n      - targets: ['127.0.0.1:{port}']\n"
    )
    env = {**os.environ, "PYTHONUNBUFFERED": "1"}
    env.pop("PROMETHEUS_MULTIPROC_DIR", None)
    cmd = [sys.executable, "-m", "wasmscope", "serve", str(manifest), "--port", str(port), "--workers", "2",
           "--cache-dir", str(tmp_path / "cache"), "--no-access-log"]  # fmt: skip
    server = subprocess.Popen(cmd, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, env=env)
    prom: subprocess.Popen[bytes] | None = None
    try:
        wait_ready(server, f"http://127.0.0.1:{port}/readyz", READY_WAIT)
        for i in range(N):
            assert httpx.get(f"http://127.0.0.1:{port}/hello?p{i}", timeout=30.0).status_code == 200
        prom = subprocess.Popen(
            [prometheus, f"--config.file={config}", f"--storage.tsdb.path={tmp_path / 'tsdb'}",
             f"--web.listen-address=127.0.0.1:{prom_port}"],
            stdout=subprocess.DEVNULL, stderr=subprocess.PIPE,
        )  # fmt: skip
        wait_ready(prom, f"http://127.0.0.1:{prom_port}/-/ready", READY_WAIT)
        query = 'sum(wasmscope_http_requests_total{route="/hello",status="200"})'
        deadline = time.monotonic() + SCRAPE_WAIT
        got: list[object] = []
        while time.monotonic() < deadline:
            r = httpx.get(f"http://127.0.0.1:{prom_port}/api/v1/query", params={"query": query}, timeout=30.0)
            assert r.status_code == 200, r.text
            got = r.json()["data"]["result"]
            if got:
                break
            time.sleep(0.25)
        assert got, "Prometheus never scraped the server"
        assert float(got[0]["value"][1]) == N  # type: ignore[index]
    finally:
        for p in (prom, server):
            if p is not None:
                _stop(p)


def _stop(proc: subprocess.Popen[bytes]) -> None:
    """SIGINT first (uvicorn's supervisor then stops its workers), SIGKILL if it lingers."""
    if proc.poll() is None:
        proc.send_signal(signal.SIGINT)
        try:
            proc.wait(timeout=60)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait(timeout=30)
    if proc.stderr:
        proc.stderr.close()


def test_workers_usage_errors(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    from wasmscope.cli import main

    assert main(["serve", str(tmp_path / "missing.toml"), "--workers", "0"]) == 2
    assert "--workers 0: expected 1 or more" in capsys.readouterr().err
    assert main(["serve", str(tmp_path / "missing.toml"), "--workers", "2"]) == 2  # checked once, before any worker
    assert "missing.toml: no such file" in capsys.readouterr().err
    assert list(tmp_path.iterdir()) == []


def test_workers_flush_their_telemetry(wat_modules: dict[str, Path], tmp_path: Path) -> None:
    pytest.importorskip("opentelemetry.sdk")
    import json

    manifest = tmp_path / "app.toml"
    manifest.write_text(f'[[route]]\npath = "/hello"\nmodule = "{wat_modules["hello"]}"\n')
    out = tmp_path / "t.jsonl"
    port = free_port()
    cmd = [sys.executable, "-m", "wasmscope", "serve", str(manifest), "--port", str(port), "--workers", "2",
           "--cache-dir", str(tmp_path / "cache"), "--no-access-log", "--telemetry", f"jsonl:{out}"]  # fmt: skip
    env = {**os.environ, "PYTHONUNBUFFERED": "1"}
    env.pop("PROMETHEUS_MULTIPROC_DIR", None)
    proc = subprocess.Popen(cmd, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, env=env)
    trace = "4bf92f3577b34da6a3ce929d0e0e4736"
    try:
        wait_ready(proc, f"http://127.0.0.1:{port}/readyz", READY_WAIT)
        for i in range(8):
            r = httpx.get(f"http://127.0.0.1:{port}/hello?t{i}", headers={"traceparent": f"00-{trace}-00f067aa0ba902b7-01"}, timeout=30.0)
            assert r.status_code == 200
        proc.send_signal(signal.SIGINT)
        proc.wait(timeout=60)
    finally:
        _stop(proc)
    docs = [json.loads(line) for line in out.read_text().splitlines()]  # every line whole: no interleaving
    spans = [d for d in docs if d.get("signal") == "span"]
    assert spans, sorted({str(d.get("signal")) for d in docs})
    servers = [d for d in spans if d["name"] == "GET /hello" and d["trace_id"] == trace]
    assert len(servers) == 8  # each worker shut its Telemetry down before exiting
    ids = {d["span_id"] for d in servers}
    invocations = [d for d in spans if d["attributes"].get("faas.invocation_id")]
    assert {d["span_id"] for d in invocations} == ids  # folded into the server spans
    assert {d["parent_span_id"] for d in spans if d["name"] == "execute"} == ids


def test_the_workers_listener_is_a_tcp_socket() -> None:
    """uvicorn's bind_socket() (the --workers path) leaves proto at 0, and asyncio only
    sets TCP_NODELAY on IPPROTO_TCP sockets: keep-alive requests would wait ~40 ms."""

    import uvicorn

    from wasmscope.cli.serve import _tcp_socket

    config = uvicorn.Config("x:app", host="127.0.0.1", port=0)
    raw = config.bind_socket()
    sock = _tcp_socket(raw)
    try:
        assert sock.proto == socket.IPPROTO_TCP
        assert sock.getsockname()[0] == "127.0.0.1"
        sock.listen()
        client = socket.create_connection(sock.getsockname())
        conn, _ = sock.accept()
        assert conn.proto == socket.IPPROTO_TCP  # what asyncio checks before TCP_NODELAY
        conn.close()
        client.close()
    finally:
        sock.close()
        raw.close()


def _in_flight(text: str, route: str) -> float:
    for family in text_string_to_metric_families(text):
        for s in family.samples:
            if s.name == "wasmscope_requests_in_flight" and s.labels.get("route") == route:
                return s.value
    return 0.0


def _workers(pid: int) -> list[int]:
    """uvicorn's worker processes (spawned by multiprocessing) under the serve process."""
    out = []
    for child in Path(f"/proc/{pid}/task/{pid}/children").read_text().split():
        cmdline = Path(f"/proc/{child}/cmdline").read_bytes()
        if b"spawn_main" in cmdline:
            out.append(int(child))
    return out


def test_a_crashed_workers_in_flight_requests_leave_the_gauge(wat_modules: dict[str, Path], tmp_path: Path) -> None:
    """A worker killed while a request runs (uvicorn starts another): its in-flight
    count does not stay in the sum."""
    import threading

    manifest = tmp_path / "app.toml"
    manifest.write_text(f'[[route]]\npath = "/spin"\nmodule = "{wat_modules["spin"]}"\ntimeout = "60s"\n')
    port = free_port()
    cmd = [sys.executable, "-m", "wasmscope", "serve", str(manifest), "--port", str(port), "--workers", "2",
           "--cache-dir", str(tmp_path / "cache"), "--no-access-log"]  # fmt: skip
    env = {**os.environ, "PYTHONUNBUFFERED": "1"}
    env.pop("PROMETHEUS_MULTIPROC_DIR", None)
    proc = subprocess.Popen(cmd, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, env=env)
    base = f"http://127.0.0.1:{port}"

    def spin() -> None:
        with contextlib.suppress(httpx.HTTPError):  # its worker is killed
            httpx.get(f"{base}/spin", timeout=90.0)

    client = threading.Thread(target=spin, daemon=True)
    try:
        wait_ready(proc, base + "/readyz", READY_WAIT)
        client.start()
        deadline = time.monotonic() + SCRAPE_WAIT
        while _in_flight(httpx.get(base + "/metrics", timeout=30.0).text, "/spin") != 1:
            assert time.monotonic() < deadline, "the spinning request never showed as in flight"
            time.sleep(0.1)
        old = _workers(proc.pid)
        assert len(old) == 2
        for pid in old:
            os.kill(pid, signal.SIGKILL)
        deadline = time.monotonic() + READY_WAIT
        while True:  # uvicorn's supervisor replaces both
            new = _workers(proc.pid)
            if len(new) == 2 and not set(new) & set(old):
                try:
                    if httpx.get(base + "/readyz", timeout=5.0).status_code == 200:
                        break
                except httpx.HTTPError:
                    pass
            assert proc.poll() is None and time.monotonic() < deadline, "the workers were not replaced"
            time.sleep(0.2)
        assert _in_flight(httpx.get(base + "/metrics", timeout=30.0).text, "/spin") == 0
    finally:
        _stop(proc)
        client.join(timeout=30)
