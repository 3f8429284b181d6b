"""Driving Debian's ``wrk`` from the serve benchmarks: one bounded run against a
loopback URL, its throughput and latency percentiles parsed from ``--latency``."""

from __future__ import annotations

import re
import shutil
import subprocess
from dataclasses import dataclass

_UNITS = {"us": 1e-3, "ms": 1.0, "s": 1e3, "m": 60e3}
_PCT = re.compile(r"^\s*(50|75|90|99)(?:\.0+)?%\s+([\d.]+)(us|ms|s|m)\s*$", re.M)
_RPS = re.compile(r"^Requests/sec:\s+([\d.]+)", re.M)
_ERR = re.compile(r"Non-2xx or 3xx responses:\s+(\d+)")
_SOCK = re.compile(r"Socket errors: connect (\d+), read (\d+), write (\d+), timeout (\d+)")
_TOTAL = re.compile(r"^\s*(\d+) requests in", re.M)


@dataclass(frozen=True, slots=True)
class WrkResult:
    requests_per_s: float
    p50_ms: float
    p99_ms: float
    requests: int
    non_2xx: int
    socket_errors: int

    def line(self) -> str:
        bad = f", {self.non_2xx} non-2xx" if self.non_2xx else ""
        bad += f", {self.socket_errors} socket errors" if self.socket_errors else ""
        return f"{self.requests_per_s:9.0f} req/s   p50 {self.p50_ms:7.2f} ms   p99 {self.p99_ms:7.2f} ms{bad}"


def wrk_path() -> str | None:
    return shutil.which("wrk")


def run_wrk(url: str, *, seconds: float = 5.0, connections: int = 16, threads: int = 2, timeout_s: int = 10) -> WrkResult:
    """One ``wrk --latency`` run; raises RuntimeError with wrk's output if it fails."""
    exe = wrk_path()
    if exe is None:
        raise RuntimeError("wrk not found: apt-get install wrk (make sysdeps does)")
    if not url.startswith(("http://127.0.0.1", "https://127.0.0.1")):
        raise ValueError(f"{url}: the benchmarks only drive loopback")
    cmd = [exe, "--latency", f"-t{threads}", f"-c{connections}", f"-d{max(1, round(seconds))}s", f"--timeout={timeout_s}s", url]
    proc = subprocess.run(cmd, capture_output=True, text=True, timeout=seconds + timeout_s + 30, check=False)
    out = proc.stdout
    rps = _RPS.search(out)
    pct = {m.group(1): float(m.group(2)) * _UNITS[m.group(3)] for m in _PCT.finditer(out)}
    total = _TOTAL.search(out)
    if proc.returncode != 0 or rps is None or "50" not in pct or "99" not in pct or total is None:
        raise RuntimeError(f"wrk failed ({proc.returncode}):\n{out}\n{proc.stderr}")
    err = _ERR.search(out)
    sock = _SOCK.search(out)
    return WrkResult(
        requests_per_s=float(rps.group(1)),
        p50_ms=pct["50"],
        p99_ms=pct["99"],
        requests=int(total.group(1)),
        non_2xx=int(err.group(1)) if err else 0,
        socket_errors=sum(int(g) for g in sock.groups()) if sock else 0,
    )
