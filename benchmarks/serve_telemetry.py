"""What serve's telemetry costs per request, in process: CPU time of all threads.

The serve app of ``benchmarks/serve.py`` (``examples/serve/hello.c``, one route) is
driven in process (no HTTP, one request at a time, as the breakdown of serve.py does)
with telemetry off and with ``--otlp`` to a real local rotel (the exporter thread's
encoding and sending included: each batch ends with a flush of the span exporter; the
metrics, exported once a minute, are left out), interleaved,
``--reps`` times; printed: the medians of process CPU µs per request and the
difference. Also the cost of ``TracingMiddleware`` + ``record_invocation`` alone on a
warm record (no Wasm), and what rotel counted.

Usage: python benchmarks/serve_telemetry.py [-n 2000] [--reps 5] [--exporter otlp|jsonl]
"""

from __future__ import annotations

import argparse
import asyncio
import statistics
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parent))

import serve as bench  # benchmarks/serve.py


def cpu_per_request(app: Any, n: int, flush: Any = None) -> float:
    t = time.process_time()
    bench._asgi_loop(app, n)
    if flush is not None:
        flush()
    return (time.process_time() - t) / n * 1e6


def main() -> int:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("-n", type=int, default=2000, help="requests per batch (default 2000)")
    p.add_argument("--reps", type=int, default=5, help="batches per config, interleaved (default 5)")
    p.add_argument("--exporter", choices=("otlp", "jsonl"), default="otlp")
    args = p.parse_args()
    with tempfile.TemporaryDirectory(prefix="wasmscope-bench-tel-") as d:
        tmp = Path(d)
        bench.build_hello(tmp)
        with bench.rotel(tmp) as (url, rotel_out):
            tel_opts = [f"otlp:{url}"] if args.exporter == "otlp" else [f"jsonl:{tmp / 't.jsonl'}"]
            off_app, off_gw, _ = bench._serve_app(tmp, [])
            on_app, on_gw, tel = bench._serve_app(tmp, tel_opts)
            for app in (off_app, on_app):
                bench._asgi_loop(app, 300)
            tel.force_flush()
            spans0 = bench.rotel_spans(rotel_out)

            def flush() -> None:
                # the request spans' exporter (the SDK's metrics export once a minute)
                tel._sdk.direct.force_flush(30)

            off: list[float] = []
            on: list[float] = []
            for _ in range(args.reps):
                off.append(cpu_per_request(off_app, args.n))
                on.append(cpu_per_request(on_app, args.n, flush))
            # the telemetry layers alone, no Wasm: the middleware around an app that
            # records a warm invocation record
            rec = on_gw.runtime.run(str(tmp / "hello.wasm"), [], argv0="/hello")
            rec.stdout = b"content-type: text/plain\n\nhello \n"
            from wasmscope.gateway.tracing import TracingMiddleware

            async def fake(scope: Any, receive: Any, send: Any) -> None:
                tp = next(bytes(v).decode() for k, v in scope["headers"] if k == b"traceparent")
                tel.record_invocation(rec, parent=tp)
                await send({"type": "http.response.start", "status": 200, "headers": []})
                await send({"type": "http.response.body", "body": b""})

            layers = TracingMiddleware(fake, tel, manifest=on_gw.manifest)
            bench._asgi_loop(layers, 300)
            only = [cpu_per_request(layers, args.n, flush) for _ in range(args.reps)]
            empty = [cpu_per_request(_empty, args.n) for _ in range(args.reps)]
            direct = tel._sdk.direct
            print(f"exporter thread: {direct.export_cpu / max(direct.exported_items, 1) * 1e6:.1f} us CPU per request (encode + send)")
            off_gw.close()
            on_gw.close()
            stats = tel.stats
            tel.shutdown()
            time.sleep(1.5)
            got = bench.rotel_spans(rotel_out) - spans0
        med = statistics.median
        print(f"in-process, {args.reps} x {args.n} requests, process CPU us per request (medians), exporter {args.exporter}:")
        print(f"  serve app, telemetry off          {med(off):8.1f}   (reps {', '.join(f'{x:.0f}' for x in off)})")
        print(f"  serve app, telemetry on           {med(on):8.1f}   (reps {', '.join(f'{x:.0f}' for x in on)})")
        print(f"  telemetry cost                    {med(on) - med(off):8.1f}   ({(med(on) - med(off)) / med(off) * 100:.1f}% of off)")
        print(f"  middleware + record_invocation    {med(only) - med(empty):8.1f}   (no Wasm, exporter included)")
        print(f"  exported {stats.exported('spans')} spans, {stats.exported('logs')} logs, failed {stats.failed()}; rotel received {got} spans")
    return 0


async def _empty(scope: Any, receive: Any, send: Any) -> None:
    await send({"type": "http.response.start", "status": 200, "headers": []})
    await send({"type": "http.response.body", "body": b""})


if __name__ == "__main__":
    asyncio.set_event_loop_policy(None)
    sys.exit(main())
