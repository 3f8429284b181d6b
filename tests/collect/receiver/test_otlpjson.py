"""otlpjson: the fast path for spans and log records decodes every document exactly
as the reference path (hex ids rewritten, then json_format.ParseDict) does, and
fails where it fails; the unusual forms fall back item by item."""

from __future__ import annotations

import copy
import json
from typing import Any

import pytest

from tests.collect.receiver.otlp_data import (
    child_spans_request,
    logs_request,
    to_otlp_json,
    trace_request,
)
from tests.collect.receiver.sdk_data import encode_logs, encode_spans, sdk_logs, sdk_spans
from wasmscope.collect.receiver import otlpjson
from wasmscope.collect.receiver.otlpjson import JsonError, parse_reference, parse_request
from wasmscope.collect.receiver.sink import Signal

TID = "5B8EFFF798038103D269B633813FC60C"
SID = "eee19b7ec3c1b174"


def both(signal: Signal, doc: Any) -> tuple[Any, Any]:
    """(fast, reference) decodings of ``doc``; each an exception class when it fails."""
    data = json.dumps(doc).encode()
    results = []
    for decode in (lambda: parse_request(signal, data), lambda: parse_reference(signal, json.loads(data))):
        try:
            results.append(decode())
        except JsonError:
            results.append(JsonError)
    return results[0], results[1]


def spans_doc(*spans: dict[str, Any], resource: Any = None) -> dict[str, Any]:
    rs: dict[str, Any] = {"scopeSpans": [{"scope": {"name": "s"}, "spans": list(spans)}]}
    if resource is not None:
        rs["resource"] = resource
    return {"resourceSpans": [rs]}


def logs_doc(*records: dict[str, Any]) -> dict[str, Any]:
    return {"resourceLogs": [{"scopeLogs": [{"logRecords": list(records)}]}]}


SPAN = {"traceId": TID, "spanId": SID, "name": "n", "kind": 2, "startTimeUnixNano": "1544712660000000000",
        "endTimeUnixNano": 1544712661000000000, "attributes": [{"key": "a", "value": {"stringValue": "b"}}]}  # fmt: skip


@pytest.mark.parametrize(
    ("signal", "message"),
    [(Signal.TRACES, trace_request(50)), (Signal.TRACES, child_spans_request()), (Signal.LOGS, logs_request()),
     (Signal.TRACES, encode_spans(sdk_spans())), (Signal.LOGS, encode_logs(sdk_logs()))],
)  # fmt: skip
def test_real_requests_decode_alike(signal: Signal, message: Any) -> None:
    doc = json.loads(to_otlp_json(message))
    fast, reference = both(signal, doc)
    assert fast == reference == message


SPAN_VARIANTS: list[dict[str, Any]] = [
    {},
    {"trace_id": TID, "span_id": SID, "parent_span_id": SID, "start_time_unix_nano": 5},  # original names
    {"kind": "SPAN_KIND_SERVER"},  # an enum name
    {"kind": 99},  # an unknown enum number (proto3 enums are open)
    {"kind": "SPAN_KIND_FUTURE"},  # an unknown enum name: ignored
    {"kind": 1.0},
    {"kind": None},
    {"name": None},
    {"name": 5},
    {"name": "\ud800"},  # a lone surrogate: not UTF-8
    {"attributes": [{"key": "\udfff", "value": {"stringValue": "v"}}]},
    {"attributes": [{"key": "k", "value": {"stringValue": "\udfff"}}]},
    {"flags": "7"},
    {"flags": -1},
    {"flags": 1 << 32},
    {"startTimeUnixNano": "-1"},
    {"startTimeUnixNano": str(1 << 64)},
    {"startTimeUnixNano": 1.5e18},
    {"startTimeUnixNano": "1e3"},
    {"startTimeUnixNano": " 12"},
    {"startTimeUnixNano": "٣"},  # a non-ASCII digit
    {"startTimeUnixNano": True},
    {"traceId": "zz"},
    {"traceId": 12},
    {"traceId": None},
    {"traceId": "abc"},
    {"traceId": ""},
    {"traceId": TID, "trace_id": TID},  # both spellings
    {"futureField": {"x": [1, 2]}},
    {"attributes": None},
    {"attributes": {}},
    {"attributes": ["x"]},
    {"attributes": ["\ud800"]},  # upb raised a bare SystemError (found by Hypothesis)
    {"attributes": [None]},
    {"attributes": [{"key": "k"}]},
    {"attributes": [{"key": 1, "value": {"stringValue": "v"}}]},
    {"attributes": [{"key": "k", "value": {}}]},
    {"attributes": [{"key": "k", "value": None}]},
    {"attributes": [{"key": "k", "value": {"stringValue": "v", "intValue": 1}}]},
    {"attributes": [{"key": "k", "value": {"intValue": "12"}}, {"key": "j", "value": {"int_value": -3}}]},
    {"attributes": [{"key": "k", "value": {"intValue": str(1 << 63)}}]},
    {"attributes": [{"key": "k", "value": {"intValue": 1.0}}]},
    {"attributes": [{"key": "k", "value": {"doubleValue": "NaN"}}, {"key": "j", "value": {"doubleValue": 3}}]},
    {"attributes": [{"key": "k", "value": {"doubleValue": "Infinity"}}]},
    {"attributes": [{"key": "k", "value": {"boolValue": "true"}}, {"key": "j", "value": {"bool_value": False}}]},
    {"attributes": [{"key": "k", "value": {"bytesValue": "AP8="}}]},
    {"attributes": [{"key": "k", "value": {"bytesValue": "not base64!"}}]},
    {"attributes": [{"key": "k", "value": {"arrayValue": {"values": [{"stringValue": "a"}, {"intValue": 1}]}}}]},
    {"attributes": [{"key": "k", "value": {"kvlistValue": {"values": [{"key": "n", "value": {"boolValue": True}}]}}}]},
    {"attributes": [{"key": "k", "value": {"stringValue": "v"}, "extra": 1}]},
    {"events": [{"name": "e", "timeUnixNano": "3", "attributes": [{"key": "k", "value": {"stringValue": "v"}}]}]},
    {"events": [{"name": "e", "time_unix_nano": 3, "droppedAttributesCount": 2}]},
    {"events": [None]},
    {"events": {}},
    {"links": [{"traceId": TID, "spanId": SID, "traceState": "a=b", "flags": 1}]},
    {"links": [{"trace_id": TID.lower(), "span_id": SID.upper()}]},
    {"links": [{"traceId": "xyz"}]},
    {"links": [{"traceId": 5}]},
    {"status": {"code": 2, "message": "boom"}},
    {"status": {"code": "STATUS_CODE_ERROR"}},
    {"status": None},
    {"status": {}},
    {"status": "bad"},
    {"droppedAttributesCount": "3", "droppedEventsCount": 1, "droppedLinksCount": -1},
]


@pytest.mark.parametrize("variant", SPAN_VARIANTS, ids=lambda v: json.dumps(v)[:60])
def test_span_variants_decode_or_fail_alike(variant: dict[str, Any]) -> None:
    span = {**SPAN, **variant}
    doc = spans_doc(copy.deepcopy(SPAN), span, copy.deepcopy(SPAN))
    fast, reference = both(Signal.TRACES, doc)
    assert fast == reference


LOG_VARIANTS: list[dict[str, Any]] = [
    {},
    {"body": {"stringValue": "hello"}, "severityNumber": 9, "severityText": "INFO", "timeUnixNano": "1"},
    {"body": {"kvlistValue": {"values": [{"key": "k", "value": {"bytesValue": "AQ=="}}]}}},
    {"body": {"arrayValue": {}}},
    {"body": None},
    {"body": {}},
    {"severityNumber": "SEVERITY_NUMBER_WARN"},
    {"severity_number": 13, "observed_time_unix_nano": "2", "dropped_attributes_count": 1},
    {"traceId": TID, "spanId": SID, "flags": 1},
    {"trace_id": TID, "span_id": "zz"},
    {"traceId": "", "spanId": ""},
    {"eventName": "wasmscope.profile"},
    {"body": {"stringValue": "\udfff"}},
    {"event_name": 3},
    {"attributes": [{"key": "k", "value": {"doubleValue": 1.5}}]},
    {"unknown": None},
]


@pytest.mark.parametrize("variant", LOG_VARIANTS, ids=lambda v: json.dumps(v)[:60])
def test_log_variants_decode_or_fail_alike(variant: dict[str, Any]) -> None:
    record = {"timeUnixNano": "10", "body": {"stringValue": "x"}, **variant}
    fast, reference = both(Signal.LOGS, logs_doc({"body": {"intValue": 1}}, record))
    assert fast == reference


ENVELOPES: list[Any] = [
    {},
    {"resourceSpans": None},
    {"resourceSpans": []},
    {"resourceSpans": [None]},
    {"resourceSpans": [{}]},
    {"resourceSpans": [{"scopeSpans": None}]},
    {"resourceSpans": [{"scopeSpans": [{"spans": None}]}]},
    {"resourceSpans": [{"scopeSpans": [{"spans": [None]}]}]},
    {"resourceSpans": [{"scopeSpans": [{"spans": "x"}]}]},
    {"resourceSpans": [{"scopeSpans": ["x"]}]},
    {"resourceSpans": "x"},
    {"resourceSpans": [{"scopeSpans": [{"spans": [SPAN]}]}], "resource_spans": []},  # both spellings
    {"resource_spans": [{"scope_spans": [{"spans": [SPAN], "schema_url": "u"}], "schemaUrl": "v"}]},
    {"resourceSpans": [{"scopeSpans": [{"spans": [SPAN]}], "scope_spans": [{"spans": [SPAN]}]}]},
    {"resourceSpans": [{"resource": {"attributes": [{"key": "service.name", "value": {"stringValue": "s"}}],
                                     "droppedAttributesCount": 1}, "scopeSpans": [{"spans": [SPAN]}]}]},
    {"resourceSpans": [{"resource": "bad", "scopeSpans": [{"spans": [SPAN]}]}]},
    {"resourceSpans": [{"scopeSpans": [{"scope": {"name": 3}, "spans": [SPAN]}]}]},
    # a span that falls back, then an envelope the fast path cannot read: the document
    # must reach the reference path unchanged (ids still hex)
    {"resourceSpans": [{"scopeSpans": [{"spans": [{**SPAN, "kind": "SPAN_KIND_CLIENT",
                                                   "links": [{"traceId": TID, "spanId": SID}]}]}]}, None]},
    {"resourceSpans": [{"scopeSpans": [{"spans": [{**SPAN, "kind": "SPAN_KIND_CLIENT"}]}]},
                       {"scopeSpans": [{"spans": [SPAN]}], "scope_spans": []}]},
]  # fmt: skip


@pytest.mark.parametrize("doc", ENVELOPES, ids=lambda v: json.dumps(v)[:60])
def test_envelopes_decode_or_fail_alike(doc: Any) -> None:
    fast, reference = both(Signal.TRACES, doc)
    assert fast == reference


def test_the_fallback_case_above_decodes_its_ids() -> None:
    doc = ENVELOPES[-1]
    fast, _ = both(Signal.TRACES, doc)
    assert fast is not JsonError
    assert fast.resource_spans[0].scope_spans[0].spans[0].trace_id.hex() == TID.lower()


def test_the_fast_path_really_is_taken(monkeypatch: pytest.MonkeyPatch) -> None:
    """Without this, the equivalence tests would pass with no fast path at all."""

    def no_reference(signal: Signal, doc: Any) -> Any:
        raise AssertionError("the reference path was taken")

    monkeypatch.setattr(otlpjson, "parse_reference", no_reference)
    message = trace_request(20)
    assert parse_request(Signal.TRACES, to_otlp_json(message)) == message
    assert parse_request(Signal.LOGS, to_otlp_json(logs_request())) == logs_request()
