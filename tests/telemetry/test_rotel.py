"""End to end: wasmscope -> OTLP/HTTP -> a real collector (PyPI ``rotel``) on 127.0.0.1.

The test starts ``rotel-agent`` (the collector binary shipped in the ``rotel``
wheel) in the foreground on free ports, with the ``blackhole`` exporter and its
detailed debug log for traces, metrics and logs on stdout, then parses that log.
"""

from __future__ import annotations

import re
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path

import pytest

from tests._rotel import RotelAgent, rotel_agent
from tests.telemetry.records import make_record
from wasmscope.runtime.record import Outcome
from wasmscope.telemetry import Telemetry

ANSI = re.compile(r"\x1b\[[0-9;]*m")


class Rotel(RotelAgent):
    def text(self) -> str:
        return ANSI.sub("", self.out.read_text(errors="replace"))


@pytest.fixture
def collector(tmp_path: Path) -> Iterator[Rotel]:
    debug = [
        "--debug-log",
        "traces",
        "--debug-log",
        "metrics",
        "--debug-log",
        "logs",
        "--debug-log-verbosity",
        "detailed",
    ]
    with rotel_agent(tmp_path, "--exporter", "blackhole", *debug) as agent:
        yield Rotel(agent.proc, agent.port, agent.out)


# --- parsing rotel's debug log -------------------------------------------------------------
@dataclass
class Block:
    kind: str  # "Span", "LogRecord", "Metric"
    fields: dict[str, str] = field(default_factory=dict)
    attrs: dict[str, str] = field(default_factory=dict)


BLOCK_START = re.compile(r"^\s*(Span|LogRecord|Metric) #\d+\s*$")
FIELD = re.compile(r"^\s*([A-Za-z][A-Za-z ]*?)\s*:\s?(.*)$")
ATTR = re.compile(r"^\s*-> ([^:]+): (.*)$")
SECTION_END = re.compile(
    r"^(Resource(Spans|Log|Metrics) #|ScopeSpans #|ScopeLogs #|ScopeMetrics #)"
)


def parse(text: str) -> list[Block]:
    """Span / LogRecord / Metric blocks with their ``Key : value`` fields and ``-> k: v``
    attributes (for metrics, the descriptor's ``Name``/``Unit`` come as attributes)."""
    blocks: list[Block] = []
    current: Block | None = None
    for line in text.splitlines():
        m = BLOCK_START.match(line)
        if m:
            current = Block(m.group(1))
            blocks.append(current)
            continue
        if current is None:
            continue
        if SECTION_END.match(line.strip()):
            current = None
            continue
        a = ATTR.match(line)
        if a:
            current.attrs.setdefault(a.group(1).strip(), a.group(2).strip())
            continue
        f = FIELD.match(line)
        if f:
            current.fields.setdefault(f.group(1).strip(), f.group(2).strip())
    return blocks


def wait_for(
    col: Rotel, ready: Callable[[list[Block]], bool], timeout: float = 120.0
) -> list[Block]:
    deadline = time.monotonic() + timeout
    blocks: list[Block] = []
    while time.monotonic() < deadline:
        blocks = parse(col.text())
        if ready(blocks):
            return blocks
        time.sleep(0.1)
    raise AssertionError(f"rotel did not log what was expected; got:\n{col.text()[-4000:]}")


def test_spans_metrics_and_logs_arrive_at_rotel(collector: Rotel) -> None:
    t = Telemetry.from_options(otlp=collector.url, service_name="wasmscope-e2e")
    trace_id = t.record_invocation(make_record(Outcome.TRAP, stderr=b"oops\n"))
    ok_trace = t.record_invocation(
        make_record(invocation_id="inv-ok", stdout=b"fine\n"),
        parent="00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01",
    )
    assert t.shutdown(timeout=15)
    assert t.stats.failed() == 0, t.stats
    assert t.stats.exported("spans", "otlp") == 10

    def ready(blocks: list[Block]) -> bool:
        kinds = [b.kind for b in blocks]
        return kinds.count("Span") >= 10 and kinds.count("LogRecord") >= 4 and "Metric" in kinds

    blocks = wait_for(collector, ready)
    spans = [b for b in blocks if b.kind == "Span"]
    logs = [b for b in blocks if b.kind == "LogRecord"]
    metrics = [b for b in blocks if b.kind == "Metric"]

    inv = [s for s in spans if s.fields.get("Name") == "hello.wasm"]
    assert len(inv) == 2
    trap = next(s for s in inv if s.fields["Trace ID"] == trace_id)
    assert trap.fields["Kind"] == "SPAN_KIND_SERVER"
    assert trap.fields["Status code"] == "STATUS_CODE_ERROR"
    assert trap.attrs["faas.invocation_id"] == "Str(inv-0001)"
    assert trap.attrs["faas.coldstart"] == "Bool(true)"
    assert trap.attrs["wasm.fuel.consumed"] == "Int(12345)"
    assert trap.attrs["wasm.trap.code"] == "Str(unreachable)"
    ok = next(s for s in inv if s.fields["Trace ID"] == ok_trace)
    assert ok_trace == "4bf92f3577b34da6a3ce929d0e0e4736"
    assert ok.fields["Parent ID"] == "00f067aa0ba902b7"
    children = [s for s in spans if s.fields.get("Parent ID") == trap.fields["ID"]]
    assert sorted(s.fields["Name"] for s in children) == [
        "compile",
        "execute",
        "instantiate",
        "load",
    ]

    bodies = {b.fields.get("Body") for b in logs}
    assert {"Str(hello)", "Str(world)", "Str(oops)", "Str(fine)"} <= bodies
    oops = next(b for b in logs if b.fields.get("Body") == "Str(oops)")
    assert oops.fields["Trace ID"] == trace_id
    assert oops.fields["Span ID"] == trap.fields["ID"]
    assert oops.attrs["log.iostream"] == "Str(stderr)"

    names = {m.attrs.get("Name") for m in metrics}
    assert {
        "faas.invocations",
        "faas.errors",
        "faas.invoke_duration",
        "wasm.fuel.consumed",
    } <= names
    text = collector.text()
    assert "service.name: Str(wasmscope-e2e)" in text
