"""``wasmscope serve --tls-cert/--tls-key`` as a real process: a self-signed
certificate for 127.0.0.1 made here (openssl), HTTPS verified against it, an API
key over TLS; plain HTTP is refused. The process is always killed in the end."""

from __future__ import annotations

import json
import os
import signal
import ssl
import subprocess
import sys
from pathlib import Path

import pytest

from tests.gateway.serving import free_port, self_signed, wait_ready
from tests.gateway.test_serve_cli import READY_WAIT
from wasmscope.cli import main
from wasmscope.gateway.keys import hash_key

httpx = pytest.importorskip("httpx")
pytest.importorskip("uvicorn")

KEY = "wsk_tls-test-key"


def test_serve_over_tls_with_an_api_key(wat_modules: dict[str, Path], tmp_path: Path) -> None:
    cert, key = self_signed(tmp_path)
    manifest = tmp_path / "app.toml"
    manifest.write_text(
        f'[[route]]\npath = "/hello"\nmodule = "{wat_modules["hello"]}"\nauth = "key"\n\n'
        f'[[route]]\npath = "/open"\nmodule = "{wat_modules["hello"]}"\n\n'
        f'[[key]]\nid = "tls-client"\nhash = "{hash_key(KEY, n=1024)}"\nroutes = ["/hello"]\n'
    )
    port = free_port()
    cmd = [sys.executable, "-m", "wasmscope", "serve", str(manifest), "--port", str(port), "--cache-dir", str(tmp_path / "cache"),
           "--tls-cert", str(cert), "--tls-key", str(key)]  # fmt: skip
    proc = subprocess.Popen(cmd, stdout=subprocess.PIPE, stderr=subprocess.PIPE, env={**os.environ, "PYTHONUNBUFFERED": "1"})
    verify = ssl.create_default_context(cafile=str(cert))
    try:
        wait_ready(proc, f"https://127.0.0.1:{port}/readyz", READY_WAIT, verify=verify)
        with httpx.Client(base_url=f"https://127.0.0.1:{port}", verify=verify, timeout=30.0) as client:
            r = client.get("/hello?tls", headers={"authorization": f"Bearer {KEY}"})
            assert r.status_code == 200 and r.text == "hello tls\n"
            assert client.get("/hello").status_code == 401
            assert client.get("/open?x").text == "hello x\n"
        with httpx.Client(timeout=10.0) as plain, pytest.raises(httpx.TransportError):
            plain.get(f"http://127.0.0.1:{port}/healthz")  # HTTP on the TLS port
        with httpx.Client(timeout=10.0) as unverified, pytest.raises(httpx.ConnectError):
            unverified.get(f"https://127.0.0.1:{port}/healthz")  # the default trust store does not know it
        proc.send_signal(signal.SIGTERM)
        out, err = proc.communicate(timeout=60)
        assert proc.returncode == 0, err.decode()
        assert KEY not in out.decode() and KEY not in err.decode()
        lines = [json.loads(line) for line in out.decode().splitlines() if line.startswith("{")]
        assert any(line["path"] == "/hello" and line["status"] == 200 and line.get("key_id") == "tls-client" for line in lines)
        assert any(line["path"] == "/hello" and line["status"] == 401 for line in lines)
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait(timeout=30)


def test_tls_options_go_together(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    (tmp_path / "h.wasm").write_bytes(b"\0asm\1\0\0\0")
    assert main(["serve", str(tmp_path), "--tls-cert", str(tmp_path / "c.pem")]) == 2
    assert "--tls-cert and --tls-key go together" in capsys.readouterr().err
    assert main(["serve", str(tmp_path), "--tls-cert", str(tmp_path / "c.pem"), "--tls-key", str(tmp_path / "k.pem")]) == 2
    assert "no such file" in capsys.readouterr().err
    assert main(["serve"]) == 2
    assert "missing MANIFEST_OR_DIR" in capsys.readouterr().err
