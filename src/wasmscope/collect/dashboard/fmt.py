"""Number, time and size formatting for the templates (Jinja filters)."""

from __future__ import annotations

import datetime as dt
import math
from collections.abc import Callable
from typing import Any

__all__ = ["FILTERS", "bytes_", "duration", "num", "pct", "rate", "ts", "usd"]


def duration(ns: Any) -> str:
    """Nanoseconds as a short human duration ("840 µs", "12.4 ms", "3.20 s")."""
    if ns is None or ns != ns:  # None or NaN
        return "–"
    ns = float(ns)
    if ns < 1_000:
        return f"{ns:.0f} ns"
    if ns < 1_000_000:
        return f"{ns / 1e3:.3g} µs"
    if ns < 1_000_000_000:
        return f"{ns / 1e6:.3g} ms"
    if ns < 600e9:
        return f"{ns / 1e9:.3g} s"
    return f"{ns / 60e9:.1f} min"


def bytes_(n: Any) -> str:
    if n is None or n == "":
        return "–"
    n = float(n)
    for unit in ("B", "KiB", "MiB", "GiB", "TiB"):
        if abs(n) < 1024 or unit == "TiB":
            return f"{n:.0f} {unit}" if unit == "B" else f"{n:.3g} {unit}"
        n /= 1024
    return f"{n} B"  # pragma: no cover


def num(n: Any) -> str:
    """An integer with thin thousands separators, or a float with 3 digits."""
    if n is None or n == "":
        return "–"
    if isinstance(n, float) and not n.is_integer():
        return f"{n:.3g}"
    return f"{int(n):,}".replace(",", "\u202f")


def pct(part: Any, whole: Any = None) -> str:
    """``part`` / ``whole`` (or ``part`` as a fraction) as a percentage."""
    if whole is not None:
        if not whole:
            return "–"
        part = float(part) / float(whole)
    if part is None:
        return "–"
    value = float(part) * 100
    if value == 0:
        return "0%"
    return f"{value:.2g}%" if value < 10 else f"{value:.0f}%"


def rate(count: Any, seconds: Any) -> str:
    """Events over seconds as "12.3/s" or "4.0/min"."""
    if not seconds:
        return "–"
    per_s = float(count) / float(seconds)
    if per_s >= 1 or per_s == 0:
        return f"{per_s:.3g}/s"
    if per_s * 60 >= 1:
        return f"{per_s * 60:.3g}/min"
    return f"{per_s * 3600:.3g}/h"


def ts(value: Any, precise: bool = False) -> str:
    """A datetime or unix nanoseconds as UTC text."""
    if value is None or value == "":
        return "–"
    if isinstance(value, int | float):
        value = dt.datetime.fromtimestamp(value / 1e9, dt.UTC)
    if isinstance(value, dt.datetime):
        if value.tzinfo is None:
            value = value.replace(tzinfo=dt.UTC)
        when: dt.datetime = value.astimezone(dt.UTC)
        return when.strftime("%Y-%m-%d %H:%M:%S.%f")[:-3] if precise else when.strftime("%Y-%m-%d %H:%M:%S")
    return str(value)


def usd(value: Any) -> str:
    """US dollars with three significant digits below a cent, never in exponent form
    ("$0.00000210", "$0.0123", "$1,234.56")."""
    if value is None or value != value:  # None or NaN
        return "–"
    x = float(value)
    if x == 0:
        return "$0"
    sign = "-" if x < 0 else ""
    x = abs(x)
    if x >= 1:
        return f"{sign}${x:,.2f}"
    digits = min(max(2 - math.floor(math.log10(x)), 2), 14)
    return f"{sign}${x:.{digits}f}"


def short(text: Any, n: int = 12) -> str:
    s = str(text or "")
    return s if len(s) <= n else s[:n] + "…"


FILTERS: dict[str, Callable[..., Any]] = {
    "duration": duration,
    "bytes": bytes_,
    "num": num,
    "pct": pct,
    "rate": rate,
    "ts": ts,
    "short": short,
    "usd": usd,
}
