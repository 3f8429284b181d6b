"""An OTLP request body to its opentelemetry-proto message: media type, content
coding (with bounded inflation) and the two OTLP encodings.

Encodings (the ``Content-Type``, parameters such as ``charset`` ignored):

- ``application/x-protobuf``: binary protobuf. An empty body is a valid, empty
  message (the OTLP specification: an empty request SHOULD get a success).
- ``application/json``: OTLP/JSON (:mod:`.otlpjson`: hex ids, unknown fields
  ignored, proto3 JSON's leniencies kept). An empty body is not JSON and is
  answered 400.

Content codings (``Content-Encoding``): ``identity`` (or none), ``gzip`` (``x-gzip``,
several members allowed) and ``deflate`` (zlib). Anything else is 415 Unsupported
Media Type (RFC 9110, 15.5.16: the answer to a content coding the server does not
accept); OTLP requires only gzip.

Limits (:class:`Limits`): the body as received (``max_body``, default 20 MiB: the
OTLP specification's recommended request limit) and after decompression
(``max_decoded``, default 64 MiB: the OpenTelemetry Python SDK's own limit on an
uncompressed request, so any batch it sends fits). Both are answered 413. Inflation
stops as soon as the output passes ``max_decoded``: a gzip bomb costs at most that
much memory, never its inflated size.
"""

from __future__ import annotations

import enum
import zlib
from collections.abc import Iterator
from dataclasses import dataclass

from wasmscope.collect.receiver.sink import Signal
from wasmscope.errors import WasmscopeError

try:
    from google.protobuf.message import DecodeError as ProtobufDecodeError
    from google.protobuf.message import Message
    from opentelemetry.proto.collector.logs.v1.logs_service_pb2 import ExportLogsServiceRequest
    from opentelemetry.proto.collector.metrics.v1.metrics_service_pb2 import (
        ExportMetricsServiceRequest,
    )
    from opentelemetry.proto.collector.trace.v1.trace_service_pb2 import ExportTraceServiceRequest
except ImportError as exc:  # pragma: no cover - the collect extra is missing
    raise ImportError(
        "the OTLP receiver needs opentelemetry-proto: install wasmscope[collect]"
    ) from exc

from wasmscope.collect.receiver.otlpjson import JsonError, parse_request

__all__ = [
    "MIB",
    "BadData",
    "Encoding",
    "Limits",
    "RequestError",
    "TooLarge",
    "UnsupportedMedia",
    "decode",
    "decode_body",
    "encoding_of",
    "inflate",
    "request_class",
]

MIB = 1024 * 1024
_CHUNK = 1 * MIB  # inflated bytes produced per step: the memory a step may take beyond the output


class RequestError(WasmscopeError):
    """A request the receiver answers with a client error, never with a retry."""

    http_status = 400

    def __init__(self, message: str) -> None:
        super().__init__(message)
        self.message = message


class BadData(RequestError):
    """The body cannot be decoded (400 Bad Request, gRPC INVALID_ARGUMENT)."""

    http_status = 400


class TooLarge(RequestError):
    """The body, as received or inflated, is over its limit (413 Content Too Large)."""

    http_status = 413


class UnsupportedMedia(RequestError):
    """A media type or content coding the receiver does not take (415)."""

    http_status = 415


class Encoding(enum.Enum):
    """An OTLP/HTTP payload encoding; the value is its media type."""

    PROTOBUF = "application/x-protobuf"
    JSON = "application/json"


_MEDIA = {e.value: e for e in Encoding}


@dataclass(frozen=True, slots=True)
class Limits:
    """Bytes a request may take: as received, and after decompression."""

    max_body: int = 20 * MIB
    max_decoded: int = 64 * MIB

    def __post_init__(self) -> None:
        if self.max_body <= 0 or self.max_decoded <= 0:
            raise ValueError("receiver limits must be positive")


_REQUESTS: dict[Signal, type[Message]] = {
    Signal.TRACES: ExportTraceServiceRequest,
    Signal.METRICS: ExportMetricsServiceRequest,
    Signal.LOGS: ExportLogsServiceRequest,
}


def request_class(signal: Signal) -> type[Message]:
    """The ``Export*ServiceRequest`` message class of ``signal``."""
    return _REQUESTS[signal]


def encoding_of(content_type: str | None) -> Encoding:
    """The encoding named by a ``Content-Type`` value, or :class:`UnsupportedMedia`."""
    media = (content_type or "").partition(";")[0].strip().lower()
    encoding = _MEDIA.get(media)
    if encoding is None:
        raise UnsupportedMedia(
            f"unsupported content type {media or '(none)'!r}: "
            "OTLP/HTTP takes application/x-protobuf or application/json"
        )
    return encoding


# Content coding -> zlib wbits (None: no inflation).
_CODINGS: dict[str, int | None] = {"": None, "identity": None, "gzip": 31, "x-gzip": 31, "deflate": 15}


def coding_of(content_encoding: str | None) -> int | None:
    """The zlib ``wbits`` of a ``Content-Encoding`` (None: identity), or
    :class:`UnsupportedMedia`."""
    codings = [c.strip().lower() for c in (content_encoding or "").split(",") if c.strip()]
    codings = [c for c in codings if c != "identity"]
    if not codings:
        return None
    if len(codings) > 1 or codings[0] not in _CODINGS:
        raise UnsupportedMedia(
            f"unsupported content encoding {content_encoding!r}: OTLP/HTTP takes gzip, deflate or identity"
        )
    return _CODINGS[codings[0]]


def _inflated(data: bytes, wbits: int, limit: int) -> Iterator[bytes]:
    """The inflated chunks of ``data`` (gzip: member after member); raises
    :class:`TooLarge` as soon as more than ``limit`` bytes came out."""
    total = 0
    pending = data
    while True:
        inflater = zlib.decompressobj(wbits)
        chunk = pending
        try:
            while True:
                # At most _CHUNK bytes a step, and never more than one past the limit.
                out = inflater.decompress(chunk, min(_CHUNK, limit - total + 1))
                total += len(out)
                if total > limit:
                    raise TooLarge(f"the request inflates to more than {limit} bytes")
                if out:
                    yield out
                if inflater.eof:
                    break
                chunk = inflater.unconsumed_tail
                if not chunk and not out:
                    raise BadData("the compressed body is truncated")
        except zlib.error as exc:
            raise BadData(f"the body is not valid compressed data: {exc}") from None
        pending = inflater.unused_data
        if not pending:
            return
        if wbits != 31:  # deflate is one stream; gzip may have several members
            raise BadData("trailing bytes after the compressed body")


def inflate(data: bytes, content_encoding: str | None, limit: int) -> bytes | bytearray:
    """``data`` without its content coding, at most ``limit`` bytes (else
    :class:`TooLarge`; the check runs while inflating, step by step)."""
    wbits = coding_of(content_encoding)
    if wbits is None:
        if len(data) > limit:
            raise TooLarge(f"the request body is over {limit} bytes")
        return data
    if not data:
        return data  # no bytes at all: an empty body, whatever its announced coding
    out = bytearray()  # grown in place (no second copy of the whole output, as a join makes)
    for chunk in _inflated(data, wbits, limit):
        out += chunk
    return out


def _decode_json(signal: Signal, data: bytes | bytearray) -> Message:
    try:
        return parse_request(signal, data)
    except JsonError as exc:
        raise BadData(f"the body is not a valid OTLP/JSON {signal.value} request: {exc}") from None


def _decode_protobuf(signal: Signal, data: bytes | bytearray) -> Message:
    try:
        return _REQUESTS[signal].FromString(data)
    except (ProtobufDecodeError, RecursionError) as exc:
        raise BadData(f"the body is not a valid protobuf {signal.value} request: {exc}") from None


def decode(signal: Signal, encoding: Encoding, data: bytes | bytearray) -> Message:
    """The ``Export*ServiceRequest`` of ``signal`` in ``data`` (already inflated), or
    :class:`BadData`."""
    if encoding is Encoding.PROTOBUF:
        return _decode_protobuf(signal, data)
    return _decode_json(signal, data)


def decode_body(
    signal: Signal, encoding: Encoding, body: bytes, content_encoding: str | None, limits: Limits
) -> Message:
    """Inflates (bounded by ``limits.max_decoded``) then decodes a request body."""
    return decode(signal, encoding, inflate(body, content_encoding, limits.max_decoded))
