"""The WASI preview 1 functions as the policy sees them: which policy section grants
each one, which take a path, and the flag bits that tell a read from a write.

Values from the preview 1 witx (``wasi_snapshot_preview1``)."""

from __future__ import annotations

from collections.abc import Mapping

from wasmscope.runtime.host_calls import HostCall

__all__ = [
    "ALWAYS",
    "CLOCK_IDS",
    "ERRNO",
    "FD_WRITES",
    "FUNCTIONS",
    "PATH_FUNCTIONS",
    "SECTION",
    "arg",
    "clock_name",
    "is_read",
    "is_write",
]

# Section of the policy that grants each function; ALWAYS: every policy grants it
# (stdio on descriptors the guest already holds, exit, argv, the environment whose
# values the policy cuts before the guest starts, and the preopen listing that
# wasi-libc runs at start-up and treats any errno but badf as fatal).
ALWAYS = "always"
SECTION: dict[str, str] = {
    "args_get": ALWAYS,
    "args_sizes_get": ALWAYS,
    "environ_get": ALWAYS,
    "environ_sizes_get": ALWAYS,
    "clock_res_get": "clocks",
    "clock_time_get": "clocks",
    "poll_oneoff": "clocks",  # a sleep is a clock subscription
    "random_get": "random",
    "sock_accept": "sockets",
    "sock_recv": "sockets",
    "sock_send": "sockets",
    "sock_shutdown": "sockets",
    "path_create_directory": "filesystem",
    "path_filestat_get": "filesystem",
    "path_filestat_set_times": "filesystem",
    "path_link": "filesystem",
    "path_open": "filesystem",
    "path_readlink": "filesystem",
    "path_remove_directory": "filesystem",
    "path_rename": "filesystem",
    "path_symlink": "filesystem",
    "path_unlink_file": "filesystem",
}
for _name in (
    "fd_advise", "fd_allocate", "fd_close", "fd_datasync", "fd_fdstat_get", "fd_fdstat_set_flags",
    "fd_fdstat_set_rights", "fd_filestat_get", "fd_filestat_set_size", "fd_filestat_set_times",
    "fd_pread", "fd_prestat_get", "fd_prestat_dir_name", "fd_pwrite", "fd_read", "fd_readdir",
    "fd_renumber", "fd_seek", "fd_sync", "fd_tell", "fd_write", "proc_exit", "proc_raise",
    "sched_yield",
):  # fmt: skip
    SECTION[_name] = ALWAYS
FUNCTIONS = frozenset(SECTION)

# Path-bearing calls, True where the call changes the tree (path_open: by its flags).
PATH_FUNCTIONS: dict[str, bool] = {
    "path_create_directory": True,
    "path_filestat_get": False,
    "path_filestat_set_times": True,
    "path_link": True,
    "path_open": False,
    "path_readlink": False,
    "path_remove_directory": True,
    "path_rename": True,
    "path_symlink": True,
    "path_unlink_file": True,
}
# Calls on a descriptor that change the file behind it.
FD_WRITES = frozenset(
    {"fd_write", "fd_pwrite", "fd_allocate", "fd_filestat_set_size", "fd_filestat_set_times"}
)

OFLAGS_CREAT, OFLAGS_DIRECTORY, OFLAGS_EXCL, OFLAGS_TRUNC = 1, 2, 4, 8
FDFLAGS_APPEND = 1
# rights: fd_datasync, fd_write, fd_allocate, fd_filestat_set_size: the ones wasi-libc
# leaves out of an O_RDONLY open (it asks for every other right, set_times included)
RIGHTS_WRITE = (1 << 0) | (1 << 6) | (1 << 8) | (1 << 22)
RIGHTS_READ = (1 << 1) | (1 << 14)  # fd_read, fd_readdir

CLOCK_IDS: dict[int, str] = {
    0: "realtime",
    1: "monotonic",
    2: "process_cputime",
    3: "thread_cputime",
}

ERRNO: Mapping[str, int] = {
    "acces": 2, "badf": 8, "loop": 32, "mfile": 33, "nfile": 41, "noent": 44, "perm": 63,
    "rofs": 69, "notcapable": 76,
}  # fmt: skip


def arg(call: HostCall, *names: str) -> int | None:
    """The first of ``names`` present in the call's arguments (the audit uses the witx
    parameter names; a few have two spellings in the wild)."""
    for name in names:
        value = call.args.get(name)
        if value is not None:
            return value
    return None


def is_write(call: HostCall) -> bool:
    """Whether a path-bearing call changes the tree or opens a file for writing."""
    if call.func != "path_open":
        return PATH_FUNCTIONS.get(call.func, False)
    oflags = arg(call, "oflags") or 0
    rights = arg(call, "fs_rights_base", "rights_base") or 0
    fdflags = arg(call, "fdflags", "fs_flags") or 0
    return bool(
        oflags & (OFLAGS_CREAT | OFLAGS_TRUNC) or rights & RIGHTS_WRITE or fdflags & FDFLAGS_APPEND
    )


def is_read(call: HostCall) -> bool:
    """Whether a path-bearing call reads (a ``path_open`` for reading or of a directory,
    or one asking for no access at all, a stat)."""
    if call.func != "path_open":
        return not PATH_FUNCTIONS.get(call.func, False)
    rights = arg(call, "fs_rights_base", "rights_base") or 0
    return bool(rights & RIGHTS_READ) or not is_write(call)


def clock_name(call: HostCall) -> str:
    clock = arg(call, "id", "clock_id")
    return CLOCK_IDS.get(clock if clock is not None else -1, f"clock {clock}")
