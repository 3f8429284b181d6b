"""``wasmscope collect`` against its limits and a peer, in one run.

    .venv/bin/python benchmarks/collect.py [--spans 1000000] [--batch 1000] [--out build/bench-collect]

What it does, in order (one run; every figure printed beside the target of issue 11):

1. makes ``--spans`` realistic wasmscope invocation spans (3 a ``serve`` request:
   the server span with ~25 attributes, ``instantiate`` and ``execute``; one in
   twenty traps) as ``--batch``-span OTLP/protobuf requests, and one guest log
   line per invocation (benchmarks/_otlp_data.py);
2. the limits, measured on the same bytes: protobuf parse alone (upb), and the
   store's column building and chDB insert alone (in this process, on a folder of
   its own);
3. the peer: ``rotel-agent`` (PyPI ``rotel``, a Rust OTLP collector) receiving the
   same requests into its ``blackhole`` exporter;
4. ``wasmscope collect`` end to end: the same requests over HTTP keep-alive from
   ``--connections`` client threads, every one answered 200 (stored); the server
   pinned to one core (``taskset -c 0``), the client on the other; resident memory
   idle and under load (its peak, sampled every 50 ms);
5. after a clean stop, on the stored data (this process opens the folder): bytes on
   disk per span, and the queries: function RED over the last hour, a trace by id,
   an attribute search, and the Functions page's server time (in-process ASGI).

Query times are the median of ``--repeat`` runs after one warm-up.
"""

from __future__ import annotations

import argparse
import concurrent.futures
import contextlib
import http.client
import os
import shutil
import signal
import statistics
import subprocess
import sys
import threading
import time
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT / "benchmarks"))
sys.path.insert(0, str(ROOT))

from _otlp_data import SPANS_PER_INVOCATION, invocation_logs, invocation_requests  # noqa: E402
from _servers import free_port, http_request  # noqa: E402

PROTOBUF = "application/x-protobuf"


def say(text: str = "") -> None:
    print(text, flush=True)


def rss_bytes(pid: int) -> int:
    """Resident memory of one process (VmRSS), 0 when it is gone."""
    try:
        for line in Path(f"/proc/{pid}/status").read_text().splitlines():
            if line.startswith("VmRSS:"):
                return int(line.split()[1]) * 1024
    except OSError:
        pass
    return 0


class RssSampler:
    """The peak VmRSS of ``pid``, sampled every 50 ms on a thread while in the ``with``."""

    def __init__(self, pid: int) -> None:
        self.pid = pid
        self.peak = 0
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, daemon=True)

    def _run(self) -> None:
        while not self._stop.wait(0.05):
            self.peak = max(self.peak, rss_bytes(self.pid))

    def __enter__(self) -> RssSampler:
        self._thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self._stop.set()
        self._thread.join()


def send_all(port: int, bodies: Sequence[tuple[str, bytes]], connections: int, token: str | None = None) -> tuple[float, int]:
    """POST every (path, body) over ``connections`` keep-alive connections; returns
    (seconds, retries). Every request must end in 200: 429/503 are retried after their
    Retry-After, as an OTLP exporter does; anything else stops the benchmark."""
    lock = threading.Lock()
    queue = list(reversed(bodies))
    retries = 0

    def worker() -> None:
        nonlocal retries
        conn = http.client.HTTPConnection("127.0.0.1", port, timeout=120)
        headers = {"Content-Type": PROTOBUF}
        if token:
            headers["Authorization"] = f"Bearer {token}"
        try:
            while True:
                with lock:
                    if not queue:
                        return
                    path, body = queue.pop()
                while True:
                    conn.request("POST", path, body=body, headers=headers)
                    resp = conn.getresponse()
                    resp.read()
                    if resp.status == 200:
                        break
                    if resp.status in (429, 503):
                        with lock:
                            retries += 1
                        time.sleep(float(resp.getheader("Retry-After") or "1"))
                        continue
                    raise RuntimeError(f"POST {path}: {resp.status}")
        finally:
            conn.close()

    t0 = time.perf_counter()
    with concurrent.futures.ThreadPoolExecutor(connections) as pool:
        for f in [pool.submit(worker) for _ in range(connections)]:
            f.result()
    return time.perf_counter() - t0, retries


def inserted_rows(port: int) -> int:
    """Rows the collector's writer has inserted (its /metrics)."""
    body = http_request(port, "GET", "/metrics")[2].decode()
    for line in body.splitlines():
        if line.startswith("wasmscope_collect_inserted_rows_total "):
            return int(float(line.split()[1]))
    return 0


def wait_inserted(port: int, rows: int, deadline_s: float = 600.0) -> None:
    """Until the store holds ``rows`` rows: an acknowledgment means logged, not yet inserted."""
    t0 = time.monotonic()
    while inserted_rows(port) < rows:
        if time.monotonic() - t0 > deadline_s:
            raise RuntimeError(f"the collector stored {inserted_rows(port)} of {rows} rows")
        time.sleep(0.05)


def start(cmd: list[str], port: int, ready: str, log: Path, deadline: float = 180.0) -> subprocess.Popen[bytes]:
    with log.open("wb") as sink:
        proc = subprocess.Popen(cmd, stdout=sink, stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL, start_new_session=True)
    t0 = time.monotonic()
    while time.monotonic() - t0 < deadline:
        if proc.poll() is not None:
            raise RuntimeError(f"{cmd[0]} exited with {proc.returncode}:\n{log.read_text()[-3000:]}")
        with contextlib.suppress(OSError):
            if ready == "tcp" or http_request(port, "GET", ready, timeout=5)[0] == 200:
                if ready == "tcp":
                    http.client.HTTPConnection("127.0.0.1", port, timeout=2).connect()
                return proc
        time.sleep(0.1)
    proc.kill()
    raise RuntimeError(f"{cmd[0]} was not ready on port {port}")


def stop(proc: subprocess.Popen[bytes]) -> None:
    if proc.poll() is not None:
        return
    with contextlib.suppress(ProcessLookupError):
        os.killpg(proc.pid, signal.SIGINT)
    try:
        proc.wait(timeout=60)
    except subprocess.TimeoutExpired:
        with contextlib.suppress(ProcessLookupError):
            os.killpg(proc.pid, signal.SIGKILL)
        proc.wait()


def timed(fn: Callable[[], Any], repeat: int) -> float:
    """Median milliseconds of ``repeat`` calls after one warm-up."""
    fn()
    runs = []
    for _ in range(repeat):
        t0 = time.perf_counter()
        fn()
        runs.append((time.perf_counter() - t0) * 1000.0)
    return statistics.median(runs)


def mib(n: float) -> str:
    return f"{n / 2**20:.0f} MiB"


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--spans", type=int, default=1_000_000)
    ap.add_argument("--batch", type=int, default=1000)
    ap.add_argument("--connections", type=int, default=4)
    ap.add_argument("--repeat", type=int, default=7)
    ap.add_argument("--out", type=Path, default=ROOT / "build" / "bench-collect")
    ap.add_argument("--no-rotel", action="store_true")
    ap.add_argument("--queries-only", type=Path, metavar="DATA", help="only step 5, on the data folder of an earlier run")
    args = ap.parse_args(argv)
    if args.queries_only:
        from wasmscope.collect.store import Store

        with Store.open(data_dir=args.queries_only) as store:
            store.ensure_schema()  # what a collector of this version adds (wasmscope_invocations)
            n = int(store.size().rows.get("otel_traces", 0))
        queries(args.queries_only, n, args.repeat)
        return 0

    from opentelemetry.proto.collector.trace.v1.trace_service_pb2 import ExportTraceServiceRequest

    out: Path = args.out
    shutil.rmtree(out, ignore_errors=True)
    out.mkdir(parents=True)
    with contextlib.suppress(OSError):
        os.sched_setaffinity(0, {1})  # the client; the servers get core 0
    pin = ["taskset", "-c", "0"] if shutil.which("taskset") and os.cpu_count() and os.cpu_count() > 1 else []  # type: ignore[operator]

    say(f"== making {args.spans:,} spans in {args.batch}-span requests, with one log line per invocation")
    t0 = time.perf_counter()
    start_ns = time.time_ns() - (args.spans // SPANS_PER_INVOCATION) * 1_000_000 - 60 * 10**9
    traces = list(invocation_requests(args.spans, args.batch, seed=1, start_ns=start_ns))
    n_logs = args.spans // SPANS_PER_INVOCATION
    logs = list(invocation_logs(n_logs, args.batch, seed=1, start_ns=start_ns))
    n_spans = -(-args.spans // SPANS_PER_INVOCATION) * SPANS_PER_INVOCATION
    trace_bytes = sum(len(b) for b in traces)
    say(f"   {len(traces)} trace requests ({mib(trace_bytes)}), {len(logs)} log requests, {time.perf_counter() - t0:.1f} s")

    results: dict[str, float] = {}

    say("\n== limits on the same bytes (this process)")
    t0 = time.perf_counter()
    for body in traces:
        ExportTraceServiceRequest.FromString(body)
    results["parse"] = n_spans / (time.perf_counter() - t0)
    say(f"   protobuf parse alone (upb): {results['parse']:,.0f} spans/s")
    results.update(store_alone(out / "insert-only", traces))
    say(f"   columns alone: {results['columns']:,.0f} spans/s; chDB insert alone: {results['insert']:,.0f} spans/s; "
        f"both: {results['columns+insert']:,.0f} spans/s")  # fmt: skip

    if not args.no_rotel:
        results["rotel"] = rotel_blackhole(out, traces, n_spans, args.connections, pin)
        say(f"   rotel-agent into blackhole: {results['rotel']:,.0f} spans/s")

    say("\n== wasmscope collect, end to end (server on core 0, client on core 1)")
    port = free_port()
    data = out / "data"
    cmd = [*pin, sys.executable, "-m", "wasmscope", "collect", "--data", str(data), "--port", str(port), "--grpc-port", "0"]
    proc = start(cmd, port, "/healthz", out / "collect.log")
    try:
        time.sleep(2.0)
        idle = rss_bytes(proc.pid)
        with RssSampler(proc.pid) as rss:
            t0 = time.perf_counter()
            acked, retries = send_all(port, [("/v1/traces", b) for b in traces], args.connections)
            wait_inserted(port, n_spans)
            seconds = time.perf_counter() - t0
            t0 = time.perf_counter()
            _, log_retries = send_all(port, [("/v1/logs", b) for b in logs], args.connections)
            wait_inserted(port, n_spans + n_logs)
            log_seconds = time.perf_counter() - t0
        results["e2e"] = n_spans / seconds
        say(f"   {n_spans:,} spans stored in {seconds:.1f} s: {results['e2e']:,.0f} spans/s (all acknowledged after "
            f"{acked:.1f} s; {retries} requests retried after 429/503)")  # fmt: skip
        say(f"   {n_logs:,} log records stored in {log_seconds:.1f} s: {n_logs / log_seconds:,.0f} records/s ({log_retries} retried)")
        say(f"   resident memory: idle {mib(idle)}, peak under load {mib(rss.peak)}")
        results["rss_idle"], results["rss_peak"] = idle, rss.peak
    finally:
        stop(proc)

    results.update(queries(data, n_spans, args.repeat))
    report(results, n_spans)
    return 0


def store_alone(folder: Path, traces: list[bytes]) -> dict[str, float]:
    """Column building and chDB insert of the same requests, each timed alone."""
    from opentelemetry.proto.collector.trace.v1.trace_service_pb2 import ExportTraceServiceRequest

    from wasmscope.collect.store import Store
    from wasmscope.collect.store.columns import traces_tables

    messages = [ExportTraceServiceRequest.FromString(b) for b in traces]
    n = sum(len(ss.spans) for m in messages for rs in m.resource_spans for ss in rs.scope_spans)
    with Store.open(data_dir=folder) as store:
        store.ensure_schema()
        t0 = time.perf_counter()
        tables = [traces_tables(m) for m in messages]
        t_columns = time.perf_counter() - t0
        # One insert per 50,000 rows, as the writer batches them.
        import pyarrow as pa

        per_table: dict[str, list[Any]] = {}
        for request_tables in tables:
            for name, data in request_tables:
                per_table.setdefault(name, []).append(data)
        t0 = time.perf_counter()
        for name, parts in per_table.items():
            for i in range(0, len(parts), 50):
                store.insert(name, pa.concat_tables(parts[i : i + 50]))
        t_insert = time.perf_counter() - t0
    return {"columns": n / t_columns, "insert": n / t_insert, "columns+insert": n / (t_columns + t_insert)}


def rotel_blackhole(out: Path, traces: list[bytes], n_spans: int, connections: int, pin: list[str]) -> float:
    import rotel

    agent = Path(rotel.__file__).parent / "rotel-agent"
    port, grpc = free_port(), free_port()
    cmd = [*pin, str(agent), "start", "--exporter", "blackhole", "--otlp-http-endpoint", f"127.0.0.1:{port}",
           "--otlp-grpc-endpoint", f"127.0.0.1:{grpc}"]  # fmt: skip
    proc = start(cmd, port, "tcp", out / "rotel.log")
    try:
        seconds, _ = send_all(port, [("/v1/traces", b) for b in traces], connections)
    finally:
        stop(proc)
    return n_spans / seconds


def queries(data: Path, n_spans: int, repeat: int) -> dict[str, float]:
    """Disk per span and the query times, on the stored data, in this process."""
    from wasmscope.collect.store import Store

    res: dict[str, float] = {}
    say("\n== on the stored data")
    with Store.open(data_dir=data) as store:
        size = store.size()
        rows, spans_bytes = size.rows.get("otel_traces", 0), size.table_bytes.get("otel_traces", 0)
        say(f"   otel_traces: {rows:,} rows, {spans_bytes:,} bytes on disk: {spans_bytes / max(rows, 1):.1f} B/span")
        lrows, lbytes = size.rows.get("otel_logs", 0), size.table_bytes.get("otel_logs", 0)
        say(f"   otel_logs: {lrows:,} rows, {lbytes:,} bytes on disk: {lbytes / max(lrows, 1):.1f} B/record")
        say(f"   the whole store: {size.bytes_on_disk:,} bytes ({size.bytes_on_disk / max(rows, 1):.1f} B a span, logs and lookup table included)")
        if rows != n_spans:
            raise RuntimeError(f"stored {rows} spans, sent {n_spans}")
        res["bytes_per_span"] = spans_bytes / rows
        res.update(query_times(store, repeat))
    return res


def query_times(store: Any, repeat: int) -> dict[str, float]:
    import asyncio

    import httpx

    from wasmscope.collect.dashboard import Dashboard
    from wasmscope.collect.dashboard import queries as q
    from wasmscope.collect.dashboard.context import Db
    from wasmscope.collect.dashboard.filters import Filters

    now = time.time()
    db = Db(store.backend, store.database, fast=True, minutes=True)
    hour = Filters.parse({"range": ["1h"]}, now)
    trace_id, invocation_id = store.backend.query(
        f"SELECT TraceId, SpanAttributes['faas.invocation_id'] FROM {store.database}.otel_traces"
        " WHERE SpanKind = 'Server' LIMIT 1 OFFSET 12345"
    ).rows[0]
    # A selective search (the exporter's bloom filters serve it), and a value one span in 60 has.
    search = q.InvocationSearch(attrs=(("faas.invocation_id", invocation_id),))
    common = q.InvocationSearch(attrs=(("wasm.trap.code", "memory_out_of_bounds"),))
    found = q.search_invocations(db, hour, search, 50)
    assert [r["trace_id"] for r in found] == [trace_id], found
    res = {
        "red": timed(lambda: q.functions_table(db, hour), repeat),
        "trace": timed(lambda: q.trace(db, trace_id), repeat),
        "attr": timed(lambda: q.search_invocations(db, hour, search, 50), repeat),
        "attr_common": timed(lambda: q.search_invocations(db, hour, common, 50), repeat),
    }
    app = Dashboard(store, clock=lambda: now)

    async def page() -> None:
        async with httpx.AsyncClient(transport=httpx.ASGITransport(app=app), base_url="http://collect") as client:
            resp = await client.get("/?range=1h")
            assert resp.status_code == 200, resp.status_code

    res["functions_page"] = timed(lambda: asyncio.run(page()), repeat)
    say(f"   function RED, last hour: {res['red']:.1f} ms; trace by id: {res['trace']:.1f} ms; "
        f"attribute search: {res['attr']:.1f} ms (a common value: {res['attr_common']:.1f} ms); "
        f"Functions page: {res['functions_page']:.1f} ms")  # fmt: skip
    return res


def report(r: dict[str, float], n_spans: int) -> None:
    say(f"\n== summary ({n_spans:,} spans; targets of issue 11)")
    rows = [
        ("ingest end to end, one core", f"{r['e2e']:,.0f} spans/s", ">= 50,000", r["e2e"] >= 50_000),
        ("  protobuf parse alone", f"{r['parse']:,.0f} spans/s", "", None),
        ("  columns + chDB insert alone", f"{r['columns+insert']:,.0f} spans/s", "", None),
    ]
    if "rotel" in r:
        rows.append(("  rotel-agent into blackhole", f"{r['rotel']:,.0f} spans/s", f"ours/rotel {r['e2e'] / r['rotel']:.2f}", None))
    rows += [
        ("disk", f"{r['bytes_per_span']:.1f} B/span", "<= 60", r["bytes_per_span"] <= 60),
        ("function RED, last hour", f"{r['red']:.1f} ms", "<= 30", r["red"] <= 30),
        ("trace by id", f"{r['trace']:.1f} ms", "<= 20", r["trace"] <= 20),
        ("attribute search (faas.invocation_id=...)", f"{r['attr']:.1f} ms", "<= 30", r["attr"] <= 30),
        ("  a value 1 span in 60 has, newest 50", f"{r['attr_common']:.1f} ms", "", None),
        ("Functions page, server time", f"{r['functions_page']:.1f} ms", "<= 150", r["functions_page"] <= 150),
        ("resident memory idle", mib(r["rss_idle"]), "<= 400 MiB", r["rss_idle"] <= 400 * 2**20),
        ("resident memory under load (peak)", mib(r["rss_peak"]), "", None),
    ]
    for name, value, target, ok in rows:
        mark = "" if ok is None else ("  ok" if ok else "  MISSED")
        say(f"   {name:42} {value:>18}  {target}{mark}")


if __name__ == "__main__":
    sys.exit(main())
