"""The functions of WASI preview 1 (``wasi_snapshot_preview1``), as the core Wasm
ABI passes them: written from the witx of the spec
(``legacy/preview1/witx/wasi_snapshot_preview1.witx`` in WebAssembly/WASI).

In the core ABI a ``string`` or an array (``iovec_array``, ``ciovec_array``)
becomes two i32 parameters (pointer, length), 64-bit types (``timestamp``,
``filesize``, ``filedelta``, ``rights``, ``dircookie``) are i64, everything else
i32; each element of the ``expected`` result is an out-pointer parameter after the
others, and the function returns the ``errno`` (i32), except ``proc_exit``.

For each function :data:`PREVIEW1` gives the parameter names (the pointer of a
string or array keeps the witx name, its length gets ``_len``), their types, the
first path (``string``) parameter as the index of its pointer, the last out-pointer
and the width of what it points to when that is an integer (``fd``, ``size``,
``filesize``, ``timestamp``; None for structs such as ``filestat``), and the iovec
pair. ``wasi_unstable`` (snapshot 0) has the same core signatures for the calls
the audit reads; an import whose type differs from the table is audited with
generic argument names (``arg0`` ...) and nothing decoded.
"""

from __future__ import annotations

from dataclasses import dataclass

from wasmscope.binary.types import I32, I64

__all__ = ["MODULES", "PREVIEW1", "WasiFunc"]

MODULES = ("wasi_snapshot_preview1", "wasi_unstable")


@dataclass(frozen=True, slots=True)
class WasiFunc:
    """One preview 1 function in the core ABI."""

    name: str
    params: tuple[str, ...]
    types: tuple[int, ...]  # I32 / I64, one per parameter
    results: tuple[int, ...] = (I32,)  # the errno (none for proc_exit)
    path: int | None = None  # index of the first path's pointer (its length follows)
    out: int | None = None  # index of the last out-pointer
    out_width: int = 0  # 4 or 8: what `out` points to is an integer of that size; 0: not decoded
    iovec: int | None = None  # index of the iovec array's pointer (its length follows)


def _f(name: str, spec: str, *, path: str | None = None, out: str | None = None, width: int = 0, iovec: str | None = None, noreturn: bool = False) -> WasiFunc:  # fmt: skip
    """``spec`` lists ``name:type`` with type ``i`` (i32) or ``I`` (i64)."""
    params: list[str] = []
    types: list[int] = []
    for item in spec.split():
        n, t = item.split(":")
        params.append(n)
        types.append(I64 if t == "I" else I32)
    return WasiFunc(
        name,
        tuple(params),
        tuple(types),
        () if noreturn else (I32,),
        params.index(path) if path else None,
        params.index(out) if out else None,
        width,
        params.index(iovec) if iovec else None,
    )


_ALL = (
    _f("args_get", "argv:i argv_buf:i"),
    _f("args_sizes_get", "argc:i argv_buf_size:i", out="argv_buf_size", width=4),
    _f("environ_get", "environ:i environ_buf:i"),
    _f("environ_sizes_get", "environc:i environ_buf_size:i", out="environ_buf_size", width=4),
    _f("clock_res_get", "id:i resolution:i", out="resolution", width=8),
    _f("clock_time_get", "id:i precision:I time:i", out="time", width=8),
    _f("fd_advise", "fd:i offset:I len:I advice:i"),
    _f("fd_allocate", "fd:i offset:I len:I"),
    _f("fd_close", "fd:i"),
    _f("fd_datasync", "fd:i"),
    _f("fd_fdstat_get", "fd:i stat:i", out="stat"),
    _f("fd_fdstat_set_flags", "fd:i flags:i"),
    _f("fd_fdstat_set_rights", "fd:i fs_rights_base:I fs_rights_inheriting:I"),
    _f("fd_filestat_get", "fd:i buf:i", out="buf"),
    _f("fd_filestat_set_size", "fd:i size:I"),
    _f("fd_filestat_set_times", "fd:i atim:I mtim:I fst_flags:i"),
    _f("fd_pread", "fd:i iovs:i iovs_len:i offset:I nread:i", out="nread", width=4, iovec="iovs"),
    _f("fd_prestat_get", "fd:i buf:i", out="buf"),
    _f("fd_prestat_dir_name", "fd:i path:i path_len:i"),
    _f(
        "fd_pwrite",
        "fd:i iovs:i iovs_len:i offset:I nwritten:i",
        out="nwritten",
        width=4,
        iovec="iovs",
    ),
    _f("fd_read", "fd:i iovs:i iovs_len:i nread:i", out="nread", width=4, iovec="iovs"),
    _f("fd_readdir", "fd:i buf:i buf_len:i cookie:I bufused:i", out="bufused", width=4),
    _f("fd_renumber", "fd:i to:i"),
    _f("fd_seek", "fd:i offset:I whence:i newoffset:i", out="newoffset", width=8),
    _f("fd_sync", "fd:i"),
    _f("fd_tell", "fd:i offset:i", out="offset", width=8),
    _f("fd_write", "fd:i iovs:i iovs_len:i nwritten:i", out="nwritten", width=4, iovec="iovs"),
    _f("path_create_directory", "fd:i path:i path_len:i", path="path"),
    _f("path_filestat_get", "fd:i flags:i path:i path_len:i buf:i", path="path", out="buf"),
    _f(
        "path_filestat_set_times",
        "fd:i flags:i path:i path_len:i atim:I mtim:I fst_flags:i",
        path="path",
    ),
    _f(
        "path_link",
        "old_fd:i old_flags:i old_path:i old_path_len:i new_fd:i new_path:i new_path_len:i",
        path="old_path",
    ),
    _f(
        "path_open",
        "fd:i dirflags:i path:i path_len:i oflags:i fs_rights_base:I fs_rights_inheriting:I fdflags:i opened_fd:i",
        path="path",
        out="opened_fd",
        width=4,
    ),
    _f(
        "path_readlink",
        "fd:i path:i path_len:i buf:i buf_len:i bufused:i",
        path="path",
        out="bufused",
        width=4,
    ),
    _f("path_remove_directory", "fd:i path:i path_len:i", path="path"),
    _f(
        "path_rename",
        "fd:i old_path:i old_path_len:i new_fd:i new_path:i new_path_len:i",
        path="old_path",
    ),
    _f("path_symlink", "old_path:i old_path_len:i fd:i new_path:i new_path_len:i", path="old_path"),
    _f("path_unlink_file", "fd:i path:i path_len:i", path="path"),
    _f("poll_oneoff", "in:i out:i nsubscriptions:i nevents:i", out="nevents", width=4),
    _f("proc_exit", "rval:i", noreturn=True),
    _f("proc_raise", "sig:i"),
    _f("sched_yield", ""),
    _f("random_get", "buf:i buf_len:i"),
    _f("sock_accept", "fd:i flags:i fd_out:i", out="fd_out", width=4),
    _f(
        "sock_recv",
        "fd:i ri_data:i ri_data_len:i ri_flags:i ro_datalen:i ro_flags:i",
        out="ro_flags",
        width=4,
        iovec="ri_data",
    ),
    _f(
        "sock_send",
        "fd:i si_data:i si_data_len:i si_flags:i so_datalen:i",
        out="so_datalen",
        width=4,
        iovec="si_data",
    ),
    _f("sock_shutdown", "fd:i how:i"),
)

PREVIEW1: dict[str, WasiFunc] = {f.name: f for f in _ALL}
"""Every preview 1 function by name (46 of them)."""
