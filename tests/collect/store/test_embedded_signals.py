"""A process that runs Wasm and opens the embedded store keeps catching guest traps
(chDB's fault handlers would otherwise take wasmtime's signals: SIGILL)."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest

pytest.importorskip("wasmtime")

SCRIPT = """
import sys, wasmtime
from wasmscope.collect.store.embedded import ChdbBackend

def trap():
    engine = wasmtime.Engine()
    store = wasmtime.Store(engine)
    module = wasmtime.Module(engine, '(module (memory 1) (func (export "f") unreachable)'
                             ' (func (export "oob") (drop (i32.load (i32.const 70000)))))')
    exports = wasmtime.Instance(store, module, []).exports(store)
    for name in ("f", "oob"):
        try:
            exports[name](store)
        except wasmtime.Trap:
            print("trap", name)

trap()
backend = ChdbBackend(sys.argv[1])
print(backend.query("SELECT 41 + 1").scalar())
trap()
backend.close()
"""


def test_guest_traps_after_the_store_is_opened(tmp_path: Path) -> None:
    done = subprocess.run([sys.executable, "-c", SCRIPT, str(tmp_path / "db")], capture_output=True, text=True, timeout=120)
    assert done.returncode == 0, done.stderr[-2000:]
    assert done.stdout.split() == ["trap", "f", "trap", "oob", "42", "trap", "f", "trap", "oob"]
