"""Run the cost tests' workload and store it: ``python -m tests.cost._fill_store DIR RUNS.jsonl``;
``python -m tests.cost._fill_store --compare DIR`` prints the store's summaries made both ways.

A process of its own, because chDB opens one data folder per process: the records of
the real runs go to RUNS.jsonl and, as the invocation spans the exporters make of them
(:func:`wasmscope.telemetry.mapping.span_attributes`), into a collect store at DIR.
"""

from __future__ import annotations

import json
import os
import sys
import tempfile
from pathlib import Path

import wasmtime
from opentelemetry.proto.collector.trace.v1.trace_service_pb2 import ExportTraceServiceRequest
from opentelemetry.proto.trace.v1.trace_pb2 import Span

from tests.collect.dashboard.data import kv
from tests.cost.conftest import WORK_WAT, WORKLOAD
from wasmscope.collect.receiver.sink import Signal
from wasmscope.collect.store import Store
from wasmscope.runtime import Runtime
from wasmscope.runtime.limits import Limits
from wasmscope.telemetry.mapping import span_attributes, span_name


def main(data: str, runs: str) -> int:
    with tempfile.TemporaryDirectory() as tmp:
        wasm = Path(tmp) / "work.wasm"
        wasm.write_bytes(bytes(wasmtime.wat2wasm(WORK_WAT)))
        with Runtime(cache_dir=Path(tmp) / "cache", limits=Limits(memory_limit=16 << 20, fuel=10_000_000)) as rt:
            records = [rt.invoke(wasm, f, [] if n is None else [n, p]) for f, n, p in WORKLOAD]
    with open(runs, "w", encoding="utf-8") as f:
        for r in records:
            f.write(json.dumps(r.to_json(), default=str) + "\n")
    req = ExportTraceServiceRequest()
    rs = req.resource_spans.add()
    rs.resource.attributes.append(kv("service.name", "cost-tests"))
    ss = rs.scope_spans.add()
    for r in records:
        attrs = [kv(k, v) for k, v in span_attributes(r).items() if not isinstance(v, list | tuple)]
        ss.spans.append(Span(trace_id=os.urandom(16), span_id=os.urandom(8), name=span_name(r), kind=Span.SPAN_KIND_SERVER,
                             start_time_unix_nano=r.start_ns, end_time_unix_nano=r.end_ns, attributes=attrs))  # fmt: skip
    with Store.open(data_dir=data) as store:
        store.ensure_schema()
        store.write(Signal.TRACES, req)
    return 0




# (sheet, options) of the comparisons of tests/cost/test_cost_cli.py
COMPARISONS = [
    ("aws-lambda-x86", {}),
    ("aws-lambda-arm64", {"memory_mb": 1024.0, "monthly_invocations": 5e6, "free_tier": True}),
    ("cloud-run", {"memory_mb": 512.0, "rate_per_s": 20.0, "concurrency": 4.0}),
    ("azure-consumption", {}),
    ("cloudflare-workers", {"free_tier": True}),
    ("fastly-compute", {"function": "work.wasm"}),
]


def compare(data: str) -> None:
    """Print, for each of COMPARISONS, the summary aggregated in the store and the one
    numpy makes of the rows read out, as JSON lines."""
    from wasmscope.cost.prices import load_price_sheet
    from wasmscope.cost.records import open_store, read_store
    from wasmscope.cost.store_summary import summarize_store
    from wasmscope.cost.summary import summarize

    with open_store(data) as store:
        table = read_store(store)
        for name, options in COMPARISONS:
            opts = dict(options)
            function = opts.pop("function", None)
            sheet = load_price_sheet(name)
            a = summarize_store(store, sheet, function=function, **opts)  # type: ignore[arg-type]
            b = summarize(table if function is None else table.only(str(function)), sheet, **opts)  # type: ignore[arg-type]
            print(json.dumps({"sheet": name, "store": a.to_json(), "numpy": b.to_json()}))


if __name__ == "__main__":
    if sys.argv[1] == "--compare":
        compare(sys.argv[2])
        sys.exit(0)
    sys.exit(main(sys.argv[1], sys.argv[2]))
