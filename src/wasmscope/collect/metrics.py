"""The collector's own ``/metrics`` (Prometheus text format 0.0.4): what the receiver
took, rejected and refused, the writer's queue and inserts, the store's size.

Read at scrape time from the counters the parts keep (no second bookkeeping): a
custom collector in a private registry, so nothing global is touched.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable, Iterator
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from wasmscope.collect.receiver.counters import ReceiverCounters
    from wasmscope.collect.store.store import Store, StoreSize
    from wasmscope.collect.store.writer import GroupCommitWriter

__all__ = ["CollectorMetrics"]

log = logging.getLogger("wasmscope.collect")

PREFIX = "wasmscope_collect"


class CollectorMetrics:
    """``render()`` gives the exposition; ``store_size_ttl`` caches the store's size
    (a query of system.parts) so a fast scraper costs the store little."""

    def __init__(
        self,
        store: Store,
        *,
        counters: ReceiverCounters | None = None,
        writer: GroupCommitWriter | None = None,
        store_size_ttl: float = 10.0,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        from prometheus_client import CollectorRegistry

        self.store = store
        self.counters = counters
        self.writer = writer
        self.store_size_ttl = store_size_ttl
        self.clock = clock
        self._size: tuple[float, StoreSize] | None = None
        self.registry = CollectorRegistry(auto_describe=False)
        self.registry.register(self)

    def _store_size(self) -> StoreSize | None:
        now = self.clock()
        if self._size is None or now - self._size[0] >= self.store_size_ttl:
            try:
                self._size = (now, self.store.size())
            except Exception as exc:  # a scrape must not fail because the store does
                log.warning("collect: /metrics could not read the store's size: %s", exc)
                return self._size[1] if self._size else None
        return self._size[1]

    def collect(self) -> Iterator[Any]:
        from prometheus_client.core import CounterMetricFamily, GaugeMetricFamily

        if self.counters is not None:
            families = {
                name: CounterMetricFamily(f"{PREFIX}_{name}", text, labels=["signal", "transport"])
                for name, text in (
                    ("received_items", "Items (spans, data points, log records) received and stored."),
                    ("rejected_items", "Items removed as invalid and reported in partial_success."),
                    ("refused_items", "Items of requests refused with 429/503 (the sender retries them)."),
                    ("failed_requests", "Requests answered with a client error (400, 401, 413, 415)."),
                    ("requests", "Export requests answered."),
                )
            }
            for (signal, transport), c in sorted(self.counters.snapshot().items(), key=lambda kv: (kv[0][0].value, kv[0][1])):
                labels = [signal.value, transport]
                families["received_items"].add_metric(labels, c.received)
                families["rejected_items"].add_metric(labels, c.rejected)
                families["refused_items"].add_metric(labels, c.refused)
                families["failed_requests"].add_metric(labels, c.failed)
                families["requests"].add_metric(labels, c.requests)
            yield from families.values()
        if self.writer is not None:
            s = self.writer.stats()
            yield GaugeMetricFamily(f"{PREFIX}_queue_requests", "Requests waiting for the store.", value=s.queue_requests)
            yield GaugeMetricFamily(f"{PREFIX}_queue_items", "Items waiting for the store.", value=s.queue_items)
            yield GaugeMetricFamily(f"{PREFIX}_queue_bytes", "Bytes of requests waiting for the store.", value=s.queue_bytes)
            yield CounterMetricFamily(f"{PREFIX}_inserted_rows", "Rows inserted into the store.", value=s.inserted_rows)
            yield CounterMetricFamily(f"{PREFIX}_insert_batches", "Batched inserts into the store.", value=s.batches)
            yield CounterMetricFamily(f"{PREFIX}_insert_errors", "Inserts that failed.", value=s.insert_errors)
            yield CounterMetricFamily(
                f"{PREFIX}_insert_seconds", "Time spent in inserts.", value=s.insert_seconds_total, unit="seconds"
            )
            yield CounterMetricFamily(
                f"{PREFIX}_dropped_items",
                "Items not stored: refused because the queue was full, or failed to insert.",
                value=s.rejected_items + s.failed_items,
            )
            yield CounterMetricFamily(
                f"{PREFIX}_dropped_partitions", "Partitions dropped to stay under --max-disk.", value=s.dropped_partitions
            )
        size = self._store_size()
        if size is not None:
            g = GaugeMetricFamily(f"{PREFIX}_store_bytes", "Bytes on disk of the store's tables.", labels=["table"], unit="bytes")
            r = GaugeMetricFamily(f"{PREFIX}_store_rows", "Rows of the store's tables.", labels=["table"])
            for table in sorted(size.table_bytes):
                g.add_metric([table], size.table_bytes[table])
                r.add_metric([table], size.rows.get(table, 0))
            yield g
            yield r

    def render(self) -> bytes:
        from prometheus_client import generate_latest

        return bytes(generate_latest(self.registry))
