"""yosys (the real-corpus module, 66 MB) synthesizing a 48x48 multiplier: the same
output as the native ``wasmtime run``, and compiled once (later runs load it from the
cache). Its first compilation takes about a minute; the compiled code is kept in
pytest's cache folder for later sessions."""

from __future__ import annotations

import subprocess
from pathlib import Path

import pytest

from tests.runtime.conftest import MUL_V, YOSYS_SCRIPT
from wasmscope.runtime import Outcome, Runtime

pytestmark = [pytest.mark.slow, pytest.mark.realcorpus]

_VOLATILE = ("End of script.", "Time spent:")  # timings differ from run to run


def _stable(output: bytes) -> list[str]:
    return [line for line in output.decode().splitlines() if not line.startswith(_VOLATILE)]


@pytest.fixture
def workdir(tmp_path: Path) -> Path:
    (tmp_path / "mul.v").write_text(MUL_V)
    return tmp_path


@pytest.fixture(scope="module")
def yosys_record_pair(yosys_wasm: Path, yosys_share: Path, shared_cache: Path, tmp_path_factory: pytest.TempPathFactory):  # type: ignore[no-untyped-def]
    work = tmp_path_factory.mktemp("yosys")
    (work / "mul.v").write_text(MUL_V)
    dirs = [f"{yosys_share}::/share:ro", f"{work}::/tmp"]
    with Runtime(cache_dir=shared_cache) as rt:
        first = rt.run(yosys_wasm, ["-p", YOSYS_SCRIPT], dirs=dirs)
        second = rt.run(yosys_wasm, ["-p", YOSYS_SCRIPT], dirs=dirs)
    with Runtime(cache_dir=shared_cache) as rt:
        third = rt.run(yosys_wasm, ["-p", YOSYS_SCRIPT], dirs=dirs)
    return first, second, third, dirs


def test_yosys_synthesizes_the_multiplier(yosys_record_pair) -> None:  # type: ignore[no-untyped-def]
    first, second, third, _ = yosys_record_pair
    for rec in (first, second, third):
        assert rec.outcome == Outcome.OK, rec.error or rec.trap
        assert b"    14242 cells\n" in rec.stdout
        assert rec.peak_memory is not None and rec.peak_memory > 16 << 20
        assert rec.memory_grow_count is not None and rec.memory_grow_count > 0
        assert rec.module.producers["processed-by"][0].startswith("clang")
    # The module is compiled at most once: then memory, then disk in a new Runtime.
    assert first.cache in ("miss", "disk")
    assert (second.cache, second.cold_start) == ("memory", False)
    assert (third.cache, third.cold_start) == ("disk", False)
    assert _stable(first.stdout) == _stable(second.stdout) == _stable(third.stdout)


def test_yosys_output_matches_native_wasmtime(yosys_record_pair, yosys_wasm: Path, native_wasmtime: Path, shared_cache: Path) -> None:  # type: ignore[no-untyped-def]
    first, _, _, dirs = yosys_record_pair
    # The native CLI precompiled once into the same cache folder (its own format).
    cwasm = shared_cache / "yosys-native.cwasm"
    if not cwasm.is_file():
        tmp = cwasm.with_suffix(".tmp")
        subprocess.run([str(native_wasmtime), "compile", str(yosys_wasm), "-o", str(tmp)], check=True, timeout=1800)
        tmp.replace(cwasm)
    cmd = [str(native_wasmtime), "run", "--allow-precompiled"]
    for d in dirs:
        host, guest = d.removesuffix(":ro").split("::")
        cmd += ["--dir", f"{host}::{guest}"]
    # argv[0] as wasmtime would give it for the .wasm file itself
    cmd += ["--argv0", yosys_wasm.name, str(cwasm), "-p", YOSYS_SCRIPT]
    native = subprocess.run(cmd, capture_output=True, timeout=600)
    assert native.returncode == 0, native.stderr.decode()[-2000:]
    assert _stable(native.stdout) == _stable(first.stdout)
    assert native.stderr == first.stderr
