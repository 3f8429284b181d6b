"""OTLP/gRPC: the ``Export`` methods of TraceService, MetricsService and LogsService
(opentelemetry-proto's service definitions) on one grpcio server.

::

    with GrpcReceiver(sink, "127.0.0.1", 4317, token=None) as receiver:
        ...                                   # receiver.port is the bound port

Answers, as the OTLP specification has them:

- taken: the ``Export*ServiceResponse``, with ``partial_success`` when items were
  rejected (see :mod:`.validate`);
- undecodable: INVALID_ARGUMENT with a ``BadRequest`` detail (not retryable);
- over ``max_message`` (default 4 MiB, the specification's and gRPC's default;
  counted after gzip decompression, which gRPC performs): RESOURCE_EXHAUSTED
  without ``RetryInfo``, answered by gRPC itself;
- back-pressure (:class:`~wasmscope.errors.OverloadedError`) and a failed store
  (:class:`~wasmscope.errors.StoreError`): UNAVAILABLE with a ``RetryInfo`` in the
  status details (``grpc-status-details-bin``). The same ``RetryInfo`` also goes in
  the ``google.rpc.retryinfo-bin`` trailer, the one the OpenTelemetry Python SDK
  reads;
- a token set and no ``authorization: Bearer TOKEN`` metadata: UNAUTHENTICATED.

Requests are deserialized here, not by gRPC, so that a malformed one gets
INVALID_ARGUMENT (gRPC's own deserializer failure is an INTERNAL error). Each call
runs on one of ``workers`` threads; the sink's blocking ``deliver`` runs there.
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from types import TracebackType
from typing import Any

from wasmscope.collect.receiver.auth import bearer_ok
from wasmscope.collect.receiver.counters import ReceiverCounters
from wasmscope.collect.receiver.decode import MIB, BadData, Encoding, decode
from wasmscope.collect.receiver.response import bad_request_status, export_response, retry_status
from wasmscope.collect.receiver.sink import Signal, Sink
from wasmscope.collect.receiver.validate import check
from wasmscope.errors import OverloadedError, StoreError, UsageError

try:
    import grpc
    from google.rpc import status_pb2
    from opentelemetry.proto.collector.logs.v1 import logs_service_pb2
    from opentelemetry.proto.collector.metrics.v1 import metrics_service_pb2
    from opentelemetry.proto.collector.trace.v1 import trace_service_pb2
except ImportError as exc:  # pragma: no cover - the collect extra is missing
    raise ImportError("OTLP/gRPC needs grpcio and opentelemetry-proto: install wasmscope[collect]") from exc

__all__ = ["DEFAULT_GRPC_PORT", "GrpcReceiver"]

log = logging.getLogger("wasmscope.collect.receiver")

DEFAULT_GRPC_PORT = 4317
_TRANSPORT = "grpc"
_SERVICES = {
    Signal.TRACES: trace_service_pb2.DESCRIPTOR.services_by_name["TraceService"],
    Signal.METRICS: metrics_service_pb2.DESCRIPTOR.services_by_name["MetricsService"],
    Signal.LOGS: logs_service_pb2.DESCRIPTOR.services_by_name["LogsService"],
}


class _Abort(Exception):
    """A call to end with a status (raised inside the handler, turned into
    ``context.abort`` at its edge so that counting stays in one place)."""

    def __init__(self, code: grpc.StatusCode, status: status_pb2.Status | None, message: str,
                 retry_info: bytes | None = None) -> None:  # fmt: skip
        super().__init__(message)
        self.code = code
        self.status = status
        self.message = message
        self.retry_info = retry_info


class GrpcReceiver:
    """An OTLP/gRPC server over a :class:`Sink`; :meth:`start` / :meth:`stop`, or a
    context manager. ``port`` 0 takes a free port (read :attr:`port` after start)."""

    def __init__(
        self,
        sink: Sink,
        host: str = "127.0.0.1",
        port: int = DEFAULT_GRPC_PORT,
        *,
        token: str | None = None,
        max_message: int = 4 * MIB,
        workers: int = 8,
        counters: ReceiverCounters | None = None,
        store_retry_after: float = 2.0,
    ) -> None:
        self.sink = sink
        self.host = host
        self.port = port
        self.token = token
        self.max_message = max_message
        self.workers = workers
        self.counters = counters if counters is not None else ReceiverCounters()
        self.store_retry_after = store_retry_after
        self._server: grpc.Server | None = None

    def start(self) -> GrpcReceiver:
        """Listens and serves (in grpcio's threads); returns self."""
        if self._server is not None:
            return self
        server = grpc.server(
            ThreadPoolExecutor(self.workers, thread_name_prefix="wasmscope-otlp-grpc"),
            options=[("grpc.max_receive_message_length", self.max_message), ("grpc.so_reuseport", 0)],
        )
        for signal, service in _SERVICES.items():
            handler = grpc.unary_unary_rpc_method_handler(self._handler(signal))  # raw bytes in and out
            server.add_generic_rpc_handlers(
                (grpc.method_handlers_generic_handler(service.full_name, {"Export": handler}),)
            )
        address = f"[{self.host}]:{self.port}" if ":" in self.host else f"{self.host}:{self.port}"
        try:
            bound = server.add_insecure_port(address)
        except RuntimeError as exc:
            raise UsageError(f"OTLP/gRPC cannot listen on {address}: {exc}") from None
        if bound == 0:
            raise UsageError(f"OTLP/gRPC cannot listen on {address}")
        self.port = bound
        server.start()
        self._server = server
        return self

    def stop(self, grace: float | None = 5.0) -> None:
        """Stops listening; calls in progress get ``grace`` seconds to finish."""
        server, self._server = self._server, None
        if server is not None:
            server.stop(grace).wait()

    def __enter__(self) -> GrpcReceiver:
        return self.start()

    def __exit__(self, et: type[BaseException] | None, ev: BaseException | None, tb: TracebackType | None) -> None:
        self.stop()

    def _handler(self, signal: Signal) -> Callable[[bytes, Any], bytes]:
        def export(request: bytes, context: Any) -> bytes:
            try:
                return self._export(signal, request, context)
            except _Abort as abort:
                trailers = []
                if abort.status is not None:
                    trailers.append(("grpc-status-details-bin", abort.status.SerializeToString()))
                if abort.retry_info is not None:
                    trailers.append(("google.rpc.retryinfo-bin", abort.retry_info))
                if trailers:
                    context.set_trailing_metadata(tuple(trailers))
                context.abort(abort.code, abort.message)
                raise  # pragma: no cover - abort raises

        return export

    def _export(self, signal: Signal, raw: bytes, context: Any) -> bytes:
        if self.token is not None:
            given = next((v for k, v in context.invocation_metadata() if k == "authorization"), None)
            if not bearer_ok(given, self.token):
                self.counters.add(signal, _TRANSPORT, failed=1)
                raise _Abort(grpc.StatusCode.UNAUTHENTICATED, None, "missing or wrong bearer token")
        try:
            request = decode(signal, Encoding.PROTOBUF, raw)
        except BadData as exc:
            self.counters.add(signal, _TRANSPORT, failed=1)
            raise _Abort(grpc.StatusCode.INVALID_ARGUMENT, bad_request_status(exc.message), exc.message) from None
        checked = check(signal, request)
        if checked.items:
            try:
                self.sink.deliver(signal, request, checked.items)
            except StoreError as exc:
                self.counters.add(signal, _TRANSPORT, refused=checked.items + checked.rejected)
                overloaded = isinstance(exc, OverloadedError)
                delay = exc.retry_after if isinstance(exc, OverloadedError) else self.store_retry_after
                what = "the collector is overloaded" if overloaded else "the store failed"
                status = retry_status(f"{what}: {exc}", delay)
                info = status.details[0].value  # the serialized RetryInfo
                raise _Abort(grpc.StatusCode.UNAVAILABLE, status, status.message, info) from None
            except Exception:
                log.exception("the OTLP sink failed on a %s request", signal.value)
                self.counters.add(signal, _TRANSPORT)
                raise _Abort(grpc.StatusCode.INTERNAL, None, "internal error") from None
        self.counters.add(signal, _TRANSPORT, received=checked.items, rejected=checked.rejected)
        return bytes(export_response(signal, checked).SerializeToString())
