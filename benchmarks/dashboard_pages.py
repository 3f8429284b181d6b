"""Server time of the dashboard's pages over a store of N spans (default 1M).

    .venv/bin/python -m benchmarks.dashboard_pages [--spans 1000000] [--data DIR]

Fills an embedded store (chDB) with realistic ``serve`` invocations (3 spans each,
benchmarks/_otlp_data.py) spread over the last hour, then times each page in process
(ASGI, no network): the median and the best of several warm requests.
"""

from __future__ import annotations

import argparse
import asyncio
import statistics
import tempfile
import time

from benchmarks._otlp_data import SPANS_PER_INVOCATION, invocation_requests
from opentelemetry.proto.collector.trace.v1.trace_service_pb2 import ExportTraceServiceRequest

from wasmscope.collect.dashboard import Dashboard
from wasmscope.collect.receiver.sink import Signal
from wasmscope.collect.store import Store


async def _time(app: Dashboard, path: str) -> float:
    qs = path.partition("?")[2]
    scope = {"type": "http", "method": "GET", "path": path.partition("?")[0], "query_string": qs.encode(),
             "headers": [(b"accept", b"text/html")], "scheme": "http"}  # fmt: skip
    status = 0

    async def receive() -> dict[str, object]:
        return {"type": "http.request", "body": b"", "more_body": False}

    async def send(message: dict[str, object]) -> None:
        nonlocal status
        if message["type"] == "http.response.start":
            status = int(message["status"])  # type: ignore[call-overload]

    t0 = time.perf_counter()
    await app(scope, receive, send)  # type: ignore[arg-type]
    elapsed = time.perf_counter() - t0
    assert status == 200, (path, status)
    return elapsed * 1000


def main() -> None:
    p = argparse.ArgumentParser()
    p.add_argument("--spans", type=int, default=1_000_000)
    p.add_argument("--data", default=None)
    p.add_argument("--repeat", type=int, default=7)
    args = p.parse_args()
    data_dir = args.data or tempfile.mkdtemp(prefix="dash-bench-")
    store = Store.open(data_dir)
    store.ensure_schema()
    now = time.time()
    invocations = -(-args.spans // SPANS_PER_INVOCATION)
    interval = int(3500e9 / invocations)
    t0 = time.perf_counter()
    have = store.size().rows.get("otel_traces", 0)
    if have:  # --data DIR of an earlier run: time its spans (placed then, so the clock is theirs)
        now = float(store.backend.query("SELECT toUnixTimestamp(max(Timestamp)) FROM otel.otel_traces").scalar()) + 50
    for body in [] if have else invocation_requests(args.spans, batch=30_000, start_ns=int((now - 3550) * 1e9), interval_ns=interval):
        store.write(Signal.TRACES, ExportTraceServiceRequest.FromString(body))
    size = store.size()
    print(f"wrote {size.rows.get('otel_traces', 0):,} spans in {time.perf_counter() - t0:.1f} s "
          f"({size.bytes_on_disk / 2**20:.1f} MiB)")  # fmt: skip
    app = Dashboard(store, clock=lambda: now)
    pages = ["/", "/api/functions", "/function?fn=resize", "/invocations", "/invocations?attr=wasm.trap.code%3Dunreachable",
             "/modules", "/live", "/range=24h".replace("/range", "/?range")]  # fmt: skip
    for path in pages:
        times = [asyncio.run(_time(app, path)) for _ in range(args.repeat)]
        print(f"{path:55s} median {statistics.median(times[1:]):7.1f} ms   best {min(times):7.1f} ms   first {times[0]:7.1f} ms")
    store.close()


if __name__ == "__main__":
    main()
