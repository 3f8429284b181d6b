"""OTLP encoding of serve's spans: the hand encoder (``telemetry/wire.py``) against
``opentelemetry-proto`` messages built and serialized with the upb backend.

The same realistic requests of ``wasmscope serve`` (a SERVER span ``GET /route`` with
the HTTP, ``faas.*`` and ``wasm.*`` attributes and the ``instantiate`` and ``execute``
children; one in twenty a trap with its ``exception`` event) are encoded into
``ExportTraceServiceRequest`` bodies of 256 requests, in one process, interleaved:

- ``wire``: :func:`encode_request` then :func:`wire.export_trace_request` (what the
  OTLP sink does);
- ``upb``: :func:`request_items` (the plain spans), ``Span`` messages built from them,
  then ``ExportTraceServiceRequest.SerializeToString()``.

Both outputs are decoded and compared (equal messages, attributes taken as a map) before timing. Printed: spans/s
of each (medians of ``--reps`` rounds) and the ratio.

Usage: python benchmarks/otlp_encode.py [-n 5120] [--reps 7]
"""

from __future__ import annotations

import argparse
import random
import statistics
import time
from collections.abc import Callable
from typing import Any

from google.protobuf.internal import api_implementation
from opentelemetry.proto.collector.trace.v1.trace_service_pb2 import ExportTraceServiceRequest
from opentelemetry.proto.common.v1.common_pb2 import (
    AnyValue,
    ArrayValue,
    InstrumentationScope,
    KeyValue,
)
from opentelemetry.proto.resource.v1.resource_pb2 import Resource
from opentelemetry.proto.trace.v1.trace_pb2 import ResourceSpans, ScopeSpans, Span, Status

from wasmscope.runtime.identity import ModuleIdentity
from wasmscope.runtime.record import Frame, InvocationRecord, Outcome, Phase, TrapInfo
from wasmscope.telemetry import _encoding, wire
from wasmscope.telemetry._encoding import encode_request, request_items
from wasmscope.telemetry._span_data import RequestSpan, SpanData

MS = 1_000_000
BATCH = 256
RESOURCE = {
    "service.name": "wasmscope",
    "service.instance.id": "bench",
    "telemetry.distro.name": "wasmscope",
}
SCOPE = ("wasmscope", "0")
_ROUTES = ["/hello", "/img/resize", "/auth/check", "/render", "/echo", "/search"]
_AGENTS = ["curl/8.5.0", "Mozilla/5.0 (X11; Linux x86_64)", "python-httpx/0.27.0", "wrk/4.2"]


def _record(rng: random.Random, i: int, route: str, t0: int) -> InvocationRecord:
    trap = i % 20 == 19
    phases = [Phase("instantiate", t0, t0 + MS // 5), Phase("execute", t0 + MS // 5, t0 + MS)]
    return InvocationRecord(
        invocation_id=f"{rng.getrandbits(64):016x}",
        module=ModuleIdentity(
            sha256=f"{hash(route) & (1 << 256) - 1:064x}",
            name=route[1:].replace("/", "-") + ".wasm",
            size=40960,
        ),
        entry="_start",
        start_ns=t0,
        end_ns=t0 + MS,
        cold_start=False,
        cache="memory",
        phases=phases,
        cpu_seconds=0.0008,
        fuel_limit=10_000_000,
        fuel_consumed=rng.randrange(10_000, 2_000_000),
        memory_limit=64 * 1024 * 1024,
        peak_memory=rng.choice((1, 2, 3)) * 65536,
        timeout=5.0,
        outcome=Outcome.TRAP if trap else Outcome.OK,
        trap=TrapInfo(
            kind="unreachable",
            message="wasm trap: wasm `unreachable` instruction executed",
            frames=[Frame(7, "crash", 0x1A2, "src/main.c", 12, 3), Frame(3, "main", 0x150)],
        )
        if trap
        else None,
        stdout=b"content-type: text/plain\n\nhello\n",
        stdout_bytes=32,
    )


def requests(n: int, seed: int = 1) -> list[RequestSpan]:
    """``n`` finished requests as serve's middleware leaves them for the exporter."""
    rng = random.Random(seed)
    t0 = 1_700_000_000_000_000_000
    out = []
    bases: dict[str, dict[str, Any]] = {}
    for i in range(n):
        route = _ROUTES[i % len(_ROUTES)]
        base = bases.setdefault(
            route,
            {
                "http.request.method": "GET",
                "http.route": route,
                "server.address": "127.0.0.1",
                "server.port": 8080,
                "url.scheme": "http",
            },
        )
        req = RequestSpan(
            rng.getrandbits(128) or 1, rng.getrandbits(64) or 1, rng.getrandbits(64) if i % 2 else 0, True, "",
            f"GET {route}", {}, (base, _block(base)),
        )  # fmt: skip
        start = t0 + i * 2 * MS
        req.start_ns, req.end_ns = start, start + MS + MS // 10
        trap = i % 20 == 19
        req.attrs = {
            "url.path": route,
            "url.query": f"q={i}",
            "client.address": f"10.0.{i % 250}.{i % 7}",
            "user_agent.original": rng.choice(_AGENTS),
            "network.protocol.version": "1.1",
            "http.response.status_code": 500 if trap else 200,
        }
        req.status, req.error = (500, True) if trap else (200, False)
        req.record = _record(rng, i, route, start + MS // 20)
        out.append(req)
    return out


_BLOCKS: dict[int, bytes] = {}


def _block(base: dict[str, Any]) -> bytes:
    hit = _BLOCKS.get(id(base))
    if hit is None:
        enc: list[bytes] = []
        wire.attributes(b"\x4a", base, enc)
        hit = _BLOCKS[id(base)] = b"".join(enc)
    return hit


# --- the two encoders ------------------------------------------------------------------------
def encode_wire(reqs: list[RequestSpan]) -> list[bytes]:
    resource, scope = wire.resource(RESOURCE), wire.instrumentation_scope(*SCOPE)
    bodies = []
    for i in range(0, len(reqs), BATCH):
        spans: list[bytes] = []
        for req in reqs[i : i + BATCH]:
            spans += encode_request(req)
        bodies.append(wire.export_trace_request(resource, scope, spans))
    return bodies


def _value(v: Any) -> AnyValue:
    t = type(v)
    if t is str:
        return AnyValue(string_value=v)
    if t is bool:
        return AnyValue(bool_value=v)
    if t is int:
        return AnyValue(int_value=v)
    if t is float:
        return AnyValue(double_value=v)
    if t is bytes:
        return AnyValue(bytes_value=v)
    return AnyValue(array_value=ArrayValue(values=[_value(x) for x in v]))


def _kvs(attrs: Any) -> list[KeyValue]:
    return [KeyValue(key=k, value=_value(v)) for k, v in attrs.items() if v is not None]


def _span(s: SpanData) -> Span:
    attrs: list[KeyValue] = []
    for block in s.static:
        attrs += _kvs(block[0])
    attrs += _kvs(s.attrs)
    flags = wire.FLAGS_HAS_IS_REMOTE | 1 | (wire.FLAGS_IS_REMOTE if s.remote_parent else 0)
    return Span(
        trace_id=s.trace_id.to_bytes(16, "big"),
        span_id=s.span_id.to_bytes(8, "big"),
        trace_state=s.trace_state,
        parent_span_id=s.parent_span_id.to_bytes(8, "big") if s.parent_span_id else b"",
        name=s.name,
        kind=s.kind,  # type: ignore[arg-type]
        start_time_unix_nano=s.start_ns,
        end_time_unix_nano=s.end_ns,
        attributes=attrs,
        events=[Span.Event(time_unix_nano=t, name=n, attributes=_kvs(a)) for n, t, a in s.events],
        status=Status(code=s.status_code, message=s.status_message)
        if s.status_code or s.status_message
        else None,  # type: ignore[arg-type]
        flags=flags,
    )


def encode_upb(reqs: list[RequestSpan]) -> list[bytes]:
    resource = Resource(attributes=_kvs(RESOURCE))
    scope = InstrumentationScope(name=SCOPE[0], version=SCOPE[1])
    bodies = []
    for i in range(0, len(reqs), BATCH):
        spans: list[Span] = []
        for req in reqs[i : i + BATCH]:
            items, _ = request_items(req, 1000, 65536)
            spans += [_span(s) for s in items]
        msg = ExportTraceServiceRequest(
            resource_spans=[
                ResourceSpans(resource=resource, scope_spans=[ScopeSpans(scope=scope, spans=spans)])
            ]
        )
        bodies.append(msg.SerializeToString())
    return bodies


def _messages_only(reqs: list[RequestSpan]) -> Callable[[], list[bytes]]:
    """The upb encoder without :func:`request_items`: the plain spans are made first,
    untimed (a lower bound of what upb costs)."""
    items = [request_items(r, 1000, 65536)[0] for r in reqs]
    resource = Resource(attributes=_kvs(RESOURCE))
    scope = InstrumentationScope(name=SCOPE[0], version=SCOPE[1])

    def run() -> list[bytes]:
        bodies = []
        for i in range(0, len(items), BATCH):
            spans = [_span(s) for group in items[i : i + BATCH] for s in group]
            msg = ExportTraceServiceRequest(
                resource_spans=[
                    ResourceSpans(
                        resource=resource, scope_spans=[ScopeSpans(scope=scope, spans=spans)]
                    )
                ]
            )
            bodies.append(msg.SerializeToString())
        return bodies

    return run


def _fresh(n: int) -> list[RequestSpan]:
    _encoding._getrandbits = random.Random(7).getrandbits  # the same child span ids for both
    return requests(n)


def _canonical(body: bytes) -> tuple[bytes, list[tuple[bytes, list[tuple[str, bytes]]]]]:
    """A decoded request with each span's attributes as a sorted list (attributes are a
    map: the two encoders put the request's and the invocation's in another order)."""
    msg = ExportTraceServiceRequest.FromString(body)
    spans = []
    for span in msg.resource_spans[0].scope_spans[0].spans:
        attrs = sorted((kv.key, kv.value.SerializeToString()) for kv in span.attributes)
        del span.attributes[:]
        spans.append((span.SerializeToString(), attrs))
    del msg.resource_spans[0].scope_spans[0].spans[:]
    return msg.SerializeToString(), spans


def _same_messages(n: int) -> int:
    a = encode_wire(_fresh(n))
    b = encode_upb(_fresh(n))
    assert len(a) == len(b)
    spans = 0
    for x, y in zip(a, b, strict=True):
        cx, cy = _canonical(x), _canonical(y)
        assert cx == cy, "the two encoders disagree"
        spans += len(cx[1])
    return spans


def _rate(encode: Callable[[list[RequestSpan]], list[bytes]] | None, n: int) -> float:
    reqs = _fresh(n)
    run = _messages_only(reqs) if encode is None else (lambda: encode(reqs))
    t = time.perf_counter()
    bodies = run()
    elapsed = time.perf_counter() - t
    spans = sum(
        len(ExportTraceServiceRequest.FromString(b).resource_spans[0].scope_spans[0].spans)
        for b in bodies
    )
    return spans / elapsed


def main() -> int:
    p = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    p.add_argument("-n", type=int, default=5120, help="requests per round")
    p.add_argument("--reps", type=int, default=7)
    args = p.parse_args()
    print(f"protobuf backend: {api_implementation.Type()}")
    spans = _same_messages(min(args.n, 1024))
    print(f"equal messages from both encoders ({spans} spans checked)")
    rates: dict[str, list[float]] = {"wire": [], "upb": [], "upb_only": []}
    for _ in range(args.reps):
        rates["wire"].append(_rate(encode_wire, args.n))
        rates["upb"].append(_rate(encode_upb, args.n))
        rates["upb_only"].append(_rate(None, args.n))
    w, u, o = (statistics.median(rates[k]) for k in ("wire", "upb", "upb_only"))
    print(f"wire (hand encoder):                 {w:,.0f} spans/s")
    print(f"upb messages:                        {u:,.0f} spans/s")
    print(f"upb messages, plain spans made first: {o:,.0f} spans/s")
    print(f"ratio wire/upb: {w / u:.2f}x; wire/upb without request_items: {w / o:.2f}x")
    print(f"(medians of {args.reps} rounds of {args.n} requests)")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
