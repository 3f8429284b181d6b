"""The store: the exporter's schema on a backend, written to request by request.

    with Store.open() as store:            # chDB in ~/.local/share/wasmscope/collect
        store.ensure_schema()
        sink = store.writer()               # the receiver's Sink (group commit)
        ...
        print(store.size().bytes_on_disk)

``Store.open(url="clickhouse://user:pass@host:8123/otel")`` writes a ClickHouse server
instead (``https://`` for TLS), with the same DDL and SQL.
"""

from __future__ import annotations

import os
import threading
from dataclasses import dataclass, field
from datetime import timedelta
from pathlib import Path
from typing import TYPE_CHECKING, Any

from wasmscope.collect.receiver.sink import Signal
from wasmscope.collect.store import invocations, schema
from wasmscope.collect.store.backend import Backend
from wasmscope.collect.store.columns import tables_of
from wasmscope.errors import StoreError, UsageError

if TYPE_CHECKING:
    import pyarrow

    from wasmscope.collect.store.retention import Dropped
    from wasmscope.collect.store.writer import GroupCommitWriter

__all__ = ["Store", "StoreSize", "default_data_dir", "tables_of"]

#: The first ClickHouse whose ``text`` indexes the exporter uses (26.2).
_FULL_TEXT_VERSION = (26, 2)

def default_data_dir() -> Path:
    """``$XDG_DATA_HOME/wasmscope/collect``, else ``~/.local/share/wasmscope/collect``."""
    base = os.environ.get("XDG_DATA_HOME") or os.path.join(
        os.path.expanduser("~"), ".local", "share"
    )
    return Path(base) / "wasmscope" / "collect"


def _seconds(retention: float | timedelta | None) -> int | None:
    if retention is None:
        return None
    seconds = retention.total_seconds() if isinstance(retention, timedelta) else float(retention)
    if seconds <= 0:
        raise UsageError("the retention must be a positive duration")
    return max(1, round(seconds))


@dataclass(frozen=True, slots=True)
class StoreSize:
    """Bytes on disk (active parts) and rows, per table and in all."""

    bytes_on_disk: int
    rows: dict[str, int] = field(default_factory=dict)
    table_bytes: dict[str, int] = field(default_factory=dict)

    @property
    def total_rows(self) -> int:
        return sum(self.rows.values())


class Store:
    """The exporter's tables in ``database`` on ``backend``. A store made by :meth:`open`
    owns its backend and closes it; one given a backend (``owns_backend=False``, the
    default) leaves it open for its owner."""

    def __init__(
        self,
        backend: Backend,
        database: str = "otel",
        *,
        cluster: str | None = None,
        retention: float | timedelta | None = None,
        max_disk: int | None = None,
        full_text: bool | None = None,
        owns_backend: bool = False,
    ) -> None:
        self.backend = backend
        self.owns_backend = owns_backend
        self.database = schema.check_identifier(database)
        self.cluster = schema.check_identifier(cluster) if cluster else None
        self.retention_seconds = _seconds(retention)
        if max_disk is not None and max_disk <= 0:
            raise UsageError("--max-disk must be a positive size")
        self.max_disk = max_disk
        self._full_text = full_text
        self._writers: list[GroupCommitWriter] = []
        self._lock = threading.Lock()
        self._closed = False

    @classmethod
    def open(
        cls,
        data_dir: str | os.PathLike[str] | None = None,
        url: str | None = None,
        database: str = "otel",
        cluster: str | None = None,
        retention: float | timedelta | None = None,
        max_disk: int | None = None,
        full_text: bool | None = None,
    ) -> Store:
        """chDB over ``data_dir`` (default :func:`default_data_dir`) when ``url`` is None,
        else the ClickHouse server at ``url`` (whose path, if any, names the database)."""
        backend: Backend
        if url is None:
            from wasmscope.collect.store.embedded import ChdbBackend

            if cluster:
                raise UsageError("--cluster needs a ClickHouse server (--store clickhouse://...)")
            backend = ChdbBackend(Path(data_dir) if data_dir is not None else default_data_dir())
        else:
            from wasmscope.collect.store.server import ServerBackend

            backend = ServerBackend(url)
            database = backend.url_database or database
        try:
            return cls(
                backend,
                database,
                cluster=cluster,
                retention=retention,
                max_disk=max_disk,
                full_text=full_text,
                owns_backend=True,
            )
        except BaseException:
            backend.close()
            raise

    # -- schema ------------------------------------------------------------------------

    def _use_full_text(self) -> bool:
        if self._full_text is not None:
            return self._full_text
        if self.backend.kind == "chdb":
            # Measured on chDB 4.4 with wasmscope spans: the text indexes cost about 1.5x
            # the disk and 2-4x the insert time of the bloom filters, for the same columns.
            return False
        version = str(self.backend.query("SELECT version()").scalar() or "0.0")
        try:
            major, minor = (int(p) for p in version.split(".")[:2])
        except ValueError:
            return False
        return (major, minor) >= _FULL_TEXT_VERSION

    def options(self) -> schema.SchemaOptions:
        return schema.SchemaOptions(
            database=self.database,
            cluster=self.cluster,
            ttl_seconds=self.retention_seconds,
            full_text=self._use_full_text(),
            tuned=self.backend.kind == "chdb",
        )

    def ensure_schema(self) -> None:
        """Create the database and every table and view that is missing, and bring the
        tables' TTL to the retention asked for (``MODIFY TTL`` / ``REMOVE TTL`` only
        where it differs)."""
        options = self.options()
        for statement in schema.create_statements(options):
            self.backend.command(statement)
        current = self.backend.query(
            "SELECT name, engine_full FROM system.tables WHERE database = {db:String}",
            {"db": self.database},
        )
        engines = {str(name): str(engine) for name, engine in current.rows}
        # Our invocation table after the exporter's tables, filled from what they hold.
        for statement in invocations.create_statements(options):
            self.backend.command(statement)
        if invocations.INVOCATIONS not in engines:
            self.backend.command(invocations.backfill_statement(self.database))  # fills the minutes too
        elif invocations.MINUTES not in engines:
            self.backend.command(invocations.minutes_backfill_statement(self.database))
        for statement in [*schema.ttl_statements(options, engines), *invocations.ttl_statements(options, engines)]:
            self.backend.command(statement)

    # -- writing -----------------------------------------------------------------------

    def insert(self, table: str, data: pyarrow.Table, dedup_token: str | None = None) -> None:
        """Insert ``data`` (named as the table's columns) into ``table`` of this store
        (``dedup_token``: see :meth:`Backend.insert`)."""
        self.backend.insert(f"{self.database}.{table}", data.column_names, data, dedup_token)

    def enable_insert_dedup(self, window: int = 1000) -> None:
        """Lets the embedded store's tables drop a repeated insert (same token) among
        their last ``window`` inserts: what the write-ahead log's replay relies on. A
        table setting only; columns and types stay the exporter's. (Replicated tables on a
        server deduplicate by default.)"""
        if self.backend.kind != "chdb":
            return
        rows = self.backend.query(
            "SELECT name FROM system.tables WHERE database = {db:String} AND engine LIKE '%MergeTree'",
            {"db": self.database},
        ).rows
        for (name,) in rows:
            self.backend.command(
                f"ALTER TABLE {self.database}.{schema.check_identifier(str(name))}"
                f" MODIFY SETTING non_replicated_deduplication_window = {int(window)}"
            )

    def write(self, signal: Signal, request: Any) -> None:
        """Convert and insert one request synchronously (one insert per table it fills)."""
        if self._closed:
            raise StoreError("the store is closed")
        for table, data in tables_of(signal, request):
            self.insert(table, data)

    def writer(self, **options: Any) -> GroupCommitWriter:
        """A started group-commit :class:`~.writer.GroupCommitWriter` (the receiver's Sink)
        over this store, closed (flushed) with the store; ``options`` go to it."""
        from wasmscope.collect.store.writer import GroupCommitWriter

        with self._lock:
            if self._closed:
                raise StoreError("the store is closed")
            w = GroupCommitWriter(self, **options)
            self._writers.append(w)
        w.start()
        return w

    # -- size and retention ------------------------------------------------------------

    def size(self) -> StoreSize:
        """Bytes on disk of the active parts, and rows, per table of this store."""
        result = self.backend.query(
            "SELECT table, sum(bytes_on_disk), sum(rows) FROM system.parts"
            " WHERE database = {db:String} AND active GROUP BY table",
            {"db": self.database},
        )
        rows = {str(t): int(r) for t, _, r in result.rows}
        table_bytes = {str(t): int(b) for t, b, _ in result.rows}
        return StoreSize(sum(table_bytes.values()), rows, table_bytes)

    def enforce_max_disk(self) -> list[Dropped]:
        """Drop the oldest partitions while the store is over ``max_disk`` (nothing when no
        bound is set); returns what was dropped."""
        if self.max_disk is None:
            return []
        from wasmscope.collect.store.retention import enforce_max_disk

        return enforce_max_disk(self.backend, self.database, self.max_disk, self.cluster)

    # -- lifetime ----------------------------------------------------------------------

    def close(self) -> None:
        """Flush and stop the writers, then close the backend if the store owns it;
        idempotent."""
        with self._lock:
            if self._closed:
                return
            self._closed = True
            writers, self._writers = self._writers, []
        try:
            for w in writers:
                w.close()
        finally:
            if self.owns_backend:
                self.backend.close()

    def __enter__(self) -> Store:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()
