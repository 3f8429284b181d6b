"""Fixtures of the cost tests: a real guest (inline WAT through ``wasmtime.wat2wasm``)
run under wasmscope's Runtime, so that the records are what ``run`` and ``serve`` make.

``work(n, pages)`` grows its memory by ``pages`` (64 KiB each) and loops ``n`` times:
peak memory and fuel follow the arguments exactly. ``boom()`` traps.
"""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest
import wasmtime

from tests.cost._guests import BuildUnavailable, build_guests
from wasmscope.runtime import Runtime
from wasmscope.runtime.limits import Limits
from wasmscope.runtime.record import InvocationRecord

WORK_WAT = """
(module
  (memory (export "memory") 1)
  (global $sink (mut i32) (i32.const 0))
  (func (export "work") (param $n i32) (param $pages i32) (result i32)
    (local $i i32)
    (drop (memory.grow (local.get $pages)))
    (block $done (loop $l
      (br_if $done (i32.ge_u (local.get $i) (local.get $n)))
      (global.set $sink (i32.add (global.get $sink) (local.get $i)))
      (local.set $i (i32.add (local.get $i) (i32.const 1)))
      (br $l)))
    (local.get $i))
  (func (export "boom") unreachable))
"""

# (function, n, pages) of the invocations the tests record
WORKLOAD = [("work", 1000 * (i % 7 + 1), i % 4) for i in range(24)] + [("boom", None, None)] * 2


@pytest.fixture(scope="session")
def work_wasm(tmp_path_factory: pytest.TempPathFactory) -> Path:
    path = tmp_path_factory.mktemp("guest") / "work.wasm"
    path.write_bytes(bytes(wasmtime.wat2wasm(WORK_WAT)))
    return path


@pytest.fixture(scope="session")
def runtime(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Runtime]:
    limits = Limits(memory_limit=16 << 20, fuel=10_000_000)
    with Runtime(cache_dir=tmp_path_factory.mktemp("cache"), limits=limits) as rt:
        yield rt


@pytest.fixture(scope="session")
def records(runtime: Runtime, work_wasm: Path) -> list[InvocationRecord]:
    """The records of WORKLOAD, in order."""
    out = []
    for func, n, pages in WORKLOAD:
        args = [] if n is None else [n, pages]
        out.append(runtime.invoke(work_wasm, func, args))
    return out


# The C guests of recommend and calibrate (tests/cost/guests), and a runtime for them.
@pytest.fixture(scope="module")
def guests(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Path]:
    try:
        return build_guests(tmp_path_factory.mktemp("guests"))
    except BuildUnavailable as exc:
        pytest.skip(str(exc))


@pytest.fixture(scope="module")
def rt(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Runtime]:
    with Runtime(cache_dir=tmp_path_factory.mktemp("cache")) as runtime:
        yield runtime
