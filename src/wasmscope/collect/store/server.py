"""A ClickHouse server (or cluster) as the store's backend, through clickhouse-connect.

``clickhouse://user:pass@host:8123/db`` speaks HTTP, ``https://user:pass@host:8443/db``
HTTPS (``clickhouses://`` too); the path names the database of the tables (the
connection itself uses ``default``, since the store's database may not exist yet).
Parameters are bound by the server (``{name:Type}``), as on chDB.
"""

from __future__ import annotations

import threading
from collections.abc import Mapping, Sequence
from typing import TYPE_CHECKING, Any
from urllib.parse import unquote, urlsplit

from wasmscope.collect.store.backend import Result
from wasmscope.collect.store.schema import check_identifier
from wasmscope.errors import StoreError, UsageError

if TYPE_CHECKING:
    import pyarrow

__all__ = ["ServerBackend", "parse_url"]

_SCHEMES = {"clickhouse": False, "http": False, "https": True, "clickhouses": True}


def _require_client() -> Any:
    try:
        import clickhouse_connect
    except ImportError:
        raise UsageError(
            "a ClickHouse server store needs clickhouse-connect: "
            "install wasmscope[collect] (pip install 'wasmscope[collect]')"
        ) from None
    return clickhouse_connect


def parse_url(url: str) -> dict[str, Any]:
    """The connection arguments of a ``clickhouse://`` / ``https://`` store URL, and
    ``database`` ("" when the URL names none)."""
    parts = urlsplit(url)
    if parts.scheme not in _SCHEMES:
        raise UsageError(f"a store URL starts with clickhouse:// or https://, not {url!r}")
    if not parts.hostname:
        raise UsageError(f"the store URL has no host: {url!r}")
    secure = _SCHEMES[parts.scheme]
    database = parts.path.strip("/")
    if database:
        check_identifier(database)
    return {
        "host": parts.hostname,
        "port": parts.port or (8443 if secure else 8123),
        "username": unquote(parts.username) if parts.username else "default",
        "password": unquote(parts.password) if parts.password else "",
        "secure": secure,
        "database": database,
    }


class ServerBackend:
    """The store's SQL over a ClickHouse server; thread-safe (calls are serialized)."""

    kind = "clickhouse"

    def __init__(self, url: str) -> None:
        args = parse_url(url)
        self.url_database: str = args.pop("database")
        self._mutex = threading.Lock()
        client_module = _require_client()
        try:
            self._client: Any = client_module.get_client(
                **args, database="default", autogenerate_session_id=False
            )
        except Exception as exc:
            where = f"{args['host']}:{args['port']}"
            raise StoreError(f"cannot connect to the ClickHouse server at {where}: {exc}") from exc

    def _call(self, fn: str, *args: Any, **kwargs: Any) -> Any:
        with self._mutex:
            if self._client is None:
                raise StoreError("the store is closed")
            try:
                return getattr(self._client, fn)(*args, **kwargs)
            except Exception as exc:
                raise StoreError(str(exc).strip()) from exc

    def command(self, sql: str, params: Mapping[str, Any] | None = None) -> None:
        self._call("command", sql, parameters=dict(params) if params else None)

    def query(self, sql: str, params: Mapping[str, Any] | None = None) -> Result:
        result = self._call("query", sql, parameters=dict(params) if params else None)
        return Result(tuple(result.column_names), [tuple(r) for r in result.result_rows])

    def query_arrow(self, sql: str, params: Mapping[str, Any] | None = None) -> pyarrow.Table:
        return self._call("query_arrow", sql, parameters=dict(params) if params else None, use_strings=True)

    def insert(
        self, table: str, columns: Sequence[str], data: pyarrow.Table, dedup_token: str | None = None
    ) -> None:
        database, _, name = table.rpartition(".")
        if list(columns) != list(data.column_names):
            data = data.select(list(columns))
        settings = (
            {"insert_deduplicate": 1, "insert_deduplication_token": dedup_token,
             "deduplicate_blocks_in_dependent_materialized_views": 1}
            if dedup_token is not None else None
        )  # fmt: skip
        self._call("insert_arrow", name, data, database=database or None, settings=settings)

    def close(self) -> None:
        with self._mutex:
            client, self._client = self._client, None
        if client is not None:
            client.close()

    def __enter__(self) -> ServerBackend:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()
