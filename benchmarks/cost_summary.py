"""Summarising invocation records (``wasmscope cost summary``), and what ``serve --usage``
costs serve.

1. 1M realistic invocations (the distributions of ``benchmarks/_otlp_data.py``: eight
   routes, the most invoked first, durations log-normal around 450 µs, CPU a share of
   the duration, fuel 10k-5M, peak memory 1-40 pages, one in twenty a trap), summarised
   per function and in total under a price sheet (aws-lambda-x86 at 128 MB) through
   each path, timed from the source to the Summary, records/s printed for each:

   a. a UsageTable in memory (the summary alone: group, statistics, costs);
   b. the InvocationRecord objects in memory (``UsageTable.from_records`` + a.);
   c. a JSON lines file of ``InvocationRecord.to_json`` records (real serve records of
      the hello handler, the numbers varied; ``read_usage`` + a.);
   d. a collect store folder (embedded chDB): the rows inserted into
      ``wasmscope_invocations`` directly as Arrow (what its view makes of the spans;
      inserting 3M spans through the receiver would take minutes), summarised in the
      store (``summarize_store``: SQL aggregates, the sheet pricing each billed shape
      once), as ``wasmscope cost summary DIR`` does;
   e. the same store, its rows read out (``read_usage``: Arrow to numpy) + a.

   Target: at least 500,000 records/s (the issue's "in the store where the data lives
   there": a. and d.; b., c. and e. pay per record outside the store, printed for what
   they are).
2. ``serve --usage`` against plain serve: the hello request in process (no HTTP, the
   serve app of ``wasmscope serve`` with its metrics, telemetry off, as
   ``benchmarks/guard.py`` part 3), batches alternating, the median of the per-batch
   ratios: first the one ``--usage`` app with its tap taken out and put back every 20
   requests (the same gateway, pools and caches; the ratio of the sums: the target's
   figure), then two apps,
   plain and ``--usage`` (wall and the process's CPU time); and the tap's own cost per request measured alone (a million calls), as a
   share of a request. Target: at most 1% of throughput.

Usage: python benchmarks/cost_summary.py [--n N] [--repeat R] [--skip-store] [--skip-jsonl]
                                         [--skip-summary] [--serve-batches B] [--serve-n N]
"""

from __future__ import annotations

import argparse
import json
import shutil
import statistics
import sys
import tempfile
import time
from collections.abc import Callable
from dataclasses import replace
from pathlib import Path
from typing import Any

import numpy as np

from wasmscope.cost.prices import load_price_sheet
from wasmscope.cost.records import UsageTable, open_store, read_usage
from wasmscope.cost.store_summary import summarize_store
from wasmscope.cost.summary import summarize

TARGET_RATE = 500_000
TARGET_SERVE = 1.01
ROUTES = ["/hello", "/img/resize", "/auth/check", "/render", "/echo", "/img/thumb", "/search", "/export"]
T0 = 1_790_000_000 * 10**9


def mark(ok: bool) -> str:
    return "MET" if ok else "MISSED"


def workload(n: int, seed: int = 0) -> dict[str, np.ndarray]:
    """The numbers of ``n`` invocations, one every millisecond."""
    rng = np.random.default_rng(seed)
    route = np.minimum(rng.exponential(1 / 0.6, n).astype(np.intp), len(ROUTES) - 1)
    duration = rng.lognormal(13.0, 0.6, n).astype(np.int64)  # ns, ~450 µs median
    return {
        "route": route,
        "start": T0 + np.arange(n, dtype=np.int64) * 1_000_000 + rng.integers(0, 1_000_000, n),
        "duration": duration,
        "cpu": np.round(rng.random(n) * duration / 1e9, 6),  # the runtime keeps microseconds
        "fuel": rng.integers(10_000, 5_000_000, n),
        "memory": 65536 * rng.integers(1, 40, n),
        "trap": rng.random(n) < 0.05,
    }


def as_table(w: dict[str, np.ndarray]) -> UsageTable:
    names = np.array(ROUTES, dtype=object)
    n = len(w["route"])
    return UsageTable(
        function=names[w["route"]], module=np.full(n, "ab" * 32, dtype=object), wall_s=w["duration"] / 1e9,
        cpu_s=w["cpu"].astype(float), fuel=w["fuel"].astype(float), peak_memory=w["memory"].astype(float),
        memory_limit=np.full(n, float(64 << 20)), host_calls=np.full(n, np.nan),
        outcome=np.where(w["trap"], "trap", "ok").astype(object), start_ns=w["start"],
        function_names=names, function_codes=w["route"],
    )  # fmt: skip


def hello_record(tmp: Path) -> Any:
    """A real serve record: the hello handler run as the gateway runs it."""
    sys.path.insert(0, str(Path(__file__).parent))
    from serve import build_hello
    from wasmscope.runtime import Runtime
    from wasmscope.runtime.limits import Limits

    wasm = build_hello(tmp)
    with Runtime(cache_dir=tmp / "cache", limits=Limits(memory_limit=64 << 20, fuel=10_000_000)) as rt:
        rec = rt.run(wasm, [], env={"QUERY_STRING": "world"},
                     attributes={"http.request.method": "GET", "http.route": "/hello", "url.path": "/hello"})  # fmt: skip
    return rec


def records_of(w: dict[str, np.ndarray], template: Any) -> list[Any]:
    out = []
    for r, s, d, c, f, m, t in zip(*(w[k].tolist() for k in ("route", "start", "duration", "cpu", "fuel", "memory", "trap")), strict=True):
        out.append(replace(template, start_ns=s, end_ns=s + d, cpu_seconds=c, fuel_consumed=f, peak_memory=m,
                           outcome="trap" if t else "ok", attributes={**template.attributes, "http.route": ROUTES[r]}))  # fmt: skip
    return out


def write_jsonl(path: Path, w: dict[str, np.ndarray], template: Any) -> int:
    doc = template.to_json()
    with open(path, "w", encoding="utf-8") as f:
        for r, s, d, c, fu, m, t in zip(*(w[k].tolist() for k in ("route", "start", "duration", "cpu", "fuel", "memory", "trap")), strict=True):
            doc["start_ns"], doc["end_ns"], doc["duration_seconds"] = s, s + d, d / 1e9
            doc["cpu_seconds"], doc["fuel_consumed"], doc["peak_memory"] = c, fu, m
            doc["outcome"] = "trap" if t else "ok"
            doc["attributes"]["http.route"] = ROUTES[r]
            f.write(json.dumps(doc, separators=(",", ":"), default=str) + "\n")
    return path.stat().st_size


def fill_store(folder: Path, w: dict[str, np.ndarray]) -> None:
    import pyarrow as pa

    from wasmscope.collect.store import Store, invocations

    n = len(w["route"])
    names = np.array(ROUTES, dtype=object)
    data = pa.table({
        "Timestamp": pa.array(w["start"], type=pa.timestamp("ns")),
        "ServiceName": pa.array(["wasmscope"] * n), "Function": pa.array(names[w["route"]].tolist()),
        "ModuleSha256": pa.array(["ab" * 32] * n), "ModuleName": pa.array(["hello.wasm"] * n),
        "Outcome": pa.array(np.where(w["trap"], "trap", "ok").tolist()),
        "TrapCode": pa.array(np.where(w["trap"], "unreachable", "").tolist()),
        "ColdStart": pa.array(np.zeros(n, dtype=bool)), "Duration": pa.array(w["duration"].astype(np.uint64)),
        "Fuel": pa.array(w["fuel"].astype(np.uint64)), "FuelLimit": pa.array(np.full(n, 10_000_000, dtype=np.uint64)),
        "MemoryPeak": pa.array(w["memory"].astype(np.uint64)), "MemoryLimit": pa.array(np.full(n, 64 << 20, dtype=np.uint64)),
        "CpuTime": pa.array(w["cpu"].astype(np.float64)),
    })  # fmt: skip
    with Store.open(data_dir=folder) as store:
        store.ensure_schema()
        for i in range(0, n, 200_000):
            store.insert(invocations.INVOCATIONS, data.slice(i, 200_000))


def timed(fn: Callable[[], Any], repeat: int) -> float:
    """The best of ``repeat`` runs, in seconds."""
    best = float("inf")
    for _ in range(repeat):
        t0 = time.perf_counter()
        fn()
        best = min(best, time.perf_counter() - t0)
    return best


def summary_rates(n: int, repeat: int, skip_jsonl: bool, skip_store: bool, tmp: Path) -> bool:
    sheet = load_price_sheet("aws-lambda-x86")
    w = workload(n)
    table = as_table(w)

    def summ(t: UsageTable) -> Any:
        s = summarize(t, sheet, memory_mb=128)
        assert s.total.invocations == n, s.total.invocations
        return s

    ok = True
    print(f"summarising {n:,} invocations of {len(ROUTES)} functions (aws-lambda-x86, 128 MB), best of {repeat}:")
    t = timed(lambda: summ(table), repeat)
    print(f"  a. in memory (UsageTable)       {n / t:>12,.0f} records/s  ({t * 1e3:.0f} ms; target >= {TARGET_RATE:,}: {mark(n / t >= TARGET_RATE)})")
    ok = n / t >= TARGET_RATE
    template = hello_record(tmp)
    recs = records_of(w, template)
    t = timed(lambda: summ(UsageTable.from_records(recs)), repeat)
    print(f"  b. InvocationRecord objects     {n / t:>12,.0f} records/s  ({t * 1e3:.0f} ms: Python per record)")
    recs.clear()
    if not skip_jsonl:
        path = tmp / "runs.jsonl"
        size = write_jsonl(path, w, template)
        t = timed(lambda: summ(read_usage(path)), max(1, repeat // 2))
        print(f"  c. JSON lines ({size / 1e9:.2f} GB)         {n / t:>12,.0f} records/s  ({t:.1f} s: json.loads per line)")
        path.unlink()
    if not skip_store:
        folder = tmp / "store"
        t0 = time.perf_counter()
        fill_store(folder, w)
        fill = time.perf_counter() - t0
        def in_store() -> Any:
            with open_store(folder) as store:
                s = summarize_store(store, sheet, memory_mb=128)
            assert s.total.invocations == n, s.total.invocations
            return s

        t = timed(in_store, repeat)
        print(f"  d. collect store, aggregated there {n / t:>9,.0f} records/s  ({t * 1e3:.0f} ms incl. opening the store; "
              f"target >= {TARGET_RATE:,}: {mark(n / t >= TARGET_RATE)}; filled in {fill:.1f} s)")  # fmt: skip
        ok = ok and n / t >= TARGET_RATE
        t = timed(lambda: summ(read_usage(folder)), repeat)
        print(f"  e. collect store, rows read out  {n / t:>11,.0f} records/s  ({t * 1e3:.0f} ms: Arrow to numpy, then a.)")
        shutil.rmtree(folder, ignore_errors=True)
    return ok


# -- serve --------------------------------------------------------------------------------


def _serve_app(tmp: Path, name: str, usage: bool) -> tuple[Any, Any]:
    from wasmscope.cli.serve import build_app

    folder = tmp / name
    folder.mkdir()
    shutil.copy(tmp / "hello.wasm", folder / "hello.wasm")
    shutil.copy(tmp / "app.toml", folder / "app.toml")
    ns = argparse.Namespace(
        target=str(folder / "app.toml"), telemetry=[], otlp=None, service_name=None, no_cache=False,
        cache_dir=str(tmp / "serve-cache"), no_reload=True, usage=usage,
    )  # fmt: skip
    asgi, gateway, _ = build_app(ns)
    gateway.prepare()
    return asgi, gateway


def serve_overhead(tmp: Path, batches: int, n: int) -> bool:
    sys.path.insert(0, str(Path(__file__).parent))
    from serve import _asgi_loop, build_hello
    from wasmscope.cost.accounting import UsageAccount, UsageTap

    build_hello(tmp)
    # Two apps (plain, --usage), and the --usage app with its tap taken out and put back
    # between batches: the same gateway, pools and caches, only the tap differs.
    plain, g1 = _serve_app(tmp, "plain", False)
    counted, g2 = _serve_app(tmp, "usage", True)
    tap = g2.telemetry
    assert isinstance(tap, UsageTap)
    try:
        for app in (plain, counted):
            _asgi_loop(app, 200)  # warm: compiled, pools started
        # Short turns (20 requests each), many of them: whatever else the machine runs
        # falls on both sides alike; the ratio of the sums.
        toggled: dict[str, list[float]] = {"plain": [], "usage": []}
        turns = max(1, batches * n // 20)
        for i in range(turns):
            for name in (("plain", "usage") if i % 2 == 0 else ("usage", "plain")):
                g2.telemetry = tap if name == "usage" else tap._inner
                t0 = time.perf_counter()
                _asgi_loop(counted, 20)
                toggled[name].append((time.perf_counter() - t0) / 20 * 1e6)
        g2.telemetry = tap
        same_app = sum(toggled["usage"]) / sum(toggled["plain"])
        apps = {"plain": plain, "usage": counted}
        times: dict[str, list[float]] = {k: [] for k in apps}
        cpu: dict[str, list[float]] = {k: [] for k in apps}
        for i in range(batches):
            order = list(apps) if i % 2 == 0 else list(reversed(apps))
            for name in order:
                t0, c0 = time.perf_counter(), time.process_time()
                _asgi_loop(apps[name], n)
                times[name].append((time.perf_counter() - t0) / n * 1e6)
                cpu[name].append((time.process_time() - c0) / n * 1e6)
        ratio = statistics.median(u / p for u, p in zip(times["usage"], times["plain"], strict=True))
        cpu_ratio = statistics.median(u / p for u, p in zip(cpu["usage"], cpu["plain"], strict=True))
        assert len(tap.account) >= batches * n + turns * 20, "the usage route did not count every request"
        # The tap alone: a million calls on one real record.
        one = tmp / "one"
        one.mkdir()
        rec = hello_record(one)
        alone = UsageTap(None, UsageAccount())
        calls = 1_000_000
        t0 = time.perf_counter()
        for _ in range(calls):
            alone.record_invocation(rec)
        per_call_us = (time.perf_counter() - t0) / calls * 1e6
        t0 = time.perf_counter()
        summary = summarize(tap.account.table())
        at_exit = time.perf_counter() - t0
        per_request = statistics.median(times["plain"])
        print(
            f"serve hello, in process: plain {per_request:.1f} us/request, with --usage "
            f"{statistics.median(times['usage']):.1f} us/request: {(ratio - 1) * 100:+.2f}% "
            f"(target <= {(TARGET_SERVE - 1) * 100:.0f}%: {mark(ratio <= TARGET_SERVE)}; {batches} batches of {n}); "
            f"process CPU a request {statistics.median(cpu['plain']):.1f} vs {statistics.median(cpu['usage']):.1f} us: "
            f"{(cpu_ratio - 1) * 100:+.2f}%"
        )
        print(
            f"  the same app, its usage tap taken out and put back every 20 requests ({turns} turns each): "
            f"{(same_app - 1) * 100:+.2f}% (plain {statistics.mean(toggled['plain']):.1f}, with the tap "
            f"{statistics.mean(toggled['usage']):.1f} us/request; target <= {(TARGET_SERVE - 1) * 100:.0f}%: "
            f"{mark(same_app <= TARGET_SERVE)})"
        )
        print(
            f"  the tap alone: {per_call_us:.2f} us a request = {per_call_us / per_request * 100:.2f}% of a request; "
            f"the summary at shutdown of {summary.total.invocations:,} requests: {at_exit * 1e3:.0f} ms"
        )
        return same_app <= TARGET_SERVE
    finally:
        g1.close()
        g2.close()


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--n", type=int, default=1_000_000, help="invocations to summarise (default 1,000,000)")
    ap.add_argument("--repeat", type=int, default=3, help="runs of each path, the best kept (default 3)")
    ap.add_argument("--skip-jsonl", action="store_true", help="skip path c. (writes a 1.5 GB file)")
    ap.add_argument("--skip-store", action="store_true", help="skip path d. (the collect store)")
    ap.add_argument("--skip-summary", action="store_true", help="skip part 1 (only serve --usage)")
    ap.add_argument("--serve-batches", type=int, default=40, help="alternating batches of part 2 (default 40)")
    ap.add_argument("--serve-n", type=int, default=250, help="requests per batch of part 2 (default 250)")
    args = ap.parse_args(argv)
    with tempfile.TemporaryDirectory() as tmp:
        ok = args.skip_summary or summary_rates(args.n, args.repeat, args.skip_jsonl, args.skip_store, Path(tmp))
        serve_tmp = Path(tmp) / "serve"
        serve_tmp.mkdir()
        ok = serve_overhead(serve_tmp, args.serve_batches, args.serve_n) and ok
    return 0 if ok else 1


if __name__ == "__main__":
    sys.exit(main())
