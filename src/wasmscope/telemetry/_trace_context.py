"""W3C trace context and the trace samplers of ``OTEL_TRACES_SAMPLER``."""

from __future__ import annotations

import os
from collections.abc import Callable

__all__ = ["make_sampler", "parse_traceparent"]


def parse_traceparent(value: str | None) -> tuple[int, int, int] | None:
    """``(trace_id, parent_span_id, flags)`` of a valid W3C ``traceparent``; None otherwise."""
    if not value:
        return None
    parts = value.strip().split("-")
    if (
        len(parts) < 4
        or len(parts[0]) != 2
        or len(parts[1]) != 32
        or len(parts[2]) != 16
        or len(parts[3]) != 2
    ):
        return None
    if parts[0] == "ff" or (parts[0] == "00" and len(parts) != 4):
        return None
    try:
        trace_id, span_id, flags = int(parts[1], 16), int(parts[2], 16), int(parts[3], 16)
        int(parts[0], 16)
    except ValueError:
        return None
    if not trace_id or not span_id:
        return None
    return trace_id, span_id, flags


def make_sampler(
    name: str | None = None, arg: str | None = None
) -> Callable[[int, int | None], bool]:
    """``sampled(trace_id, parent_flags_or_None)`` per ``OTEL_TRACES_SAMPLER`` /
    ``OTEL_TRACES_SAMPLER_ARG`` (the SDK's samplers; default ``parentbased_always_on``)."""
    name = (
        name if name is not None else os.environ.get("OTEL_TRACES_SAMPLER", "")
    ).strip().lower() or "parentbased_always_on"
    raw = arg if arg is not None else os.environ.get("OTEL_TRACES_SAMPLER_ARG")
    try:
        rate = min(max(float(raw), 0.0), 1.0) if raw else 1.0
    except ValueError:
        rate = 1.0
    bound = round(rate * (1 << 64))

    def ratio(trace_id: int) -> bool:
        return (trace_id & 0xFFFFFFFFFFFFFFFF) < bound

    root: Callable[[int], bool]
    if name.endswith("always_off"):
        root = lambda _t: False  # noqa: E731
    elif name.endswith("traceidratio"):
        root = ratio
    else:
        root = lambda _t: True  # noqa: E731
    if not name.startswith("parentbased"):
        return lambda trace_id, _flags: root(trace_id)
    return lambda trace_id, flags: root(trace_id) if flags is None else bool(flags & 1)
