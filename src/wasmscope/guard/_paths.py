"""Guest paths: globs over them, a call's path resolved against its directory
descriptor, the lexical tricks that try to leave a preopen, and the descriptor
table of a run replayed from its audit log."""

from __future__ import annotations

import posixpath
import re
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from functools import lru_cache
from typing import TYPE_CHECKING

from wasmscope.guard._preview1 import arg
from wasmscope.runtime.host_calls import HostCall

if TYPE_CHECKING:
    from wasmscope.runtime.wasi import DirSpec

__all__ = [
    "FdTable",
    "Preopen",
    "compile_globs",
    "glob_matches",
    "guest_join",
    "traversal",
    "under",
]

FIRST_PREOPEN_FD = 3  # wasmtime numbers preopens 3, 4, ... in the order they are given


@lru_cache(maxsize=1024)
def _glob_regex(glob: str) -> re.Pattern[str]:
    """``*`` is any run inside one path segment, ``?`` one character of a segment,
    ``**`` any run of segments (``/data/**`` also matches ``/data``), ``[abc]`` a set."""
    out: list[str] = []
    i, n = 0, len(glob)
    while i < n:
        c = glob[i]
        if glob.startswith("/**", i) and i + 3 == n:
            out.append("(?:/.*)?")
            i += 3
        elif glob.startswith("**/", i):
            out.append("(?:.*/)?")
            i += 3
        elif glob.startswith("**", i):
            out.append(".*")
            i += 2
        elif c == "*":
            out.append("[^/]*")
            i += 1
        elif c == "?":
            out.append("[^/]")
            i += 1
        elif c == "[" and "]" in glob[i + 2 :]:
            end = glob.index("]", i + 2)
            body = glob[i + 1 : end]
            neg = body.startswith("!")
            out.append("[" + ("^" if neg else "") + re.escape(body[1:] if neg else body) + "]")
            i = end + 1
        else:
            out.append(re.escape(c))
            i += 1
    return re.compile("".join(out), re.DOTALL)


def glob_matches(glob: str, text: str) -> bool:
    return _glob_regex(glob).fullmatch(text) is not None


def compile_globs(globs: Iterable[str]) -> re.Pattern[str] | None:
    """One pattern for a list of globs (None for an empty list: nothing matches)."""
    parts = [_glob_regex(g).pattern for g in globs]
    return re.compile("|".join(f"(?:{p})" for p in parts), re.DOTALL) if parts else None


def under(directory: str, path: str) -> bool:
    """Whether the normalized guest ``path`` is ``directory`` or inside it."""
    if directory in (".", ""):
        return not path.startswith("/") and path != ".." and not path.startswith("../")
    return path == directory or path.startswith(directory.rstrip("/") + "/")


def guest_join(base: str, path: str) -> str:
    """``path`` (relative to the directory ``base``) as one normalized guest path."""
    joined = posixpath.normpath(posixpath.join(base, path.rstrip("/") or "."))
    return "/" + joined.lstrip("/") if joined.startswith("//") else joined


def traversal(path: str) -> str | None:
    """The kind of trick a raw path argument plays, if any: ``nul`` (a NUL byte),
    ``absolute`` (a leading ``/``), ``parent`` (``../`` out of the directory),
    ``escape`` (``a/../../`` down then out), ``trailing-slash`` (``file/``)."""
    if "\0" in path:
        return "nul"
    if path.startswith("/"):
        return "absolute"
    depth = 0
    descended = False
    for part in path.split("/"):
        if part == "..":
            depth -= 1
            if depth < 0:
                return "escape" if descended else "parent"
        elif part not in ("", "."):
            depth += 1
            descended = True
    if path.endswith("/") and path.strip("/"):
        return "trailing-slash"
    return None


@dataclass(frozen=True, slots=True)
class Preopen:
    guest: str
    read_only: bool


def dir_guest(guest: str) -> str:
    """A preopen's guest path as the policy names it (no trailing ``/``)."""
    return guest if guest in (".", "/") else guest.rstrip("/") or "/"


def preopens_of(dirs: Iterable[DirSpec | str]) -> list[Preopen]:
    """A run's preopens (``RunOptions.dirs``) in descriptor order."""
    if not dirs:
        return []
    from wasmscope.runtime.wasi import DirSpec

    specs = [d if isinstance(d, DirSpec) else DirSpec.parse(d) for d in dirs]
    return [Preopen(dir_guest(s.guest), s.read_only) for s in specs]


class FdTable:
    """Which guest path each descriptor stands for, replayed call by call: the
    preopens first (fd 3...), then every successful ``path_open``; ``fd_close`` and
    ``fd_renumber`` keep it current."""

    __slots__ = ("_fds", "_opened", "peak")

    def __init__(self, preopens: Sequence[Preopen]) -> None:
        self._fds: dict[int, tuple[str, Preopen]] = {
            FIRST_PREOPEN_FD + i: (p.guest, p) for i, p in enumerate(preopens)
        }
        self._opened: set[int] = set()  # descriptors the guest opened and still holds
        self.peak = 0

    def resolve(self, call: HostCall) -> tuple[str, Preopen] | None:
        """The call's path as a guest path, and the preopen it went through."""
        fd = arg(call, "fd", "dirfd", "old_fd")
        entry = self._fds.get(fd if fd is not None else -1)
        if entry is None or call.path is None:
            return None
        base, preopen = entry
        return guest_join(base, call.path), preopen

    def path_of(self, fd: int | None) -> tuple[str, Preopen] | None:
        return self._fds.get(fd if fd is not None else -1)

    def after(self, call: HostCall, resolved: tuple[str, Preopen] | None) -> None:
        """Update the table once ``call`` returned."""
        if call.errno != 0:
            return
        if call.func in ("path_open", "sock_accept") and call.result is not None:
            if resolved is not None:
                self._fds[call.result] = resolved
            self._opened.add(call.result)
            self.peak = max(self.peak, len(self._opened))
        elif call.func == "fd_close":
            fd = arg(call, "fd")
            if fd is not None and fd >= FIRST_PREOPEN_FD:
                self._fds.pop(fd, None)
                self._opened.discard(fd)
        elif call.func == "fd_renumber":
            fd, to = arg(call, "fd", "from"), arg(call, "to")
            if fd is not None and to is not None:
                if fd in self._fds:
                    self._fds[to] = self._fds.pop(fd)
                if fd in self._opened:
                    self._opened.discard(fd)
                    self._opened.add(to)
