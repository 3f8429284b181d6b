"""The guest's WASI world: arguments, environment, preopened dirs, stdin, and captured output.

Output capture: stdout and stderr go to two anonymous in-memory files (``memfd``) that
wasmtime opens by path (``WasiConfig.stdout_file``): writes cost no Python at all (a
``stdout_custom`` callback costs ~25 µs a write, runs on another thread and can abort the
interpreter at exit; see DESIGN.md). The watchdog (:mod:`wasmscope.runtime.watchdog`)
checks their sizes on every epoch tick and stops a guest that writes past the cap; what
was written up to the cap is kept and the record says ``*_truncated``. A single write
larger than what is left is only seen after it (a host call cannot be interrupted), so
the memfd may briefly hold more than the cap; only the cap is ever read back.

Where memfd is missing (not Linux), unlinked temporary files play the same role.
"""

from __future__ import annotations

import contextlib
import ctypes
import os
import tempfile
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, TypeAlias

from wasmscope.errors import UsageError
from wasmscope.runtime.gil_calls import bindings

if TYPE_CHECKING:
    import wasmtime

__all__ = [
    "DirSpec",
    "OutputCapture",
    "Stdin",
    "WasiSpec",
    "build_wasi_config",
    "describe_dirs",
    "parse_env",
]

Stdin: TypeAlias = bytes | str | os.PathLike[str] | None  # or the string "inherit"


@dataclass(frozen=True, slots=True)
class DirSpec:
    """A host directory preopened for the guest."""

    host: str
    guest: str
    read_only: bool = False

    @classmethod
    def parse(cls, text: str) -> DirSpec:
        """``HOST[::GUEST][:ro]`` as in ``wasmtime run --dir`` (plus ``:ro``/``:rw``).

        ``--dir .`` maps the current directory as ``.``; ``--dir /data::/in:ro`` maps
        ``/data`` as ``/in``, read-only. The host directory must exist."""
        if not text:
            raise UsageError("--dir needs a directory")
        read_only = False
        spec = text
        for suffix, ro in ((":ro", True), (":rw", False)):
            if spec.endswith(suffix) and len(spec) > len(suffix):
                spec = spec[: -len(suffix)]
                read_only = ro
                break
        host, sep, guest = spec.partition("::")
        if not host:
            raise UsageError(f"--dir {text!r}: empty host directory")
        if sep and not guest:
            raise UsageError(f"--dir {text!r}: empty guest path after '::'")
        if not os.path.isdir(host):
            raise UsageError(f"--dir {text!r}: {host} is not a directory")
        return cls(host, guest if sep else host, read_only)


def parse_env(
    pairs: Iterable[str], inherit: Iterable[str] = (), environ: Mapping[str, str] | None = None
) -> dict[str, str]:
    """``["K=V", ...]`` plus the named variables of ``environ`` (default: ours).

    A name given to ``inherit`` that is not set is skipped, like ``wasmtime run``."""
    env: dict[str, str] = {}
    source = os.environ if environ is None else environ
    for name in inherit:
        if not name or "=" in name:
            raise UsageError(f"--env-inherit takes a variable name, not {name!r}")
        if name in source:
            env[name] = source[name]
    for pair in pairs:
        name, sep, value = pair.partition("=")
        if not sep or not name:
            raise UsageError(f"--env {pair!r}: expected NAME=VALUE")
        env[name] = value
    return env


def _memfd(name: str) -> int:
    create = getattr(os, "memfd_create", None)
    if create is not None:
        try:
            return int(create(name, getattr(os, "MFD_CLOEXEC", 1)))
        except OSError:
            pass
    fd, path = tempfile.mkstemp(prefix=f"wasmscope-{name}-")
    os.unlink(path)
    return fd


def _fd_path(fd: int) -> str:
    for template in ("/proc/self/fd/{}", "/dev/fd/{}"):
        path = template.format(fd)
        if os.path.exists(path):
            return path
    raise OSError("no /proc/self/fd or /dev/fd: cannot capture guest output here")


class OutputCapture:
    """Two in-memory files for the guest's stdout and stderr, capped at ``cap`` bytes each.

    Reusable: :meth:`reset` empties both for the next invocation (a Runtime keeps one per
    thread), :meth:`close` releases them."""

    __slots__ = ("_closed", "cap", "encoded_paths", "fds", "paths")

    def __init__(self, cap: int | None) -> None:
        self.cap = cap
        self.fds = (_memfd("stdout"), _memfd("stderr"))
        self.paths = (_fd_path(self.fds[0]), _fd_path(self.fds[1]))
        self.encoded_paths = (self.paths[0].encode(), self.paths[1].encode())
        self._closed = False

    def sizes(self) -> tuple[int, int]:
        size = bindings().file_size
        return size(self.fds[0]), size(self.fds[1])

    def over_cap(self) -> bool:
        if self.cap is None:
            return False
        a, b = self.sizes()
        return a > self.cap or b > self.cap

    def read(self, which: int, start: int = 0) -> tuple[bytes, int, bool]:
        """(bytes from ``start`` up to the cap, total size written, truncated?)."""
        fd = self.fds[which]
        files = bindings()  # short reads with the GIL held (see wasmscope.runtime.gil_calls)
        size = files.file_size(fd)
        end = size if self.cap is None else min(size, self.cap)
        chunks = []
        pos = start
        while pos < end:
            chunk = files.read_at(fd, min(end - pos, 1 << 24), pos)
            if not chunk:
                break
            chunks.append(chunk)
            pos += len(chunk)
        return b"".join(chunks), size, self.cap is not None and size > self.cap

    def reset(self, cap: int | None) -> None:
        self.cap = cap
        files = bindings()
        for fd in self.fds:
            files.truncate(fd)

    def close(self) -> None:
        if not self._closed:
            self._closed = True
            for fd in self.fds:
                with contextlib.suppress(OSError):
                    os.close(fd)

    def __del__(self) -> None:
        self.close()


@dataclass(slots=True)
class WasiSpec:
    """What the guest sees. ``argv[0]`` is the program name (``wasmtime run`` uses the
    file name)."""

    argv: Sequence[str] = ()
    env: Mapping[str, str] | None = None
    dirs: Sequence[DirSpec] = ()
    stdin: Stdin = None  # bytes, a file path, "inherit" (ours), or None (empty)


def _strings(values: Iterable[str]) -> Any:
    """A ``char *[]`` over UTF-8 copies of ``values`` (they live as long as the array)."""
    data = [v.encode() for v in values]
    return (ctypes.c_char_p * len(data))(*data)


def _set_stdin_bytes(config: wasmtime.WasiConfig, data: bytes) -> None:
    raw = bindings()
    vec = raw.internals.byte_vec()
    buf = (ctypes.c_uint8 * len(data)).from_buffer_copy(data) if data else None
    raw.byte_vec_new(ctypes.byref(vec), len(data), buf)
    # wasmtime takes ownership of the vector's contents.
    raw.set_stdin_bytes(config.ptr(), ctypes.byref(vec))


def build_wasi_config(spec: WasiSpec, capture: OutputCapture | None) -> wasmtime.WasiConfig:
    """A fresh ``WasiConfig`` (one per store: ``set_wasi`` consumes it)."""
    import wasmtime

    raw = bindings()
    cfg: wasmtime.WasiConfig = raw.internals.wasi_config_from_pointer(
        raw.wasi_config_new()
    )  # no GIL release
    ptr = cfg.ptr()
    if spec.argv and not raw.set_argv(ptr, len(spec.argv), _strings(spec.argv)):
        raise wasmtime.WasmtimeError("failed to configure argv")
    env = spec.env
    if env and not raw.set_env(ptr, len(env), _strings(env.keys()), _strings(env.values())):
        raise wasmtime.WasmtimeError("failed to configure environment")
    for d in spec.dirs:
        try:
            cfg.preopen_dir(d.host, d.guest, not d.read_only)
        except wasmtime.WasmtimeError as exc:
            raise UsageError(f"cannot preopen {d.host} as {d.guest}: {exc}") from None
    stdin = spec.stdin
    if stdin == "inherit":
        cfg.inherit_stdin()
    elif isinstance(stdin, bytes | bytearray):
        _set_stdin_bytes(cfg, bytes(stdin))
    elif stdin is not None:
        path = os.fspath(stdin)
        if not os.path.isfile(path):
            raise UsageError(f"stdin file not found: {path}")
        cfg.stdin_file = path
    if capture is not None:
        out, err = capture.encoded_paths
        if not raw.set_stdout_file(ptr, out) or not raw.set_stderr_file(ptr, err):
            raise wasmtime.WasmtimeError("failed to open the output capture files")
    else:
        cfg.inherit_stdout()
        cfg.inherit_stderr()
    return cfg


def describe_dirs(dirs: Sequence[DirSpec]) -> list[str]:
    return [f"{d.host}::{d.guest}{':ro' if d.read_only else ''}" for d in dirs]
