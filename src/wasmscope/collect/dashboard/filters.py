"""The filters every dashboard page shares: a time range and a service/function.

They live in the query string (``range=1h``, or ``range=abs&from=..&to=..``,
``service=..``, ``fn=..``) so that every URL can be shared, and become one SQL
condition with bound parameters (:meth:`Filters.where`).
"""

from __future__ import annotations

import datetime as dt
import urllib.parse
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

__all__ = ["RANGES", "Filters", "parse_time", "step_for"]

#: Relative ranges offered by the range picker, in seconds.
RANGES: dict[str, int] = {"15m": 900, "1h": 3600, "6h": 6 * 3600, "24h": 86400, "7d": 7 * 86400}
DEFAULT_RANGE = "1h"
MAX_SPAN_S = 400 * 86400  # an absolute range longer than this is cut (a typo, not a wish)
_STEPS = (1, 2, 5, 10, 15, 30, 60, 120, 300, 600, 900, 1800, 3600, 7200, 10800, 21600, 43200, 86400)
NS = 1_000_000_000


def parse_time(text: str) -> float | None:
    """Seconds since the epoch from unix seconds or an ISO date/time (UTC unless it
    says otherwise); None when it is neither."""
    text = text.strip()
    if not text:
        return None
    try:
        value = float(text)
    except ValueError:
        pass
    else:
        return value if 0 <= value < 1e11 else None
    try:
        when = dt.datetime.fromisoformat(text.replace("Z", "+00:00"))
    except ValueError:
        return None
    if when.tzinfo is None:
        when = when.replace(tzinfo=dt.UTC)
    return when.timestamp()


def step_for(seconds: float, buckets: int = 120) -> int:
    """A round bucket width (s) that splits ``seconds`` into at most ``buckets``."""
    for step in _STEPS:
        if seconds / step <= buckets:
            return step
    return _STEPS[-1] * max(1, int(seconds / (_STEPS[-1] * buckets)) + 1)


def _iso(seconds: float) -> str:
    return dt.datetime.fromtimestamp(seconds, dt.UTC).strftime("%Y-%m-%dT%H:%M:%S")


@dataclass(frozen=True, slots=True)
class Filters:
    """The shared filters of one request; ``start_ns`` and ``end_ns`` bound the range."""

    range: str
    start_ns: int
    end_ns: int
    service: str = ""
    function: str = ""

    @classmethod
    def parse(cls, query: Mapping[str, Sequence[str]], now: float) -> Filters:
        """The filters of a query string (already split); bad values fall back to
        the default range rather than fail the page."""

        def one(name: str) -> str:
            values = query.get(name)
            return values[0].strip() if values else ""

        rng = one("range") or DEFAULT_RANGE
        start = end = None
        if rng == "abs":
            start, end = parse_time(one("from")), parse_time(one("to"))
            if start is None:
                rng = DEFAULT_RANGE
            else:
                end = now if end is None else end
                if end <= start:
                    start, end = end, start
                start = max(start, end - MAX_SPAN_S)
        if rng != "abs":
            if rng not in RANGES:
                rng = DEFAULT_RANGE
            end = now
            start = now - RANGES[rng]
        assert start is not None and end is not None
        return cls(rng, int(start * NS), int(end * NS) + (1 if end == start else 0), one("service"), one("fn"))

    @property
    def seconds(self) -> float:
        return (self.end_ns - self.start_ns) / NS

    @property
    def step(self) -> int:
        """The chart bucket width in seconds for this range."""
        return step_for(self.seconds)

    @property
    def start_iso(self) -> str:
        return _iso(self.start_ns / NS)

    @property
    def end_iso(self) -> str:
        return _iso(self.end_ns / NS)

    def where(self, *, time_column: str = "Timestamp", function: bool = True,
              service: bool = True, time: bool = True,
              function_column: str = "SpanAttributes['faas.name']") -> tuple[str, dict[str, Any]]:  # fmt: skip
        """The SQL condition of the range (and of the service and function filters,
        for the spans tables) with its parameters (``f_*``)."""
        parts = ["1"]
        params: dict[str, Any] = {}
        if time:
            parts = [
                f"{time_column} >= fromUnixTimestamp64Nano({{f_t0:Int64}})",
                f"{time_column} < fromUnixTimestamp64Nano({{f_t1:Int64}})",
            ]
            params = {"f_t0": self.start_ns, "f_t1": self.end_ns}
        if service and self.service:
            parts.append("ServiceName = {f_service:String}")
            params["f_service"] = self.service
        if function and self.function:
            parts.append(f"{function_column} = {{f_fn:String}}")
            params["f_fn"] = self.function
        return " AND ".join(parts), params

    def items(self) -> list[tuple[str, str]]:
        """The filters as query-string pairs (defaults left out)."""
        out: list[tuple[str, str]] = []
        if self.range == "abs":
            out += [("range", "abs"), ("from", self.start_iso), ("to", self.end_iso)]
        elif self.range != DEFAULT_RANGE:
            out.append(("range", self.range))
        if self.service:
            out.append(("service", self.service))
        if self.function:
            out.append(("fn", self.function))
        return out

    def qs(self, **extra: str | int | None) -> str:
        """A query string of these filters with ``extra`` pairs set (None removes),
        beginning with ``?`` (empty when there is nothing)."""
        pairs = dict(self.items())
        for key, value in extra.items():
            if value is None or value == "":
                pairs.pop(key, None)
            else:
                pairs[key] = str(value)
        return "?" + urllib.parse.urlencode(pairs) if pairs else ""
