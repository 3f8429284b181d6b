"""wasmtime's short C calls with the GIL held, and the output files read the same way.

ctypes releases the GIL around every call into a ``CDLL`` (wasmtime-py's bindings) and
CPython around every ``os.pread``/``os.fstat``/``os.ftruncate``. Each release is
free while no other thread waits for the GIL; in a server there always is one (the
event loop, other workers), so each release hands the GIL over and takes it back:
two context switches. A request's run made ~25 such calls (store, WASI setup,
export lookups, memory sizes, output files), all of them short (below 20 µs). They go
here through a ``PyDLL`` view of the same library (same functions, same argument
types, the GIL kept); only the calls that run guest code (instantiation, which runs
the start function, and the call itself) still release it.

Nothing here may call back into Python from another thread (it would wait for the GIL
this thread holds): none of these functions does.
"""

from __future__ import annotations

import ctypes
import os
from typing import Any

__all__ = ["bindings", "drop_store", "limit_memory", "new_store", "set_wasi", "store_context"]


class _GilCalls:
    def __init__(self) -> None:
        from wasmscope.runtime import _wasmtime_internals as internals

        self.internals = internals
        name, handle = internals.library()
        lib = ctypes.PyDLL(name, handle=handle)

        def same(name: str) -> Any:
            """``name`` from ``lib``, typed as wasmtime-py types it."""
            f = lib[name]  # a new function object (attribute access would share wasmtime-py's)
            orig = internals.c_function(name)
            f.argtypes = orig.argtypes
            f.restype = orig.restype
            return f

        def raw(name: str, restype: Any, *argtypes: Any) -> Any:
            f = lib[name]
            f.restype = restype
            f.argtypes = list(argtypes)
            return f

        vp, size, flag = ctypes.c_void_p, ctypes.c_size_t, ctypes.c_bool
        self.store_new = same("wasmtime_store_new")
        self.store_context = same("wasmtime_store_context")
        self.store_delete = same("wasmtime_store_delete")
        self.store_limiter = same("wasmtime_store_limiter")
        self.context_set_wasi = same("wasmtime_context_set_wasi")
        self.set_epoch_deadline = same("wasmtime_context_set_epoch_deadline")
        self.epoch_deadline_callback = same("wasmtime_store_epoch_deadline_callback")
        self.instance_export_get = same("wasmtime_instance_export_get")
        self.memory_data_size = same("wasmtime_memory_data_size")
        self.memory_address = raw("wasmtime_memory_data", vp, vp, vp)  # an int: no ctypes.cast
        self.wasi_config_new = same("wasi_config_new")
        self.byte_vec_new = same("wasm_byte_vec_new")
        self.set_stdin_bytes = same("wasi_config_set_stdin_bytes")
        # argv and environment as arrays of pre-encoded char * (see wasmscope.runtime.wasi)
        self.set_argv = raw("wasi_config_set_argv", flag, vp, size, vp)
        self.set_env = raw("wasi_config_set_env", flag, vp, size, vp, vp)
        self.set_stdout_file = raw("wasi_config_set_stdout_file", flag, vp, ctypes.c_char_p)
        self.set_stderr_file = raw("wasi_config_set_stderr_file", flag, vp, ctypes.c_char_p)
        self.no_finalizer = ctypes.cast(0, ctypes.CFUNCTYPE(None, ctypes.c_void_p))

        libc = ctypes.PyDLL(None, use_errno=True)
        self.lseek = libc.lseek
        self.lseek.restype = ctypes.c_int64
        self.lseek.argtypes = [ctypes.c_int, ctypes.c_int64, ctypes.c_int]
        self.pread = libc.pread
        self.pread.restype = ctypes.c_ssize_t
        self.pread.argtypes = [ctypes.c_int, ctypes.c_void_p, ctypes.c_size_t, ctypes.c_int64]
        self.ftruncate = libc.ftruncate
        self.ftruncate.restype = ctypes.c_int
        self.ftruncate.argtypes = [ctypes.c_int, ctypes.c_int64]

    # -- files (the output capture's memfds) -----------------------------------------------
    def file_size(self, fd: int) -> int:
        size = int(self.lseek(fd, 0, os.SEEK_END))
        if size < 0:
            return os.fstat(fd).st_size  # raises the OSError
        return size

    def read_at(self, fd: int, n: int, offset: int) -> bytes:
        if n > 1 << 16:  # a long read: let other threads run meanwhile
            return os.pread(fd, n, offset)
        buf = ctypes.create_string_buffer(n)
        got = int(self.pread(fd, buf, n, offset))
        if got < 0:
            return os.pread(fd, n, offset)  # raises the OSError
        return buf.raw[:got]

    def truncate(self, fd: int) -> None:
        if self.ftruncate(fd, 0) != 0:
            os.ftruncate(fd, 0)  # raises the OSError


_BINDINGS: _GilCalls | None = None


def bindings() -> _GilCalls:
    """The process-wide bindings (made on first use: wasmtime is imported then)."""
    global _BINDINGS
    if _BINDINGS is None:
        _BINDINGS = _GilCalls()
    return _BINDINGS


# -- a store's life, without a GIL release ------------------------------------------------------
def new_store(engine: Any) -> Any:
    """A ``wasmtime.Store`` on ``engine`` (as ``wasmtime.Store(engine)``, no data)."""
    h = bindings()
    ptr = h.store_new(engine.ptr(), None, h.no_finalizer)
    return h.internals.wrap_store(engine, ptr, h.store_context(ptr))


def set_wasi(store: Any, config: Any) -> None:
    """``store.set_wasi(config)`` (the config is consumed)."""
    h = bindings()
    error = h.context_set_wasi(
        h.internals.store_context(store), h.internals.wasi_config_take(config)
    )
    if error:
        h.internals.raise_error(error)


def limit_memory(store: Any, memory_size: int) -> None:
    """``store.set_limits(memory_size=...)``."""
    bindings().store_limiter(store.ptr(), memory_size, -1, -1, -1, -1)


def drop_store(store: Any) -> None:
    """Free the store (its instances and memories) now, as ``store.close()``."""
    h = bindings()
    ptr = h.internals.release_store(store)
    if ptr is not None:
        h.store_delete(ptr)


def store_context(store: Any) -> Any:
    """The store's ``wasmtime_context_t *`` (what the raw calls take)."""
    return bindings().internals.store_context(store)
