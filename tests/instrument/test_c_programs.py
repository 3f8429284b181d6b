"""C programs built at test time with clang-19 for wasm32-wasi: exact call
counts, and byte-identical output and exit code instrumented or not."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest

from tests.instrument.support import compile_c, function_names, index_of
from wasmscope.instrument import BOOKS_EXPORT, CountersLayout, instrument

wasmtime = pytest.importorskip("wasmtime")

FIB = r"""
#include <stdio.h>
int fib(int n) { return n < 2 ? n : fib(n - 1) + fib(n - 2); }
int main(void) { printf("fib(25) = %d\n", fib(25)); return 0; }
"""

PROGRAM = r"""
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

struct node { int key; struct node *left, *right; };

static struct node *insert(struct node *t, int key) {
    if (!t) { t = calloc(1, sizeof *t); t->key = key; return t; }
    if (key < t->key) t->left = insert(t->left, key); else t->right = insert(t->right, key);
    return t;
}
static int height(const struct node *t) {
    if (!t) return 0;
    int l = height(t->left), r = height(t->right);
    return 1 + (l > r ? l : r);
}
static void walk(const struct node *t, unsigned long *sum) {
    if (!t) return;
    walk(t->left, sum); *sum = *sum * 31 + (unsigned)t->key; walk(t->right, sum);
}
static void drop(struct node *t) { if (t) { drop(t->left); drop(t->right); free(t); } }
static int cmp(const void *a, const void *b) { return *(const int *)a - *(const int *)b; }

int main(int argc, char **argv) {
    unsigned x = 12345;
    int v[2000];
    struct node *t = 0;
    for (int i = 0; i < 2000; i++) { x = x * 1103515245u + 12345u; v[i] = (int)(x >> 8) % 100000; t = insert(t, v[i]); }
    qsort(v, 2000, sizeof v[0], cmp);
    unsigned long sum = 0;
    walk(t, &sum);
    char buf[64];
    snprintf(buf, sizeof buf, "%.3f", v[1000] / 7.0);
    printf("argc=%d first=%d median=%d last=%d height=%d sum=%lu f=%s len=%zu\n",
           argc, v[0], v[1000], v[1999], height(t), sum, buf, strlen(buf));
    for (int i = 0; i < 5; i++) printf("line %d: %s\n", i, argv[0]);
    drop(t);
    fflush(stdout);
    return 3;
}
"""

TRAP = r"""
#include <stdio.h>
__attribute__((noinline)) int c(volatile int *p) { return *p / p[1]; }
__attribute__((noinline)) int b(volatile int *p) { return c(p) + 1; }
__attribute__((noinline)) int a(volatile int *p) { return b(p) + 1; }
int main(void) { static volatile int z[2] = {1, 0}; printf("before\n"); fflush(stdout); return a(z); }
"""


def run_wasi(data: bytes, out: Path, argv: list[str] | None = None) -> tuple[Any, int, bytes, Any, Any]:
    """(outcome, exit code, stdout, store, instance) of ``_start``."""
    engine = wasmtime.Engine()
    store = wasmtime.Store(engine)
    config = wasmtime.WasiConfig()
    config.argv = argv or ["prog"]
    config.stdout_file = str(out)
    store.set_wasi(config)  # before define_wasi, always
    linker = wasmtime.Linker(engine)
    linker.define_wasi()
    instance = linker.instantiate(store, wasmtime.Module(engine, data))
    code = 0
    trap = None
    try:
        instance.exports(store)["_start"](store)
    except wasmtime.ExitTrap as exc:
        code = exc.code
    except wasmtime.Trap as exc:
        trap = exc.trap_code
    return trap, code, out.read_bytes(), store, instance


def books(store: Any, instance: Any, layout: CountersLayout) -> bytes:
    return bytes(instance.exports(store)[BOOKS_EXPORT].read(store, 0, layout.size))


def test_fib_25_at_O0_counts_every_call(tmp_path: Path) -> None:
    wasm = compile_c(FIB, tmp_path / "fib.wasm", "-O0", "-g").read_bytes()
    result = instrument(wasm)
    fib = index_of(function_names(wasm), "fib")
    a = run_wasi(wasm, tmp_path / "a.txt")
    b = run_wasi(result.wasm, tmp_path / "b.txt")
    assert a[:3] == b[:3] == (None, 0, b"fib(25) = 75025\n")
    mem = books(b[3], b[4], result.layout)
    assert result.layout.read_counter(mem, fib) == 242785
    assert result.layout.read_depth(mem) == 0
    names = function_names(wasm)
    counts = result.layout.read_counters(mem)
    assert counts[index_of(names, "main") if "main" in names.values() else index_of(names, "__original_main")] == 1
    # the WASI import that printf ends in is counted too
    fd_write = [i for i, n in names.items() if "fd_write" in n and i < result.layout.n_imported_functions]
    assert fd_write and counts[fd_write[0]] >= 1


def test_program_output_and_exit_code_are_identical(tmp_path: Path) -> None:
    for opt in ("-O0", "-O2"):
        wasm = compile_c(PROGRAM, tmp_path / f"prog{opt}.wasm", opt, "-g").read_bytes()
        result = instrument(wasm)
        argv = ["prog", "x", "y"]
        a = run_wasi(wasm, tmp_path / "a.txt", argv)
        b = run_wasi(result.wasm, tmp_path / "b.txt", argv)
        assert a[0] is None and a[1] == 3
        assert a[:3] == b[:3], opt
        assert b"argc=3" in a[2] and a[2].count(b"\n") == 6
        mem = books(b[3], b[4], result.layout)
        names = function_names(wasm)
        # exit(3) ends in the proc_exit import, which unwinds like a trap: the
        # stack still shows the way there, the import on top
        stack = [names.get(f, str(f)) for f in result.layout.read_stack(mem)]
        assert stack[0].startswith("_start")
        assert "exit" in stack[-1] and "proc_exit" in stack[-1], stack
        counts = result.layout.read_counters(mem)
        # qsort calls cmp through a function pointer; insert is called once per key
        # plus once per level it descends
        assert counts[index_of(names, "cmp")] > 2000
        if opt == "-O0":
            assert counts[index_of(names, "insert")] > 2000


def test_trap_in_c_shows_the_whole_chain(tmp_path: Path) -> None:
    wasm = compile_c(TRAP, tmp_path / "trap.wasm", "-O1", "-g").read_bytes()
    result = instrument(wasm)
    a = run_wasi(wasm, tmp_path / "a.txt")
    b = run_wasi(result.wasm, tmp_path / "b.txt")
    assert a[:3] == b[:3] == (wasmtime.TrapCode.INTEGER_DIVISION_BY_ZERO, 0, b"before\n")
    names = function_names(wasm)
    stack = [names.get(f, str(f)) for f in result.layout.read_stack(books(b[3], b[4], result.layout))]
    assert stack[0].startswith("_start")  # wasm-ld's _start.command_export wrapper
    assert stack[-3:] == ["a", "b", "c"]
