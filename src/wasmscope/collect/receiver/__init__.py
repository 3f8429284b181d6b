"""The OTLP receiver shared by ``wasmscope collect`` and ``wasmscope agent``:
OTLP/HTTP (an ASGI app) and OTLP/gRPC, to the letter of the OTLP specification,
handing validated requests to a :class:`Sink`.

Modules, one concept each: :mod:`.sink` (the contract with the store or the spool),
:mod:`.decode` (media types, bounded inflation, protobuf and OTLP/JSON),
:mod:`.validate` (what the store cannot keep, removed and counted for
``partial_success``), :mod:`.response` (the answers as messages), :mod:`.http`
(the ASGI app), :mod:`.grpc` (the gRPC server), :mod:`.counters` (counts for
``/metrics``), :mod:`.auth` (the bearer token).

    from wasmscope.collect.receiver import GrpcReceiver, InMemorySink, OtlpHttpApp
    sink = InMemorySink()
    app = OtlpHttpApp(sink)                          # POST /v1/traces|metrics|logs
    with GrpcReceiver(sink, "127.0.0.1", 4317):      # OTLP/gRPC
        ...
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from wasmscope._lazy import lazy_exports

if TYPE_CHECKING:
    from wasmscope.collect.receiver.auth import bearer_ok
    from wasmscope.collect.receiver.counters import Counts, ReceiverCounters
    from wasmscope.collect.receiver.decode import Encoding, Limits
    from wasmscope.collect.receiver.grpc import GrpcReceiver
    from wasmscope.collect.receiver.http import OtlpHttpApp
    from wasmscope.collect.receiver.sink import InMemorySink, Signal, Sink
    from wasmscope.collect.receiver.validate import Checked, check

__all__ = [
    "Checked",
    "Counts",
    "Encoding",
    "GrpcReceiver",
    "InMemorySink",
    "Limits",
    "OtlpHttpApp",
    "ReceiverCounters",
    "Signal",
    "Sink",
    "bearer_ok",
    "check",
]

_LAZY = {
    "Checked": "wasmscope.collect.receiver.validate",
    "Counts": "wasmscope.collect.receiver.counters",
    "Encoding": "wasmscope.collect.receiver.decode",
    "GrpcReceiver": "wasmscope.collect.receiver.grpc",
    "InMemorySink": "wasmscope.collect.receiver.sink",
    "Limits": "wasmscope.collect.receiver.decode",
    "OtlpHttpApp": "wasmscope.collect.receiver.http",
    "ReceiverCounters": "wasmscope.collect.receiver.counters",
    "Signal": "wasmscope.collect.receiver.sink",
    "Sink": "wasmscope.collect.receiver.sink",
    "bearer_ok": "wasmscope.collect.receiver.auth",
    "check": "wasmscope.collect.receiver.validate",
}

__getattr__, __dir__ = lazy_exports(__name__, _LAZY, __all__)
