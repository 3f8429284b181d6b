"""wasmtime-py's private layer, in one place: the only importer of ``wasmtime._ffi`` and
``wasmtime._bindings``, and the only reader of wasmtime-py's private attributes.

wasmscope calls wasmtime's C API directly where the stock Python API is too slow (raw
calls, export lookups, the GIL-keeping calls of :mod:`wasmscope.runtime.gil_calls`) or
does not reach (the memory creator, the pooling allocator, trap frames, the epoch
callback). Those names are not wasmtime-py's public API and may change with any
release, so every one is listed here (:data:`FFI_SYMBOLS`, :data:`BINDINGS_SYMBOLS`,
:data:`PRIVATE_ATTRIBUTES`) and checked when this module is imported: a wasmtime-py
without one raises :class:`~wasmscope.runtime.requirement.RuntimeUnavailable` naming it,
instead of an ``AttributeError`` deep in a run. ``tests/runtime/test_wasmtime_internals.py``
names them again against the installed wasmtime-py.

Importing this module imports wasmtime: the other runtime modules import it inside
the functions that run guests.
"""

from __future__ import annotations

import ctypes
from collections.abc import Iterator, Mapping
from typing import Any

import wasmtime
from wasmtime import _bindings, _ffi

from wasmscope.runtime.requirement import RuntimeUnavailable

__all__ = [
    "BINDINGS_SYMBOLS",
    "EXTERN_FUNC",
    "EXTERN_MEMORY",
    "FFI_SYMBOLS",
    "PRIVATE_ATTRIBUTES",
    "apply_pooling",
    "byte_vec",
    "c_function",
    "call_unchecked",
    "config_pointer",
    "epoch_callback_type",
    "error_address",
    "export_get_args",
    "extern",
    "func_from_extern",
    "func_struct",
    "instance_exports",
    "instance_struct",
    "library",
    "memory_copy",
    "memory_creator",
    "memory_data",
    "missing",
    "raise_error",
    "raw_values",
    "release_store",
    "store_context",
    "trap_frames",
    "wasi_config_from_pointer",
    "wasi_config_take",
    "wrap_store",
]

# Every ``wasmtime._ffi`` name used below.
FFI_SYMBOLS: tuple[str, ...] = (
    "dll",
    "to_str",
    "WASMTIME_EXTERN_FUNC",
    "WASMTIME_EXTERN_MEMORY",
    "wasm_byte_vec_t",
    "wasm_frame_func_index",
    "wasm_frame_module_offset",
    "wasm_frame_vec_delete",
    "wasm_frame_vec_t",
    "wasm_trap_t",
    "wasm_trap_trace",
    "wasmtime_config_host_memory_creator_set",
    "wasmtime_context_t",
    "wasmtime_error_new",
    "wasmtime_error_wasm_trace",
    "wasmtime_extern_t",
    "wasmtime_frame_func_name",
    "wasmtime_frame_module_name",
    "wasmtime_func_call_unchecked",
    "wasmtime_instance_export_nth",
    "wasmtime_memory_creator_t",
    "wasmtime_memory_data",
    "wasmtime_memory_data_size",
    "wasmtime_memory_get_callback_t",
    "wasmtime_memory_grow_callback_t",
    "wasmtime_memory_t",
    "wasmtime_new_memory_callback_t",
    "wasmtime_update_deadline_kind_t",
    "wasmtime_val_raw_t",
    # Retyped with the GIL kept (wasmscope.runtime.gil_calls): looked up on ``dll``.
    "wasmtime_store_new",
    "wasmtime_store_context",
    "wasmtime_store_delete",
    "wasmtime_store_limiter",
    "wasmtime_context_set_wasi",
    "wasmtime_context_set_epoch_deadline",
    "wasmtime_store_epoch_deadline_callback",
    "wasmtime_instance_export_get",
    "wasi_config_new",
    "wasm_byte_vec_new",
    "wasi_config_set_stdin_bytes",
)

# The pooling allocator's setters (``wasmtime._bindings``), by the key apply_pooling takes.
POOLING_SETTERS: tuple[str, ...] = (
    "total_core_instances",
    "total_stacks",
    "total_memories",
    "total_tables",
    "total_component_instances",
    "max_memory_size",
    "max_memories_per_module",
    "max_tables_per_module",
    "table_elements",
    "max_core_instance_size",
    "max_core_instances_per_component",
    "max_memories_per_component",
    "max_tables_per_component",
    "linear_memory_keep_resident",
    "table_keep_resident",
)

BINDINGS_SYMBOLS: tuple[str, ...] = (
    "wasmtime_pooling_allocation_config_new",
    "wasmtime_pooling_allocation_config_delete",
    "wasmtime_pooling_allocation_strategy_set",
    *(f"wasmtime_pooling_allocation_config_{name}_set" for name in POOLING_SETTERS),
)

# (class, attribute): the private methods and fields of wasmtime-py objects read here.
PRIVATE_ATTRIBUTES: tuple[tuple[str, str], ...] = (
    ("Store", "_set_ptr"),
    ("Store", "_consume"),
    ("Store", "_context"),
    ("WasiConfig", "_set_ptr"),
    ("WasiConfig", "_consume"),
    ("Func", "_from_raw"),
    ("WasmtimeError", "_from_ptr"),
    ("Trap", "_from_ptr"),
)
# Instance fields set in __init__ (not on the class): checked on a live object by the test.
STORE_CONTEXT_FIELD = "_Store__context"  # Store.__context, name-mangled
INSTANCE_FIELD = "_instance"  # Instance._instance: the wasmtime_instance_t
FUNC_FIELD = "_func"  # Func._func: the wasmtime_func_t


def missing() -> list[str]:
    """The private names this module relies on that the installed wasmtime-py lacks."""
    gone = [f"wasmtime._ffi.{n}" for n in FFI_SYMBOLS if not hasattr(_ffi, n)]
    gone += [f"wasmtime._bindings.{n}" for n in BINDINGS_SYMBOLS if not hasattr(_bindings, n)]
    for cls, attr in PRIVATE_ATTRIBUTES:
        if not hasattr(getattr(wasmtime, cls, None), attr):
            gone.append(f"wasmtime.{cls}.{attr}")
    return gone


_GONE = missing()
if _GONE:
    raise RuntimeUnavailable(
        f"this wasmtime-py lacks {', '.join(_GONE)} (wasmscope relies on it): "
        "pip install --force-reinstall wasmscope (it pins the supported version)"
    )

EXTERN_FUNC: int = _ffi.WASMTIME_EXTERN_FUNC.value
EXTERN_MEMORY: int = _ffi.WASMTIME_EXTERN_MEMORY.value
_call_unchecked = _ffi.wasmtime_func_call_unchecked
_trap_pointer = ctypes.POINTER(_ffi.wasm_trap_t)
_Trap_from_ptr = wasmtime.Trap._from_ptr
_Error_from_ptr = wasmtime.WasmtimeError._from_ptr
_Func_from_raw = wasmtime.Func._from_raw
_byref = ctypes.byref


# -- the library, for a GIL-keeping view of it ------------------------------------------------
def library() -> tuple[str, int]:
    """The path and handle of wasmtime-py's loaded C library."""
    return _ffi.dll._name, _ffi.dll._handle


def c_function(name: str) -> Any:
    """wasmtime-py's ctypes function ``name`` (its ``argtypes`` and ``restype``)."""
    return getattr(_ffi.dll, name)


# -- stores ---------------------------------------------------------------------------------
def wrap_store(engine: wasmtime.Engine, ptr: Any, context: Any) -> wasmtime.Store:
    """A ``wasmtime.Store`` around a ``wasmtime_store_t *`` made elsewhere (no data)."""
    store = wasmtime.Store.__new__(wasmtime.Store)
    store._set_ptr(ptr)
    setattr(store, STORE_CONTEXT_FIELD, context)
    store.engine = engine
    return store


def release_store(store: wasmtime.Store) -> Any:
    """Take the store's pointer from its wrapper (the caller frees it); None if closed."""
    try:
        ptr = store._consume()
    except ValueError:  # closed already
        return None
    setattr(store, STORE_CONTEXT_FIELD, None)
    return ptr


def store_context(store: wasmtime.Store) -> Any:
    """The store's ``wasmtime_context_t *``."""
    return store._context()


def raise_error(error: Any) -> None:
    """Raise the ``WasmtimeError`` of a ``wasmtime_error_t *`` (which it takes)."""
    raise _Error_from_ptr(error)


def error_address(message: bytes) -> int:
    """A new ``wasmtime_error_t *`` as an integer: what a callback returns to fail."""
    err = _ffi.wasmtime_error_new(message)
    return int(ctypes.cast(err, ctypes.c_void_p).value or 0)


# -- WASI ----------------------------------------------------------------------------------------
def wasi_config_from_pointer(ptr: Any) -> wasmtime.WasiConfig:
    """A ``wasmtime.WasiConfig`` around a ``wasi_config_t *`` made elsewhere."""
    cfg = wasmtime.WasiConfig.__new__(wasmtime.WasiConfig)
    cfg._set_ptr(ptr)
    return cfg


def wasi_config_take(cfg: wasmtime.WasiConfig) -> Any:
    """The config's pointer, taken from its wrapper (a store consumes it)."""
    return cfg._consume()


def config_pointer(cfg: Any) -> Any:
    return cfg.ptr()


def byte_vec() -> Any:
    """An empty ``wasm_byte_vec_t``."""
    return _ffi.wasm_byte_vec_t()


# -- instances, exports, calls ---------------------------------------------------------------------
def instance_struct(instance: wasmtime.Instance) -> Any:
    """The instance's ``wasmtime_instance_t`` (pass it by reference)."""
    return getattr(instance, INSTANCE_FIELD)


def extern() -> Any:
    """An empty ``wasmtime_extern_t`` for an export lookup to fill."""
    return _ffi.wasmtime_extern_t()


def export_get_args(
    store: wasmtime.Store, instance: wasmtime.Instance, name: bytes, item: Any
) -> tuple[Any, ...]:
    """The arguments of ``wasmtime_instance_export_get`` for ``name`` into ``item``."""
    return (
        store._context(),
        _byref(getattr(instance, INSTANCE_FIELD)),
        name,
        len(name),
        _byref(item),
    )


def func_from_extern(item: Any) -> wasmtime.Func:
    return _Func_from_raw(item.of.func)


def func_struct(func: wasmtime.Func) -> Any:
    """The function's ``wasmtime_func_t`` (pass it by reference)."""
    return getattr(func, FUNC_FIELD)


def raw_values(n: int) -> Any:
    """An array of ``n`` ``wasmtime_val_raw_t`` (arguments in, results out)."""
    return (_ffi.wasmtime_val_raw_t * n)()


def call_unchecked(ctx: Any, func: Any, values: Any) -> None:
    """``wasmtime_func_call_unchecked``; raises the guest's ``Trap`` or ``WasmtimeError``."""
    trap = _trap_pointer()
    err = _call_unchecked(ctx, _byref(func), values, len(values), _byref(trap))
    if err:
        raise _Error_from_ptr(err)
    if trap:
        raise _Trap_from_ptr(trap)


def instance_exports(
    store: wasmtime.Store, instance: wasmtime.Instance
) -> Iterator[tuple[bytes, int, Any]]:
    """(name, kind, extern) of every export, in order, without the stock export map."""
    ctx = store._context()
    ref = _byref(getattr(instance, INSTANCE_FIELD))
    name_ptr = ctypes.POINTER(ctypes.c_char)()
    name_len = ctypes.c_size_t(0)
    i = 0
    while True:
        item = _ffi.wasmtime_extern_t()
        if not _ffi.wasmtime_instance_export_nth(
            ctx, ref, i, _byref(name_ptr), _byref(name_len), _byref(item)
        ):
            return
        i += 1
        yield ctypes.string_at(name_ptr, name_len.value), int(item.kind), item


def memory_copy(item: Any) -> Any:
    """A ``wasmtime_memory_t`` copied out of a memory extern (it outlives ``item``)."""
    memory = item.of.memory
    return type(memory).from_buffer_copy(memory)  # not ctypes.memmove: it releases the GIL


def memory_data(ctx: Any, memory: Any) -> tuple[int, int]:
    """(address, byte size) of a raw memory."""
    size = int(_ffi.wasmtime_memory_data_size(ctx, _byref(memory)))
    ptr = _ffi.wasmtime_memory_data(ctx, _byref(memory))
    return int(ctypes.cast(ptr, ctypes.c_void_p).value or 0), size


# -- traps ----------------------------------------------------------------------------------
def trap_frames(exc: BaseException) -> list[tuple[int, int, str | None, str | None]]:
    """(func_index, module_offset, func_name, module_name) of the guest frames of a
    ``Trap`` or ``WasmtimeError``, innermost first; [] for anything else."""
    vec = _ffi.wasm_frame_vec_t(0, None)
    try:
        if isinstance(exc, wasmtime.Trap):
            _ffi.wasm_trap_trace(exc.ptr(), _byref(vec))
        elif isinstance(exc, wasmtime.WasmtimeError):
            _ffi.wasmtime_error_wasm_trace(exc.ptr(), _byref(vec))
        else:
            return []
        out = []
        for i in range(vec.size):
            f = vec.data[i]
            name_ptr = _ffi.wasmtime_frame_func_name(f)
            mod_ptr = _ffi.wasmtime_frame_module_name(f)
            out.append(
                (
                    int(_ffi.wasm_frame_func_index(f)),
                    int(_ffi.wasm_frame_module_offset(f)),
                    _ffi.to_str(name_ptr.contents) if name_ptr else None,
                    _ffi.to_str(mod_ptr.contents) if mod_ptr else None,
                )
            )
        return out
    finally:
        if vec.size:
            _ffi.wasm_frame_vec_delete(_byref(vec))


# -- callbacks -------------------------------------------------------------------------------------
def epoch_callback_type() -> Any:
    """The ctypes type of an epoch-deadline callback (ctx, data, delta *, kind *) -> error."""
    return ctypes.CFUNCTYPE(
        ctypes.c_size_t,
        ctypes.POINTER(_ffi.wasmtime_context_t),
        ctypes.c_void_p,
        ctypes.POINTER(ctypes.c_uint64),
        ctypes.POINTER(_ffi.wasmtime_update_deadline_kind_t),
    )


class MemoryCreator:
    """A ``wasmtime_memory_creator_t`` over Python callbacks (kept alive by this object)."""

    def __init__(self, new: Any, get: Any, grow: Any, finalize: Any) -> None:
        fin_type = ctypes.CFUNCTYPE(None, ctypes.c_void_p)
        self.get_cb = _ffi.wasmtime_memory_get_callback_t(get)
        self.grow_cb = _ffi.wasmtime_memory_grow_callback_t(grow)
        self.fin_cb = fin_type(finalize)
        self.new_cb = _ffi.wasmtime_new_memory_callback_t(new)
        struct: Any = _ffi.wasmtime_memory_creator_t()
        struct.env = None
        struct.new_memory = self.new_cb
        struct.finalizer = fin_type()  # a NULL function pointer: nothing to free
        self.struct = struct

    def fill(self, out: Any, key: int) -> None:
        """Fill the ``wasmtime_linear_memory_t`` a new-memory callback returns."""
        out.env = key
        out.get_memory = self.get_cb
        out.grow_memory = self.grow_cb
        out.finalizer = self.fin_cb

    def install(self, cfg: wasmtime.Config) -> None:
        _ffi.wasmtime_config_host_memory_creator_set(cfg.ptr(), _byref(self.struct))


def memory_creator(new: Any, get: Any, grow: Any, finalize: Any) -> MemoryCreator:
    return MemoryCreator(new, get, grow, finalize)


# -- the pooling allocator ---------------------------------------------------------------------------
def apply_pooling(cfg: wasmtime.Config, values: Mapping[str, int]) -> None:
    """Set the pooling allocation strategy on ``cfg``; ``values`` by :data:`POOLING_SETTERS` key."""
    pc = _bindings.wasmtime_pooling_allocation_config_new()
    try:
        for name in POOLING_SETTERS:
            if name in values:
                getattr(_bindings, f"wasmtime_pooling_allocation_config_{name}_set")(
                    pc, values[name]
                )
        _bindings.wasmtime_pooling_allocation_strategy_set(cfg.ptr(), pc)
    finally:
        _bindings.wasmtime_pooling_allocation_config_delete(pc)
