"""The embedded backend: ClickHouse in this process, through PyPI ``chdb``.

chDB runs one engine per process over one data directory (a second path in the
same process is refused until the first session closes), so :class:`ChdbBackend`
also owns that directory: an exclusive ``flock`` on ``DIR/.wasmscope.lock`` tells a
second ``wasmscope collect`` on the same directory that it is taken, by whom.
Calls are serialized by a lock: chDB's session is not safe for concurrent use.
"""

from __future__ import annotations

import contextlib
import ctypes
import fcntl
import os
import re
import signal
import threading
from collections.abc import Iterator, Mapping, Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any

from wasmscope.collect.store.backend import Result
from wasmscope.errors import StoreError, StoreLockedError, UsageError

if TYPE_CHECKING:
    import pyarrow

__all__ = ["ChdbBackend"]

LOCK_NAME = ".wasmscope.lock"
_TOKEN = re.compile(r"^[A-Za-z0-9_-]+$")


def _require_chdb() -> Any:
    try:
        from chdb import session
    except ImportError:
        raise UsageError(
            "the embedded store needs chdb: install wasmscope[collect] (pip install 'wasmscope[collect]')"
        ) from None
    return session


def _lock(path: Path) -> int:
    fd = os.open(path / LOCK_NAME, os.O_RDWR | os.O_CREAT, 0o600)
    try:
        fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
    except BlockingIOError:
        holder = os.pread(fd, 64, 0).decode(errors="replace").strip() or "another process"
        os.close(fd)
        raise StoreLockedError(
            f"the store at {path} is in use by process {holder}; stop it or pass another --data DIR",
            str(path),
        ) from None
    os.ftruncate(fd, 0)
    os.pwrite(fd, f"{os.getpid()}\n".encode(), 0)
    return fd


_FAULTS = (signal.SIGSEGV, signal.SIGBUS, signal.SIGILL, signal.SIGFPE)


@contextlib.contextmanager
def _keep_fault_handlers() -> Iterator[None]:
    """Puts back the fault handlers that were there before chDB starts.

    wasmtime turns a guest's trap (out-of-bounds access, ``unreachable``) into a signal
    that its handler catches. chDB installs handlers of its own for the same signals,
    and they do not pass wasmtime's faults on, so in a process that ran Wasm before
    opening the store the next trap killed it (SIGILL). wasmtime's handlers hand
    faults that are not a guest's to whatever handler came before them, so restoring
    them keeps both working. The ``struct sigaction`` is copied as opaque bytes.
    """
    try:
        libc = ctypes.CDLL(None, use_errno=True)
        saved = []
        for sig in _FAULTS:
            buf = ctypes.create_string_buffer(512)  # larger than struct sigaction anywhere
            if libc.sigaction(int(sig), None, buf) == 0:
                saved.append((sig, buf))
    except (OSError, AttributeError):
        saved = []
    yield
    for sig, buf in saved:
        handler = ctypes.c_void_p.from_buffer(buf).value
        if handler not in (None, 0, 1):  # a real handler was there (not SIG_DFL/SIG_IGN)
            libc.sigaction(int(sig), buf, None)


class ChdbBackend:
    """chDB over ``path`` (created if missing). Use as a context manager or ``close()``."""

    kind = "chdb"

    def __init__(self, path: str | os.PathLike[str]) -> None:
        with _keep_fault_handlers():  # importing chDB installs its handlers already
            session = _require_chdb()
        self.path = Path(path)
        self.path.mkdir(parents=True, exist_ok=True)
        self._lock_fd: int | None = _lock(self.path)
        self._mutex = threading.Lock()
        try:
            with _keep_fault_handlers():
                self._session: Any = session.Session(str(self.path))
        except Exception as exc:
            self._release()
            raise StoreError(f"cannot open the embedded store at {self.path}: {exc}") from exc

    def _release(self) -> None:
        if self._lock_fd is not None:
            os.close(self._lock_fd)
            self._lock_fd = None

    def _run(self, sql: str, fmt: str, params: Mapping[str, Any] | None) -> Any:
        with self._mutex:
            if self._session is None:
                raise StoreError("the store is closed")
            try:
                bound = {k: param_text(v) for k, v in params.items()} if params else None
                return self._session.query(sql, fmt, params=bound)
            except Exception as exc:
                raise StoreError(str(exc).strip()) from exc

    def command(self, sql: str, params: Mapping[str, Any] | None = None) -> None:
        self._run(sql, "Null", params)

    def query(self, sql: str, params: Mapping[str, Any] | None = None) -> Result:
        table = self._run(sql, "ArrowTable", params)
        columns = tuple(table.column_names)
        rows = list(zip(*(_pylist(table.column(i)) for i in range(len(columns))), strict=True))
        return Result(columns, rows)

    def query_arrow(self, sql: str, params: Mapping[str, Any] | None = None) -> pyarrow.Table:
        return self._run(sql, "ArrowTable", params)

    def insert(
        self, table: str, columns: Sequence[str], data: pyarrow.Table, dedup_token: str | None = None
    ) -> None:
        # chDB reads the Arrow table from this frame's variable named in Python(...).
        names = ", ".join(f"`{c}`" for c in columns)
        source = ", ".join(f"`{n}`" for n in data.column_names)
        arrow_data = data  # noqa: F841  (read by name by chDB's Python() table function)
        settings = ""
        if dedup_token is not None:
            if not _TOKEN.match(dedup_token):
                raise ValueError(f"invalid deduplication token {dedup_token!r}")
            settings = (
                f" SETTINGS insert_deduplicate = 1, insert_deduplication_token = '{dedup_token}',"
                " deduplicate_blocks_in_dependent_materialized_views = 1"
            )
        self._run(f"INSERT INTO {table} ({names}) SELECT {source} FROM Python(arrow_data){settings}", "Null", None)

    def close(self) -> None:
        with self._mutex:
            if self._session is not None:
                try:
                    self._session.close()
                finally:
                    self._session = None
                    self._release()

    def __enter__(self) -> ChdbBackend:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()


_ESCAPES = str.maketrans({"\\": "\\\\", "\t": "\\t", "\n": "\\n", "\r": "\\r", "\0": "\\0"})


def param_text(value: Any) -> str:
    """A parameter value as ClickHouse parses it: the type's text in the Escaped
    format (a backslash, tab or newline in a string must be escaped)."""
    if isinstance(value, bool):
        return "1" if value else "0"
    if isinstance(value, str):
        return value.translate(_ESCAPES)
    if isinstance(value, int | float):
        return repr(value)
    if isinstance(value, list | tuple):
        return "[" + ",".join(_array_item(v) for v in value) + "]"
    raise TypeError(f"unsupported query parameter type {type(value).__name__}")


def _array_item(value: Any) -> str:
    if isinstance(value, str):
        return "'" + value.replace("\\", "\\\\").replace("'", "\\'") + "'"
    return param_text(value)


def _pylist(column: Any) -> list[Any]:
    """Arrow column -> Python values; maps become dicts (Arrow gives pairs), also inside
    arrays (``Events.Attributes``: a list of dicts)."""
    values: list[Any] = column.to_pylist()
    convert = _map_converter(column.type)
    return values if convert is None else [convert(v) for v in values]


def _map_converter(arrow_type: Any) -> Any:
    """A function turning a value of ``arrow_type`` into one with dicts for its maps, or
    None when the type holds no map."""
    import pyarrow as pa

    if pa.types.is_map(arrow_type):
        inner = _map_converter(arrow_type.item_type)
        if inner is None:
            return lambda v: dict(v) if v is not None else {}
        return lambda v: {k: inner(x) for k, x in v} if v is not None else {}
    if pa.types.is_list(arrow_type) or pa.types.is_large_list(arrow_type):
        element = _map_converter(arrow_type.value_type)
        if element is None:
            return None
        return lambda v: [element(x) for x in v] if v is not None else []
    return None
