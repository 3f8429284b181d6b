"""Server-drawn distribution charts (SVG geometry for the templates).

Distributions are log2 buckets ``[2**k, 2**(k+1))``; a configured limit (fuel,
memory) is drawn as a marker at its place on the same log scale, so that how close
invocations run to it shows at a glance.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from typing import Any

from wasmscope.collect.dashboard import fmt

__all__ = ["HEIGHT", "WIDTH", "log2_bars"]

WIDTH, HEIGHT = 640, 180
PLOT_TOP, PLOT_BOTTOM, PLOT_LEFT, PLOT_RIGHT = 18, 150, 8, 632


def _label(value: float, unit: str) -> str:
    if unit == "ns":
        return fmt.duration(value)
    if unit == "bytes":
        return fmt.bytes_(value)
    if value >= 1e9:
        return f"{value / 1e9:.3g}G"
    if value >= 1e6:
        return f"{value / 1e6:.3g}M"
    if value >= 1e3:
        return f"{value / 1e3:.3g}k"
    return f"{value:.0f}"


def log2_bars(buckets: Sequence[tuple[int, int]], *, unit: str, limit: float | None = None) -> dict[str, Any]:
    """Bars (x, y, w, h, title) and labels of a log2 histogram, with the limit's
    marker when ``limit`` is set; ``empty`` when there is nothing to draw."""
    if not buckets:
        return {"empty": True, "bars": [], "ticks": [], "limit": None, "width": WIDTH, "height": HEIGHT}
    counts = dict(buckets)
    ks = [k for k in counts if k >= 0]
    lo = min(ks) if ks else 0
    hi = max(ks) if ks else 0
    limit_k = math.log2(limit) if limit and limit > 0 else None
    if limit_k is not None:
        hi = max(hi, math.floor(limit_k))
        lo = min(lo, math.floor(limit_k))
    has_zero = -1 in counts
    slots = ([-1] if has_zero else []) + list(range(lo, hi + 1))
    # Keep the chart readable: at most 40 bars (wide ranges are rare: fuel, bytes).
    while len(slots) > 40:
        slots = slots[:: 2]
    n = len(slots)
    width = (PLOT_RIGHT - PLOT_LEFT) / n
    top = max(counts.values())
    total = sum(counts.values())
    bars = []
    for i, k in enumerate(slots):
        c = counts.get(k, 0)
        h = (PLOT_BOTTOM - PLOT_TOP) * (c / top) if top else 0
        lower = 0.0 if k < 0 else 2.0**k
        upper = 0.0 if k < 0 else 2.0 ** (k + 1)
        span = "0" if k < 0 else f"{_label(lower, unit)} – {_label(upper, unit)}"
        bars.append({
            "x": round(PLOT_LEFT + i * width + 1, 2), "w": round(max(width - 2, 1), 2),
            "y": round(PLOT_BOTTOM - h, 2), "h": round(h, 2), "count": c,
            "title": f"{span}: {c} ({fmt.pct(c, total)})",
        })  # fmt: skip
    step = max(1, n // 6)
    ticks = [
        {"x": round(PLOT_LEFT + i * width, 2), "text": "0" if k < 0 else _label(2.0**k, unit)}
        for i, k in enumerate(slots) if i % step == 0
    ]  # fmt: skip
    marker = None
    if limit_k is not None and limit is not None:
        first = slots[1] if has_zero and len(slots) > 1 else slots[0]
        pos = (slots.index(first) + (limit_k - first)) if first in slots else 0
        x = PLOT_LEFT + min(max(pos, 0), n) * width
        marker = {"x": round(x, 2), "text": f"limit {_label(limit, unit)}", "anchor": "end" if x > WIDTH * 0.7 else "start"}
    return {"empty": False, "bars": bars, "ticks": ticks, "limit": marker, "width": WIDTH, "height": HEIGHT,
            "bottom": PLOT_BOTTOM, "total": total}  # fmt: skip
