"""wasmtime-py's private layer, named: a new wasmtime-py fails here with the broken name.

:mod:`wasmscope.runtime._wasmtime_internals` is the one module that touches it; these
tests list every private symbol and attribute it relies on (again, by hand, so that a
name dropped from the module's own lists is still checked) against the installed
wasmtime-py, and check that the supported version is stated once.
"""

from __future__ import annotations

import re
import tomllib
from pathlib import Path

import pytest

wasmtime = pytest.importorskip("wasmtime")

from wasmtime import _bindings, _ffi  # noqa: E402

from wasmscope.runtime import _wasmtime_internals as internals  # noqa: E402
from wasmscope.runtime.requirement import (  # noqa: E402
    WASMTIME_REQUIREMENT,
    WASMTIME_VERSION,
    RuntimeUnavailable,
    require_wasmtime,
    wasmtime_version,
)

PYPROJECT = Path(__file__).resolve().parents[2] / "pyproject.toml"

FFI = [
    "dll", "to_str", "WASMTIME_EXTERN_FUNC", "WASMTIME_EXTERN_MEMORY", "wasm_byte_vec_t",
    "wasm_frame_func_index", "wasm_frame_module_offset", "wasm_frame_vec_delete", "wasm_frame_vec_t",
    "wasm_trap_t", "wasm_trap_trace", "wasmtime_config_host_memory_creator_set", "wasmtime_context_t",
    "wasmtime_error_new", "wasmtime_error_wasm_trace", "wasmtime_extern_t", "wasmtime_frame_func_name",
    "wasmtime_frame_module_name", "wasmtime_func_call_unchecked", "wasmtime_instance_export_nth",
    "wasmtime_memory_creator_t", "wasmtime_memory_data", "wasmtime_memory_data_size",
    "wasmtime_memory_get_callback_t", "wasmtime_memory_grow_callback_t", "wasmtime_memory_t",
    "wasmtime_new_memory_callback_t", "wasmtime_update_deadline_kind_t", "wasmtime_val_raw_t",
    "wasmtime_store_new", "wasmtime_store_context", "wasmtime_store_delete", "wasmtime_store_limiter",
    "wasmtime_context_set_wasi", "wasmtime_context_set_epoch_deadline",
    "wasmtime_store_epoch_deadline_callback", "wasmtime_instance_export_get", "wasi_config_new",
    "wasm_byte_vec_new", "wasi_config_set_stdin_bytes",
]  # fmt: skip
# Called through a GIL-keeping view of the library, typed by hand (not through _ffi).
RAW_C = [
    "wasi_config_set_argv",
    "wasi_config_set_env",
    "wasi_config_set_stdout_file",
    "wasi_config_set_stderr_file",
]
POOLING = [
    "total_core_instances", "total_stacks", "total_memories", "total_tables", "total_component_instances",
    "max_memory_size", "max_memories_per_module", "max_tables_per_module", "table_elements",
    "max_core_instance_size", "max_core_instances_per_component", "max_memories_per_component",
    "max_tables_per_component", "linear_memory_keep_resident", "table_keep_resident",
]  # fmt: skip
BINDINGS = [
    "wasmtime_pooling_allocation_config_new",
    "wasmtime_pooling_allocation_config_delete",
    "wasmtime_pooling_allocation_strategy_set",
    *(f"wasmtime_pooling_allocation_config_{n}_set" for n in POOLING),
]
ATTRIBUTES = [
    ("Store", "_set_ptr"), ("Store", "_consume"), ("Store", "_context"), ("WasiConfig", "_set_ptr"),
    ("WasiConfig", "_consume"), ("Func", "_from_raw"), ("WasmtimeError", "_from_ptr"), ("Trap", "_from_ptr"),
]  # fmt: skip


def test_the_module_checks_every_name_listed_here() -> None:
    assert sorted(internals.FFI_SYMBOLS) == sorted(FFI)
    assert sorted(internals.BINDINGS_SYMBOLS) == sorted(BINDINGS)
    assert sorted(internals.PRIVATE_ATTRIBUTES) == sorted(ATTRIBUTES)
    assert internals.missing() == []


@pytest.mark.parametrize("name", FFI)
def test_ffi_symbol_exists(name: str) -> None:
    assert hasattr(_ffi, name), f"wasmtime._ffi.{name} is gone"


@pytest.mark.parametrize("name", RAW_C)
def test_c_function_exists_in_the_library(name: str) -> None:
    assert hasattr(_ffi.dll, name), f"{name} is not exported by wasmtime-py's library"


@pytest.mark.parametrize("name", BINDINGS)
def test_bindings_symbol_exists(name: str) -> None:
    assert hasattr(_bindings, name), f"wasmtime._bindings.{name} is gone"


@pytest.mark.parametrize(("cls", "attr"), ATTRIBUTES)
def test_private_attribute_exists(cls: str, attr: str) -> None:
    assert hasattr(getattr(wasmtime, cls), attr), f"wasmtime.{cls}.{attr} is gone"


def test_instance_fields_exist_on_live_objects() -> None:
    """The fields set in ``__init__``: Store.__context (name-mangled), Instance._instance, Func._func."""
    engine = wasmtime.Engine()
    store = wasmtime.Store(engine)
    assert (
        hasattr(store, internals.STORE_CONTEXT_FIELD)
        and internals.STORE_CONTEXT_FIELD == "_Store__context"
    )
    module = wasmtime.Module(engine, '(module (func (export "f")))')
    instance = wasmtime.Instance(store, module, [])
    assert hasattr(instance, internals.INSTANCE_FIELD) and internals.INSTANCE_FIELD == "_instance"
    func = instance.exports(store)["f"]
    assert hasattr(func, internals.FUNC_FIELD) and internals.FUNC_FIELD == "_func"
    name, handle = internals.library()
    assert name and handle


def test_the_pins_in_pyproject_are_the_version_the_check_accepts() -> None:
    data = tomllib.loads(PYPROJECT.read_text())
    lists = [
        data["project"].get("dependencies", []),
        *data["project"].get("optional-dependencies", {}).values(),
    ]
    lists += [g for g in data.get("dependency-groups", {}).values()]
    pins = [
        req
        for reqs in lists
        for req in reqs
        if isinstance(req, str) and re.match(r"wasmtime\b(?!-)", req)
    ]
    assert pins, "pyproject.toml pins no wasmtime"
    assert {re.sub(r"\s+", "", p) for p in pins} == {WASMTIME_REQUIREMENT}
    assert f"wasmtime=={WASMTIME_VERSION}" == WASMTIME_REQUIREMENT


def test_the_check_accepts_the_installed_version_and_refuses_others(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    from wasmscope.runtime import requirement

    assert wasmtime_version() == WASMTIME_VERSION
    assert require_wasmtime() is wasmtime
    for other in ("49.0.0", "50.0.2", "51.0.0"):
        monkeypatch.setattr(requirement, "_INSTALLED", other)
        with pytest.raises(RuntimeUnavailable, match=re.escape(WASMTIME_REQUIREMENT)):
            require_wasmtime()
