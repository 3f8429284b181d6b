"""The Cost page tests' real runs: ``python -m tests.collect.dashboard._cost_runs OUT.pb``.

A WAT guest run under wasmscope's Runtime as three functions with different memory
limits, their invocation spans made by the exporters' mapping and placed over the 50
minutes before the tests' NOW (their durations as run), written to OUT.pb as one
``ExportTraceServiceRequest``. A process of its own: wasmtime reports traps by signals,
and chDB, loaded in the tests' process, installs handlers of its own for them.
"""

from __future__ import annotations

import dataclasses
import os
import sys
import tempfile
from pathlib import Path

import wasmtime
from opentelemetry.proto.collector.trace.v1.trace_service_pb2 import ExportTraceServiceRequest
from opentelemetry.proto.trace.v1.trace_pb2 import Span

from tests.collect.dashboard.data import NOW, NS, kv
from tests.cost.conftest import WORK_WAT
from wasmscope.runtime import Runtime
from wasmscope.runtime.limits import Limits
from wasmscope.runtime.record import InvocationRecord
from wasmscope.telemetry.mapping import span_attributes, span_name

MIB = 1 << 20
# (module name, memory limit, [(function, n, pages)]): small.wasm runs well inside 16 MiB
# (128 MB on Lambda), fat.wasm uses a few pages of 1 GiB, tight.wasm ~112 MiB of 128 MiB.
WORKLOADS = [
    ("small.wasm", 16 * MIB, [("work", 1000 * (i % 7 + 1), i % 4) for i in range(24)] + [("boom", None, None)] * 2),
    ("fat.wasm", 1024 * MIB, [("work", 2000 * (i % 3 + 1), 2) for i in range(12)]),
    ("tight.wasm", 128 * MIB, [("work", 1000, 1790)] * 6),
]


def runs(tmp: Path) -> list[InvocationRecord]:
    records = []
    with Runtime(cache_dir=tmp / "cache") as rt:
        for name, limit, calls in WORKLOADS:
            wasm = tmp / name
            wasm.write_bytes(bytes(wasmtime.wat2wasm(WORK_WAT)))
            for func, n, pages in calls:
                records.append(rt.invoke(wasm, func, [] if n is None else [n, pages],
                                         limits=Limits(memory_limit=limit, fuel=50_000_000)))  # fmt: skip
    out = []
    for i, r in enumerate(records):
        start = int((NOW - 3000 + i * 65) * NS)
        out.append(dataclasses.replace(r, start_ns=start, end_ns=start + (r.end_ns - r.start_ns)))
    return out


def request(records: list[InvocationRecord]) -> ExportTraceServiceRequest:
    req = ExportTraceServiceRequest()
    rs = req.resource_spans.add()
    rs.resource.attributes.append(kv("service.name", "cost-page"))
    ss = rs.scope_spans.add()
    for r in records:
        attrs = [kv(k, v) for k, v in span_attributes(r).items() if not isinstance(v, list | tuple)]
        ss.spans.append(Span(trace_id=os.urandom(16), span_id=os.urandom(8), name=span_name(r), kind=Span.SPAN_KIND_SERVER,
                             start_time_unix_nano=r.start_ns, end_time_unix_nano=r.end_ns, attributes=attrs))  # fmt: skip
    return req


def main(out: str) -> int:
    with tempfile.TemporaryDirectory() as tmp:
        Path(out).write_bytes(request(runs(Path(tmp))).SerializeToString())
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1]))
