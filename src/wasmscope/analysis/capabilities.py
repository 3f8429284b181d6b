"""What a module or component can do to the world, read from its imports.

Every import is put into one capability group. The groups have stable keys
(``filesystem``, ``clocks``, ...) whatever the import convention:

* WASI preview 1 (``wasi_snapshot_preview1``, ``wasi_unstable``, WASIX),
* WASI preview 2 / component interfaces (``wasi:filesystem/types@0.2.0``),
  whether imported by a component or by a core module inside one,
* Emscripten's ``env`` imports (``emscripten_*``, ``__syscall_*``, ``invoke_*``...),
* wasm-bindgen's ``__wbindgen_*`` / ``__wbg_*`` and Go's ``gojs`` imports.

Anything not recognised is grouped under its module name (key ``module:NAME``).
"""

from __future__ import annotations

import re
from collections.abc import Iterable
from dataclasses import dataclass, field

__all__ = [
    "CAPABILITY_TITLES",
    "CapabilityGroup",
    "ImportRef",
    "classify_import",
    "classify_interface",
    "group_imports",
]


# Stable keys, in the order reports list them, with a title for humans.
CAPABILITY_TITLES: dict[str, str] = {
    "filesystem": "Filesystem",
    "stdio": "Stdio and file descriptors",
    "clocks": "Clocks and time",
    "random": "Random numbers",
    "environment": "Environment and arguments",
    "process-exit": "Process exit",
    "sockets": "Sockets",
    "http": "HTTP",
    "poll": "Polling",
    "io": "Streams and polling (wasi:io)",
    "scheduling": "Scheduling and timers",
    "threads": "Threads",
    "signals": "Signals",
    "memory-growth": "Host-managed memory",
    "exceptions": "Exceptions and longjmp through the host",
    "linking": "Linking (memory, table, globals)",
    "dynamic-loading": "Dynamic loading (dlopen)",
    "js-host": "JavaScript host calls",
    "syscalls": "Other POSIX syscalls",
}

# -- WASI preview 1 ----------------------------------------------------------
WASI_PREVIEW1_MODULES = frozenset(
    {"wasi_snapshot_preview1", "wasi_unstable", "wasix_32v1", "wasix_64v1"}
)

_P1_STDIO = frozenset(
    {
        "fd_read", "fd_write", "fd_close", "fd_seek", "fd_tell", "fd_fdstat_get",
        "fd_fdstat_set_flags", "fd_fdstat_set_rights", "fd_renumber", "fd_dup", "fd_dup2",
        "fd_pipe", "tty_get", "tty_set",
    }
)
_P1_EXACT: dict[str, str] = {
    "clock_time_get": "clocks",
    "clock_res_get": "clocks",
    "clock_time_set": "clocks",
    "random_get": "random",
    "environ_get": "environment",
    "environ_sizes_get": "environment",
    "args_get": "environment",
    "args_sizes_get": "environment",
    "proc_exit": "process-exit",
    "proc_raise": "signals",
    "proc_raise_interval": "signals",
    "poll_oneoff": "poll",
    "sched_yield": "scheduling",
    "thread-spawn": "threads",
    "thread_spawn": "threads",
}


def _classify_preview1(name: str) -> str | None:
    if name in _P1_STDIO:
        return "stdio"
    if name in _P1_EXACT:
        return _P1_EXACT[name]
    if name.startswith(("path_", "fd_")):  # fd_prestat_*, fd_readdir, fd_filestat_*, fd_pread...
        return "filesystem"
    if name.startswith(("sock_", "port_", "resolve")):
        return "sockets"
    if name.startswith("http_"):
        return "http"
    if name.startswith(("thread_", "futex_")):
        return "threads"
    return None


# -- component interfaces ----------------------------------------------------
_INTERFACE_RE = re.compile(r"^(?P<ns>[a-z0-9-]+):(?P<pkg>[a-z0-9-]+)(?:/(?P<iface>[a-z0-9-]+))?(?:@(?P<ver>[^ ]+))?$")

_WASI_PACKAGES: dict[str, str] = {
    "filesystem": "filesystem",
    "clocks": "clocks",
    "random": "random",
    "sockets": "sockets",
    "http": "http",
    "io": "io",
}
_WASI_CLI: dict[str, str] = {
    "environment": "environment",
    "exit": "process-exit",
    "stdin": "stdio",
    "stdout": "stdio",
    "stderr": "stdio",
    "terminal-input": "stdio",
    "terminal-output": "stdio",
    "terminal-stdin": "stdio",
    "terminal-stdout": "stdio",
    "terminal-stderr": "stdio",
}


def parse_interface(name: str) -> tuple[str, str, str | None, str | None] | None:
    """``wasi:cli/environment@0.2.0`` -> (``wasi``, ``cli``, ``environment``, ``0.2.0``)."""
    m = _INTERFACE_RE.match(name)
    if m is None:
        return None
    return m["ns"], m["pkg"], m["iface"], m["ver"]


def classify_interface(name: str) -> str | None:
    """Capability key of a component interface name, None if it is not one.
    A ``wasi:`` package without a capability of its own gets ``wasi:PKG``, any
    other package ``NS:PKG``."""
    parsed = parse_interface(name)
    if parsed is None:
        return None
    ns, pkg, iface, _ver = parsed
    if ns == "wasi":
        if pkg == "cli":
            return _WASI_CLI.get(iface or "", "wasi:cli")
        if pkg in _WASI_PACKAGES:
            return _WASI_PACKAGES[pkg]
        if pkg == "thread-spawn" or pkg == "threads":
            return "threads"
    return f"{ns}:{pkg}"


# -- Emscripten --------------------------------------------------------------
_SYSCALL_FS = frozenset(
    {
        "open", "openat", "stat64", "lstat64", "fstat64", "newfstatat", "getdents64", "mkdirat",
        "unlinkat", "rmdir", "renameat", "readlinkat", "symlinkat", "faccessat", "chmod", "fchmod",
        "fchmodat", "fchmodat2", "chdir", "fchdir", "getcwd", "ftruncate64", "truncate64",
        "utimensat", "statfs64", "fstatfs64", "fchown32", "fchownat", "fallocate", "fdatasync",
        "fadvise64", "mknodat", "linkat", "access", "mkdir", "unlink", "rename", "readlink",
        "symlink", "lstat", "stat", "fstat", "truncate", "sync", "fsync", "umask",
    }
)
_SYSCALL_STDIO = frozenset({"ioctl", "fcntl64", "dup", "dup3", "pipe", "pipe2", "read", "write"})
_SYSCALL_SOCK = frozenset(
    {
        "socket", "connect", "bind", "listen", "accept4", "sendto", "recvfrom", "sendmsg",
        "recvmsg", "getsockname", "getpeername", "getsockopt", "setsockopt", "shutdown",
        "socketpair",
    }
)
_SYSCALL_POLL = frozenset({"poll", "_newselect", "pselect6", "epoll_wait"})

_EMSCRIPTEN_EXACT: dict[str, str] = {
    "emscripten_date_now": "clocks",
    "emscripten_get_now": "clocks",
    "_emscripten_get_now_is_monotonic": "clocks",
    "emscripten_get_now_res": "clocks",
    "_tzset_js": "clocks",
    "_localtime_js": "clocks",
    "_gmtime_js": "clocks",
    "_mktime_js": "clocks",
    "_timegm_js": "clocks",
    "clock_time_get": "clocks",
    "clock_res_get": "clocks",
    "emscripten_resize_heap": "memory-growth",
    "emscripten_memcpy_big": "memory-growth",
    "emscripten_memcpy_js": "memory-growth",
    "_emscripten_memcpy_js": "memory-growth",
    "emscripten_get_heap_max": "memory-growth",
    "emscripten_notify_memory_growth": "memory-growth",
    "_mmap_js": "filesystem",
    "_munmap_js": "filesystem",
    "_msync_js": "filesystem",
    "exit": "process-exit",
    "_exit": "process-exit",
    "proc_exit": "process-exit",
    "abort": "process-exit",
    "_abort_js": "process-exit",
    "emscripten_force_exit": "process-exit",
    "getentropy": "random",
    "_emscripten_get_random": "random",
    "random_get": "random",
    "environ_get": "environment",
    "environ_sizes_get": "environment",
    "args_get": "environment",
    "args_sizes_get": "environment",
    "_emscripten_throw_longjmp": "exceptions",
    "__resumeException": "exceptions",
    "llvm_eh_typeid_for": "exceptions",
    "_emscripten_runtime_keepalive_clear": "js-host",
    "emscripten_sleep": "scheduling",
    "_setitimer_js": "scheduling",
    "emscripten_set_main_loop": "scheduling",
    "emscripten_set_timeout": "scheduling",
    "_dlopen_js": "dynamic-loading",
    "_dlsym_js": "dynamic-loading",
    "_dlsym_catchup_js": "dynamic-loading",
    "_emscripten_dlopen_js": "dynamic-loading",
    "_dlinit": "dynamic-loading",
    "__memory_base": "linking",
    "__table_base": "linking",
    "__stack_pointer": "linking",
    "__indirect_function_table": "linking",
    "memory": "linking",
    "__heap_base": "linking",
    "__stack_low": "linking",
    "__stack_high": "linking",
}


def _classify_emscripten(name: str) -> str | None:
    if name in _EMSCRIPTEN_EXACT:
        return _EMSCRIPTEN_EXACT[name]
    if name.startswith("__syscall_"):
        call = name[len("__syscall_") :]
        if call in _SYSCALL_FS:
            return "filesystem"
        if call in _SYSCALL_STDIO:
            return "stdio"
        if call in _SYSCALL_SOCK:
            return "sockets"
        if call in _SYSCALL_POLL:
            return "poll"
        return "syscalls"
    if name.startswith("fd_"):
        return _classify_preview1(name)
    if name.startswith(("invoke_", "__cxa_", "_emscripten_throw")):
        return "exceptions"
    if name.startswith(
        ("__pthread_", "_emscripten_thread", "emscripten_futex", "_emscripten_notify_mailbox",
         "_emscripten_receive_on_main_thread", "emscripten_check_blocking_allowed",
         "emscripten_exit_with_live_runtime", "_emscripten_init_main_thread")
    ):
        return "threads"
    if name.startswith(
        ("emscripten_asm_const", "_emval_", "_embind_", "emscripten_run_script", "_emscripten_",
         "emscripten_", "_js_", "js_")
    ):
        return "js-host"
    return None


# -- wasm-bindgen and Go -----------------------------------------------------
WASM_BINDGEN_MODULES = frozenset({"wbg", "__wbindgen_placeholder__", "__wbindgen_externref_xform__"})
GO_MODULES = frozenset({"go", "gojs"})

_WBG_HINTS: tuple[tuple[tuple[str, ...], str], ...] = (
    (("getRandomValues", "randomFillSync", "crypto"), "random"),
    (("now_", "performance", "Date", "getTime"), "clocks"),
    (("fetch", "Request", "Response", "Headers"), "http"),
    (("setTimeout", "clearTimeout", "setInterval", "queueMicrotask"), "scheduling"),
    (("process_", "exit"), "process-exit"),
)

_GO_EXACT: dict[str, str] = {
    "runtime.wasmExit": "process-exit",
    "runtime.wasmWrite": "stdio",
    "runtime.nanotime1": "clocks",
    "runtime.nanotime": "clocks",
    "runtime.walltime": "clocks",
    "runtime.walltime1": "clocks",
    "runtime.getRandomData": "random",
    "runtime.scheduleTimeoutEvent": "scheduling",
    "runtime.clearTimeoutEvent": "scheduling",
    "runtime.resetMemoryDataView": "memory-growth",
}


def _classify_wbg(name: str) -> str:
    if name.startswith("__wbg_"):
        stem = name[len("__wbg_") :]
        for hints, key in _WBG_HINTS:
            if any(h in stem for h in hints):
                return key
    return "js-host"


def classify_import(module: str, name: str) -> str:
    """The capability key of one import (``module``, ``name``)."""
    if module in WASI_PREVIEW1_MODULES:
        return _classify_preview1(name) or f"module:{module}"
    if module == "wasi" and name in ("thread-spawn", "thread_spawn"):
        return "threads"
    iface = classify_interface(module) if ":" in module else None
    if iface is not None:
        return iface
    if module in WASM_BINDGEN_MODULES or name.startswith(("__wbindgen_", "__wbg_")):
        return _classify_wbg(name)
    if module in GO_MODULES:
        if name in _GO_EXACT:
            return _GO_EXACT[name]
        if name.startswith("syscall/js."):
            return "js-host"
        return f"module:{module}"
    if module in ("GOT.mem", "GOT.func"):
        return "linking"
    if module == "env":
        key = _classify_emscripten(name)
        if key is not None:
            return key
    return f"module:{module}"


@dataclass(slots=True, frozen=True)
class ImportRef:
    """One import as a capability lists it: ``module.name`` and its kind."""

    module: str
    name: str
    kind: str = "func"

    @property
    def qualified(self) -> str:
        return f"{self.module}.{self.name}" if self.name else self.module


@dataclass(slots=True)
class CapabilityGroup:
    key: str
    title: str
    imports: list[ImportRef] = field(default_factory=list)
    interfaces: list[str] = field(default_factory=list)  # component interfaces (wasi:...)

    @property
    def count(self) -> int:
        return len(self.imports) or len(self.interfaces)

    def to_json(self) -> dict[str, object]:
        return {
            "key": self.key,
            "title": self.title,
            "count": self.count,
            "imports": [{"module": i.module, "name": i.name, "kind": i.kind} for i in self.imports],
            "interfaces": list(self.interfaces),
        }


def _title(key: str) -> str:
    if key in CAPABILITY_TITLES:
        return CAPABILITY_TITLES[key]
    if key.startswith("module:"):
        return f"Imports from module {key[len('module:') :]!r}"
    return key  # a component package such as wasi:keyvalue or docs:adder


def _order(key: str) -> tuple[int, int, str]:
    keys = list(CAPABILITY_TITLES)
    if key in CAPABILITY_TITLES:
        return (0, keys.index(key), key)
    if not key.startswith("module:"):
        return (1, 0, key)
    return (2, 0, key)


def group_imports(
    imports: Iterable[tuple[str, str, str]] = (), interfaces: Iterable[str] = ()
) -> list[CapabilityGroup]:
    """Group core imports (``module``, ``name``, ``kind``) and component
    interface names into capability groups, in a stable order."""
    groups: dict[str, CapabilityGroup] = {}
    for module, name, kind in imports:
        key = classify_import(module, name)
        if key.startswith("module:") and kind in ("memory", "table", "global"):
            key = "linking"  # a memory, table or global handed in by the host: not a capability
        group = groups.setdefault(key, CapabilityGroup(key, _title(key)))
        group.imports.append(ImportRef(module, name, kind))
        if ":" in module and module not in group.interfaces:
            group.interfaces.append(module)
    for iface in interfaces:
        key = classify_interface(iface) or f"module:{iface}"
        group = groups.setdefault(key, CapabilityGroup(key, _title(key)))
        if iface not in group.interfaces:
            group.interfaces.append(iface)
    return sorted(groups.values(), key=lambda g: _order(g.key))
