"""The server processes of the serve benchmarks: started in a session of their own,
ready when a path answers 200, driven by wrk, charged the CPU time of their whole
process tree (uvicorn's workers included), stopped cleanly."""

from __future__ import annotations

import contextlib
import http.client
import os
import signal
import socket
import statistics
import subprocess
import time
from dataclasses import dataclass, field
from pathlib import Path

from _wrk import WrkResult, run_wrk


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def http_request(
    port: int, method: str = "GET", path: str = "/", headers: dict[str, str] | None = None, body: bytes = b"", timeout: float = 30.0
) -> tuple[int, dict[str, str], bytes]:
    """(status, lower-cased headers, body) of one request to 127.0.0.1:``port``."""
    conn = http.client.HTTPConnection("127.0.0.1", port, timeout=timeout)
    try:
        conn.request(method, path, body=body or None, headers=headers or {})
        resp = conn.getresponse()
        return resp.status, {k.lower(): v for k, v in resp.getheaders()}, resp.read()
    finally:
        conn.close()


def _ticks(pid: int) -> int:
    """utime + stime of one process, in clock ticks (0 when it is gone)."""
    try:
        fields = Path(f"/proc/{pid}/stat").read_text().rpartition(")")[2].split()
    except OSError:
        return 0
    return int(fields[11]) + int(fields[12])


def _tree(root: int) -> list[int]:
    """``root`` and its descendants (uvicorn's worker processes)."""
    children: dict[int, list[int]] = {}
    for entry in os.listdir("/proc"):
        if not entry.isdigit():
            continue
        try:
            ppid = int(Path(f"/proc/{entry}/stat").read_text().rpartition(")")[2].split()[1])
        except (OSError, IndexError, ValueError):
            continue
        children.setdefault(ppid, []).append(int(entry))
    out, todo = [], [root]
    while todo:
        pid = todo.pop()
        out.append(pid)
        todo.extend(children.get(pid, ()))
    return out


def cpu_seconds(root: int) -> float:
    """utime + stime of ``root`` and its descendants."""
    return sum(_ticks(p) for p in _tree(root)) / os.sysconf("SC_CLK_TCK")


def median(xs: list[float]) -> float:
    return statistics.median(xs) if xs else float("nan")


@dataclass
class Server:
    """One server under test: ``cmd`` listens on ``port``; ``bench_path`` is what wrk
    asks for; ``results`` and ``cpu_us`` (server CPU per request) grow per measurement."""

    name: str
    label: str
    cmd: list[str]
    port: int
    ready_path: str
    log: Path
    cwd: Path | None = None
    bench_path: str = "/hello"
    proc: subprocess.Popen[bytes] | None = None
    results: list[WrkResult] = field(default_factory=list)
    cpu_us: list[float] = field(default_factory=list)

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}{self.bench_path}"

    def start(self, deadline_s: float = 120.0) -> float:
        """Start and wait until ``ready_path`` answers 200; the seconds it took."""
        t0 = time.monotonic()
        with self.log.open("wb") as sink:
            self.proc = subprocess.Popen(
                self.cmd, cwd=self.cwd, stdout=sink, stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL,
                start_new_session=True,
            )  # fmt: skip
        while time.monotonic() - t0 < deadline_s:
            if self.proc.poll() is not None:
                raise RuntimeError(f"{self.label} exited with {self.proc.returncode}:\n{self.log.read_text()[-3000:]}")
            with contextlib.suppress(OSError):
                if http_request(self.port, "GET", self.ready_path, timeout=5)[0] == 200:
                    return time.monotonic() - t0
            time.sleep(0.1)
        raise RuntimeError(f"{self.label} was not ready on port {self.port} after {deadline_s:.0f} s")

    def stop(self) -> None:
        """SIGINT (a clean stop: telemetry flushed), SIGKILL to the group after 20 s."""
        if self.proc is None or self.proc.poll() is not None:
            return
        with contextlib.suppress(ProcessLookupError):
            os.killpg(self.proc.pid, signal.SIGINT)
        try:
            self.proc.wait(timeout=20)
        except subprocess.TimeoutExpired:
            with contextlib.suppress(ProcessLookupError):
                os.killpg(self.proc.pid, signal.SIGKILL)
            self.proc.wait(timeout=10)

    def measure(self, seconds: float, connections: int, threads: int) -> WrkResult:
        """One wrk run against :attr:`url`, recorded with the server's CPU per request."""
        assert self.proc is not None
        c0 = cpu_seconds(self.proc.pid)
        result = run_wrk(self.url, seconds=seconds, connections=connections, threads=threads)
        self.results.append(result)
        self.cpu_us.append((cpu_seconds(self.proc.pid) - c0) / max(result.requests, 1) * 1e6)
        return result
