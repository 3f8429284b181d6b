"""Fixtures of the push tests: C programs built with clang-19 (exact, known call
counts; a trap), the environment of a CLI process (its own compiled-module cache, no
push token or service name from outside), and one OTLP stub per module."""

from __future__ import annotations

import os
from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.corpus import REPO_ROOT
from tests.instrument.support import compile_c
from tests.telemetry.otlp_stub import OtlpStub, start_stub

# fib(25) makes 242785 calls of fib; leaf() is called exactly 37 times, each with a write.
PROGRAM = r"""
#include <stdio.h>
#include <unistd.h>
__attribute__((noinline)) int fib(int n) { return n < 2 ? n : fib(n - 1) + fib(n - 2); }
__attribute__((noinline)) void leaf(int i) { char c = '0' + i % 10; write(1, &c, 1); }
int main(void) {
    for (int i = 0; i < 37; i++) leaf(i);
    printf("\nfib(25) = %d\n", fib(25));
    return 0;
}
"""

TRAP = r"""
#include <stdio.h>
__attribute__((noinline)) int down(volatile int *p, int n) { return n == 0 ? *p / p[1] : down(p, n - 1) + 1; }
int main(void) { static volatile int z[2] = {1, 0}; printf("before\n"); fflush(stdout); return down(z, 9); }
"""


@pytest.fixture(scope="session")
def wasm(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Path]:
    out = tmp_path_factory.mktemp("push-c")
    return {
        "prog": compile_c(PROGRAM, out / "prog.wasm", "-O0", "-g"),
        "trap": compile_c(TRAP, out / "trap.wasm", "-O0", "-g"),
    }


@pytest.fixture(scope="session")
def env(tmp_path_factory: pytest.TempPathFactory) -> dict[str, str]:
    e = dict(os.environ)
    e["PYTHONPATH"] = str(REPO_ROOT / "src") + os.pathsep + e.get("PYTHONPATH", "")
    e["WASMSCOPE_CACHE_DIR"] = str(tmp_path_factory.mktemp("push-cache"))  # shared: one instrumentation
    e["NO_COLOR"] = "1"
    for name in ("WASMSCOPE_DEBUG", "WASMSCOPE_PUSH_TOKEN", "OTEL_SERVICE_NAME", "OTEL_RESOURCE_ATTRIBUTES"):
        e.pop(name, None)
    return e


@pytest.fixture(scope="module")
def module_stub() -> Iterator[OtlpStub]:
    s = start_stub()
    yield s
    s.close()


@pytest.fixture
def stub(module_stub: OtlpStub) -> OtlpStub:
    """One receiver for the module (its shutdown takes half a second), emptied per test."""
    module_stub.received.clear()
    return module_stub
