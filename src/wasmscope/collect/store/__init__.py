"""The store of ``wasmscope collect``: the OpenTelemetry Collector ``clickhouseexporter``
schema on chDB (embedded) or a ClickHouse server.

Modules, one concept each: :mod:`.backend` (the SQL contract), :mod:`.embedded` (chDB,
owning its data directory), :mod:`.server` (a ClickHouse server via clickhouse-connect),
:mod:`.schema` (the exporter's DDL), :mod:`.columns` (OTLP requests to Arrow columns as
the exporter writes them), :mod:`.store` (:class:`Store`: schema, writes, size),
:mod:`.writer` (the group-commit Sink), :mod:`.wal` (its write-ahead log), :mod:`.native`
(chDB decoding the logged protobuf), :mod:`.invocations` (our tables beside the
exporter's, filled by views), :mod:`.retention` (``--max-disk``).

    from wasmscope.collect.store import Store
    with Store.open() as store:
        store.ensure_schema()
        sink = store.writer()
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from wasmscope._lazy import lazy_exports

if TYPE_CHECKING:
    from wasmscope.collect.store.backend import Backend, Result
    from wasmscope.collect.store.columns import any_value_text
    from wasmscope.collect.store.embedded import ChdbBackend
    from wasmscope.collect.store.native import NativeIngest
    from wasmscope.collect.store.retention import Dropped
    from wasmscope.collect.store.schema import SchemaOptions
    from wasmscope.collect.store.server import ServerBackend
    from wasmscope.collect.store.store import Store, StoreSize, default_data_dir, tables_of
    from wasmscope.collect.store.wal import WriteAheadLog
    from wasmscope.collect.store.writer import GroupCommitWriter, WriterStats

__all__ = [
    "Backend",
    "ChdbBackend",
    "Dropped",
    "GroupCommitWriter",
    "NativeIngest",
    "Result",
    "SchemaOptions",
    "ServerBackend",
    "Store",
    "StoreSize",
    "WriteAheadLog",
    "WriterStats",
    "any_value_text",
    "default_data_dir",
    "tables_of",
]

_LAZY = {
    "Backend": "wasmscope.collect.store.backend",
    "Result": "wasmscope.collect.store.backend",
    "ChdbBackend": "wasmscope.collect.store.embedded",
    "ServerBackend": "wasmscope.collect.store.server",
    "SchemaOptions": "wasmscope.collect.store.schema",
    "any_value_text": "wasmscope.collect.store.columns",
    "Dropped": "wasmscope.collect.store.retention",
    "Store": "wasmscope.collect.store.store",
    "StoreSize": "wasmscope.collect.store.store",
    "default_data_dir": "wasmscope.collect.store.store",
    "tables_of": "wasmscope.collect.store.store",
    "GroupCommitWriter": "wasmscope.collect.store.writer",
    "WriterStats": "wasmscope.collect.store.writer",
    "NativeIngest": "wasmscope.collect.store.native",
    "WriteAheadLog": "wasmscope.collect.store.wal",
}

__getattr__, __dir__ = lazy_exports(__name__, _LAZY, __all__)
