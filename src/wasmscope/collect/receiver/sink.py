"""What the OTLP receiver hands its requests to: a :class:`Sink`.

The receiver is shared by ``wasmscope collect`` (the sink is the store's writer)
and ``wasmscope agent`` (the sink is the spool). It decodes and validates a
request, drops the items it cannot keep (counted for ``partial_success``), and
calls :meth:`Sink.deliver` with the rest. The OTLP answer follows the sink:

- ``deliver`` returned: the data is durable (kill -9 of the process loses none of
  it); the receiver answers success (with the partial-success counts, if any).
- :class:`~wasmscope.errors.OverloadedError`: 429 (HTTP) / UNAVAILABLE (gRPC), with
  ``Retry-After`` (HTTP) or ``RetryInfo`` (gRPC); nothing of the request was kept.
- :class:`~wasmscope.errors.StoreError`: 503 / UNAVAILABLE; nothing was kept.
"""

from __future__ import annotations

import enum
import threading
from dataclasses import dataclass, field
from typing import Any, Protocol

__all__ = ["InMemorySink", "Signal", "Sink"]


class Signal(enum.Enum):
    """An OTLP signal; the value is the path segment (``/v1/traces``)."""

    TRACES = "traces"
    METRICS = "metrics"
    LOGS = "logs"


class Sink(Protocol):
    """Takes validated OTLP export requests; durable when ``deliver`` returns."""

    def deliver(self, signal: Signal, request: Any, items: int) -> None:
        """Keep ``request`` (an ``Export{Trace,Metrics,Logs}ServiceRequest`` message
        holding ``items`` spans, data points or log records) or raise."""
        ...


@dataclass
class InMemorySink:
    """A sink that keeps every request in a list: for tests, instead of a mock."""

    requests: list[tuple[Signal, Any, int]] = field(default_factory=list)
    _lock: threading.Lock = field(default_factory=threading.Lock, repr=False)

    def deliver(self, signal: Signal, request: Any, items: int) -> None:
        with self._lock:
            self.requests.append((signal, request, items))

    def items(self, signal: Signal) -> int:
        with self._lock:
            return sum(n for s, _, n in self.requests if s is signal)
