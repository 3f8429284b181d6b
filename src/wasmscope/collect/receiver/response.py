"""The receiver's answers as messages: ``Export*ServiceResponse`` (with
``partial_success`` only when something was rejected or is worth a warning) and
``google.rpc.Status`` for failures (with ``BadRequest`` or ``RetryInfo`` details)."""

from __future__ import annotations

import math

try:
    from google.protobuf import json_format
    from google.protobuf.any_pb2 import Any as AnyMessage
    from google.protobuf.message import Message
    from google.rpc import code_pb2, error_details_pb2, status_pb2
    from opentelemetry.proto.collector.logs.v1.logs_service_pb2 import ExportLogsServiceResponse
    from opentelemetry.proto.collector.metrics.v1.metrics_service_pb2 import (
        ExportMetricsServiceResponse,
    )
    from opentelemetry.proto.collector.trace.v1.trace_service_pb2 import ExportTraceServiceResponse
except ImportError as exc:  # pragma: no cover - the collect extra is missing
    raise ImportError(
        "the OTLP receiver needs opentelemetry-proto and googleapis-common-protos: "
        "install wasmscope[collect]"
    ) from exc

from wasmscope.collect.receiver.decode import Encoding
from wasmscope.collect.receiver.sink import Signal
from wasmscope.collect.receiver.validate import Checked

__all__ = [
    "Message",
    "bad_request_status",
    "code_pb2",
    "encode",
    "export_response",
    "plain_status",
    "retry_after_seconds",
    "retry_status",
]

_RESPONSES: dict[Signal, tuple[type[Message], str]] = {
    Signal.TRACES: (ExportTraceServiceResponse, "rejected_spans"),
    Signal.METRICS: (ExportMetricsServiceResponse, "rejected_data_points"),
    Signal.LOGS: (ExportLogsServiceResponse, "rejected_log_records"),
}


def export_response(signal: Signal, checked: Checked) -> Message:
    """The success answer: ``partial_success`` left unset on full success (the
    specification's MUST), set with the rejected count and the message otherwise."""
    cls, field = _RESPONSES[signal]
    response = cls()
    if checked.partial:
        partial = response.partial_success
        setattr(partial, field, checked.rejected)
        partial.error_message = checked.message
    return response


def bad_request_status(message: str, code: int = code_pb2.INVALID_ARGUMENT) -> status_pb2.Status:
    """A ``Status`` for data that cannot be taken, with a ``BadRequest`` detail."""
    detail = AnyMessage()
    detail.Pack(error_details_pb2.BadRequest(
        field_violations=[error_details_pb2.BadRequest.FieldViolation(field="", description=message)]
    ))  # fmt: skip
    return status_pb2.Status(code=code, message=message, details=[detail])


def plain_status(message: str, code: int) -> status_pb2.Status:
    """A ``Status`` with no details."""
    return status_pb2.Status(code=code, message=message)


def retry_after_seconds(retry_after: float) -> int:
    """``Retry-After`` is whole seconds (RFC 9110 delay-seconds): rounded up, at least 1."""
    if not math.isfinite(retry_after):
        return 1
    return max(1, math.ceil(retry_after))


def retry_info(retry_after: float) -> error_details_pb2.RetryInfo:
    info = error_details_pb2.RetryInfo()
    seconds = max(0.0, retry_after) if math.isfinite(retry_after) else 1.0
    info.retry_delay.seconds = int(seconds)
    info.retry_delay.nanos = round((seconds - int(seconds)) * 1e9) % 1_000_000_000
    return info


def retry_status(message: str, retry_after: float) -> status_pb2.Status:
    """A ``Status`` UNAVAILABLE with a ``RetryInfo`` detail (back-pressure)."""
    detail = AnyMessage()
    detail.Pack(retry_info(retry_after))
    return status_pb2.Status(code=code_pb2.UNAVAILABLE, message=message, details=[detail])


_EMPTY_JSON = b"{}"


def encode(message: Message, encoding: Encoding) -> bytes:
    """``message`` in the request's encoding (OTLP/JSON: proto3 JSON, lowerCamelCase;
    responses carry no ids, so no hex rewriting)."""
    if encoding is Encoding.PROTOBUF:
        return bytes(message.SerializeToString())
    if not message.ListFields():
        return _EMPTY_JSON
    return str(json_format.MessageToJson(message, indent=None)).encode()
