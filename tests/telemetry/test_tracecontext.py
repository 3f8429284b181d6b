"""The one W3C ``traceparent`` parser, with the cases of the W3C Trace Context spec
(https://www.w3.org/TR/trace-context-2/#traceparent-header), and the places that
use it agreeing: telemetry's parent, the OpenTelemetry context, the guest's
``TRACEPARENT``."""

from __future__ import annotations

from typing import Any

import pytest

from wasmscope.gateway.wagi import cgi_environ
from wasmscope.telemetry import context_from_traceparent
from wasmscope.telemetry.direct import DirectPipeline
from wasmscope.telemetry.tracecontext import TraceParent, parse_traceparent, valid_traceparent

TRACE = "4bf92f3577b34da6a3ce929d0e0e4736"
SPAN = "00f067aa0ba902b7"
SPEC_EXAMPLE = f"00-{TRACE}-{SPAN}-01"  # the spec's example

VALID = {
    SPEC_EXAMPLE: TraceParent(int(TRACE, 16), int(SPAN, 16), 1),
    f"00-{TRACE}-{SPAN}-00": TraceParent(int(TRACE, 16), int(SPAN, 16), 0),  # not sampled
    f"00-{TRACE}-{SPAN}-03": TraceParent(
        int(TRACE, 16), int(SPAN, 16), 3
    ),  # level 2: random trace id
    f"  {SPEC_EXAMPLE}\t": TraceParent(
        int(TRACE, 16), int(SPAN, 16), 1
    ),  # HTTP's optional whitespace
    # a future version: the first four fields, the rest ignored (section 3.2.4)
    f"cc-{TRACE}-{SPAN}-01-what-the-future-will-be-like": TraceParent(
        int(TRACE, 16), int(SPAN, 16), 1
    ),
    f"01-{TRACE}-{SPAN}-09": TraceParent(int(TRACE, 16), int(SPAN, 16), 9),
}
INVALID = [
    None,
    "",
    "garbage",
    f"ff-{TRACE}-{SPAN}-01",  # version ff is forbidden
    f"00-{TRACE}-{SPAN}-01-extra",  # version 00 is exactly 55 characters
    f"00-{TRACE}-{SPAN}-01-",
    f"00-{TRACE.upper()}-{SPAN}-01",  # upper-case hex is not HEXDIGLC
    f"00-{TRACE}-{SPAN.upper()}-01",
    f"0A-{TRACE}-{SPAN}-01",
    f"00-{TRACE}-{SPAN}-0A",
    f"00-{'0' * 32}-{SPAN}-01",  # all-zero trace-id
    f"00-{TRACE}-{'0' * 16}-01",  # all-zero parent-id
    f"00-{TRACE[:-1]}g-{SPAN}-01",  # not hex
    f"00-{TRACE[:-1]}-{SPAN}-01",  # too short a trace-id
    f"00-{TRACE}0-{SPAN}-01",  # too long a trace-id
    f"00-{TRACE}-{SPAN}-1",
    f"0-{TRACE}-{SPAN}-01",
    f"00_{TRACE}_{SPAN}_01",
    f"cc-{TRACE}-{SPAN}-01.what",  # a future version: the flags end the value or a dash follows
    f"cc-{TRACE}-{SPAN}-0",  # a future version shorter than 55 characters
    f"00-{TRACE}-{SPAN}",
]


@pytest.mark.parametrize("value", list(VALID))
def test_valid_traceparents(value: str) -> None:
    assert parse_traceparent(value) == VALID[value]
    assert valid_traceparent(value) == value.strip()


@pytest.mark.parametrize("value", INVALID)
def test_invalid_traceparents(value: str | None) -> None:
    assert parse_traceparent(value) is None
    assert valid_traceparent(value) is None


@pytest.mark.parametrize("value", [*VALID, *(v for v in INVALID if v)])
def test_the_opentelemetry_context_agrees(value: str) -> None:
    from opentelemetry import trace

    ctx = context_from_traceparent(value, "k=v")
    parsed = parse_traceparent(value)
    if parsed is None:
        assert ctx is None
        return
    assert ctx is not None
    sc = trace.get_current_span(ctx).get_span_context()
    assert (sc.trace_id, sc.span_id, int(sc.trace_flags), sc.is_remote) == (*parsed, True)
    assert sc.trace_state.get("k") == "v"


def _scope(headers: list[tuple[bytes, bytes]]) -> dict[str, Any]:
    return {
        "type": "http",
        "method": "GET",
        "path": "/x",
        "query_string": b"",
        "headers": headers,
        "server": ("127.0.0.1", 8080),
    }


@pytest.mark.parametrize(
    "value", [SPEC_EXAMPLE, f"00-{TRACE.upper()}-{SPAN}-01", f"cc-{TRACE}-{SPAN}-01-future"]
)
def test_the_guest_and_telemetry_agree(value: str) -> None:
    """A header name in any case; the guest gets TRACEPARENT exactly when telemetry
    continues the trace."""
    env = cgi_environ(
        _scope([(b"TraceParent", value.encode())]),
        route_path="/x",
        script_name="/x",
        path_info_raw="",
        content_length=0,
    )
    pipe = DirectPipeline(sync_sinks=[], batch_sinks=[], max_log_lines=10, max_log_bytes=1000)
    span = pipe.start_request("GET /x", {}, value)
    continued = span.parent_span_id != 0
    assert continued == (parse_traceparent(value) is not None)
    assert ("TRACEPARENT" in env) == continued
    if continued:
        assert env["TRACEPARENT"] == value and f"{span.trace_id:032x}" == TRACE
