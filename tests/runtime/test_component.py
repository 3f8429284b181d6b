"""A ``wasi:cli/run`` command component built by componentize-py, run into the same
record as a core module."""

from __future__ import annotations

from pathlib import Path

import pytest

from wasmscope.runtime import Limits, Outcome, Runtime


@pytest.fixture(scope="module")
def component_runtime(shared_cache: Path):  # type: ignore[no-untyped-def]
    with Runtime(cache_dir=shared_cache) as rt:
        yield rt


def test_command_component(component_runtime: Runtime, python_command_component: Path) -> None:
    rec = component_runtime.run(python_command_component, ["a", "b"], env={"GREETING": "hello"})
    assert rec.outcome == Outcome.OK and rec.exit_code == 0, rec.error or rec.trap
    assert rec.stdout.decode().splitlines() == ["hi", "args ['a', 'b']", "GREETING hello"]
    assert rec.stderr == b"to stderr\n"
    assert rec.module.kind == "component"
    assert rec.entry == "wasi:cli/run@0.2.0#run"
    assert "processed-by" in rec.module.producers
    assert [p.name for p in rec.phases] == ["load", "compile", "instantiate", "execute"]
    assert rec.peak_memory is None  # sampled: a component's memories are out of reach
    assert "component" in rec.attributes["wasm.memory.observed"]
    again = component_runtime.run(python_command_component)
    assert again.cache == "memory" and not again.cold_start


def test_command_component_error_exit(component_runtime: Runtime, python_command_component: Path) -> None:
    rec = component_runtime.run(python_command_component, ["fail"])
    assert rec.outcome == Outcome.EXIT and rec.exit_code == 1


def test_component_output_cap_and_exact_memory(python_command_component: Path, shared_cache: Path) -> None:
    with Runtime(cache_dir=shared_cache, memory_stats="exact") as rt:
        rec = rt.run(python_command_component, limits=Limits(max_output=1 << 20))
    assert rec.outcome == Outcome.OK
    assert rec.peak_memory is not None and rec.peak_memory > 1 << 20
    assert rec.attributes["wasm.memory.observed"] == "all" and rec.attributes["wasm.memory.count"] >= 1


def test_invoke_is_for_core_modules(component_runtime: Runtime, python_command_component: Path) -> None:
    from wasmscope.errors import UsageError

    with pytest.raises(UsageError, match="core modules"):
        component_runtime.invoke(python_command_component, "run")


# Hand-made components (no componentize-py): a `wasi:cli/run` export over a core module
# with 3 pages of memory, with and without an import the host does not provide.
TINY_COMPONENT = """
(component
  {imports}
  (core module $m
    (memory (export "memory") 3)
    (func (export "run") (result i32) i32.const 0))
  (core instance $i (instantiate $m))
  (func $run (result (result)) (canon lift (core func $i "run")))
  (instance $inst (export "run" (func $run)))
  (export "wasi:cli/run@0.2.0" (instance $inst))
)
"""
MISSING_IMPORT = '(import "example:missing/thing@1.0.0" (instance (export "f" (func))))'


def test_tiny_component_runs(runtime: Runtime) -> None:
    import wasmtime

    rec = runtime.run(wasmtime.wat2wasm(TINY_COMPONENT.format(imports="")))
    assert rec.outcome == Outcome.OK and rec.exit_code == 0, rec.error or rec.trap
    assert rec.entry == "wasi:cli/run@0.2.0#run"


def test_component_with_a_missing_import_names_it(runtime: Runtime) -> None:
    import wasmtime

    rec = runtime.run(wasmtime.wat2wasm(TINY_COMPONENT.format(imports=MISSING_IMPORT)))
    assert rec.outcome == Outcome.ERROR and rec.trap is None
    assert rec.error is not None and "unsatisfiable import `example:missing/thing@1.0.0`" in rec.error


def test_component_memory_above_the_limit_is_out_of_memory(runtime: Runtime) -> None:
    import wasmtime

    rec = runtime.run(wasmtime.wat2wasm(TINY_COMPONENT.format(imports="")), limits=Limits(memory_limit=2 * 65536))
    assert rec.outcome == Outcome.OUT_OF_MEMORY, rec.error
    assert rec.trap is not None and "initial memory exceeds the memory limit" in rec.trap.message
