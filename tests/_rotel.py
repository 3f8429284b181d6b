"""A real collector for the tests: ``rotel-agent``, the binary in the PyPI ``rotel``
wheel, started in the foreground on free ports of 127.0.0.1 and stopped after."""

from __future__ import annotations

import os
import socket
import subprocess
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path

import pytest

from tests.telemetry.otlp_stub import closed_port


@dataclass
class RotelAgent:
    proc: subprocess.Popen[bytes]
    port: int  # its OTLP/HTTP port
    out: Path  # its stdout and stderr

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"


def agent_path() -> Path:
    """The ``rotel-agent`` binary; skips the test when ``rotel`` is not installed."""
    rotel = pytest.importorskip("rotel")
    agent = Path(rotel.__file__).parent / "rotel-agent"
    if not os.access(agent, os.X_OK):
        pytest.skip(f"rotel-agent not executable at {agent}")
    return agent


def wait_port(port: int, proc: subprocess.Popen[bytes], deadline: float) -> None:
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            raise RuntimeError(f"rotel-agent exited with {proc.returncode}")
        with socket.socket() as s:
            s.settimeout(0.2)
            if s.connect_ex(("127.0.0.1", port)) == 0:
                return
        time.sleep(0.05)
    raise TimeoutError(f"rotel-agent did not listen on 127.0.0.1:{port}")


@contextmanager
def rotel_agent(tmp: Path, *args: str) -> Iterator[RotelAgent]:
    """``rotel-agent start`` with ``args`` (its exporter), listening for OTLP/HTTP and
    gRPC on free ports; its pid, log and output files in ``tmp``."""
    http_port, grpc_port = closed_port(), closed_port()
    out = tmp / "rotel.out"
    argv = [
        str(agent_path()), "start",
        "--otlp-http-endpoint", f"127.0.0.1:{http_port}",
        "--otlp-grpc-endpoint", f"127.0.0.1:{grpc_port}",
        "--pid-file", str(tmp / "rotel.pid"),
        "--log-file", str(tmp / "rotel.log"),
        *args,
    ]  # fmt: skip
    with out.open("wb") as sink:
        proc = subprocess.Popen(
            argv, stdout=sink, stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL
        )
    try:
        wait_port(http_port, proc, time.monotonic() + 120)  # a guard against a hang, not a measurement
        yield RotelAgent(proc, http_port, out)
    finally:
        proc.terminate()
        try:
            proc.wait(10)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait(10)
