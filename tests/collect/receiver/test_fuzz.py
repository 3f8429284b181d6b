"""Whatever the bytes, decoding answers with a message or BadData, nothing else; and
the fast OTLP/JSON path agrees with the reference path on generated documents that
look like OTLP (random keys, values and types in the right places)."""

from __future__ import annotations

import contextlib
import json
from typing import Any

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from tests.collect.receiver.otlp_data import logs_request, to_otlp_json, trace_request
from wasmscope.collect.receiver.decode import BadData, Encoding, decode
from wasmscope.collect.receiver.otlpjson import JsonError, parse_reference, parse_request
from wasmscope.collect.receiver.sink import Signal

SETTINGS = settings(max_examples=200, deadline=None, suppress_health_check=[HealthCheck.too_slow])
SEED_PB = trace_request(3).SerializeToString()
SEED_JSON = to_otlp_json(trace_request(2))


@SETTINGS
@given(st.sampled_from(list(Signal)), st.sampled_from(list(Encoding)), st.binary(max_size=300))
def test_random_bytes_decode_or_are_bad_data(signal: Signal, encoding: Encoding, body: bytes) -> None:
    with contextlib.suppress(BadData):
        decode(signal, encoding, body)


@SETTINGS
@given(st.sampled_from(list(Signal)), st.integers(0, len(SEED_PB) - 1), st.binary(min_size=1, max_size=8))
def test_corrupted_protobuf_decodes_or_is_bad_data(signal: Signal, at: int, junk: bytes) -> None:
    body = SEED_PB[:at] + junk + SEED_PB[at + len(junk):]
    with contextlib.suppress(BadData):
        decode(signal, Encoding.PROTOBUF, body)


SCALARS = st.one_of(st.none(), st.booleans(), st.integers(-(2**65), 2**65), st.floats(allow_nan=False),
                    st.text(max_size=8), st.sampled_from(["5B8EFFF798038103D269B633813FC60C", "eee19b7ec3c1b174",
                                                          "12", "-3", "NaN", "SPAN_KIND_SERVER", "\ud800", ""]))  # fmt: skip
JSON_VALUES = st.recursive(SCALARS, lambda inner: st.one_of(
    st.lists(inner, max_size=3), st.dictionaries(st.text(max_size=4), inner, max_size=3)), max_leaves=8)  # fmt: skip
ANY_VALUE = st.dictionaries(st.sampled_from(["stringValue", "intValue", "doubleValue", "boolValue", "bytesValue",
                                             "arrayValue", "kvlistValue", "string_value", "other"]),
                            JSON_VALUES, max_size=2)  # fmt: skip
KEY_VALUE = st.one_of(st.fixed_dictionaries({"key": st.one_of(st.text(max_size=4), SCALARS), "value": ANY_VALUE}),
                      JSON_VALUES)  # fmt: skip
SPAN_KEYS = ["traceId", "trace_id", "spanId", "parentSpanId", "name", "kind", "flags", "startTimeUnixNano",
             "endTimeUnixNano", "droppedAttributesCount", "traceState", "status", "events", "links", "unknown"]
LOG_KEYS = ["timeUnixNano", "observedTimeUnixNano", "severityNumber", "severityText", "body", "traceId", "spanId",
            "flags", "eventName", "event_name", "unknown"]


def items(keys: list[str]) -> Any:
    return st.builds(lambda d, attrs: {**d, **({"attributes": attrs} if attrs is not None else {})},
                     st.dictionaries(st.sampled_from(keys), st.one_of(JSON_VALUES, ANY_VALUE), max_size=5),
                     st.one_of(st.none(), st.lists(KEY_VALUE, max_size=4)))  # fmt: skip


def envelope(signal: Signal, item: Any) -> Any:
    outer, middle, inner = (("resourceSpans", "scopeSpans", "spans") if signal is Signal.TRACES
                            else ("resourceLogs", "scopeLogs", "logRecords"))  # fmt: skip
    return st.builds(lambda xs: {outer: [{"resource": {}, middle: [{"scope": {"name": "s"}, inner: xs}]}]},
                     st.lists(item, max_size=3))  # fmt: skip


def outcome(fn: Any) -> Any:
    try:
        return fn()
    except JsonError:
        return JsonError


@SETTINGS
@given(st.one_of(envelope(Signal.TRACES, items(SPAN_KEYS)).map(lambda d: (Signal.TRACES, d)),
                 envelope(Signal.LOGS, items(LOG_KEYS)).map(lambda d: (Signal.LOGS, d))))  # fmt: skip
def test_fast_json_agrees_with_the_reference(case: tuple[Signal, Any]) -> None:
    signal, doc = case
    data = json.dumps(doc).encode()
    fast = outcome(lambda: parse_request(signal, data))
    reference = outcome(lambda: parse_reference(signal, json.loads(data)))
    assert fast == reference


def test_the_seeds_decode() -> None:
    assert decode(Signal.TRACES, Encoding.JSON, SEED_JSON) == trace_request(2)
    assert decode(Signal.LOGS, Encoding.JSON, to_otlp_json(logs_request())) == logs_request()
