"""What the host-call audit costs per WASI call, and whether it keeps up.

1. Per call: a guest that calls a WASI function ``n`` times in a loop, run plain,
   count-only (``AuditSettings(record=False)``) and with full records
   (``AuditSettings()``: a record per call, decoded by the host into a HostCall),
   alternating in the same run. The added cost per call is (audited - plain) / n of
   the whole invocation (instantiating, the guest, the host's drain and decoding),
   p50 over the rounds. Two guests: the same loop of ``random_get``, one importing
   ``clock_time_get`` (so the thunks time each call: two more clock calls) and one
   not (no durations): the measure behind the duration choice of
   ``wasmscope.instrument.wasi_audit``. Targets: count-only <= 1 µs, full <= 3 µs p50.
2. Sustained: 10,000 audited calls/s for 10 s (a Wasm spin loop between calls,
   calibrated first), full records, the default ring: zero dropped, or the exact
   count (recorded + dropped == calls). Then the same calls as one burst, where
   the ring overflows between two drains: the count must still be exact.
3. The serve hello request (``examples/serve/hello.c``, in process, no HTTP, the
   serve app of ``wasmscope serve`` with its metrics, telemetry off): the route
   unguarded, then with an inline policy in ``monitor`` mode and full audit (every
   WASI call recorded, the policy evaluated, the findings emitted: none for hello),
   batches alternating, the median of the per-batch ratios. Target: at most 10% added.
   Then the same two routes over HTTP (``wasmscope serve``, one worker, wrk on
   loopback as ``benchmarks/serve.py`` does: -t1 -c8; needs wrk): requests/s and the server's
   CPU time per request, reps alternating, the medians of the per-rep ratios.
4. ``guard check`` of the 69 MB yosys module (``benchmarks/guard_check.py``): under 1 s.

Usage: python benchmarks/guard.py [--rounds N] [--calls N] [--seconds S] [--rate R]
                                  [--serve-batches N] [--serve-n N] [--http-reps N]
                                  [--http-seconds S] [--skip-check]
"""

from __future__ import annotations

import argparse
import shutil
import statistics
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

import wasmtime

from wasmscope.runtime import Runtime
from wasmscope.runtime.host_calls import AuditSettings

TARGET_COUNT_NS = 1000
TARGET_FULL_NS = 3000

# run(n, spin): n times random_get(8 bytes), each followed by `spin` iterations of a
# pure-Wasm loop (0 for the per-call figures); returns the calls that failed.
LOOP = r"""
(module
  (import "wasi_snapshot_preview1" "random_get" (func $random_get (param i32 i32) (result i32)))
  {clock}
  (memory (export "memory") 1)
  (global $sink (mut i32) (i32.const 0))
  (func (export "run") (param $n i32) (param $spin i32) (result i32)
    (local $i i32) (local $j i32) (local $bad i32)
    (block $done (loop $l
      (br_if $done (i32.ge_u (local.get $i) (local.get $n)))
      (local.set $bad (i32.add (local.get $bad) (i32.ne (call $random_get (i32.const 64) (i32.const 8)) (i32.const 0))))
      (local.set $j (i32.const 0))
      (block $s (loop $w
        (br_if $s (i32.ge_u (local.get $j) (local.get $spin)))
        (global.set $sink (i32.add (global.get $sink) (local.get $j)))
        (local.set $j (i32.add (local.get $j) (i32.const 1)))
        (br $w)))
      (local.set $i (i32.add (local.get $i) (i32.const 1)))
      (br $l)))
    (local.get $bad)))
"""
CLOCK = '(import "wasi_snapshot_preview1" "clock_time_get" (func $clock (param i32 i64 i32) (result i32)))'


def guest(timed: bool) -> bytes:
    return bytes(wasmtime.wat2wasm(LOOP.replace("{clock}", CLOCK if timed else "")))


def mark(ok: bool) -> str:
    return "MET" if ok else "MISSED"


def per_call(rt: Runtime, wasm: bytes, n: int, rounds: int) -> dict[str, list[float]]:
    """ns added per call, per round, for each mode (the plain run of the same round subtracted)."""
    modes: dict[str, AuditSettings | None] = {
        "plain": None,
        "count-only": AuditSettings(record=False),
        "full records": AuditSettings(),
    }
    for settings in modes.values():  # warm: compile, cache, first instances
        rt.invoke(wasm, "run", [n, 0], audit=settings)
    added: dict[str, list[float]] = {name: [] for name in modes if name != "plain"}
    plain_ns: list[float] = []
    for r in range(rounds):
        order = list(modes.items())
        if r % 2:
            order.reverse()
        times: dict[str, float] = {}
        for name, settings in order:
            t0 = time.perf_counter_ns()
            rec = rt.invoke(wasm, "run", [n, 0], audit=settings)
            times[name] = time.perf_counter_ns() - t0
            if rec.results != [0]:
                raise SystemExit(f"the guest failed: {rec.outcome} {rec.error or rec.trap}")
            if settings is not None and settings.record:
                assert rec.audit is not None and len(rec.audit.calls) + rec.audit.dropped == n
        plain_ns.append(times["plain"] / n)
        for name in added:
            added[name].append((times[name] - times["plain"]) / n)
    added["plain"] = plain_ns
    return added


def sustained(rt: Runtime, wasm: bytes, seconds: float, rate: float) -> tuple[int, float, int, int]:
    """(calls, seconds, recorded, dropped) of a paced run at about ``rate`` calls/s,
    the spin calibrated on short audited runs (the drain and decoding included)."""
    spin, probe = 1000, max(1000, int(rate / 4))
    for _ in range(3):  # a quarter of a second each: the period of one call and its spin
        t0 = time.perf_counter()
        rt.invoke(wasm, "run", [probe, spin], audit=AuditSettings())
        period = (time.perf_counter() - t0) / probe
        spin = max(1, int(spin * (1 / rate) / period))
    n = int(seconds * rate)
    t0 = time.perf_counter()
    rec = rt.invoke(wasm, "run", [n, spin], audit=AuditSettings())
    elapsed = time.perf_counter() - t0
    assert rec.audit is not None
    return n, elapsed, len(rec.audit.calls), rec.audit.dropped


TARGET_SERVE = 1.10
SERVE_MANIFEST = """\
[[route]]
path = "/hello"
module = "hello.wasm"
{policy}
"""
# hello reads QUERY_STRING among the CGI variables and writes its answer: a policy it passes.
HELLO_POLICY = """\
[route.policy]
mode = "monitor"
[route.policy.environment]
allow = ["*"]
"""


def _serve_app(tmp: Path, name: str, policy: str) -> tuple[Any, Any]:
    from wasmscope.cli.serve import build_app

    folder = tmp / name
    folder.mkdir()
    shutil.copy(tmp / "hello.wasm", folder / "hello.wasm")
    (folder / "app.toml").write_text(SERVE_MANIFEST.format(policy=policy))
    ns = argparse.Namespace(
        target=str(folder / "app.toml"), telemetry=[], otlp=None, service_name=None, no_cache=False,
        cache_dir=str(tmp / "serve-cache"), no_reload=True,
    )  # fmt: skip
    asgi, gateway, _ = build_app(ns)
    gateway.prepare()
    return asgi, gateway


def serve_hello(tmp: Path, batches: int, n: int) -> bool:
    """Part 3: the hello request unguarded and guarded (monitor, full audit)."""
    sys.path.insert(0, str(Path(__file__).parent))
    from serve import _asgi_loop, build_hello

    build_hello(tmp)
    plain, g1 = _serve_app(tmp, "plain", "")
    guarded, g2 = _serve_app(tmp, "guarded", HELLO_POLICY)
    try:
        apps = {"unguarded": plain, "guarded": guarded}
        for app in apps.values():
            _asgi_loop(app, 200)  # warm: compiled, pools started
        times: dict[str, list[float]] = {k: [] for k in apps}
        for i in range(batches):
            order = list(apps) if i % 2 == 0 else list(reversed(apps))
            for name in order:
                t0 = time.perf_counter()
                _asgi_loop(apps[name], n)
                times[name].append((time.perf_counter() - t0) / n * 1e6)
        ratio = statistics.median(g / u for g, u in zip(times["guarded"], times["unguarded"], strict=True))
        session = g2.guards.session(g2.manifest.routes[0])
        assert session is not None and session.stats.runs >= batches * n, "the guarded route did not judge every request"
        findings = sum(session.stats.findings.values())
        print(
            f"serve hello, in process: unguarded {statistics.median(times['unguarded']):.1f} us/request, "
            f"guarded (monitor, full audit) {statistics.median(times['guarded']):.1f} us/request: "
            f"+{(ratio - 1) * 100:.1f}% (target <= {(TARGET_SERVE - 1) * 100:.0f}%: {mark(ratio <= TARGET_SERVE)}); "
            f"{session.stats.runs} requests judged, {findings} findings"
        )
        return ratio <= TARGET_SERVE
    finally:
        g1.close()
        g2.close()


def serve_http(tmp: Path, reps: int, seconds: float) -> bool:
    """Part 3 over HTTP: the two routes under ``wasmscope serve`` and wrk."""
    sys.path.insert(0, str(Path(__file__).parent))
    from _servers import Server, free_port
    from _servers import median as med
    from _wrk import wrk_path

    if wrk_path() is None:
        print("serve hello over HTTP: skipped (wrk is not installed: make sysdeps)")
        return True
    servers = []
    for name, policy in (("unguarded", ""), ("guarded", HELLO_POLICY)):
        folder = tmp / f"http-{name}"
        folder.mkdir()
        shutil.copy(tmp / "hello.wasm", folder / "hello.wasm")
        (folder / "app.toml").write_text(SERVE_MANIFEST.format(policy=policy))
        port = free_port()
        cmd = [sys.executable, "-m", "wasmscope", "serve", str(folder / "app.toml"), "--host", "127.0.0.1",
               "--port", str(port), "--log-level", "warning", "--no-access-log", "--workers", "1",
               "--cache-dir", str(tmp / "http-cache")]  # fmt: skip
        servers.append(Server(name, name, cmd, port, "/readyz", tmp / f"http-{name}.log", folder))
    try:
        for srv in servers:
            srv.start()
            srv.measure(1.0, 8, 1)  # warm
            srv.results.clear()
            srv.cpu_us.clear()
        for rep in range(reps):
            for srv in servers if rep % 2 == 0 else servers[::-1]:
                srv.measure(seconds, 8, 1)  # as benchmarks/serve.py: the route's max_concurrency
    finally:
        for srv in servers:
            srv.stop()
    plain, guarded = servers
    rps = med([g.requests_per_s / p.requests_per_s for g, p in zip(guarded.results, plain.results, strict=True)])
    cpu = med([g / p for g, p in zip(guarded.cpu_us, plain.cpu_us, strict=True)])
    bad = sum(r.non_2xx + r.socket_errors for srv in servers for r in srv.results)
    print(
        f"serve hello over HTTP (wrk -t1 -c8, {reps} x {seconds:g} s alternating): unguarded "
        f"{med([r.requests_per_s for r in plain.results]):.0f} req/s, {med(plain.cpu_us):.0f} us CPU/request; guarded "
        f"{med([r.requests_per_s for r in guarded.results]):.0f} req/s, {med(guarded.cpu_us):.0f} us CPU/request: "
        f"throughput {(rps - 1) * 100:+.1f}%, server CPU {(cpu - 1) * 100:+.1f}% "
        f"(target <= {(TARGET_SERVE - 1) * 100:.0f}% added: {mark(1 / rps <= TARGET_SERVE)})"
        + (f"; WARNING: {bad} non-2xx answers or socket errors" if bad else "")
    )
    return 1 / rps <= TARGET_SERVE and not bad


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    ap.add_argument("--rounds", type=int, default=30)
    ap.add_argument(
        "--calls", type=int, default=2000, help="WASI calls per invocation (fits the default ring)"
    )
    ap.add_argument("--seconds", type=float, default=10.0)
    ap.add_argument("--rate", type=float, default=10_000.0)
    ap.add_argument("--serve-batches", type=int, default=10, help="alternating batches of part 3 (default 10)")
    ap.add_argument("--serve-n", type=int, default=500, help="requests per batch of part 3 (default 500)")
    ap.add_argument("--http-reps", type=int, default=6, help="alternating wrk runs per route of part 3 over HTTP (0: skip)")
    ap.add_argument("--http-seconds", type=float, default=5.0, help="seconds per wrk run (default 5)")
    ap.add_argument("--skip-check", action="store_true", help="skip part 4 (guard check of yosys)")
    args = ap.parse_args(argv)

    with tempfile.TemporaryDirectory() as tmp, Runtime(cache_dir=Path(tmp) / "cache") as rt:
        print(
            f"per WASI call (random_get loop, {args.calls} calls an invocation, {args.rounds} rounds alternating)"
        )
        ok = True
        for timed in (True, False):
            res = per_call(rt, guest(timed), args.calls, args.rounds)
            label = "durations on (the module imports clock_time_get)" if timed else "no durations"
            print(f"  {label}: plain {statistics.median(res['plain']):.0f} ns/call")
            c = statistics.median(res["count-only"])
            f = statistics.median(res["full records"])
            print(
                f"    count-only    +{c:6.0f} ns/call p50  (target <= {TARGET_COUNT_NS} ns: {mark(c <= TARGET_COUNT_NS)})"
            )
            print(
                f"    full records  +{f:6.0f} ns/call p50  (target <= {TARGET_FULL_NS} ns: {mark(f <= TARGET_FULL_NS)})"
            )
            print(f"      p90: count-only +{statistics.quantiles(res['count-only'], n=10)[-1]:.0f}, full +{statistics.quantiles(res['full records'], n=10)[-1]:.0f} ns/call")  # fmt: skip
            ok = ok and c <= TARGET_COUNT_NS and f <= TARGET_FULL_NS

        wasm = guest(True)
        n, elapsed, recorded, dropped = sustained(rt, wasm, args.seconds, args.rate)
        exact = recorded + dropped == n
        paced = abs(n / elapsed - args.rate) <= 0.1 * args.rate
        print(
            f"sustained: {n} audited calls in {elapsed:.1f} s ({n / elapsed:,.0f}/s), full records: "
            f"recorded {recorded}, dropped {dropped} ({mark(exact)}: zero dropped or the exact count)"
            + (
                ""
                if paced
                else f"  (the pacing missed {args.rate:,.0f}/s by more than 10% on this machine)"
            )
        )
        t0 = time.perf_counter()
        rec = rt.invoke(wasm, "run", [n, 0], audit=AuditSettings())
        burst = time.perf_counter() - t0
        assert rec.audit is not None
        b_exact = len(rec.audit.calls) + rec.audit.dropped == n
        print(
            f"burst: {n} calls in {burst:.2f} s: recorded {len(rec.audit.calls)}, dropped {rec.audit.dropped} "
            f"(exact: {mark(b_exact)})"
        )
        ok = ok and exact and b_exact
        ok = serve_hello(Path(tmp), args.serve_batches, args.serve_n) and ok
        if args.http_reps > 0:
            ok = serve_http(Path(tmp), args.http_reps, args.http_seconds) and ok
    if not args.skip_check:
        import guard_check

        print("guard check of yosys:", flush=True)
        ok = guard_check.main([]) == 0 and ok
    return 0 if ok else 1


if __name__ == "__main__":
    sys.exit(main())
