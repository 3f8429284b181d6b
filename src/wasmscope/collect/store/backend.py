"""The contract between the store and a ClickHouse: embedded (chDB) or a server.

Everything above this module (schema, writer, queries, dashboard) speaks SQL in
the ClickHouse dialect through :class:`Backend`, with values always bound as
query parameters (``{name:Type}`` placeholders, never formatted into the text).
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, Protocol

if TYPE_CHECKING:
    import pyarrow

__all__ = ["Backend", "Result"]


@dataclass(frozen=True, slots=True)
class Result:
    """Rows of a query, as Python values (DateTime64 as ``datetime``, Map as ``dict``)."""

    columns: tuple[str, ...]
    rows: list[tuple[Any, ...]]

    def dicts(self) -> list[dict[str, Any]]:
        return [dict(zip(self.columns, row, strict=True)) for row in self.rows]

    def scalar(self) -> Any:
        """The first column of the first row (None when there is no row)."""
        return self.rows[0][0] if self.rows else None


class Backend(Protocol):
    """A ClickHouse to run the store's SQL on. Implementations are thread-safe."""

    #: "chdb" or "clickhouse"; the schema picks engines and cluster clauses by it.
    kind: str

    def command(self, sql: str, params: Mapping[str, Any] | None = None) -> None:
        """Run a statement that returns nothing (DDL, ALTER, a parameterized DELETE)."""
        ...

    def query(self, sql: str, params: Mapping[str, Any] | None = None) -> Result:
        """Run a SELECT; raise :class:`~wasmscope.errors.StoreError` on failure."""
        ...

    def query_arrow(self, sql: str, params: Mapping[str, Any] | None = None) -> pyarrow.Table:
        """Run a SELECT and return its columns as Arrow (no Python object per value: what
        a read of millions of rows needs); errors as :meth:`query`."""
        ...

    def insert(
        self, table: str, columns: Sequence[str], data: pyarrow.Table, dedup_token: str | None = None
    ) -> None:
        """Insert ``data`` (one Arrow column per name in ``columns``) into ``table``
        (``db.table``); durable against kill -9 of this process when it returns. With
        ``dedup_token`` (letters, digits, ``-`` and ``_``), a second insert with the same
        token stores nothing, in the table and in its materialized views."""
        ...

    def close(self) -> None:
        """Release the connection or the embedded engine; idempotent."""
        ...
