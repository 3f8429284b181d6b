"""The writer's write-ahead log: an accepted request is durable once it is appended here,
so it can be acknowledged before it is inserted, and the store gets large batches.

Why: an insert into the exporter's tables costs 30 to 60 ms whatever its size (query
analysis, the part, the two materialized views), so inserting each request before
answering it caps ingest at what a few concurrent senders hand in at once (about 20k
spans/s with four senders of 1000-span requests). With the log, the answer waits only
for one ``write()`` of the request's bytes, and the writer inserts up to 50,000 rows
at a time.

Files, in ``DIR``: segments ``wal-<first seq>.log`` of records, a ``checkpoint`` file
with the last sequence number known to be in the store. A record is one ``write()``:

    u32 payload length | u64 sequence | u8 kind | payload

kind 1-3 is a request (traces, metrics, logs: the serialized ``Export*ServiceRequest``);
kind 9 a batch marker, payload ``u64 first | u64 last``, appended before the writer
inserts the records ``first..last``. Each table's insert of that batch carries the
ClickHouse deduplication token ``wal-<first>-<last>-<table>``, so a batch inserted
before a crash but not yet checkpointed is not stored twice when it is replayed.

A ``write()`` that returned is in the kernel's page cache: kill -9 of the process loses
none of it. Power loss can lose what the kernel had not written yet, unless ``fsync``
is on (every append waits for the disk). A torn record at the end of the last segment
(power loss) is ignored on replay; it was never acknowledged with ``fsync`` on.
"""

from __future__ import annotations

import os
import struct
import threading
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

from wasmscope.collect.receiver.sink import Signal
from wasmscope.errors import StoreError

__all__ = ["Record", "WriteAheadLog"]

_HEADER = struct.Struct("<IQB")
_MARK = struct.Struct("<QQ")
_KINDS = {Signal.TRACES: 1, Signal.METRICS: 2, Signal.LOGS: 3}
_SIGNALS = {v: k for k, v in _KINDS.items()}
MARKER = 9
SEGMENT_BYTES = 64 * 1024 * 1024


@dataclass(frozen=True, slots=True)
class Record:
    seq: int
    signal: Signal
    payload: bytes


class WriteAheadLog:
    """The log in ``path`` (created if missing). Thread-safe; :meth:`close` is idempotent."""

    def __init__(self, path: str | os.PathLike[str], *, fsync: bool = False, segment_bytes: int = SEGMENT_BYTES) -> None:
        self.path = Path(path)
        self.path.mkdir(parents=True, exist_ok=True)
        self.fsync = fsync
        self.segment_bytes = segment_bytes
        self._lock = threading.Lock()
        self.checkpointed = self._read_checkpoint()
        self._segments = sorted(self.path.glob("wal-*.log"))
        last = self._last_seq()
        self.next_seq = max(last, self.checkpointed) + 1
        self._fd: int | None = None
        self._size = 0

    # -- reading -------------------------------------------------------------------------

    def _read_checkpoint(self) -> int:
        try:
            return int((self.path / "checkpoint").read_text().strip() or 0)
        except FileNotFoundError:
            return 0
        except ValueError as exc:
            raise StoreError(f"{self.path / 'checkpoint'} is not a sequence number: {exc}") from None

    @staticmethod
    def _scan(segment: Path) -> Iterator[tuple[int, int, bytes]]:
        data = segment.read_bytes()
        pos = 0
        while pos + _HEADER.size <= len(data):
            length, seq, kind = _HEADER.unpack_from(data, pos)
            end = pos + _HEADER.size + length
            if end > len(data):
                return  # a torn last record: never acknowledged as durable
            yield seq, kind, data[pos + _HEADER.size : end]
            pos = end

    def _last_seq(self) -> int:
        last = 0
        for segment in self._segments[-1:]:
            for seq, _, _ in self._scan(segment):
                last = max(last, seq)
        return last

    def pending(self) -> tuple[list[Record], list[tuple[int, int]]]:
        """The requests after the checkpoint, in order, and the batch markers that cover
        any of them (batches the writer may have inserted before it stopped)."""
        records: list[Record] = []
        marks: list[tuple[int, int]] = []
        for segment in self._segments:
            for seq, kind, payload in self._scan(segment):
                if kind == MARKER:
                    first, last = _MARK.unpack(payload)
                    if last > self.checkpointed:
                        marks.append((first, last))
                elif seq > self.checkpointed and kind in _SIGNALS:
                    records.append(Record(seq, _SIGNALS[kind], payload))
        return records, marks

    # -- writing -------------------------------------------------------------------------

    def _write(self, kind: int, payload: bytes, seq: int) -> None:
        if self._fd is None or self._size >= self.segment_bytes:
            self._rotate(seq)
        assert self._fd is not None
        record = _HEADER.pack(len(payload), seq, kind) + payload
        written = os.write(self._fd, record)
        if written != len(record):  # a short write: the disk is full
            raise StoreError(f"the write-ahead log in {self.path} could not be written (disk full?)")
        if self.fsync:
            os.fsync(self._fd)
        self._size += written

    def _rotate(self, seq: int) -> None:
        if self._fd is not None:
            os.close(self._fd)
        segment = self.path / f"wal-{seq:016d}.log"
        self._fd = os.open(segment, os.O_WRONLY | os.O_CREAT | os.O_APPEND, 0o600)
        self._size = os.fstat(self._fd).st_size
        if segment not in self._segments:
            self._segments.append(segment)

    def append(self, signal: Signal, payload: bytes) -> int:
        """Appends one request; returns its sequence number. Durable against kill -9
        when it returns (and against power loss with ``fsync``)."""
        with self._lock:
            seq = self.next_seq
            try:
                self._write(_KINDS[signal], payload, seq)
            except OSError as exc:
                raise StoreError(f"the write-ahead log in {self.path} could not be written: {exc}") from exc
            self.next_seq += 1
            return seq

    def mark(self, first: int, last: int) -> None:
        """Records that the batch ``first..last`` is about to be inserted."""
        with self._lock:
            self._write(MARKER, _MARK.pack(first, last), self.next_seq)
            self.next_seq += 1

    def checkpoint(self, seq: int) -> None:
        """Everything up to ``seq`` is in the store: remember it, drop old segments."""
        with self._lock:
            tmp = self.path / "checkpoint.tmp"
            tmp.write_text(f"{seq}\n")
            if self.fsync:
                with open(tmp, "rb") as f:
                    os.fsync(f.fileno())
            os.replace(tmp, self.path / "checkpoint")
            self.checkpointed = seq
            # A segment is done when the next one starts at or below the checkpoint + 1.
            keep: list[Path] = []
            for i, segment in enumerate(self._segments):
                nxt = self._segments[i + 1] if i + 1 < len(self._segments) else None
                if nxt is not None and int(nxt.stem[4:]) <= seq + 1:
                    segment.unlink(missing_ok=True)
                else:
                    keep.append(segment)
            self._segments = keep

    def bytes_on_disk(self) -> int:
        return sum(s.stat().st_size for s in self._segments if s.exists())

    def close(self) -> None:
        with self._lock:
            if self._fd is not None:
                os.close(self._fd)
                self._fd = None
