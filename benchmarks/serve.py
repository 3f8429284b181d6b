"""``wasmscope serve`` throughput and latency against a plain Python endpoint, measured
in one run with Debian's ``wrk`` on loopback only (https://github.com/wg/wrk).

Three servers, all uvicorn with the same options (``--host 127.0.0.1 --lifespan on``,
no access log, no ``server`` header, log level warning) and the same worker count:

  a. ``plain``: a raw ASGI "hello" app (``benchmarks/_hello_asgi.py``: it reads the
     request body and answers 200 ``text/plain`` ``"hello \\n"``), started with
     ``python -m uvicorn``;
  b. ``wasm``: ``wasmscope serve`` with one route, ``/hello``, the C WAGI handler
     ``examples/serve/hello.c`` built here with ``clang-19 --target=wasm32-wasi -O2``
     (same status, body and content type; it adds ``x-wasmscope-invocation``), a fresh
     instance per request, Prometheus metrics on (always on in serve), telemetry off;
  c. ``wasm+tel``: the same with full telemetry: ``--otlp`` to a real local OpenTelemetry
     receiver (``rotel-agent`` from PyPI ``rotel``, blackhole exporter, started here on
     free ports; ``--exporter jsonl`` writes a JSON-lines file instead), i.e. per request
     an HTTP server span (the invocation folded in) with instantiate and execute children, the guest's
     stdout lines as log records and the invocation metrics, all exported.

Each server is checked first (20 ``GET /hello``: 200 and the same body), warmed up
with a short wrk run, then measured with ``wrk --latency -t1 -c8`` (settings:
``--threads``, ``--connections``, ``--seconds``) ``--reps`` times, the three configs
interleaved in a rotating order with a pause between runs (so the exporter of c.
has drained its queue). wrk needs CPU too: on this 2-core machine it gets one thread.
Printed per config: the medians over the reps of req/s, p50, p99 and the server's CPU
time per request (utime + stime of the server's processes from /proc, so the cost
is seen even when the machine is the bottleneck); then the median of the per-rep
ratios: ``wasm+tel / plain`` (target >= 0.60) and ``wasm+tel / wasm`` (telemetry
costs at most 10%: target >= 0.90). With rotel, the spans it received are counted
(its ``basic`` debug log) to show that nothing was dropped.

Then (``--no-breakdown`` to skip) an in-process breakdown of the cost of one request,
without HTTP, sequential (no concurrency), in microseconds: the plain app, the serve
app with telemetry off and on (wall and process CPU, export threads included), and
the layers in between (``Runtime.run`` with the gateway's arguments, the gateway's own
Python around it, the thread hop and middlewares; serve's telemetry alone in a tight
loop, and the exporter thread's share), and the functions with the most own time in
``Runtime.run`` (cProfile, which inflates small calls).

Last, when ``benchmarks/serve_components.py`` exists (``--no-components`` to skip),
its ``main`` runs (a componentize-py handler against ``wasmtime serve``), given the
same ``--seconds``, ``--warmup``, ``--reps``, ``--connections``, ``--threads`` (and
``--no-breakdown``).

Usage: python benchmarks/serve.py [--seconds 5] [--reps 3] [--workers 1,2] [--connections 8]
                                  [--threads 1] [--exporter otlp|jsonl] [--no-breakdown]
                                  [--no-components] [--keep DIR]
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import datetime
import os
import platform
import re
import shutil
import socket
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import _servers
from _hello_asgi import BODY
from _servers import free_port, http_request
from _servers import median as _median
from _wrk import run_wrk, wrk_path

BENCH = Path(__file__).resolve().parent
ROOT = BENCH.parent
HELLO_C = ROOT / "examples" / "serve" / "hello.c"
PY = sys.executable
CLANG = "clang-19"
TARGET_RATIO = 0.60
TARGET_TELEMETRY = 0.90  # telemetry on / off: costs at most 10%
SPANS_PER_REQUEST = 3  # the server span (the invocation folded in), instantiate, execute (warm)
ANSI = re.compile(r"\x1b\[[0-9;]*m")
ROTEL_SPANS = re.compile(r"Received traces\..*?\bspans=(\d+)")
MANIFEST = """\
# benchmarks/serve.py: one route, the defaults of wasmscope serve (max_concurrency 8)
[[route]]
path = "/hello"
module = "hello.wasm"
"""


# --- processes ---------------------------------------------------------------------------
class Server(_servers.Server):
    """A server of this benchmark: answers ``GET /hello`` like the plain peer."""

    def check(self) -> None:
        for _ in range(20):
            status, headers, body = http_request(self.port, "GET", "/hello", timeout=5)
            if status != 200 or body != BODY or headers.get("content-type") != "text/plain":
                raise RuntimeError(f"{self.label}: GET /hello answered {status} {headers} {body!r}, expected 200 text/plain {BODY!r}")


@contextlib.contextmanager
def rotel(tmp: Path) -> Iterator[tuple[str, Path]]:
    """rotel-agent on free loopback ports, blackhole exporter, its basic debug log
    (one line per batch received, with the span count) in a file."""
    try:
        import rotel as rotel_pkg
    except ImportError:
        raise SystemExit("PyPI rotel is not installed (make .venv installs it); or use --exporter jsonl") from None
    agent = Path(rotel_pkg.__file__).parent / "rotel-agent"
    if not os.access(agent, os.X_OK):
        raise SystemExit(f"rotel-agent is not executable at {agent}; or use --exporter jsonl")
    http_port, grpc_port = free_port(), free_port()
    out = tmp / "rotel.out"
    args = [
        str(agent), "start",
        "--otlp-http-endpoint", f"127.0.0.1:{http_port}", "--otlp-grpc-endpoint", f"127.0.0.1:{grpc_port}",
        "--exporter", "blackhole", "--debug-log", "traces", "--debug-log-verbosity", "basic",
        "--pid-file", str(tmp / "rotel.pid"), "--log-file", str(tmp / "rotel.log"),
    ]  # fmt: skip
    with out.open("wb") as sink:
        proc = subprocess.Popen(args, stdout=sink, stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL, start_new_session=True)
    try:
        deadline = time.monotonic() + 20
        while True:
            if proc.poll() is not None:
                raise SystemExit(f"rotel-agent exited with {proc.returncode}: {out.read_text()[-1000:]}")
            with socket.socket() as s:
                s.settimeout(0.2)
                if s.connect_ex(("127.0.0.1", http_port)) == 0:
                    break
            if time.monotonic() > deadline:
                raise SystemExit("rotel-agent did not listen within 20 s")
            time.sleep(0.05)
        yield f"http://127.0.0.1:{http_port}", out
    finally:
        proc.terminate()
        try:
            proc.wait(timeout=10)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait()


def rotel_spans(out: Path) -> int:
    return sum(int(m.group(1)) for m in ROTEL_SPANS.finditer(ANSI.sub("", out.read_text(errors="replace"))))


def build_hello(tmp: Path) -> Path:
    clang = shutil.which(CLANG)
    if clang is None:
        raise SystemExit(f"{CLANG} not found: make sysdeps installs it (clang-19 lld-19 wasi-libc libclang-rt-19-dev-wasm32)")
    out = tmp / "hello.wasm"
    proc = subprocess.run([clang, "--target=wasm32-wasi", "-O2", str(HELLO_C), "-o", str(out)], capture_output=True, text=True, check=False)
    if proc.returncode != 0:
        raise SystemExit(f"{CLANG} could not build {HELLO_C}:\n{proc.stderr}")
    (tmp / "app.toml").write_text(MANIFEST)
    return out


# --- the HTTP part -----------------------------------------------------------------------------
UVICORN_OPTS = ["--host", "127.0.0.1", "--log-level", "warning"]


def servers(tmp: Path, workers: int, telemetry: list[str], nodelay_fix: bool) -> list[Server]:
    def port() -> int:
        return free_port()

    plain_port, wasm_port, tel_port = port(), port(), port()
    launch = [PY, str(BENCH / "_launch.py")] if nodelay_fix else [PY, "-m"]
    plain = [
        *launch, "uvicorn", "_hello_asgi:app", "--app-dir", str(BENCH), *UVICORN_OPTS, "--port", str(plain_port),
        "--workers", str(workers), "--lifespan", "on", "--no-access-log", "--no-server-header",
    ]  # fmt: skip
    serve = [*launch, "wasmscope", "serve", str(tmp / "app.toml"), *UVICORN_OPTS, "--no-access-log", "--workers", str(workers), "--cache-dir", str(tmp / "cache")]
    return [
        Server("plain", "plain Python ASGI", plain, plain_port, "/hello", tmp / f"plain-w{workers}.log", tmp),
        Server("wasm", "wasmscope serve, telemetry off", [*serve, "--port", str(wasm_port)], wasm_port, "/readyz", tmp / f"wasm-w{workers}.log", tmp),
        Server("tel", "wasmscope serve, telemetry on", [*serve, "--port", str(tel_port), *telemetry], tel_port, "/readyz", tmp / f"tel-w{workers}.log", tmp),
    ]



def http_round(args: argparse.Namespace, tmp: Path, workers: int, telemetry: list[str], rotel_out: Path | None) -> dict[str, Any]:
    trio = servers(tmp, workers, telemetry, args.nodelay_fix)
    spans_before = rotel_spans(rotel_out) if rotel_out is not None else 0
    served_tel = 0
    try:
        for s in trio:
            s.start()
            s.check()
            warm = run_wrk(s.url, seconds=args.warmup, connections=args.connections, threads=args.threads)
            if s.name == "tel":
                served_tel += warm.requests + 20
        print(f"\nworkers {workers}: wrk -t{args.threads} -c{args.connections} -d{args.seconds:g}s --latency, {args.reps} reps, interleaved")
        for rep in range(args.reps):
            order = trio[rep % 3 :] + trio[: rep % 3]
            for s in order:
                time.sleep(args.pause)
                r = s.measure(args.seconds, args.connections, args.threads)
                if s.name == "tel":
                    served_tel += r.requests
                print(f"  rep {rep + 1}  {s.label:32s} {r.line()}   cpu {s.cpu_us[-1]:6.0f} us/req")
    finally:
        for s in trio:
            s.stop()
    res: dict[str, Any] = {"workers": workers, "servers": trio}
    by = {s.name: s for s in trio}
    print(f"workers {workers}, medians over {args.reps} reps:")
    for s in trio:
        print(
            f"  {s.label:32s} {_median([r.requests_per_s for r in s.results]):9.0f} req/s   "
            f"p50 {_median([r.p50_ms for r in s.results]):7.2f} ms   p99 {_median([r.p99_ms for r in s.results]):7.2f} ms   "
            f"cpu {_median(s.cpu_us):6.0f} us/req"
        )
        bad = sum(r.non_2xx + r.socket_errors for r in s.results)
        if bad:
            print(f"    WARNING: {bad} non-2xx answers or socket errors")
    ratio = [t.requests_per_s / p.requests_per_s for t, p in zip(by["tel"].results, by["plain"].results, strict=True)]
    cost = [t.requests_per_s / w.requests_per_s for t, w in zip(by["tel"].results, by["wasm"].results, strict=True)]
    off = [w.requests_per_s / p.requests_per_s for w, p in zip(by["wasm"].results, by["plain"].results, strict=True)]
    res.update(ratio=_median(ratio), cost=_median(cost), off=_median(off))
    print(
        f"  wasm+telemetry / plain: {res['ratio']:.3f} (reps {min(ratio):.3f}..{max(ratio):.3f}; target >= {TARGET_RATIO:.2f}: "
        f"{'met' if res['ratio'] >= TARGET_RATIO else 'MISSED'})"
    )
    print(
        f"  telemetry on / off:     {res['cost']:.3f} (reps {min(cost):.3f}..{max(cost):.3f}; telemetry costs {100 * (1 - res['cost']):.0f}%, "
        f"target <= {100 * (1 - TARGET_TELEMETRY):.0f}%: {'met' if res['cost'] >= TARGET_TELEMETRY else 'MISSED'})"
    )
    print(f"  (wasm, telemetry off / plain: {res['off']:.3f})")
    if rotel_out is not None:
        time.sleep(1.0)  # rotel logs a batch when it has received it
        got = rotel_spans(rotel_out) - spans_before
        print(
            f"  rotel received {got} spans for about {served_tel} requests with telemetry "
            f"({got / max(served_tel, 1):.2f} per request; {SPANS_PER_REQUEST} expected: nothing dropped if equal)"
        )
    log = by["tel"].log.read_text(errors="replace")
    for needle in ("dropped", "dropping", "Queue full", "Queue is full", "could not export", "could not be exported"):
        if needle in log:
            print(f"  WARNING: the telemetry server's log says {needle!r}: see {by['tel'].log}")
    return res


# --- the in-process breakdown ------------------------------------------------------------------
SCOPE: dict[str, Any] = {
    "type": "http", "asgi": {"version": "3.0", "spec_version": "2.3"}, "http_version": "1.1", "method": "GET",
    "scheme": "http", "path": "/hello", "raw_path": b"/hello", "query_string": b"", "root_path": "",
    "headers": [(b"host", b"127.0.0.1:8080"), (b"user-agent", b"wrk"), (b"accept", b"*/*")],
    "client": ("127.0.0.1", 50000), "server": ("127.0.0.1", 8080),
}  # fmt: skip


def _asgi_loop(app: Any, n: int) -> None:
    async def receive() -> dict[str, Any]:
        return {"type": "http.request", "body": b"", "more_body": False}

    async def main() -> None:
        for _ in range(n):
            sent: list[Any] = []

            async def send(message: Any, sent: list[Any] = sent) -> None:
                sent.append(message)

            await app(dict(SCOPE), receive, send)
            if sent[0]["status"] != 200:
                raise RuntimeError(f"in-process request answered {sent[0]}")

    asyncio.run(main())


def _in_thread(fn: Callable[[], Any]) -> Any:
    """``fn()`` on another thread, as the gateway runs handlers (no Ctrl-C guard there)."""
    import concurrent.futures

    with concurrent.futures.ThreadPoolExecutor(max_workers=1) as pool:
        return pool.submit(fn).result()


def _bare_wasmtime(wasm: Path, a: tuple[Any, ...], k: dict[str, Any]) -> Callable[[int], None]:
    """The floor: what a request costs with wasmtime-py's stock API and nothing else (a
    default engine, a pre-linked module, a fresh Store and WasiConfig with the same
    argv, environment and stdin, stdout and stderr to memfds read back, ``_start``)."""
    import wasmtime

    engine = wasmtime.Engine()
    linker = wasmtime.Linker(engine)
    linker.define_wasi()
    pre = linker.instantiate_pre(wasmtime.Module.from_file(engine, str(wasm)))
    fds = [os.memfd_create("bench-stdout"), os.memfd_create("bench-stderr")]
    paths = [f"/proc/self/fd/{fd}" for fd in fds]
    argv = [k.get("argv0") or "/hello", *a[1]]
    env = list((k.get("env") or {}).items())

    def loop(n: int) -> None:
        for _ in range(n):
            store = wasmtime.Store(engine)
            cfg = wasmtime.WasiConfig()
            cfg.argv = argv
            cfg.env = env
            cfg.stdout_file, cfg.stderr_file = paths
            store.set_wasi(cfg)
            start = pre.instantiate(store).exports(store)["_start"]
            with contextlib.suppress(wasmtime.ExitTrap):
                start(store)  # type: ignore[operator]
            out = os.pread(fds[0], 1 << 16, 0)
            for fd in fds:
                os.ftruncate(fd, 0)
            if not out.endswith(BODY):
                raise RuntimeError(f"bare wasmtime-py printed {out!r}")

    return loop


def _floor(runtime: Any, limits: Any, a: tuple[Any, ...], k: dict[str, Any]) -> Callable[[int], None]:
    """The floor of a fresh instance per request in wasmtime-py, with this machine's best
    pieces and nothing else: the gateway's pooled engine and pre-linked module (after a
    warm run), a store, a WASI config with the same argv, environment and stdin through
    raw FFI, output to this thread's memfds, instantiation, ``_start`` through the raw
    call, the output read back, the store dropped. No limits, watchdog, memory
    statistics, record or telemetry: what any Python host pays, whatever it does."""
    import wasmtime

    from wasmscope.runtime import gil_calls
    from wasmscope.runtime.calls import RawFunc, export_func
    from wasmscope.runtime.engine import engine_for
    from wasmscope.runtime.wasi import WasiSpec, build_wasi_config

    handle = engine_for(runtime.engine_settings(limits))
    (prepared,) = runtime._pres.values()  # the one module, linked by the warm run
    spec = WasiSpec(argv=[k.get("argv0") or "/hello", *a[1]], env=k.get("env"), stdin=k.get("stdin") or b"")

    def loop(m: int) -> None:
        capture = runtime._capture(None)
        for _ in range(m):
            capture.reset(None)
            store = gil_calls.new_store(handle.engine)
            store.set_epoch_deadline(1 << 30)  # the engine interrupts by epochs; no deadline here
            gil_calls.set_wasi(store, build_wasi_config(spec, capture))
            instance = prepared.pre.instantiate(store)
            start = export_func(store, instance, "_start")
            assert start is not None
            with contextlib.suppress(wasmtime.ExitTrap):
                RawFunc(store, start, "_start", prepared.signature(store, start, "_start"))()
            out = capture.read(0)[0]
            del instance, start
            gil_calls.drop_store(store)
            if not out.endswith(BODY):
                raise RuntimeError(f"the floor loop printed {out!r}")

    return loop


def _thread_hops(n: int) -> None:
    """What the gateway adds to hand a request to a route's worker thread and back."""
    import concurrent.futures

    async def main(pool: concurrent.futures.ThreadPoolExecutor) -> None:
        for _ in range(n):
            await asyncio.wrap_future(pool.submit(int))

    with concurrent.futures.ThreadPoolExecutor(max_workers=8) as pool:
        asyncio.run(main(pool))


def _per_call(fn: Callable[[int], None], n: int, warm: int = 200, reps: int = 3) -> tuple[float, float]:
    """(wall, process CPU) microseconds per call: the best of ``reps`` batches of ``n``."""
    fn(warm)
    best = (float("inf"), float("inf"))
    for _ in range(reps):
        w, c = time.perf_counter(), time.process_time()
        fn(n)
        w, c = time.perf_counter() - w, time.process_time() - c
        best = min(best, (w / n * 1e6, c / n * 1e6))
    return best


def _serve_app(tmp: Path, telemetry: list[str]) -> tuple[Any, Any, Any]:
    from wasmscope.cli.serve import build_app

    ns = argparse.Namespace(
        target=str(tmp / "app.toml"), telemetry=telemetry, otlp=None, service_name=None, no_cache=False,
        cache_dir=str(tmp / "cache"),
    )  # fmt: skip
    asgi, gateway, tel = build_app(ns)
    gateway.prepare()
    return asgi, gateway, tel


def breakdown(tmp: Path, telemetry: list[str], n: int) -> None:
    import _hello_asgi
    from wasmscope.gateway.app import Gateway
    from wasmscope.gateway.manifest import load

    print(f"\nin-process breakdown of one request (no HTTP, sequential, best of 3 x {n}; us per request, wall / process CPU)")
    rows: list[tuple[str, tuple[float, float]]] = []
    rows.append(("plain ASGI app", _per_call(lambda k: _asgi_loop(_hello_asgi.app, k), n)))

    asgi, gateway, _ = _serve_app(tmp, [])
    captured: dict[str, Any] = {}
    run = gateway.runtime.run

    def spy(*a: Any, **k: Any) -> Any:
        captured.setdefault("call", (a, k))
        return run(*a, **k)

    gateway.runtime.run = spy
    _asgi_loop(asgi, 1)
    gateway.runtime.run = run
    a, k = captured["call"]

    def runs(m: int) -> None:
        for _ in range(m):
            run(*a, **k)

    bare = Gateway(load(str(tmp / "app.toml")), runtime=gateway.runtime)
    bare.prepare()
    rows.append(("bare wasmtime-py (Store, WasiConfig, InstancePre, _start)", _in_thread(lambda: _per_call(_bare_wasmtime(tmp / "hello.wasm", a, k), n))))
    rows.append(("Runtime.run (the gateway's arguments, a worker thread)", _in_thread(lambda: _per_call(runs, n))))
    route = gateway.manifest.match("/hello")
    rows.append(("  floor: pooled engine, raw FFI, nothing of ours", _in_thread(lambda: _per_call(_floor(gateway.runtime, route.limits, a, k), n))))
    rows.append(("worker thread hop (executor + wrap_future, no-op)", _per_call(_thread_hops, n)))
    rows.append(("Gateway ASGI (+ WAGI env and response, thread hop)", _per_call(lambda m: _asgi_loop(bare, m), n)))
    rows.append(("serve app, telemetry off (+ metrics middleware)", _per_call(lambda m: _asgi_loop(asgi, m), n)))
    rec = run(*a, **k)  # a warm run's record
    profile = _in_thread(lambda: _profile_run(runs, n))
    bare.close()
    gateway.close()

    tel_asgi, tel_gateway, tel = _serve_app(tmp, telemetry)

    rows.append(("serve app, telemetry on (all threads' CPU)", _per_call(lambda m: _asgi_loop(tel_asgi, m), n)))
    tel.force_flush()
    rows.append(("  its telemetry alone, in a tight loop (all threads' CPU)", _telemetry_alone(tel, tel_gateway, rec, n)))
    tel.force_flush()
    direct = tel.direct
    exported = (direct.export_cpu / direct.exported_items * 1e6) if direct is not None and direct.exported_items else 0.0
    tel_gateway.close()
    tel.shutdown()
    for label, (wall, cpu) in rows:
        print(f"  {label:52s} {wall:8.1f} {cpu:8.1f}")
    print(f"  {'    of which the exporter thread (sending)':52s} {'':8s} {exported:8.1f}")
    print(
        f"  a warm run's record: instantiate phase {rec.seconds('instantiate') * 1e6:.0f} us (store, WASI config, "
        f"instantiation), execute {rec.seconds('execute') * 1e6:.0f} us"
    )
    print(profile)


def _telemetry_alone(tel: Any, gateway: Any, rec: Any, n: int) -> tuple[float, float]:
    """What serve's telemetry costs per request with nothing else running: the HTTP
    server span middleware around a stand-in for the gateway that folds a warm run's
    record in and answers 200 (span, attributes, encoding, metrics, export to the
    receiver). Between two guest runs the same work costs 2-5 times more (caches)."""
    from wasmscope.gateway.tracing import REQUEST_SPAN, TracingMiddleware

    async def stand_in(scope: Any, receive: Any, send: Any) -> None:
        span = scope[REQUEST_SPAN]
        tel.record_invocation(rec, parent=span.traceparent, request=span)
        await send({"type": "http.response.start", "status": 200, "headers": []})
        await send({"type": "http.response.body", "body": b""})

    app = TracingMiddleware(stand_in, tel, gateway=gateway)

    def batch(m: int) -> None:  # flushed: the exporter's work is counted, and nothing is dropped
        _asgi_loop(app, m)
        tel.force_flush()

    return _per_call(batch, n)


def _stdlib_cprofile() -> Any:
    """The stdlib cProfile: it imports ``profile``, which benchmarks/profile.py shadows
    for a script run from benchmarks/."""
    saved_path, saved_mod = sys.path[:], sys.modules.pop("profile", None)
    sys.path[:] = [p for p in sys.path if Path(p or ".").resolve() != BENCH]
    try:
        import cProfile
    finally:
        sys.path[:] = saved_path
        if saved_mod is not None:
            sys.modules["profile"] = saved_mod
    return cProfile


def _profile_run(runs: Callable[[int], None], n: int) -> str:
    import pstats

    prof = _stdlib_cprofile().Profile()
    prof.enable()
    runs(n)
    prof.disable()
    stats = pstats.Stats(prof)
    entries = sorted(stats.stats.items(), key=lambda kv: -kv[1][2])[:14]  # type: ignore[attr-defined]
    lines = [f"  Runtime.run, own time per request by function (cProfile over {n} runs on a worker thread; it inflates small calls):"]
    for (file, line, name), (_cc, nc, tt, _ct, _callers) in entries:
        where = f"{Path(file).parent.name}/{Path(file).name}:{line}" if file != "~" else "built-in"
        lines.append(f"    {tt / n * 1e6:6.1f} us  {nc / n:4.0f}x  {name}  ({where})")
    return "\n".join(lines)


# --- main ------------------------------------------------------------------------------------------
def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--seconds", type=float, default=5.0, help="wrk duration of each measured run (default 5)")
    p.add_argument("--warmup", type=float, default=2.0, help="wrk warm-up duration per server (default 2)")
    p.add_argument("--reps", type=int, default=3, help="measured runs per server, interleaved (default 3)")
    p.add_argument("--pause", type=float, default=1.5, help="seconds between runs (default 1.5)")
    p.add_argument("--workers", default="1,2", help="worker counts, comma-separated (default 1,2)")
    p.add_argument("--connections", type=int, default=8, help="wrk -c (default 8: the route's max_concurrency)")
    p.add_argument("--threads", type=int, default=1, help="wrk -t (default 1: wrk takes a core too)")
    p.add_argument(
        "--nodelay-fix", action=argparse.BooleanOptionalAction, default=True,
        help="start both servers through benchmarks/_launch.py, which gives uvicorn's --workers listener IPPROTO_TCP "
        "(else Nagle adds ~40 ms to each keep-alive request: uvicorn issue #3149) (default on)",
    )  # fmt: skip
    p.add_argument("--exporter", choices=("otlp", "jsonl"), default="otlp", help="telemetry of config c: OTLP/HTTP to rotel (default) or a JSONL file")
    p.add_argument("--breakdown", action=argparse.BooleanOptionalAction, default=True, help="the in-process cost breakdown (default on)")
    p.add_argument("--breakdown-n", type=int, default=2000, help="requests per in-process batch (default 2000)")
    p.add_argument("--components", action=argparse.BooleanOptionalAction, default=True, help="then run benchmarks/serve_components.py if it exists (default on)")
    p.add_argument("--keep", metavar="DIR", help="build and log into DIR (kept) instead of a temporary folder")
    args = p.parse_args(argv)
    workers = [int(w) for w in args.workers.split(",") if w.strip()]
    if wrk_path() is None:
        print("wrk not found: apt-get install wrk (make sysdeps installs it)", file=sys.stderr)
        return 2
    if args.reps < 1 or not workers or min(workers) < 1:
        p.error("--reps and --workers must be >= 1")

    with contextlib.ExitStack() as stack:
        if args.keep:
            tmp = Path(args.keep).resolve()
            tmp.mkdir(parents=True, exist_ok=True)
        else:
            tmp = Path(stack.enter_context(tempfile.TemporaryDirectory(prefix="wasmscope-bench-serve-")))
        build_hello(tmp)
        import importlib.metadata

        import uvicorn

        print(
            f"benchmarks/serve.py, {datetime.date.today()}: {os.cpu_count()} cores, Python {platform.python_version()}, "
            f"uvicorn {uvicorn.__version__} (http {'httptools' if _has('httptools') else 'h11'}, loop {'uvloop' if _has('uvloop') else 'asyncio'}), "
            f"wasmtime-py {importlib.metadata.version('wasmtime')}, {subprocess.run(['wrk', '-v'], capture_output=True, text=True, check=False).stdout.split(' [')[0].strip()}"
        )
        if args.nodelay_fix:
            print("both servers start through benchmarks/_launch.py: uvicorn's --workers listener gets IPPROTO_TCP, so TCP_NODELAY (uvicorn #3149)")
        rotel_out: Path | None = None
        if args.exporter == "otlp":
            url, rotel_out = stack.enter_context(rotel(tmp))
            telemetry = ["--otlp", url]
            in_proc = [f"otlp:{url}"]
            print(f"telemetry on: OTLP/HTTP to rotel-agent at {url} (blackhole exporter)")
        else:
            telemetry = ["--telemetry", f"jsonl:{tmp / 'telemetry.jsonl'}"]
            in_proc = [f"jsonl:{tmp / 'breakdown.jsonl'}"]
            print(f"telemetry on: JSON lines to {tmp / 'telemetry.jsonl'}")
        results = [http_round(args, tmp, w, telemetry, rotel_out) for w in workers]
        print("\nsummary (medians):")
        for r in results:
            print(
                f"  workers {r['workers']}: wasm+telemetry / plain {r['ratio']:.3f} (target >= {TARGET_RATIO:.2f}), "
                f"telemetry on / off {r['cost']:.3f} (target >= {TARGET_TELEMETRY:.2f}), wasm off / plain {r['off']:.3f}"
            )
        if args.breakdown:
            breakdown(tmp, in_proc, args.breakdown_n)
    status = 0
    components = BENCH / "serve_components.py"
    if args.components and components.is_file():
        print("\n=== benchmarks/serve_components.py")
        import serve_components  # type: ignore[import-not-found]

        forwarded = [
            "--seconds", str(args.seconds), "--warmup", str(args.warmup), "--reps", str(args.reps),
            "--connections", str(args.connections), "--threads", str(args.threads),
            *([] if args.breakdown else ["--no-breakdown"]),
        ]  # fmt: skip
        status = int(serve_components.main(forwarded) or 0)
    return status


def _has(module: str) -> bool:
    import importlib.util

    return importlib.util.find_spec(module) is not None


if __name__ == "__main__":
    sys.exit(main())
