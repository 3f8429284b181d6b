"""Fixtures of the serve tests: WAGI handlers in C (``fixtures/*.c``), built once per
session with clang-19 + wasi-libc (in parallel); handlers in WAT (:mod:`.wat`), for the
tests that need no real toolchain output; the Python handler
(``fixtures/pyhandler``) as a WAGI command component, built by componentize-py once and
kept in pytest's cache (:mod:`tests.componentize`); and a shared Runtime."""

from __future__ import annotations

import subprocess
from collections.abc import Iterator
from pathlib import Path

import pytest

from tests import componentize
from tests.gateway import wat
from tests.runtime.conftest import clang_19, components_root

FIXTURES = Path(__file__).parent / "fixtures"


@pytest.fixture(scope="session")
def wagi_modules(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Path]:
    """Every ``fixtures/*.c`` as a WASI command module, by stem."""
    clang = clang_19()
    out_dir = tmp_path_factory.mktemp("wagi")
    jobs = {}
    for src in sorted(FIXTURES.glob("*.c")):
        out = out_dir / f"{src.stem}.wasm"
        jobs[src.stem] = (out, subprocess.Popen(
            [clang, "--target=wasm32-wasi", "-O2", "-g", str(src), "-o", str(out)],
            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
        ))  # fmt: skip
    built: dict[str, Path] = {}
    for stem, (out, proc) in jobs.items():
        _, err = proc.communicate(timeout=300)
        if proc.returncode != 0:
            pytest.skip(f"clang-19 cannot build WASI programs here ({stem}.c): {err[-400:]}")
        built[stem] = out
    return built


@pytest.fixture(scope="session")
def wat_modules(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Path]:
    """The WAT handlers of :mod:`tests.gateway.wat` (``hello``, ``spin``), built without clang."""
    return wat.build(tmp_path_factory.mktemp("wat"), hello=wat.HELLO, spin=wat.SPIN)


@pytest.fixture(scope="session")
def gateway_cache(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return tmp_path_factory.mktemp("gateway-cache")


@pytest.fixture(scope="session")
def shared_runtime(gateway_cache: Path) -> Iterator[object]:
    from wasmscope.runtime import Runtime

    with Runtime(cache_dir=gateway_cache, capacity=64) as rt:
        yield rt


@pytest.fixture(scope="session")
def python_wagi_component(request: pytest.FixtureRequest) -> Path:
    """``fixtures/pyhandler`` (handler.py + wagi_app.py) as a ``wasi:cli/run`` component."""
    try:
        return componentize.build_pyhandler(components_root(request), "wagi")
    except componentize.ComponentizeError as exc:
        pytest.fail(str(exc))
