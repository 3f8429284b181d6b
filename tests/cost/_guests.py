"""The C guests of the right-sizing and calibration tests (``tests/cost/guests``),
built with clang-19 for wasm32-wasi once per session, and a helper that records real
runs of them. Also used by ``benchmarks/cost.py``.

``alloc MIB ROUNDS WAIT_MS`` needs MIB mebibytes (one at a time, touched) and waits
WAIT_MS; ``crunch ROUNDS`` computes (fuel grows with ROUNDS); ``chatty CALLS US``
sleeps and writes CALLS times; ``blob MIB ROUNDS`` writes MIB of memory in one host
call after ROUNDS of compute (fuel does not see the write).
"""

from __future__ import annotations

import shutil
import subprocess
from collections.abc import Sequence
from pathlib import Path

GUESTS = Path(__file__).parent / "guests"
NAMES = ("alloc", "crunch", "chatty", "blob")


class BuildUnavailable(Exception):
    """clang-19 with wasi-libc is not here (the tests skip)."""


def build_guests(out_dir: Path, names: Sequence[str] = NAMES) -> dict[str, Path]:
    """``name -> .wasm`` for each guest, built ``-O2`` into ``out_dir``."""
    clang = shutil.which("clang-19")
    if clang is None:
        raise BuildUnavailable("clang-19 (with wasi-libc) is not installed: `make sysdeps` installs it")
    out_dir.mkdir(parents=True, exist_ok=True)
    built = {}
    for name in names:
        out = out_dir / f"{name}.wasm"
        done = subprocess.run(
            [clang, "--target=wasm32-wasi", "-O2", str(GUESTS / f"{name}.c"), "-o", str(out)],
            capture_output=True, text=True, timeout=300,
        )  # fmt: skip
        if done.returncode != 0:
            raise BuildUnavailable(f"clang-19 cannot build WASI programs here ({name}.c): {done.stderr[-400:]}")
        built[name] = out
    return built
