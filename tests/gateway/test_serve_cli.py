"""``wasmscope serve`` as a real process: a free port on 127.0.0.1, /readyz, real HTTP
requests, a clean stop (the process is always killed in the end)."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
from pathlib import Path

import pytest

from tests.gateway.serving import free_port, wait_ready
from wasmscope.cli import main

httpx = pytest.importorskip("httpx")
pytest.importorskip("uvicorn")

READY_WAIT = 120.0  # seconds; a generous bound on compiling the modules, not a measurement


def test_serve_end_to_end(wagi_modules: dict[str, Path], tmp_path: Path) -> None:
    manifest = tmp_path / "app.toml"
    manifest.write_text(
        f'[server]\ntimeout = "5s"\n\n'
        f'[[route]]\npath = "/hello"\nmodule = "{wagi_modules["hello"]}"\n\n'
        f'[[route]]\npath = "/echo/..."\nmodule = "{wagi_modules["echo"]}"\n\n'
        f'[[route]]\npath = "/spin"\nmodule = "{wagi_modules["spin"]}"\ntimeout = "300ms"\n'
    )
    port = free_port()
    cmd = [sys.executable, "-m", "wasmscope", "serve", str(manifest), "--port", str(port), "--cache-dir", str(tmp_path / "cache")]
    env = {**os.environ, "PYTHONUNBUFFERED": "1"}
    proc = subprocess.Popen(cmd, stdout=subprocess.PIPE, stderr=subprocess.PIPE, env=env)
    base = f"http://127.0.0.1:{port}"
    try:
        wait_ready(proc, base + "/readyz", READY_WAIT)
        with httpx.Client(base_url=base, timeout=30.0) as client:
            assert client.get("/healthz").json() == {"status": "ok"}
            r = client.get("/hello?e2e")
            assert r.status_code == 200 and r.text == "hello e2e\n"
            invocation = r.headers["x-wasmscope-invocation"]
            r = client.post("/echo/x?a=1", content=b"payload")
            assert r.status_code == 200 and "body=payload" in r.text and "PATH_INFO=/x" in r.text
            assert f"SERVER_PORT={port}" in r.text
            r = client.get("/spin")
            assert r.status_code == 504 and r.json()["outcome"] == "timeout"
            assert client.get("/missing").status_code == 404
        proc.send_signal(signal.SIGTERM)
        out, err = proc.communicate(timeout=60)
        assert proc.returncode == 0, err.decode()
        lines = [json.loads(line) for line in out.decode().splitlines() if line.startswith("{")]
        paths = [(line["path"], line["status"]) for line in lines]
        assert ("/hello", 200) in paths and ("/spin", 504) in paths and ("/missing", 404) in paths
        assert any(line["invocation_id"] == invocation for line in lines)
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait(timeout=30)


def test_serve_usage_errors(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["serve", str(tmp_path / "missing.toml")]) == 2
    assert "missing.toml: no such file" in capsys.readouterr().err
    bad = tmp_path / "bad.toml"
    bad.write_text('[[route]]\npath = "/x"\n')
    assert main(["serve", str(bad)]) == 2
    assert "missing key 'module'" in capsys.readouterr().err


def test_serve_without_uvicorn_says_how_to_install(monkeypatch: pytest.MonkeyPatch, tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    (tmp_path / "h.wasm").write_bytes(b"\0asm\1\0\0\0")
    monkeypatch.setitem(sys.modules, "uvicorn", None)  # import uvicorn -> ImportError
    assert main(["serve", str(tmp_path)]) == 2
    assert "pip install --force-reinstall wasmscope" in capsys.readouterr().err


def test_serve_help_has_an_example_manifest(capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["serve", "--help"]) == 0
    out = capsys.readouterr().out
    assert "[[route]]" in out and 'path = "/api/..."' in out


def test_serve_stops_when_a_module_does_not_compile(tmp_path: Path) -> None:
    (tmp_path / "bad.wasm").write_bytes(b"\0asm\1\0\0\0\xff")
    manifest = tmp_path / "bad.toml"
    manifest.write_text('[[route]]\npath = "/bad"\nmodule = "bad.wasm"\n')
    cmd = [sys.executable, "-m", "wasmscope", "serve", str(manifest), "--port", str(free_port()), "--cache-dir", str(tmp_path / "cache")]
    proc = subprocess.Popen(cmd, stdout=subprocess.PIPE, stderr=subprocess.PIPE)
    try:
        _, err = proc.communicate(timeout=120)
        assert proc.returncode == 1
        assert "route /bad:" in err.decode() and "cannot be compiled" in err.decode()
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait(timeout=30)
