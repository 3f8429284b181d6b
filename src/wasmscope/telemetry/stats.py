"""Counts of exported and failed telemetry items, per exporter and signal.

Thread-safe: exporters run on the SDK's batch worker threads. No OpenTelemetry here.
"""

from __future__ import annotations

import threading
from dataclasses import dataclass, field

__all__ = ["SIGNALS", "ExportCounter", "TelemetryStats"]

SIGNALS = ("spans", "logs", "metrics")  # metrics are counted in data points


@dataclass(frozen=True, slots=True)
class TelemetryStats:
    """A snapshot: ``counts[(exporter, signal)] = (exported, failed)``.

    ``exporter`` is "console", "jsonl", "otlp", "memory" or a name given to an
    extra exporter; ``signal`` is "spans", "logs" or "metrics" (data points).
    """

    counts: dict[tuple[str, str], tuple[int, int]] = field(default_factory=dict)
    last_error: str | None = None

    def exported(self, signal: str | None = None, exporter: str | None = None) -> int:
        return sum(
            e for (x, s), (e, _) in self.counts.items()
            if (signal is None or s == signal) and (exporter is None or x == exporter)
        )  # fmt: skip

    def failed(self, signal: str | None = None, exporter: str | None = None) -> int:
        return sum(
            f for (x, s), (_, f) in self.counts.items()
            if (signal is None or s == signal) and (exporter is None or x == exporter)
        )  # fmt: skip

    def as_dict(self) -> dict[str, dict[str, dict[str, int]]]:
        """``{exporter: {signal: {"exported": n, "failed": n}}}``, JSON-ready."""
        out: dict[str, dict[str, dict[str, int]]] = {}
        for (exporter, signal), (exported, failed) in sorted(self.counts.items()):
            out.setdefault(exporter, {})[signal] = {"exported": exported, "failed": failed}
        return out


class ExportCounter:
    """The mutable, locked counters behind :class:`TelemetryStats`."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._counts: dict[tuple[str, str], list[int]] = {}
        self._last_error: str | None = None

    def register(self, exporter: str, signal: str) -> None:
        with self._lock:
            self._counts.setdefault((exporter, signal), [0, 0])

    def ok(self, exporter: str, signal: str, n: int) -> None:
        with self._lock:
            self._counts.setdefault((exporter, signal), [0, 0])[0] += n

    def fail(self, exporter: str, signal: str, n: int, error: str | None = None) -> None:
        with self._lock:
            self._counts.setdefault((exporter, signal), [0, 0])[1] += n
            if error:
                self._last_error = error

    def snapshot(self) -> TelemetryStats:
        with self._lock:
            return TelemetryStats(
                counts={k: (v[0], v[1]) for k, v in self._counts.items()},
                last_error=self._last_error,
            )
