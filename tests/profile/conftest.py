"""Fixtures of the profile tests: C programs built with clang-19 for wasm32-wasi at
set-up (known call counts, a known share of time, a deep trap), a Runtime with a
compiled-module cache of its own, and the run tests' guests and yosys fixtures."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import TYPE_CHECKING

import pytest

from tests.instrument.support import compile_c
from tests.runtime.conftest import (  # noqa: F401  (fixtures shared with the run tests)
    c_modules,
    legacy_eh_wasm,
    shared_cache,
    yosys_share,
    yosys_wasm,
)

if TYPE_CHECKING:
    from wasmscope.runtime import Runtime

FIB = r"""
#include <stdio.h>
int fib(int n) { return n < 2 ? n : fib(n - 1) + fib(n - 2); }
int main(void) { printf("fib(25) = %d\n", fib(25)); return 0; }
"""

# 37 write(2) calls, one fd_write each (no stdio buffering in between).
WRITES = r"""
#include <unistd.h>
int main(void) { for (int i = 0; i < 37; i++) write(1, "line\n", 5); return 0; }
"""

# a() and b() do the same work per call; main calls a three times for each b.
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

# 100 calls of down() deep, then an integer division by zero.
DEEP = r"""
#include <stdio.h>
__attribute__((noinline)) int down(volatile int *p, int n) {
    if (n == 0) return *p / p[1];
    return down(p, n - 1) + 1;
}
int main(void) { static volatile int z[2] = {1, 0}; printf("before\n"); fflush(stdout); return down(z, 99); }
"""

# Calls that last: outer() runs ~40 ms, calling inner() twice (~20 ms each).
LONG = r"""
#include <stdio.h>
#include <stdlib.h>
static volatile unsigned sink;
__attribute__((noinline)) unsigned inner(unsigned x, int n) {
    for (int i = 0; i < n; i++) x = (x * 1103515245u + 12345u) ^ (x >> 7);
    sink = x; return x;
}
__attribute__((noinline)) unsigned outer(unsigned x, int n) { return inner(inner(x, n), n); }
int main(int argc, char **argv) {
    int n = argc > 1 ? atoi(argv[1]) : 20000000;
    printf("%u\n", outer(1, n));
    return 0;
}
"""

PROGRAMS = {"fib": (FIB, "-O0"), "writes": (WRITES, "-O2"), "share": (SHARE, "-O2"), "deep": (DEEP, "-O0"), "long": (LONG, "-O2")}


@pytest.fixture(scope="session")
def progs(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Path]:
    """The programs above, built with ``-g``."""
    out = tmp_path_factory.mktemp("profile-c")
    return {name: compile_c(src, out / f"{name}.wasm", opt, "-g") for name, (src, opt) in PROGRAMS.items()}


@pytest.fixture(scope="session")
def prt(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Runtime]:
    """A Runtime with its own caches (compiled and instrumented modules)."""
    from wasmscope.runtime import Runtime

    with Runtime(cache_dir=tmp_path_factory.mktemp("profile-cache")) as rt:
        yield rt
