"""``--max-disk``: keep the store under a size by dropping its oldest partitions.

Every table of the schema is partitioned by day (``toDate``), except the trace id
lookup table, by week (``toStartOfWeek``). Over the bound, whole partitions go oldest
first across all tables (a week of the lookup table counts as its last day, so it goes
with the traces it indexes), never the newest partition of a table: the one being
written. ``ALTER TABLE ... DROP PARTITION ID`` takes the id as a bound parameter.

``--retention`` (the TTL) is the other bound; it lives in the DDL (:mod:`.schema`).
"""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass

from wasmscope.collect.store import schema
from wasmscope.collect.store.backend import Backend

__all__ = ["Dropped", "enforce_max_disk", "partitions"]


@dataclass(frozen=True, slots=True)
class Dropped:
    """One partition dropped: table, partition (its date), bytes and rows it held."""

    table: str
    partition: str
    partition_id: str
    bytes_on_disk: int
    rows: int


@dataclass(frozen=True, slots=True)
class _Partition:
    table: str
    partition: str
    partition_id: str
    bytes_on_disk: int
    rows: int
    last_day: dt.date


def _last_day(table: str, partition: str) -> dt.date:
    try:
        day = dt.date.fromisoformat(partition.strip("'"))
    except ValueError:
        return dt.date.max  # not a date partition: never the oldest
    return day + dt.timedelta(days=6) if table == schema.TRACES_ID_TS else day


def partitions(backend: Backend, database: str) -> list[_Partition]:
    """The active partitions of the store's tables, oldest last day first."""
    result = backend.query(
        "SELECT table, partition, partition_id, sum(bytes_on_disk), sum(rows)"
        " FROM system.parts WHERE database = {db:String} AND active"
        " AND has({tables:Array(String)}, table)"
        " GROUP BY table, partition, partition_id",
        {"db": database, "tables": list(schema.TABLES)},
    )
    found = [
        _Partition(str(t), str(p), str(pid), int(b), int(r), _last_day(str(t), str(p)))
        for t, p, pid, b, r in result.rows
    ]
    return sorted(found, key=lambda p: (p.last_day, p.table, p.partition_id))


def enforce_max_disk(
    backend: Backend, database: str, max_bytes: int, cluster: str | None = None
) -> list[Dropped]:
    """Drop the oldest partitions until the store's parts take at most ``max_bytes``
    (or only each table's newest partition is left); returns what was dropped."""
    schema.check_identifier(database)
    found = partitions(backend, database)
    total = sum(p.bytes_on_disk for p in found)
    if total <= max_bytes:
        return []
    newest: dict[str, dt.date] = {}
    for p in found:
        newest[p.table] = max(newest.get(p.table, dt.date.min), p.last_day)
    on_cluster = f" ON CLUSTER {schema.check_identifier(cluster)}" if cluster else ""
    dropped: list[Dropped] = []
    for p in found:
        if total <= max_bytes:
            break
        if p.last_day >= newest[p.table]:
            continue
        schema.check_identifier(p.table)
        backend.command(
            f"ALTER TABLE {database}.{p.table}{on_cluster} DROP PARTITION ID {{pid:String}}",
            {"pid": p.partition_id},
        )
        total -= p.bytes_on_disk
        dropped.append(Dropped(p.table, p.partition, p.partition_id, p.bytes_on_disk, p.rows))
    return dropped
