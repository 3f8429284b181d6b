"""The write-ahead log and the writer over it (real chDB): an acknowledged request is in
the log before it is in the store, and reaches the store exactly once, through
failures and restarts."""

from __future__ import annotations

import os
import threading
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

import pyarrow
import pytest
from opentelemetry.proto.collector.trace.v1.trace_service_pb2 import ExportTraceServiceRequest
from opentelemetry.proto.trace.v1.trace_pb2 import Span

from wasmscope.collect.receiver.sink import Signal
from wasmscope.collect.store.backend import Backend, Result
from wasmscope.collect.store.embedded import ChdbBackend
from wasmscope.collect.store.store import Store, tables_of
from wasmscope.collect.store.wal import WriteAheadLog
from wasmscope.errors import StoreError

T0 = 1_790_000_000 * 10**9


def _request(n: int) -> ExportTraceServiceRequest:
    req = ExportTraceServiceRequest()
    ss = req.resource_spans.add().scope_spans.add()
    for i in range(n):
        ss.spans.append(Span(trace_id=os.urandom(16), span_id=os.urandom(8), name="s", kind=Span.SPAN_KIND_SERVER,
                             start_time_unix_nano=T0 + i, end_time_unix_nano=T0 + i + 10))  # fmt: skip
    return req


def _span_ids(backend: Backend, database: str) -> list[str]:
    return [str(r[0]) for r in backend.query(f"SELECT SpanId FROM {database}.otel_traces ORDER BY SpanId").rows]


def _ids(*requests: ExportTraceServiceRequest) -> list[str]:
    return sorted(s.span_id.hex() for r in requests for rs in r.resource_spans for ss in rs.scope_spans for s in ss.spans)


class FlakyBackend:
    """The real backend, whose inserts wait for ``gate`` and fail while ``failures`` > 0."""

    kind = "chdb"

    def __init__(self, inner: Backend, failures: int = 0) -> None:
        self.inner = inner
        self.failures = failures
        self.gate = threading.Event()
        self.gate.set()
        self.attempts = 0

    def command(self, sql: str, params: Mapping[str, Any] | None = None) -> None:
        if sql.lstrip().startswith("INSERT"):  # native ingest inserts with a statement
            self.gate.wait()
        self.inner.command(sql, params)

    def query(self, sql: str, params: Mapping[str, Any] | None = None) -> Result:
        return self.inner.query(sql, params)

    def insert(self, table: str, columns: Sequence[str], data: pyarrow.Table, dedup_token: str | None = None) -> None:
        self.gate.wait()
        self.attempts += 1
        if self.failures > 0:
            self.failures -= 1
            raise StoreError("Too many parts (test)")
        self.inner.insert(table, columns, data, dedup_token)

    def close(self) -> None:
        pass


# -- the log ---------------------------------------------------------------------------------


def test_records_after_the_checkpoint_are_pending(tmp_path: Path) -> None:
    wal = WriteAheadLog(tmp_path, segment_bytes=64)
    seqs = [wal.append(Signal.TRACES, bytes([i]) * 40) for i in range(5)]
    wal.mark(seqs[0], seqs[1])
    wal.checkpoint(seqs[1])
    wal.mark(seqs[2], seqs[3])
    wal.close()
    again = WriteAheadLog(tmp_path)
    records, marks = again.pending()
    assert [r.seq for r in records] == seqs[2:]
    assert records[0].payload == bytes([2]) * 40 and records[0].signal is Signal.TRACES
    assert marks == [(seqs[2], seqs[3])]
    assert again.next_seq > max(seqs)  # sequence numbers are never reused
    assert len(list(tmp_path.glob("wal-*.log"))) < 5  # checkpointed segments are gone


def test_a_torn_last_record_is_not_replayed(tmp_path: Path) -> None:
    wal = WriteAheadLog(tmp_path)
    wal.append(Signal.LOGS, b"whole")
    wal.append(Signal.LOGS, b"torn record")
    wal.close()
    segment = next(tmp_path.glob("wal-*.log"))
    segment.write_bytes(segment.read_bytes()[:-3])  # power loss in the middle of a write
    records, _ = WriteAheadLog(tmp_path).pending()
    assert [r.payload for r in records] == [b"whole"]


# -- the writer over it ----------------------------------------------------------------------


@pytest.fixture(params=["arrow", "native"])
def native(request: pytest.FixtureRequest, chdb_backend: ChdbBackend, database: str, tmp_path: Path) -> Any:
    """The writer's two ways into the store: Arrow columns, or chDB decoding the bytes."""
    if request.param == "arrow":
        return lambda backend: None
    from wasmscope.collect.store.native import NativeIngest

    return lambda backend: NativeIngest(backend, database, tmp_path / "scratch")


def test_an_acknowledged_request_is_logged_before_it_is_stored(
    chdb_backend: ChdbBackend, database: str, tmp_path: Path, native: Any
) -> None:
    flaky = FlakyBackend(chdb_backend)
    store = Store(flaky, database)
    store.ensure_schema()
    store.enable_insert_dedup()
    flaky.gate.clear()  # the store is stuck
    writer = store.writer(wal=WriteAheadLog(tmp_path / "wal"), native=native(flaky))
    req = _request(5)
    writer.deliver(Signal.TRACES, req, 5)  # returns: durable in the log
    assert _span_ids(chdb_backend, database) == []
    assert [r.seq for r in WriteAheadLog(tmp_path / "wal").pending()[0]] == [1]
    flaky.gate.set()
    writer.close()
    assert _span_ids(chdb_backend, database) == _ids(req)
    assert WriteAheadLog(tmp_path / "wal").pending()[0] == []  # checkpointed


def test_a_failing_insert_is_retried_and_nothing_acknowledged_is_lost(
    chdb_backend: ChdbBackend, database: str, tmp_path: Path
) -> None:
    flaky = FlakyBackend(chdb_backend, failures=2)
    store = Store(flaky, database)
    store.ensure_schema()
    writer = store.writer(wal=WriteAheadLog(tmp_path / "wal"), retry_delay=0.01)  # the Arrow way: inserts fail
    req = _request(3)
    writer.deliver(Signal.TRACES, req, 3)
    writer.close()
    assert flaky.attempts == 3 and writer.insert_errors == 2
    assert _span_ids(chdb_backend, database) == _ids(req)


def test_replay_after_a_crash_stores_each_request_once(
    chdb_backend: ChdbBackend, database: str, tmp_path: Path, native: Any
) -> None:
    store = Store(chdb_backend, database)
    store.ensure_schema()
    store.enable_insert_dedup()
    # What a writer killed at the worst moment leaves: a batch logged, marked and
    # inserted but not checkpointed, and a later request logged only.
    inserted, logged = _request(4), _request(2)
    wal = WriteAheadLog(tmp_path / "wal")
    first = wal.append(Signal.TRACES, inserted.SerializeToString())
    wal.mark(first, first)
    ingest = native(chdb_backend)
    if ingest is None:
        for table, data in tables_of(Signal.TRACES, inserted):
            store.insert(table, data, f"wal-{first}-{first}-{table}")
    else:
        ingest.write_bodies(Signal.TRACES, [inserted.SerializeToString()], f"wal-{first}-{first}-traces")
    wal.append(Signal.TRACES, logged.SerializeToString())
    wal.close()

    writer = store.writer(wal=WriteAheadLog(tmp_path / "wal"), native=native(chdb_backend))
    writer.close()
    assert _span_ids(chdb_backend, database) == _ids(inserted, logged)
    invocations = chdb_backend.query(f"SELECT count() FROM {database}.otel_traces_trace_id_ts").scalar()
    assert invocations >= 1
    # A second restart finds nothing left to do.
    writer = store.writer(wal=WriteAheadLog(tmp_path / "wal"), native=native(chdb_backend))
    writer.close()
    assert _span_ids(chdb_backend, database) == _ids(inserted, logged)


def test_without_dedup_the_same_token_would_store_twice(chdb_backend: ChdbBackend, database: str) -> None:
    """The reason for enable_insert_dedup: plain MergeTree tables keep a repeated insert."""
    store = Store(chdb_backend, database)
    store.ensure_schema()
    req = _request(2)
    for _ in range(2):
        for table, data in tables_of(Signal.TRACES, req):
            store.insert(table, data, "wal-1-1-t")
    assert len(_span_ids(chdb_backend, database)) == 4


@pytest.mark.parametrize("token", ["a'b", "x y", ""])
def test_a_token_is_never_formatted_unchecked(chdb_backend: ChdbBackend, database: str, token: str) -> None:
    store = Store(chdb_backend, database)
    store.ensure_schema()
    (table, data), = tables_of(Signal.TRACES, _request(1))
    with pytest.raises(ValueError):
        store.insert(table, data, token)
