"""W3C trace context: the one ``traceparent`` parser of wasmscope, and the trace
samplers of ``OTEL_TRACES_SAMPLER``.

Telemetry (the parent of a span), the gateway (the guest's ``TRACEPARENT``) and the
OpenTelemetry context all take a ``traceparent`` through :func:`parse_traceparent`,
so they agree on which headers continue a trace.
"""

from __future__ import annotations

import re
from collections.abc import Callable
from typing import NamedTuple

from wasmscope.telemetry import _otlp_env

__all__ = ["TraceParent", "make_sampler", "parse_traceparent", "valid_traceparent"]

# version "-" trace-id "-" parent-id "-" trace-flags, then more fields in a future version
_TRACEPARENT = re.compile(r"[0-9a-f]{2}-[0-9a-f]{32}-[0-9a-f]{16}-[0-9a-f]{2}(?:-.*)?", re.DOTALL)
_new = tuple.__new__  # a TraceParent without NamedTuple's __new__ (once per request)


class TraceParent(NamedTuple):
    """The fields of a valid ``traceparent`` as integers."""

    trace_id: int
    span_id: int  # the parent-id: the caller's span
    flags: int  # trace-flags: bit 0 sampled (level 1), bit 1 random trace id (level 2)


def parse_traceparent(value: str | None) -> TraceParent | None:
    """The fields of a W3C ``traceparent`` header value; None when it is absent or
    invalid (W3C: an invalid traceparent starts a new trace).

    Per W3C Trace Context (Level 1 and Level 2, section 3.2 "traceparent Header",
    https://www.w3.org/TR/trace-context-2/#traceparent-header):

    - every field is lower-case hex (``HEXDIGLC``): an upper-case value is invalid,
      although the header's *name* is case-insensitive (HTTP; the gateway compares
      names lower-cased);
    - version ``ff`` is invalid; version ``00`` is exactly 55 characters (more is
      invalid);
    - a higher version is parsed for its first four fields, which must each be
      followed by ``-`` or the end (section 3.2.4 "Versioning of traceparent");
      what follows the flags is ignored;
    - an all-zero trace-id or parent-id is invalid.

    Surrounding whitespace (HTTP's optional whitespace) is ignored.
    """
    if not value:
        return None
    if _TRACEPARENT.fullmatch(value) is None:
        value = value.strip()
        if _TRACEPARENT.fullmatch(value) is None:
            return None
    version = value[:2]
    if version == "ff" or (version == "00" and len(value) != 55):
        return None
    trace_id, span_id = int(value[3:35], 16), int(value[36:52], 16)
    if not trace_id or not span_id:
        return None
    return _new(TraceParent, (trace_id, span_id, int(value[53:55], 16)))


def valid_traceparent(value: str | None) -> str | None:
    """``value`` without surrounding whitespace when :func:`parse_traceparent`
    accepts it (what the gateway hands the guest); None otherwise."""
    if parse_traceparent(value) is None:
        return None
    return value.strip() if value else None


def make_sampler(
    name: str | None = None, arg: str | None = None
) -> Callable[[int, int | None], bool]:
    """``sampled(trace_id, parent_flags_or_None)`` per ``OTEL_TRACES_SAMPLER`` /
    ``OTEL_TRACES_SAMPLER_ARG`` (the SDK's samplers; default ``parentbased_always_on``)."""
    env_name, env_arg = _otlp_env.sampler()
    name = (name.strip().lower() or "parentbased_always_on") if name is not None else env_name
    raw = arg if arg is not None else env_arg
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
