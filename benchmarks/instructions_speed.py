"""Instruction decoding speed: wasmscope vs AppThreat's pure-Python wasm-tools.

    PYTHONPATH=src python3 benchmarks/instructions_speed.py [FILE.wasm ...]

Ours: every function body through ``decode_function_body`` (tuples built).
Peer: ``BinaryReader(data, BinaryReaderNop()).read_module()`` from PyPI
wasm-tools 2.1.0, run by the interpreter in ``$PEER_PYTHON`` (default
/tmp/scratch/bin/python) when it has the package. Both are timed on the same
files and divided by the same instruction count (ours), best of ``--repeat``.
"""

from __future__ import annotations

import argparse
import os
import subprocess
import sys
import time
from pathlib import Path

from wasmscope.binary.instructions import decode_function_body
from wasmscope.binary.reader import Reader

CORPUS = Path.home() / ".cache" / "wasm-real-corpus"
DEFAULT = [
    "sql.js-1.16.0--dist_sql-wasm.wasm",
    "tree-sitter-wasms-0.1.13--out_tree-sitter-c.wasm",
    "pyodide-314.0.7--pyodide.asm.wasm",
]
PEER_PYTHON = os.environ.get("PEER_PYTHON", "/tmp/scratch/bin/python")
PEER_CODE = """
import sys, time
from wasm_tools.parser import BinaryReader
from wasm_tools.visitor import BinaryReaderNop
data = open(sys.argv[1], "rb").read()
best = float("inf")
for _ in range(int(sys.argv[2])):
    t = time.perf_counter()
    BinaryReader(data, BinaryReaderNop()).read_module()
    best = min(best, time.perf_counter() - t)
print(best)
"""


def code_bodies(data: bytes) -> list[tuple[int, int]]:
    """(start, end) of every code-section entry; a minimal section walk."""
    r = Reader(data, 8)
    while not r.at_end():
        sid = r.u8()
        size = r.u32()
        if sid != 10:
            r.skip(size)
            continue
        sec = r.sub(size)
        out = []
        for _ in range(sec.count()):
            n = sec.u32()
            out.append((sec.pos, sec.pos + n))
            sec.skip(n)
        return out
    return []


def bench_ours(data: bytes, repeat: int) -> tuple[float, int]:
    bodies = code_bodies(data)
    best = float("inf")
    count = 0
    for _ in range(repeat):
        count = 0
        t = time.perf_counter()
        for start, end in bodies:
            count += len(decode_function_body(data, start, end)[1])
        best = min(best, time.perf_counter() - t)
    return best, count


def bench_peer(path: Path, repeat: int) -> float | None:
    if not Path(PEER_PYTHON).exists():
        return None
    res = subprocess.run(
        [PEER_PYTHON, "-c", PEER_CODE, str(path), str(repeat)], capture_output=True, text=True
    )
    if res.returncode != 0:
        print(f"  peer failed: {res.stderr.strip().splitlines()[-1:]}")
        return None
    return float(res.stdout)


def main() -> int:
    ap = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    ap.add_argument("files", nargs="*", type=Path)
    ap.add_argument("--repeat", type=int, default=3)
    ap.add_argument("--no-peer", action="store_true")
    args = ap.parse_args()
    files = args.files or [CORPUS / f for f in DEFAULT]
    tot_ours = tot_peer = 0.0
    tot_n = 0
    peer_all = not args.no_peer
    for path in files:
        if not path.exists():
            print(f"skip {path} (missing)")
            continue
        data = path.read_bytes()
        ours, n = bench_ours(data, args.repeat)
        line = f"{path.name[:60]:60} {n:>10,} instrs  ours {ours * 1e6 / n:6.3f} µs/instr ({n / ours / 1e6:5.2f} M/s)"
        peer = None if args.no_peer else bench_peer(path, args.repeat)
        if peer is not None:
            line += f"  peer {peer * 1e6 / n:6.3f} µs/instr  ratio {peer / ours:5.2f}x"
            tot_peer += peer
        else:
            peer_all = False
        print(line)
        tot_ours += ours
        tot_n += n
    if tot_n:
        line = f"{'TOTAL':60} {tot_n:>10,} instrs  ours {tot_ours * 1e6 / tot_n:6.3f} µs/instr"
        if peer_all:
            line += f"                   peer {tot_peer * 1e6 / tot_n:6.3f} µs/instr  ratio {tot_peer / tot_ours:5.2f}x"
        print(line)
    return 0


if __name__ == "__main__":
    sys.exit(main())
