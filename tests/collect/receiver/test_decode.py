"""decode: media types, content codings with bounded inflation, binary protobuf and
OTLP/JSON (hex ids, proto3 JSON's leniencies) for each signal."""

from __future__ import annotations

import functools
import gzip
import json
import zlib
from collections.abc import Iterator
from typing import Any

import pytest

from tests.collect.receiver.otlp_data import (
    child_spans_request,
    logs_request,
    metrics_request,
    to_otlp_json,
    trace_request,
)
from wasmscope.collect.receiver.decode import (
    MIB,
    BadData,
    Encoding,
    Limits,
    TooLarge,
    UnsupportedMedia,
    coding_of,
    decode,
    decode_body,
    encoding_of,
    inflate,
)
from wasmscope.collect.receiver.sink import Signal

REQUESTS = [(Signal.TRACES, child_spans_request), (Signal.METRICS, metrics_request), (Signal.LOGS, logs_request)]


@pytest.mark.parametrize(("signal", "make"), REQUESTS)
def test_protobuf_and_json_decode_to_the_message_sent(signal: Signal, make: Any) -> None:
    sent = make()
    assert decode(signal, Encoding.PROTOBUF, sent.SerializeToString()) == sent
    assert decode(signal, Encoding.JSON, to_otlp_json(sent)) == sent


def test_json_ids_are_hex_in_any_case_and_in_links() -> None:
    doc = {"resourceSpans": [{"scopeSpans": [{"spans": [{
        "traceId": "5B8EFFF798038103D269B633813FC60C", "spanId": "eee19b7ec3c1b174",
        "parentSpanId": "", "name": "x", "kind": 2, "startTimeUnixNano": "1544712660000000000",
        "endTimeUnixNano": 1544712661000000000,
        "links": [{"traceId": "0af7651916cd43dd8448eb211c80319c", "spanId": "B7AD6B7169203331"}],
    }]}]}]}  # fmt: skip
    req: Any = decode(Signal.TRACES, Encoding.JSON, json.dumps(doc).encode())
    span = req.resource_spans[0].scope_spans[0].spans[0]
    assert span.trace_id == bytes.fromhex("5b8efff798038103d269b633813fc60c")
    assert span.span_id == bytes.fromhex("eee19b7ec3c1b174")
    assert span.parent_span_id == b""
    assert span.kind == 2
    assert span.start_time_unix_nano == 1544712660000000000  # int64 as a string
    assert span.end_time_unix_nano == 1544712661000000000  # ... and as a number
    assert span.links[0].span_id == bytes.fromhex("b7ad6b7169203331")


def test_json_takes_original_field_names_enum_names_and_ignores_unknown_fields() -> None:
    doc = {"resource_logs": [{"scope_logs": [{"log_records": [{
        "trace_id": "5b8efff798038103d269b633813fc60c", "span_id": "eee19b7ec3c1b174",
        "severityNumber": "SEVERITY_NUMBER_WARN", "body": {"bytesValue": "AP8="},
        "aFieldFromTheFuture": {"x": 1},
    }]}], "unknownTopLevel": 3}]}  # fmt: skip
    req: Any = decode(Signal.LOGS, Encoding.JSON, json.dumps(doc).encode())
    rec = req.resource_logs[0].scope_logs[0].log_records[0]
    assert rec.trace_id.hex() == "5b8efff798038103d269b633813fc60c"
    assert rec.span_id.hex() == "eee19b7ec3c1b174"
    assert rec.severity_number == 13
    assert rec.body.bytes_value == b"\x00\xff"  # AnyValue bytes stay base64 (proto3 JSON)


def test_json_exemplar_ids_are_hex() -> None:
    req: Any = decode(Signal.METRICS, Encoding.JSON, to_otlp_json(metrics_request()))
    ex = req.resource_metrics[0].scope_metrics[0].metrics[1].sum.data_points[0].exemplars[0]
    assert ex.trace_id.hex() == "5b8efff798038103d269b633813fc60c"


@pytest.mark.parametrize(
    "body",
    [
        b"",  # not JSON
        b"{",  # truncated
        b"[]",  # not an object
        b"\xff\xfe{}",  # not UTF-8
        b'{"resourceSpans": {"not": "a list"}}',  # wrong type
        b'{"resourceSpans": [{"scopeSpans": [{"spans": [{"name": 5}]}]}]}',  # a number for a string
        b'{"resourceSpans": [{"scopeSpans": [{"spans": [{"startTimeUnixNano": "soon"}]}]}]}',
        b'{"resourceSpans": [{"scopeSpans": [{"spans": [{"traceId": "not hex"}]}]}]}',
        b'{"resourceSpans": [{"scopeSpans": [{"spans": [{"traceId": "abc"}]}]}]}',  # odd length
        b'{"resourceSpans": [{"scopeSpans": [{"spans": [{"spanId": 12}]}]}]}',
        b"[" * 100_000 + b"]" * 100_000,  # deep nesting
    ],
)
def test_bad_json_is_bad_data(body: bytes) -> None:
    with pytest.raises(BadData):
        decode(Signal.TRACES, Encoding.JSON, body)


def test_json_unknown_enum_name_is_ignored_like_an_unknown_field() -> None:
    body = b'{"resourceSpans": [{"scopeSpans": [{"spans": [{"name": "n", "kind": "SPAN_KIND_FUTURE"}]}]}]}'
    req: Any = decode(Signal.TRACES, Encoding.JSON, body)
    span = req.resource_spans[0].scope_spans[0].spans[0]
    assert (span.name, span.kind) == ("n", 0)


def test_json_null_and_empty_object_are_empty_requests() -> None:
    assert decode(Signal.TRACES, Encoding.JSON, b"{}").ByteSize() == 0
    assert decode(Signal.LOGS, Encoding.JSON, b'{"resourceLogs": null}').ByteSize() == 0


def test_empty_protobuf_body_is_an_empty_request() -> None:
    assert decode(Signal.TRACES, Encoding.PROTOBUF, b"").ByteSize() == 0


@pytest.mark.parametrize(
    "body",
    [
        trace_request(3).SerializeToString()[:-7],  # truncated
        b"\x0a\xff\xff\xff\xff\x0f",  # a length past the end
        b"\x0a\x05\x12\x03\x12\x01\xff",  # a nested message that does not parse
        # resource_spans { scope_spans { spans { name: <invalid UTF-8> } } }
        b"\x0a\x08\x12\x06\x12\x04\x2a\x02\xc3\x28",
        b"\x0f",  # wire type 7 does not exist
    ],
)
def test_bad_protobuf_is_bad_data(body: bytes) -> None:
    with pytest.raises(BadData):
        decode(Signal.TRACES, Encoding.PROTOBUF, body)


def test_encoding_and_coding_names() -> None:
    assert encoding_of("application/x-protobuf") is Encoding.PROTOBUF
    assert encoding_of("Application/JSON; charset=utf-8") is Encoding.JSON
    for bad in (None, "", "text/plain", "application/protobuf", "application/grpc"):
        with pytest.raises(UnsupportedMedia):
            encoding_of(bad)
    assert coding_of(None) is None and coding_of("identity") is None and coding_of("") is None
    assert coding_of("gzip") == coding_of("GZIP") == coding_of("x-gzip") == 31
    for bad in ("br", "zstd", "gzip, gzip", "compress"):
        with pytest.raises(UnsupportedMedia):
            coding_of(bad)


def test_gzip_and_deflate_inflate() -> None:
    data = trace_request(50).SerializeToString()
    assert inflate(gzip.compress(data), "gzip", len(data)) == data
    assert inflate(zlib.compress(data), "deflate", len(data)) == data
    assert inflate(gzip.compress(data[:10]) + gzip.compress(data[10:]), "gzip", len(data)) == data
    assert inflate(data, "identity", len(data)) == data
    with pytest.raises(TooLarge):
        inflate(gzip.compress(data), "gzip", len(data) - 1)
    with pytest.raises(TooLarge):
        inflate(data, None, len(data) - 1)


@pytest.mark.parametrize(
    ("body", "coding"),
    [
        (gzip.compress(b"abc" * 1000)[:-9], "gzip"),  # truncated
        (b"not gzip at all", "gzip"),
        (gzip.compress(b"abc") + b"trailing", "gzip"),
        (zlib.compress(b"abc") + b"x", "deflate"),
        (gzip.compress(b"abc"), "deflate"),
    ],
)
def test_bad_compressed_bodies_are_bad_data(body: bytes, coding: str) -> None:
    with pytest.raises(BadData):
        inflate(body, coding, MIB)


@functools.cache
def gzip_of_zeros(total: int, chunk: int = MIB) -> bytes:
    """gzip of ``total`` zero bytes, compressed from a generator: the zeros are never
    all in memory (1 GiB of zeros is about 1 MiB of gzip); made once a session."""
    compressor = zlib.compressobj(9, zlib.DEFLATED, 31)
    zeros = bytes(chunk)
    parts: Iterator[bytes] = (compressor.compress(zeros) for _ in range(total // chunk))
    return b"".join(parts) + compressor.flush()


def test_a_gzip_bomb_stops_at_the_limit() -> None:
    bomb = gzip_of_zeros(1024 * MIB)
    assert len(bomb) < 2 * MIB
    with pytest.raises(TooLarge):
        decode_body(Signal.TRACES, Encoding.PROTOBUF, bomb, "gzip", Limits(max_decoded=8 * MIB))


def test_inflating_a_bomb_takes_no_more_memory_than_the_limit() -> None:
    import tracemalloc

    bomb = gzip_of_zeros(1024 * MIB)
    tracemalloc.start()
    try:
        with pytest.raises(TooLarge):
            inflate(bomb, "gzip", 8 * MIB)
        _, peak = tracemalloc.get_traced_memory()
    finally:
        tracemalloc.stop()
    # the output so far (with its growth slack), one step, the compressed tail: never 1 GiB
    assert peak < 1.5 * 8 * MIB + 2 * MIB


def test_limits_must_be_positive() -> None:
    with pytest.raises(ValueError):
        Limits(max_body=0)
