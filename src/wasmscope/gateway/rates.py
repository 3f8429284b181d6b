"""Request rates of API keys: ``rate = "10/s"`` in a ``[[key]]`` table, and the token
bucket that enforces it."""

from __future__ import annotations

import math
import re
import threading
import time
from collections.abc import Callable

from wasmscope.errors import UsageError

__all__ = ["TokenBucket", "parse_rate"]

_UNITS = {
    "s": 1.0,
    "sec": 1.0,
    "second": 1.0,
    "m": 60.0,
    "min": 60.0,
    "minute": 60.0,
    "h": 3600.0,
    "hour": 3600.0,
}
_RATE = re.compile(r"^\s*(\d+(?:\.\d+)?)\s*/\s*([a-z]+)\s*$")


def parse_rate(text: str) -> tuple[float, int]:
    """``"10/s"`` -> (10 per second, default burst 10); units s, min, h."""
    m = _RATE.match(text.lower()) if isinstance(text, str) else None
    unit = "" if m is None else m.group(2) if m.group(2) in _UNITS else m.group(2).rstrip("s")
    if m is None or unit not in _UNITS:
        raise UsageError(f"expected a rate like '10/s', '600/min' or '1000/h', not {text!r}")
    count = float(m.group(1))
    if count <= 0:
        raise UsageError(f"{text!r}: the rate must be above 0")
    return count / _UNITS[unit], max(1, math.ceil(count))


class TokenBucket:
    """``burst`` tokens, refilled at ``rate`` per second; thread-safe."""

    def __init__(
        self, rate: float, burst: int, clock: Callable[[], float] = time.monotonic
    ) -> None:
        self.rate = rate
        self.burst = burst
        self._clock = clock
        self._tokens = float(burst)
        self._last = clock()
        self._lock = threading.Lock()

    def take(self) -> float:
        """0.0 when a token was taken, else the seconds until one is there."""
        with self._lock:
            now = self._clock()
            self._tokens = min(
                float(self.burst), self._tokens + max(0.0, now - self._last) * self.rate
            )
            self._last = now
            if self._tokens >= 1.0:
                self._tokens -= 1.0
                return 0.0
            return (1.0 - self._tokens) / self.rate
