"""The group-commit writer on real chDB: batching, back-pressure, insert failures, close.

A slow or failing store is the real backend behind a gate (:class:`GatedBackend`): its
inserts wait on an Event, so a test decides when the writer's insert may proceed and
sees what queued meanwhile; a poisoned request (a span named ``poison``) makes the
insert of any batch holding it fail, as a bad row would.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Callable, Mapping, Sequence
from typing import Any

import pyarrow
import pytest
from opentelemetry.proto.collector.trace.v1.trace_service_pb2 import ExportTraceServiceRequest
from opentelemetry.proto.trace.v1.trace_pb2 import Span

from wasmscope.collect.receiver.sink import Signal
from wasmscope.collect.store.backend import Backend, Result
from wasmscope.collect.store.embedded import ChdbBackend
from wasmscope.collect.store.store import Store
from wasmscope.errors import OverloadedError, StoreError

T0 = 1_764_763_200_000_000_000


class GatedBackend:
    """The real backend, whose inserts wait for ``gate`` and fail on a poisoned batch."""

    kind = "chdb"

    def __init__(self, inner: Backend) -> None:
        self.inner = inner
        self.gate = threading.Event()
        self.gate.set()
        self.entered = threading.Event()
        self.inserts: list[int] = []

    def command(self, sql: str, params: Mapping[str, Any] | None = None) -> None:
        self.inner.command(sql, params)

    def query(self, sql: str, params: Mapping[str, Any] | None = None) -> Result:
        return self.inner.query(sql, params)

    def insert(self, table: str, columns: Sequence[str], data: pyarrow.Table, dedup_token: str | None = None) -> None:
        self.entered.set()
        self.gate.wait()
        if "poison" in data.column("SpanName").to_pylist():
            raise StoreError("Cannot parse input: poisoned row")
        self.inserts.append(data.num_rows)
        self.inner.insert(table, columns, data, dedup_token)

    def close(self) -> None:
        pass


def request(n: int, first_id: int, name: str = "GET /hello") -> ExportTraceServiceRequest:
    r = ExportTraceServiceRequest()
    ss = r.resource_spans.add().scope_spans.add()
    for i in range(first_id, first_id + n):
        ss.spans.append(
            Span(
                trace_id=(i + 1).to_bytes(16, "big"),  # all-zero ids would be stored as ""
                span_id=(i + 1).to_bytes(8, "big"),
                name=name,
                start_time_unix_nano=T0 + i,
                end_time_unix_nano=T0 + i + 10,
            )
        )
    return r


def wait_until(condition: Callable[[], bool], what: str) -> None:
    """Poll ``condition`` (the writer thread makes progress on its own); the deadline
    guards against a hang, it is not a measurement."""
    deadline = time.monotonic() + 120
    while not condition():
        if time.monotonic() > deadline:
            raise AssertionError(f"never happened: {what}")
        time.sleep(0.005)


@pytest.fixture
def gated(chdb_backend: ChdbBackend, database: str) -> tuple[Store, GatedBackend]:
    backend = GatedBackend(chdb_backend)
    store = Store(backend, database)
    store.ensure_schema()
    return store, backend


def span_ids(store: Store) -> list[int]:
    rows = store.backend.query(f"SELECT SpanId FROM {store.database}.otel_traces").rows
    return sorted(int(r[0], 16) - 1 for r in rows)


class Deliveries:
    """``deliver`` calls on threads, with what each one raised."""

    def __init__(self, writer: Any) -> None:
        self.writer = writer
        self.threads: list[threading.Thread] = []
        self.errors: dict[int, BaseException | None] = {}

    def start(self, key: int, req: ExportTraceServiceRequest) -> None:
        def run() -> None:
            try:
                self.writer.deliver(
                    Signal.TRACES, req, len(req.resource_spans[0].scope_spans[0].spans)
                )
                self.errors[key] = None
            except BaseException as exc:
                self.errors[key] = exc

        t = threading.Thread(target=run)
        t.start()
        self.threads.append(t)

    def join(self) -> None:
        for t in self.threads:
            t.join(30)
            assert not t.is_alive()


def test_requests_waiting_together_are_inserted_together(gated: tuple[Store, GatedBackend]) -> None:
    store, backend = gated
    writer = store.writer()
    backend.gate.clear()
    calls = Deliveries(writer)
    calls.start(0, request(10, 0))
    wait_until(backend.entered.is_set, "the writer's first insert")
    for k in range(1, 5):
        calls.start(k, request(10, 100 * k))
    wait_until(lambda: writer.queue_requests == 4, "four requests queued")
    assert not any(k in calls.errors for k in range(5))  # nobody acknowledged yet
    backend.gate.set()
    calls.join()
    assert calls.errors == dict.fromkeys(range(5))
    assert backend.inserts == [10, 40]  # one insert for the first, one for the four others
    assert writer.batches == 2
    assert writer.accepted_requests == 5 and writer.accepted_items == 50
    assert span_ids(store) == sorted(i + 100 * k for k in range(5) for i in range(10))
    assert writer.queue_items == 0 and writer.queue_bytes == 0
    store.close()


def test_batches_are_capped_in_rows(gated: tuple[Store, GatedBackend]) -> None:
    store, backend = gated
    writer = store.writer(max_batch_rows=25)
    backend.gate.clear()
    calls = Deliveries(writer)
    calls.start(0, request(10, 0))
    wait_until(backend.entered.is_set, "the writer's first insert")
    for k in range(1, 6):
        calls.start(k, request(10, 100 * k))
    wait_until(lambda: writer.queue_requests == 5, "five requests queued")
    backend.gate.set()
    calls.join()
    assert backend.inserts == [10, 20, 20, 10]
    store.close()


def test_a_full_queue_refuses_at_once_and_keeps_nothing(gated: tuple[Store, GatedBackend]) -> None:
    store, backend = gated
    writer = store.writer(max_queue_items=20)
    backend.gate.clear()
    calls = Deliveries(writer)
    calls.start(0, request(10, 0))
    wait_until(backend.entered.is_set, "the writer's first insert")
    calls.start(1, request(10, 100))
    wait_until(lambda: writer.queue_requests == 1, "one request queued")
    with pytest.raises(OverloadedError) as refused:
        writer.deliver(Signal.TRACES, request(5, 200), 5)
    assert refused.value.retry_after >= 1.0
    assert writer.rejected_requests == 1 and writer.rejected_items == 5
    assert writer.queue_items == 20
    backend.gate.set()
    calls.join()
    assert calls.errors == {0: None, 1: None}
    assert span_ids(store) == [*range(10), *range(100, 110)]
    # Drained: there is room again.
    writer.deliver(Signal.TRACES, request(5, 200), 5)
    assert len(span_ids(store)) == 25
    store.close()


def test_the_queue_is_bounded_in_bytes_too(gated: tuple[Store, GatedBackend]) -> None:
    store, backend = gated
    writer = store.writer(max_queue_bytes=1)
    backend.gate.clear()
    calls = Deliveries(writer)
    calls.start(0, request(10, 0))  # an empty queue takes one request whatever its size
    wait_until(backend.entered.is_set, "the writer's first insert")
    with pytest.raises(OverloadedError):
        writer.deliver(Signal.TRACES, request(1, 100), 1)
    backend.gate.set()
    calls.join()
    assert span_ids(store) == list(range(10))
    store.close()


def test_a_failed_batch_is_retried_one_by_one(gated: tuple[Store, GatedBackend]) -> None:
    store, backend = gated
    writer = store.writer()
    backend.gate.clear()
    calls = Deliveries(writer)
    calls.start(0, request(3, 0))
    wait_until(backend.entered.is_set, "the writer's first insert")
    calls.start(1, request(3, 100))
    wait_until(lambda: writer.queue_requests == 1, "queued")
    calls.start(2, request(3, 200, name="poison"))
    wait_until(lambda: writer.queue_requests == 2, "queued")
    calls.start(3, request(3, 300))
    wait_until(lambda: writer.queue_requests == 3, "queued")
    backend.gate.set()
    calls.join()
    assert calls.errors[0] is None and calls.errors[1] is None and calls.errors[3] is None
    failed = calls.errors[2]
    assert isinstance(failed, StoreError) and "poisoned" in str(failed)
    assert span_ids(store) == [*range(3), *range(100, 103), *range(300, 303)]
    assert writer.failed_requests == 1 and writer.failed_items == 3
    assert writer.insert_errors == 2  # the batch, then the poisoned request alone
    assert writer.accepted_requests == 3
    store.close()


def test_close_flushes_what_was_accepted(gated: tuple[Store, GatedBackend]) -> None:
    store, backend = gated
    writer = store.writer()
    backend.gate.clear()
    calls = Deliveries(writer)
    calls.start(0, request(4, 0))
    wait_until(backend.entered.is_set, "the writer's first insert")
    calls.start(1, request(4, 100))
    wait_until(lambda: writer.queue_requests == 1, "queued")
    closer = threading.Thread(target=store.close)
    closer.start()
    wait_until(lambda: writer.closing, "closing")
    with pytest.raises(StoreError):
        writer.deliver(Signal.TRACES, request(1, 500), 1)
    backend.gate.set()
    closer.join(30)
    calls.join()
    assert calls.errors == {0: None, 1: None}
    assert span_ids(store) == [*range(4), *range(100, 104)]
    with pytest.raises(StoreError):
        store.writer()
    store.close()  # idempotent


def test_a_request_without_rows_is_acknowledged(store: Store) -> None:
    writer = store.writer()
    writer.deliver(Signal.TRACES, ExportTraceServiceRequest(), 0)
    assert writer.accepted_requests == 1 and writer.batches == 0
    stats = writer.stats()
    assert stats.accepted_requests == 1 and stats.queue_items == 0
