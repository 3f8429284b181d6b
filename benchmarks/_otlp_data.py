"""Realistic OTLP requests of wasmscope invocations, for the collect benchmarks and tests.

An invocation of ``wasmscope serve`` is three spans: the SERVER span ``GET /route``
(about 25 attributes: HTTP, faas.*, wasm.*) and two children (``instantiate`` and
``execute``, one or two attributes each); one in twenty fails with a trap and carries
the ``exception`` event with a guest stack. Guest stderr lines are log records with
``log.iostream``, ``faas.invocation_id`` and the invocation's trace and span ids.

    from benchmarks._otlp_data import invocation_requests
    for body in invocation_requests(100_000):   # serialized ExportTraceServiceRequest
        ...

Everything is drawn from ``random.Random(seed)``: the same arguments give the same bytes
(but ``start_ns=None`` means "end now", so pass it for byte-identical runs).
"""

from __future__ import annotations

import random
import time
from collections.abc import Iterator

from opentelemetry.proto.collector.logs.v1.logs_service_pb2 import ExportLogsServiceRequest
from opentelemetry.proto.collector.trace.v1.trace_service_pb2 import ExportTraceServiceRequest
from opentelemetry.proto.common.v1.common_pb2 import AnyValue, KeyValue
from opentelemetry.proto.trace.v1.trace_pb2 import Span, Status

__all__ = ["SPANS_PER_INVOCATION", "invocation_logs", "invocation_requests"]

SPANS_PER_INVOCATION = 3

_FUNCTIONS = [
    ("hello", "/hello"),
    ("resize", "/img/resize"),
    ("auth", "/auth/check"),
    ("render", "/render"),
    ("echo", "/echo"),
    ("thumbnail", "/img/thumb"),
    ("search", "/search"),
    ("export", "/export"),
]
_TRAPS = [
    ("unreachable", "handle", "src/lib.rs", 42),
    ("memory_out_of_bounds", "decode", "src/codec.rs", 118),
    ("integer_divide_by_zero", "ratio", "src/math.rs", 7),
]
_AGENTS = ["curl/8.5.0", "Mozilla/5.0 (X11; Linux x86_64)", "python-httpx/0.27.0", "wrk/4.2"]


def _kv(key: str, value: str | int | float | bool) -> KeyValue:
    if isinstance(value, bool):
        return KeyValue(key=key, value=AnyValue(bool_value=value))
    if isinstance(value, int):
        return KeyValue(key=key, value=AnyValue(int_value=value))
    if isinstance(value, float):
        return KeyValue(key=key, value=AnyValue(double_value=value))
    return KeyValue(key=key, value=AnyValue(string_value=value))


def _resource(instance: str) -> list[KeyValue]:
    return [
        _kv("service.name", "wasmscope"),
        _kv("service.instance.id", instance),
        _kv("telemetry.sdk.language", "python"),
        _kv("telemetry.sdk.name", "opentelemetry"),
        _kv("telemetry.sdk.version", "1.39.0"),
        _kv("telemetry.distro.name", "wasmscope"),
        _kv("telemetry.distro.version", "0.1.0"),
    ]


class _Invocations:
    """The invocations drawn one after the other (ids, times, outcome)."""

    def __init__(self, seed: int, start_ns: int | None, count: int, interval_ns: int) -> None:
        self.rng = random.Random(seed)
        self.interval_ns = interval_ns
        self.t = start_ns if start_ns is not None else time.time_ns() - count * interval_ns
        self.sha = {name: f"{random.Random(name).getrandbits(256):064x}" for name, _ in _FUNCTIONS}
        self.n = 0
        # One serve process: one instance id for all its requests.
        self.instance = f"{self.rng.getrandbits(64):016x}"

    def next(self) -> dict[str, object]:
        rng = self.rng
        name, route = _FUNCTIONS[min(int(rng.expovariate(0.6)), len(_FUNCTIONS) - 1)]
        start = self.t + rng.randrange(self.interval_ns)
        self.t += self.interval_ns
        self.n += 1
        duration = int(rng.lognormvariate(13.0, 0.6))  # ~450 µs median
        trap = _TRAPS[rng.randrange(len(_TRAPS))] if rng.random() < 0.05 else None
        return {
            "name": name,
            "route": route,
            "start": start,
            "duration": duration,
            "trace_id": rng.getrandbits(128).to_bytes(16, "big"),
            "span_id": rng.getrandbits(64).to_bytes(8, "big"),
            "inst_id": rng.getrandbits(64).to_bytes(8, "big"),
            "exec_id": rng.getrandbits(64).to_bytes(8, "big"),
            "invocation_id": f"{rng.getrandbits(64):016x}",  # as runtime.runner.new_invocation_id
            "cold": self.n <= len(_FUNCTIONS) or rng.random() < 0.01,
            "trap": trap,
            "fuel": rng.randrange(10_000, 5_000_000),
            "memory": 65536 * rng.randrange(1, 40),
            "cpu": round(rng.random() * duration / 1e9, 6),  # the runtime keeps microseconds
            "stdout": rng.randrange(0, 2048),
            "stderr": rng.randrange(0, 256),
            "agent": _AGENTS[rng.randrange(len(_AGENTS))],
            "client": f"10.0.{rng.randrange(256)}.{rng.randrange(1, 255)}",
        }


def _spans(inv: dict[str, object], sha: str) -> list[Span]:
    start = int(inv["start"])  # type: ignore[call-overload]
    duration = int(inv["duration"])  # type: ignore[call-overload]
    trap = inv["trap"]
    status_code = 500 if trap else 200
    attrs = [
        _kv("http.request.method", "GET"),
        _kv("url.path", str(inv["route"])),
        _kv("http.route", str(inv["route"])),
        _kv("url.scheme", "http"),
        _kv("server.address", "127.0.0.1"),
        _kv("server.port", 8080),
        _kv("network.protocol.version", "1.1"),
        _kv("client.address", str(inv["client"])),
        _kv("user_agent.original", str(inv["agent"])),
        _kv("http.response.status_code", status_code),
        _kv("http.response.body.size", int(inv["stdout"])),  # type: ignore[call-overload]
        _kv("faas.name", str(inv["name"])),
        _kv("faas.invocation_id", str(inv["invocation_id"])),
        _kv("faas.coldstart", bool(inv["cold"])),
        _kv("faas.trigger", "http"),
        _kv("faas.max_memory", 64 * 1024 * 1024),
        _kv("wasm.module.sha256", sha),
        _kv("wasm.module.name", f"{inv['name']}.wasm"),
        _kv("wasm.entry", "_start"),
        _kv("wasm.outcome", "trap" if trap else "ok"),
        _kv("wasm.fuel.consumed", int(inv["fuel"])),  # type: ignore[call-overload]
        _kv("wasm.fuel.limit", 10_000_000),
        _kv("wasm.memory.peak", int(inv["memory"])),  # type: ignore[call-overload]
        _kv("wasm.cpu.time", float(inv["cpu"])),  # type: ignore[arg-type]
        _kv("wasm.cache", "memory"),
        _kv("wasm.stdout.bytes", int(inv["stdout"])),  # type: ignore[call-overload]
        _kv("wasm.stderr.bytes", int(inv["stderr"])),  # type: ignore[call-overload]
    ]
    events = []
    status = Status()
    if trap:
        code, func, path, line = trap  # type: ignore[misc]
        attrs.append(_kv("wasm.trap.code", code))
        attrs.append(_kv("error.type", code))
        status = Status(code=Status.STATUS_CODE_ERROR, message=f"wasm trap: {code}")
        events.append(
            Span.Event(
                time_unix_nano=start + duration - 1000,
                name="exception",
                attributes=[
                    _kv("exception.type", "wasm.trap"),
                    _kv("exception.message", f"wasm trap: {code}"),
                    _kv(
                        "exception.stacktrace",
                        f"{func} ({path}:{line})\nmain (src/main.rs:12)\n_start",
                    ),
                    _kv("code.function.name", func),
                    _kv("code.file.path", path),
                    _kv("code.line.number", line),
                ],
            )
        )
    server = Span(
        trace_id=inv["trace_id"],  # type: ignore[arg-type]
        span_id=inv["span_id"],  # type: ignore[arg-type]
        name=f"GET {inv['route']}",
        kind=Span.SPAN_KIND_SERVER,
        start_time_unix_nano=start,
        end_time_unix_nano=start + duration,
        attributes=attrs,
        events=events,
        status=status,
    )
    inst_end = start + duration // 5
    instantiate = Span(
        trace_id=inv["trace_id"],  # type: ignore[arg-type]
        span_id=inv["inst_id"],  # type: ignore[arg-type]
        parent_span_id=inv["span_id"],  # type: ignore[arg-type]
        name="instantiate",
        kind=Span.SPAN_KIND_INTERNAL,
        start_time_unix_nano=start + 1000,
        end_time_unix_nano=inst_end,
        attributes=[_kv("wasm.phase", "instantiate"), _kv("wasm.cache", "memory")],
    )
    execute = Span(
        trace_id=inv["trace_id"],  # type: ignore[arg-type]
        span_id=inv["exec_id"],  # type: ignore[arg-type]
        parent_span_id=inv["span_id"],  # type: ignore[arg-type]
        name="execute",
        kind=Span.SPAN_KIND_INTERNAL,
        start_time_unix_nano=inst_end,
        end_time_unix_nano=start + duration - 500,
        attributes=[_kv("wasm.phase", "execute")],
        status=status,
    )
    return [server, instantiate, execute]


def invocation_requests(
    n_spans: int,
    batch: int = 1000,
    seed: int = 0,
    *,
    start_ns: int | None = None,
    interval_ns: int = 1_000_000,
) -> Iterator[bytes]:
    """Serialized ``ExportTraceServiceRequest`` bodies holding ``n_spans`` spans in all
    (rounded up to whole invocations of 3 spans), about ``batch`` spans each; one
    invocation starts every ``interval_ns`` from ``start_ns`` (default: ending now)."""
    invocations = -(-n_spans // SPANS_PER_INVOCATION)
    gen = _Invocations(seed, start_ns, invocations, interval_ns)
    per_request = max(1, batch // SPANS_PER_INVOCATION)
    done = 0
    while done < invocations:
        request = ExportTraceServiceRequest()
        rs = request.resource_spans.add()
        rs.resource.attributes.extend(_resource(gen.instance))
        rs.schema_url = "https://opentelemetry.io/schemas/1.26.0"
        ss = rs.scope_spans.add()
        ss.scope.name = "wasmscope"
        ss.scope.version = "0.1.0"
        count = min(per_request, invocations - done)
        spans = []
        for _ in range(count):
            inv = gen.next()
            spans.extend(_spans(inv, gen.sha[str(inv["name"])]))
        ss.spans.extend(spans)
        done += count
        yield request.SerializeToString()


def invocation_logs(
    n_records: int,
    batch: int = 1000,
    seed: int = 0,
    *,
    start_ns: int | None = None,
    interval_ns: int = 1_000_000,
) -> Iterator[bytes]:
    """Serialized ``ExportLogsServiceRequest`` bodies of ``n_records`` guest stderr and
    stdout lines (one to three per invocation), about ``batch`` records each."""
    gen = _Invocations(seed, start_ns, n_records // 2 + 1, interval_ns)
    made = 0
    while made < n_records:
        request = ExportLogsServiceRequest()
        rl = request.resource_logs.add()
        rl.resource.attributes.extend(_resource(gen.instance))
        sl = rl.scope_logs.add()
        sl.scope.name = "wasmscope"
        records = []
        while len(records) < batch and made + len(records) < n_records:
            inv = gen.next()
            lines = 1 + gen.rng.randrange(3)
            for i in range(min(lines, n_records - made - len(records))):
                stream = "stderr" if i or inv["trap"] else "stdout"
                text = (
                    f"panicked at src/lib.rs:42: {inv['trap'][0]}"  # type: ignore[index]
                    if inv["trap"] and i == lines - 1
                    else f"{inv['name']}: handled {inv['route']} in {int(inv['duration']) // 1000} us"  # type: ignore[call-overload]
                )
                rec = sl.log_records.add()
                rec.time_unix_nano = int(inv["start"]) + 1000 * (i + 1)  # type: ignore[call-overload]
                rec.observed_time_unix_nano = rec.time_unix_nano + 500
                rec.severity_number = 17 if stream == "stderr" else 9
                rec.severity_text = "ERROR" if stream == "stderr" else "INFO"
                rec.body.string_value = text
                rec.trace_id = inv["trace_id"]  # type: ignore[assignment]
                rec.span_id = inv["span_id"]  # type: ignore[assignment]
                rec.flags = 1
                rec.attributes.extend(
                    [
                        _kv("log.iostream", stream),
                        _kv("faas.invocation_id", str(inv["invocation_id"])),
                        _kv("faas.name", str(inv["name"])),
                    ]
                )
                records.append(rec)
        made += len(records)
        yield request.SerializeToString()
