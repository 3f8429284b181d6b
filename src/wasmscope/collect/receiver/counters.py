"""The receiver's counts per signal and transport, for the collector's ``/metrics``:
plain thread-safe numbers (the Prometheus text is made elsewhere)."""

from __future__ import annotations

import threading
from dataclasses import dataclass, replace

from wasmscope.collect.receiver.sink import Signal

__all__ = ["Counts", "ReceiverCounters"]

TRANSPORTS = ("http", "grpc")


@dataclass(slots=True)
class Counts:
    """What one signal on one transport saw.

    ``requests``: export requests answered (any status). ``received``: items (spans,
    data points, log records) handed to the sink and kept. ``rejected``: items removed
    as invalid and reported in ``partial_success``. ``refused``: items of requests the
    sink refused (429/503, gRPC UNAVAILABLE: the sender retries them). ``failed``:
    requests answered with a client error (400, 401, 413, 415), whose items are not
    known."""

    requests: int = 0
    received: int = 0
    rejected: int = 0
    refused: int = 0
    failed: int = 0


class ReceiverCounters:
    """Counts shared by the HTTP and gRPC receivers of one process."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._counts = {(s, t): Counts() for s in Signal for t in TRANSPORTS}

    def add(self, signal: Signal, transport: str, *, received: int = 0, rejected: int = 0,
            refused: int = 0, failed: int = 0) -> None:  # fmt: skip
        """Counts one answered request of ``signal`` on ``transport`` (``http``/``grpc``)."""
        with self._lock:
            c = self._counts[(signal, transport)]
            c.requests += 1
            c.received += received
            c.rejected += rejected
            c.refused += refused
            c.failed += failed

    def snapshot(self) -> dict[tuple[Signal, str], Counts]:
        """A copy of every count, keyed by (signal, transport)."""
        with self._lock:
            return {key: replace(c) for key, c in self._counts.items()}

    def get(self, signal: Signal, transport: str) -> Counts:
        """A copy of one signal's counts on one transport."""
        with self._lock:
            return replace(self._counts[(signal, transport)])
