"""The group-commit writer: the receiver's :class:`~..receiver.sink.Sink` over a store.

``deliver`` converts the request to Arrow columns on the caller's thread, queues it
and blocks until the writer thread has inserted it, so an acknowledged request is in
the store (kill -9 after the answer loses none of it, and nothing unacknowledged was
kept on purpose). Requests that wait together are inserted together: the writer takes
everything queued when it is free (up to ``max_batch_rows`` rows, optionally lingering
``linger`` seconds for more), concatenates the rows of each table and inserts each table
in one statement, so throughput grows with the load instead of one insert a request.

When a batch insert fails, the writer retries its requests one by one, so a bad request
fails alone (its sender gets :class:`~wasmscope.errors.StoreError`) and the others are
acknowledged. A metrics request that fills several tables is inserted table by table:
if the second table fails, the first one's rows stay (the request is answered with an
error and its sender's retry writes them twice); traces and logs fill one table each
and are all or nothing.

The queue is bounded in items and in bytes of converted rows: past either bound
``deliver`` raises :class:`~wasmscope.errors.OverloadedError` at once, with a
``retry_after`` from the measured insert rate, and keeps nothing.

With a write-ahead log (``wal``, :mod:`.wal`; what ``wasmscope collect`` uses on the
embedded store), ``deliver`` converts the request, appends its bytes to the log and
returns: the request is durable then, and acknowledged. The writer inserts batches of
everything queued (lingering ``linger`` seconds for more), each batch marked in the log
first and inserted with a deduplication token, then checkpointed. An insert that fails
is retried (the data was acknowledged: nothing is dropped); on start the log's
requests after the checkpoint are inserted again, a marked batch with its own token,
so after kill -9 every acknowledged request is in the store exactly once.
"""

from __future__ import annotations

import logging
import threading
import time
from collections import deque
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

from wasmscope.collect.receiver.sink import Signal
from wasmscope.errors import OverloadedError, StoreError

if TYPE_CHECKING:
    import pyarrow

    from wasmscope.collect.store.native import NativeIngest
    from wasmscope.collect.store.retention import Dropped
    from wasmscope.collect.store.store import Store
    from wasmscope.collect.store.wal import WriteAheadLog

__all__ = ["GroupCommitWriter", "WriterStats"]

_log = logging.getLogger("wasmscope.collect.store")


@dataclass(eq=False)
class _Pending:
    signal: Signal
    tables: list[tuple[str, pyarrow.Table]]
    items: int
    nbytes: int
    rows: int
    done: threading.Event = field(default_factory=threading.Event)
    error: BaseException | None = None
    seq: int = 0  # in the write-ahead log, when there is one
    payload: bytes = b""  # the serialized request, for native ingest (then no tables)


@dataclass(frozen=True, slots=True)
class WriterStats:
    """A snapshot of the writer's counters (for ``/metrics``)."""

    accepted_requests: int
    accepted_items: int
    rejected_requests: int
    rejected_items: int
    failed_requests: int
    failed_items: int
    insert_errors: int
    inserted_rows: int
    batches: int
    queue_requests: int
    queue_items: int
    queue_bytes: int
    insert_seconds_total: float
    last_insert_seconds: float
    max_insert_seconds: float
    dropped_partitions: int


class GroupCommitWriter:
    """Queue, batch and insert requests into ``store``; a Sink. Start with :meth:`start`
    (``Store.writer()`` does), stop with :meth:`close` (flushes what was accepted)."""

    def __init__(
        self,
        store: Store,
        *,
        max_batch_rows: int = 50_000,
        linger: float = 0.0,
        max_queue_items: int = 200_000,
        max_queue_bytes: int = 256 * 1024 * 1024,
        retention_interval: float = 60.0,
        clock: Callable[[], float] = time.monotonic,
        on_dropped: Callable[[list[Dropped]], None] | None = None,
        wal: WriteAheadLog | None = None,
        retry_delay: float = 1.0,
        native: NativeIngest | None = None,
    ) -> None:
        if native is not None and wal is None:
            raise ValueError("native ingest goes with the write-ahead log")
        self.wal = wal
        self.native = native
        self.retry_delay = retry_delay
        self.store = store
        self.max_batch_rows = max_batch_rows
        self.linger = linger
        self.max_queue_items = max_queue_items
        self.max_queue_bytes = max_queue_bytes
        self.retention_interval = retention_interval
        self.clock = clock
        self.on_dropped = on_dropped
        self._queue: deque[_Pending] = deque()
        self._cond = threading.Condition()
        self._thread: threading.Thread | None = None
        self._closing = False
        self._next_retention = 0.0
        # Counters (plain ints: read them from any thread).
        self.accepted_requests = 0
        self.accepted_items = 0
        self.rejected_requests = 0
        self.rejected_items = 0
        self.failed_requests = 0
        self.failed_items = 0
        self.insert_errors = 0
        self.inserted_rows = 0
        self.batches = 0
        self.queue_items = 0
        self.queue_bytes = 0
        self.insert_seconds_total = 0.0
        self.last_insert_seconds = 0.0
        self.max_insert_seconds = 0.0
        self.dropped_partitions = 0
        self.loops = 0  # turns of the writer thread's loop (batches and idle wake-ups)
        self._rate = 0.0  # rows per second of recent inserts (EWMA)

    # -- Sink --------------------------------------------------------------------------

    def deliver(self, signal: Signal, request: Any, items: int) -> None:
        """Insert ``request`` with the next batch; return once it is in the store."""
        if self._closing or self._thread is None:
            raise StoreError("the store's writer is not running")
        with self._cond:
            self._check_room(items, 0)
        payload = request.SerializeToString() if self.wal is not None else b""
        pending = self._pending(signal, request, payload, items)
        if pending is None:
            with self._cond:
                self.accepted_requests += 1
                self.accepted_items += items
            return
        with self._cond:
            if self._closing:
                raise StoreError("the store's writer is shutting down")
            self._check_room(items, pending.nbytes)
            if self.wal is not None:
                # Appended under the lock: the log's order is the queue's order.
                pending.seq = self.wal.append(signal, payload)
                self.accepted_requests += 1
                self.accepted_items += items
            self._queue.append(pending)
            self.queue_items += items
            self.queue_bytes += pending.nbytes
            self._cond.notify_all()
        if self.wal is not None:
            return  # durable in the log: acknowledged
        while not pending.done.wait(1.0):
            thread = self._thread
            if thread is None or not thread.is_alive():
                raise StoreError("the store's writer stopped before inserting the request")
        if pending.error is not None:
            raise StoreError(f"insert failed: {pending.error}") from pending.error

    def _pending(self, signal: Signal, request: Any, payload: bytes, items: int) -> _Pending | None:
        """The queue entry of a request: its Arrow tables (None when it has no row), or
        with native ingest of traces and logs only its bytes."""
        if self.native is not None and signal is not Signal.METRICS:
            return _Pending(signal, [], items, nbytes=len(payload), rows=items, payload=payload)
        from wasmscope.collect.store.columns import tables_of

        tables = tables_of(signal, request)
        if not tables:
            return None
        return _Pending(signal, tables, items, nbytes=sum(t.nbytes for _, t in tables),
                        rows=sum(t.num_rows for _, t in tables), payload=payload)  # fmt: skip

    def _check_room(self, items: int, nbytes: int) -> None:
        over_items = self.queue_items and self.queue_items + items > self.max_queue_items
        over_bytes = self.queue_bytes and self.queue_bytes + nbytes > self.max_queue_bytes
        if over_items or over_bytes:
            self.rejected_requests += 1
            self.rejected_items += items
            raise OverloadedError(
                f"the store is behind ({self.queue_items} items queued)", self.retry_after()
            )

    def retry_after(self) -> float:
        """Seconds the queue needs to drain at the recent insert rate (1 to 30)."""
        if self._rate <= 0:
            return 1.0
        return min(30.0, max(1.0, self.queue_items / self._rate))

    # -- the writer thread -------------------------------------------------------------

    def start(self) -> None:
        if self._thread is not None:
            return
        if self.wal is not None:
            self._replay(self.wal)
        self._thread = threading.Thread(
            target=self._run, name="wasmscope-store-writer", daemon=True
        )
        self._thread.start()

    def _take(self) -> list[_Pending]:
        """The next batch (blocks until there is one, or closing with nothing left)."""
        with self._cond:
            while not self._queue and not self._closing:
                if not self._cond.wait(self._idle_timeout()):
                    return []
            if self.linger > 0 and not self._closing:
                deadline = self.clock() + self.linger
                while self._queued_rows() < self.max_batch_rows and not self._closing:
                    left = deadline - self.clock()
                    if left <= 0:
                        break
                    self._cond.wait(left)
            batch: list[_Pending] = []
            rows = 0
            while self._queue and (not batch or rows + self._queue[0].rows <= self.max_batch_rows):
                p = self._queue.popleft()
                batch.append(p)
                rows += p.rows
            return batch

    def _queued_rows(self) -> int:
        return sum(p.rows for p in self._queue)

    def _idle_timeout(self) -> float | None:
        if self.store.max_disk is None:
            return None
        # Capped: the clock may be another than the Condition's (tests inject one).
        return min(0.5, max(0.05, self._next_retention - self.clock()))

    def _run(self) -> None:
        while True:
            self.loops += 1
            batch = self._take()
            if batch:
                self._write(batch)
                with self._cond:
                    for p in batch:
                        self.queue_items -= p.items
                        self.queue_bytes -= p.nbytes
                for p in batch:
                    p.done.set()
            self._maybe_enforce_retention()
            with self._cond:
                if self._closing and not self._queue:
                    return

    def _insert(self, table: str, data: pyarrow.Table, dedup_token: str | None = None) -> None:
        start = time.perf_counter()
        try:
            self.store.insert(table, data, dedup_token)
        except BaseException:
            self.insert_errors += 1
            raise
        finally:
            elapsed = time.perf_counter() - start
            self.insert_seconds_total += elapsed
            self.last_insert_seconds = elapsed
            self.max_insert_seconds = max(self.max_insert_seconds, elapsed)
        self.inserted_rows += data.num_rows
        if elapsed > 0:
            rate = data.num_rows / elapsed
            self._rate = rate if self._rate == 0 else 0.8 * self._rate + 0.2 * rate

    def _replay(self, wal: WriteAheadLog) -> None:
        """Inserts the log's requests after its checkpoint: each marked batch again with
        its token (a batch inserted before a crash stores nothing twice), the rest queued."""
        from wasmscope.collect.receiver.decode import request_class

        records, marks = wal.pending()
        if not records:
            return
        _log.info("collect: replaying %d requests from the write-ahead log in %s", len(records), wal.path)
        pendings = []
        for r in records:
            p = self._pending(r.signal, request_class(r.signal).FromString(r.payload), r.payload, 0)
            if p is not None:
                p.seq = r.seq
                pendings.append(p)
        for first, last in marks:
            batch = [p for p in pendings if first <= p.seq <= last]
            if batch:
                self._write_logged(batch, first, last)
        done = max((last for _, last in marks), default=0)
        rest = [p for p in pendings if p.seq > done]
        with self._cond:
            for p in rest:
                self._queue.append(p)
                self.queue_items += p.items
                self.queue_bytes += p.nbytes

    def _write_logged(self, batch: list[_Pending], first: int, last: int) -> None:
        """Inserts a batch of logged (acknowledged) requests: retried until it is in,
        then checkpointed. On close, a batch that still fails stays in the log."""
        import pyarrow as pa

        self.batches += 1
        by_table: dict[str, list[pyarrow.Table]] = {}
        by_signal: dict[Signal, list[bytes]] = {}
        for p in batch:
            if not p.tables:
                by_signal.setdefault(p.signal, []).append(p.payload)
            for table, data in p.tables:
                by_table.setdefault(table, []).append(data)
        attempts = 0
        while True:
            try:
                for table, parts in by_table.items():
                    data = parts[0] if len(parts) == 1 else pa.concat_tables(parts)
                    self._insert(table, data, f"wal-{first}-{last}-{table}")
                for signal, bodies in by_signal.items():
                    assert self.native is not None
                    start = time.perf_counter()
                    self.inserted_rows += self.native.write_bodies(signal, bodies, f"wal-{first}-{last}-{signal.value}")
                    self.insert_seconds_total += time.perf_counter() - start
                    for i, error in self.native.unconvertible:
                        self._set_aside(signal, bodies[i], first, i, error)
                break
            except Exception as exc:
                attempts += 1
                _log.error("collect: inserting logged requests %d-%d failed (attempt %d; kept in the log, "
                           "retried): %s", first, last, attempts, exc)  # fmt: skip
                if self._closing and attempts >= 3:
                    return
                time.sleep(self.retry_delay)
        assert self.wal is not None
        self.wal.checkpoint(last)

    def _set_aside(self, signal: Signal, body: bytes, first: int, index: int, error: str) -> None:
        """An acknowledged request that cannot be converted (a retry would fail the same
        way): kept in ``wal/rejected/`` for a person to look at, counted, logged."""
        assert self.wal is not None
        folder = self.wal.path / "rejected"
        folder.mkdir(exist_ok=True)
        path = folder / f"{signal.value}-{first}-{index}.pb"
        path.write_bytes(body)
        self.failed_requests += 1
        _log.error("collect: an acknowledged %s request cannot be stored (%s); kept in %s", signal.value, error, path)

    def _write(self, batch: list[_Pending]) -> None:
        import pyarrow as pa  # present: deliver converted the batch with it

        if self.wal is not None:
            first, last = batch[0].seq, batch[-1].seq
            self.wal.mark(first, last)
            self._write_logged(batch, first, last)
            return
        self.batches += 1
        by_table: dict[str, list[tuple[_Pending, pyarrow.Table]]] = {}
        for p in batch:
            for table, data in p.tables:
                by_table.setdefault(table, []).append((p, data))
        for table, parts in by_table.items():
            live = [(p, data) for p, data in parts if p.error is None]
            if not live:
                continue
            try:
                data = live[0][1] if len(live) == 1 else pa.concat_tables([d for _, d in live])
                self._insert(table, data)
            except Exception as exc:
                if len(live) == 1:
                    live[0][0].error = exc
                    continue
                # One bad request must not fail the others: insert them one by one.
                for p, data in live:
                    try:
                        self._insert(table, data)
                    except Exception as one:
                        p.error = one
        for p in batch:
            if p.error is None:
                self.accepted_requests += 1
                self.accepted_items += p.items
            else:
                self.failed_requests += 1
                self.failed_items += p.items

    def _maybe_enforce_retention(self) -> None:
        if self.store.max_disk is None or self.clock() < self._next_retention:
            return
        self._next_retention = self.clock() + self.retention_interval
        try:
            dropped = self.store.enforce_max_disk()
        except StoreError as exc:
            _log.warning("--max-disk: could not drop partitions (tried again later): %s", exc)
            return
        if dropped:
            self.dropped_partitions += len(dropped)
            _log.warning(
                "--max-disk: dropped %d partitions (%d rows, %d bytes): %s",
                len(dropped),
                sum(d.rows for d in dropped),
                sum(d.bytes_on_disk for d in dropped),
                ", ".join(f"{d.table} {d.partition}" for d in dropped),
            )
            if self.on_dropped is not None:
                self.on_dropped(dropped)

    # -- counters and lifetime ---------------------------------------------------------

    @property
    def queue_requests(self) -> int:
        return len(self._queue)

    @property
    def closing(self) -> bool:
        """True once :meth:`close` was called: new requests are refused."""
        return self._closing

    def stats(self) -> WriterStats:
        return WriterStats(
            accepted_requests=self.accepted_requests,
            accepted_items=self.accepted_items,
            rejected_requests=self.rejected_requests,
            rejected_items=self.rejected_items,
            failed_requests=self.failed_requests,
            failed_items=self.failed_items,
            insert_errors=self.insert_errors,
            inserted_rows=self.inserted_rows,
            batches=self.batches,
            queue_requests=self.queue_requests,
            queue_items=self.queue_items,
            queue_bytes=self.queue_bytes,
            insert_seconds_total=self.insert_seconds_total,
            last_insert_seconds=self.last_insert_seconds,
            max_insert_seconds=self.max_insert_seconds,
            dropped_partitions=self.dropped_partitions,
        )

    def close(self, timeout: float | None = None) -> None:
        """Refuse new requests, insert every accepted one, stop the thread; idempotent."""
        with self._cond:
            self._closing = True
            self._cond.notify_all()
        thread = self._thread
        if thread is not None and thread is not threading.current_thread():
            thread.join(timeout)
        if self.wal is not None and (thread is None or not thread.is_alive()):
            self.wal.close()

    def __enter__(self) -> GroupCommitWriter:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()
