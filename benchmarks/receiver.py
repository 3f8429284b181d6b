"""The OTLP receiver's own share of ``wasmscope collect``: decode + validate, and
OTLP/HTTP end to end into a sink that keeps nothing.

    .venv/bin/python benchmarks/receiver.py [--seconds 5] [--connections 4]

1. In this process, on realistic 1000-span requests: binary protobuf decode (upb)
   plus validation, the same gzip-compressed, and OTLP/JSON (hex ids) — spans/s,
   the median of several runs. Two shapes: 1000 SERVER spans of ~25 attributes each,
   and wasmscope ``serve`` invocations (a SERVER span and two children,
   benchmarks/_otlp_data.py).
2. Under uvicorn pinned to one core (``taskset -c 0``), ``wrk`` on the other posting
   the same 1000-span protobuf body over keep-alive connections: spans/s answered
   200 by the receiver (the sink counts and drops; the store's share is the lead's
   benchmarks/collect.py).
"""

from __future__ import annotations

import argparse
import gzip
import os
import re
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))
sys.path.insert(0, str(ROOT / "src"))

from benchmarks._otlp_data import invocation_requests  # noqa: E402
from tests.collect.receiver.otlp_data import to_otlp_json, trace_request  # noqa: E402

from wasmscope.collect.receiver.decode import Encoding, decode, inflate  # noqa: E402
from wasmscope.collect.receiver.sink import Signal  # noqa: E402
from wasmscope.collect.receiver.validate import check  # noqa: E402


class DropSink:
    """Counts and drops (the receiver's share only)."""

    def __init__(self) -> None:
        self.items = 0

    def deliver(self, signal: Signal, request: Any, items: int) -> None:
        self.items += items


def app() -> Any:
    """The uvicorn factory of part 2."""
    from wasmscope.collect.receiver.http import OtlpHttpApp

    return OtlpHttpApp(DropSink())


def rate(fn: Any, spans: int, min_seconds: float = 0.5, runs: int = 5) -> float:
    results = []
    for _ in range(runs):
        n, t0 = 0, time.perf_counter()
        while (elapsed := time.perf_counter() - t0) < min_seconds / runs or n == 0:
            fn()
            n += 1
        results.append(n * spans / elapsed)
    return statistics.median(results)


def in_process() -> None:
    shapes = {
        "1000 SERVER spans, ~25 attributes": trace_request(1000).SerializeToString(),
        "serve invocations (3 spans each)": next(invocation_requests(1000, 1000, start_ns=1_764_000_000 * 10**9)),
    }
    for shape, body in shapes.items():
        spans = check(Signal.TRACES, decode(Signal.TRACES, Encoding.PROTOBUF, body)).items
        zipped = gzip.compress(body, 6)
        as_json = to_otlp_json(decode(Signal.TRACES, Encoding.PROTOBUF, body))
        print(f"{shape}: {spans} spans, protobuf {len(body) / 1e6:.2f} MB, gzip {len(zipped) / 1e6:.2f} MB, "
              f"JSON {len(as_json) / 1e6:.2f} MB")  # fmt: skip

        def pb(body: bytes = body) -> None:
            check(Signal.TRACES, decode(Signal.TRACES, Encoding.PROTOBUF, body))

        def pbz(zipped: bytes = zipped) -> None:
            check(Signal.TRACES, decode(Signal.TRACES, Encoding.PROTOBUF, inflate(zipped, "gzip", 1 << 26)))

        def js(as_json: bytes = as_json) -> None:
            check(Signal.TRACES, decode(Signal.TRACES, Encoding.JSON, as_json))

        print(f"  protobuf decode+validate        {rate(pb, spans):12,.0f} spans/s")
        print(f"  gzip protobuf inflate+decode+validate {rate(pbz, spans):6,.0f} spans/s")
        print(f"  OTLP/JSON decode+validate       {rate(js, spans, 1.0, 3):12,.0f} spans/s")


_LUA = """wrk.method = "POST"
wrk.headers["Content-Type"] = "application/x-protobuf"
local f = io.open("{body}", "rb")
wrk.body = f:read("*all")
f:close()
"""


def end_to_end(seconds: float, connections: int) -> None:
    wrk = shutil.which("wrk")
    taskset = shutil.which("taskset")
    if wrk is None or taskset is None:
        print("end to end: skipped (needs wrk and taskset)")
        return
    import socket

    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    body = trace_request(1000).SerializeToString()
    with tempfile.TemporaryDirectory() as tmp:
        path = Path(tmp, "body.pb")
        path.write_bytes(body)
        script = Path(tmp, "post.lua")
        script.write_text(_LUA.format(body=path))
        env = {**os.environ, "PYTHONPATH": f"{ROOT}:{ROOT / 'src'}"}
        server = subprocess.Popen(
            [taskset, "-c", "0", sys.executable, "-m", "uvicorn", "--factory", "benchmarks.receiver:app",
             "--host", "127.0.0.1", "--port", str(port), "--log-level", "warning", "--no-access-log"],
            env=env, cwd=ROOT,
        )  # fmt: skip
        try:
            deadline = time.monotonic() + 20
            while True:
                with socket.socket() as s:
                    if s.connect_ex(("127.0.0.1", port)) == 0:
                        break
                assert server.poll() is None and time.monotonic() < deadline, "uvicorn did not start"
                time.sleep(0.1)
            out = subprocess.run(
                [taskset, "-c", "1", wrk, "-t1", f"-c{connections}", f"-d{seconds:.0f}s", "-s", str(script),
                 f"http://127.0.0.1:{port}/v1/traces"],
                capture_output=True, text=True, check=True,
            ).stdout  # fmt: skip
        finally:
            server.terminate()
            server.wait(10)
    rps = float(re.search(r"Requests/sec:\s+([\d.]+)", out).group(1))  # type: ignore[union-attr]
    bad = re.search(r"Non-2xx or 3xx responses:\s+(\d+)", out)
    print(f"end to end (uvicorn on one core, wrk -c{connections}, 1000-span protobuf bodies of "
          f"{len(body) / 1e6:.2f} MB): {rps:,.1f} req/s = {rps * 1000:,.0f} spans/s"
          + (f", {bad.group(1)} non-2xx" if bad else ""))  # fmt: skip


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--seconds", type=float, default=5.0)
    parser.add_argument("--connections", type=int, default=4)
    args = parser.parse_args()
    in_process()
    end_to_end(args.seconds, args.connections)


if __name__ == "__main__":
    main()
