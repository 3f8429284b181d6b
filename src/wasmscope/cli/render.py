"""Plain-text output for the terminal: aligned tables, human sizes, optional
colour and a progress bar. Standard library only.

Colour is used only when the stream is a terminal, ``NO_COLOR`` is unset (or
empty) and ``TERM`` is not ``dumb``; see https://no-color.org.
"""

from __future__ import annotations

import math
import os
import shutil
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import ClassVar, TextIO

__all__ = [
    "Column",
    "ProgressBar",
    "Style",
    "Table",
    "bytes_text",
    "count_text",
    "duration_text",
    "fmt_int",
    "human_bytes",
    "percent",
    "seconds_text",
    "shorten",
    "usd",
]

_UNITS = ("KiB", "MiB", "GiB", "TiB")


def human_bytes(n: int | float) -> str:
    """``512 B``, ``1.2 KiB``, ``65.7 MiB`` (binary units, one decimal)."""
    if n < 1024:
        return f"{int(n)} B"
    value = float(n)
    for unit in _UNITS:
        value /= 1024
        if value < 1024 or unit == _UNITS[-1]:
            return f"{value:.1f} {unit}"
    raise AssertionError("unreachable")


def fmt_int(n: int) -> str:
    """``1,234,567``."""
    return f"{n:,}"


def percent(part: int | float, whole: int | float) -> str:
    """``12.3%``; ``<0.1%`` for a tiny non-zero share, ``-`` when whole is 0."""
    if whole <= 0:
        return "-"
    share = 100.0 * part / whole
    if 0 < share < 0.05:
        return "<0.1%"
    return f"{share:.1f}%"


def shorten(text: str, width: int) -> str:
    """``text`` cut to ``width`` characters, ending with an ellipsis if cut."""
    if width <= 0 or len(text) <= width:
        return text
    if width == 1:
        return "…"
    return text[: width - 1] + "…"


class Style:
    """ANSI styling that is a no-op when disabled."""

    _CODES: ClassVar[dict[str, str]] = {"bold": "1", "dim": "2", "red": "31", "green": "32", "yellow": "33", "cyan": "36"}

    def __init__(self, enabled: bool) -> None:
        self.enabled = enabled

    @classmethod
    def for_stream(cls, stream: TextIO, environ: dict[str, str] | None = None) -> Style:
        env = os.environ if environ is None else environ
        if env.get("NO_COLOR"):
            return cls(False)
        if env.get("TERM") == "dumb":
            return cls(False)
        try:
            tty = stream.isatty()
        except (AttributeError, ValueError):
            tty = False
        return cls(tty)

    def _wrap(self, code: str, text: str) -> str:
        if not self.enabled or not text:
            return text
        return f"\x1b[{code}m{text}\x1b[0m"

    def bold(self, text: str) -> str:
        return self._wrap(self._CODES["bold"], text)

    def dim(self, text: str) -> str:
        return self._wrap(self._CODES["dim"], text)

    def red(self, text: str) -> str:
        return self._wrap(self._CODES["red"], text)

    def green(self, text: str) -> str:
        return self._wrap(self._CODES["green"], text)

    def yellow(self, text: str) -> str:
        return self._wrap(self._CODES["yellow"], text)

    def cyan(self, text: str) -> str:
        return self._wrap(self._CODES["cyan"], text)

    def heading(self, text: str) -> str:
        return self.bold(text)


@dataclass(slots=True)
class Column:
    header: str
    align: str = "<"  # "<" left, ">" right
    max_width: int = 0  # 0: no limit; longer cells are cut with an ellipsis
    style: Callable[[str], str] | None = None  # applied after padding (colour)


class Table:
    """Rows of plain strings rendered as aligned columns under a header."""

    def __init__(self, columns: Sequence[Column | str], gap: int = 2) -> None:
        self.columns = [c if isinstance(c, Column) else Column(c) for c in columns]
        self.rows: list[list[str]] = []
        self.gap = gap

    def add(self, *cells: object) -> None:
        if len(cells) != len(self.columns):
            raise ValueError(f"row has {len(cells)} cells, table has {len(self.columns)} columns")
        self.rows.append(["" if c is None else str(c) for c in cells])

    def __len__(self) -> int:
        return len(self.rows)

    def render(self, style: Style | None = None, indent: int = 2) -> list[str]:
        style = style or Style(False)
        cols = self.columns
        rows = [[shorten(cell, c.max_width) for cell, c in zip(row, cols, strict=True)] for row in self.rows]
        widths = [len(c.header) for c in cols]
        for row in rows:
            for i, cell in enumerate(row):
                widths[i] = max(widths[i], len(cell))
        pad = " " * indent
        sep = " " * self.gap

        def line(cells: Sequence[str], header: bool) -> str:
            parts = []
            last = len(cells) - 1
            for i, (cell, col) in enumerate(zip(cells, cols, strict=True)):
                text = cell.rjust(widths[i]) if col.align == ">" else cell.ljust(widths[i])
                if i == last and col.align != ">":
                    text = text.rstrip()
                if header:
                    text = style.dim(text)
                elif col.style is not None and style.enabled:
                    text = col.style(text)
                parts.append(text)
            return (pad + sep.join(parts)).rstrip()

        out = [line([c.header for c in cols], True)]
        out.extend(line(row, False) for row in rows)
        return out


class ProgressBar:
    """A one-line progress bar on a terminal stream, redrawn at most every
    ``interval`` seconds; ``update(done, total)`` matches the
    ``progress(done_bytes, total_bytes)`` callbacks of the decoder."""

    def __init__(self, stream: TextIO, label: str = "", interval: float = 0.1) -> None:
        self.stream = stream
        self.label = label
        self.interval = interval
        self._last = 0.0
        self._start = time.monotonic()
        self._drawn = False

    def update(self, done: int, total: int) -> None:
        now = time.monotonic()
        if done < total and now - self._last < self.interval:
            return
        self._last = now
        self._draw(done, total, now)

    def _draw(self, done: int, total: int, now: float) -> None:
        cols = shutil.get_terminal_size((80, 20)).columns
        frac = 0.0 if total <= 0 else min(max(done / total, 0.0), 1.0)
        elapsed = now - self._start
        eta = ""
        if 0 < frac < 1 and elapsed > 0.5:
            eta = f" ETA {elapsed * (1 - frac) / frac:.0f}s"
        tail = f" {frac * 100:3.0f}%  {human_bytes(done)}/{human_bytes(total)}{eta}"
        room = max(cols - len(tail) - 3 - 12, 0)  # keep a bar of 10 at least
        head = f"{shorten(self.label, room)} " if self.label and room > 1 else ""
        width = max(cols - len(head) - len(tail) - 3, 10)
        filled = int(width * frac)
        bar = "#" * filled + "-" * (width - filled)
        text = f"\r{head}[{bar}]{tail}"
        try:
            self.stream.write(text[: cols + 1] + "\x1b[K")
            self.stream.flush()
        except (OSError, ValueError):
            return
        self._drawn = True

    def close(self) -> None:
        """Erase the bar so that the report starts on a clean line."""
        if self._drawn:
            try:
                self.stream.write("\r\x1b[K")
                self.stream.flush()
            except (OSError, ValueError):
                pass
            self._drawn = False


# -- cost figures (cost summary, recommend) --------------------------------------------
def seconds_text(x: float) -> str:
    if not math.isfinite(x):
        return "-"
    if x < 1e-3:
        return f"{x * 1e6:.0f} µs"
    if x < 1:
        return f"{x * 1e3:.2f} ms" if x < 0.01 else f"{x * 1e3:.1f} ms"
    return f"{x:.2f} s"


def count_text(x: float) -> str:
    if not math.isfinite(x):
        return "-"
    for unit, size in (("G", 1e9), ("M", 1e6), ("k", 1e3)):
        if x >= size:
            return f"{x / size:.3g}{unit}"
    return f"{x:.0f}"


def bytes_text(x: float) -> str:
    return human_bytes(x) if math.isfinite(x) else "-"


def usd(x: float | None) -> str:
    """``$12.34``, ``$0.0420``, ``$0.000000201`` (three significant digits below a cent)."""
    if x is None or not math.isfinite(x):
        return "-"
    if x == 0:
        return "$0"
    if x >= 1:
        return f"${x:,.2f}"
    if x >= 0.01:
        return f"${x:.4f}"
    digits = -math.floor(math.log10(x)) + 2
    return f"${x:.{digits}f}"


def duration_text(seconds: float) -> str:
    if seconds < 120:
        return f"{seconds:.1f} s"
    if seconds < 7200:
        return f"{seconds / 60:.1f} min"
    if seconds < 172800:
        return f"{seconds / 3600:.1f} h"
    return f"{seconds / 86400:.1f} days"
