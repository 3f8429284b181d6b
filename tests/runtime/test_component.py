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
