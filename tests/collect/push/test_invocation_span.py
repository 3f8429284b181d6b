"""Telemetry.invocation_span: the ids of the invocation span that record_invocation made,
which profile --push puts on its record (in-memory exporters: SDK and direct paths)."""

from __future__ import annotations

import pytest

from tests.telemetry.records import make_record
from wasmscope.telemetry import Telemetry
from wasmscope.telemetry import pipeline as pl

TRACEPARENT = "00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01"


@pytest.mark.parametrize("trigger", ["other", "http"])
def test_ids_are_the_invocation_spans(trigger: str) -> None:
    with Telemetry.from_options(in_memory=True, trigger=trigger) as t:
        assert t.invocation_span("inv-a") is None
        trace_a = t.record_invocation(make_record(invocation_id="inv-a"))
        trace_b = t.record_invocation(make_record(invocation_id="inv-b"), parent=TRACEPARENT)
        spans = t.memory.span_dicts()
        ids_a, ids_b = t.invocation_span("inv-a"), t.invocation_span("inv-b")
    servers = {s["attributes"]["faas.invocation_id"]: s for s in spans if s["kind"] == "SERVER"}
    assert ids_a == (trace_a, servers["inv-a"]["span_id"])
    assert ids_b == (trace_b, servers["inv-b"]["span_id"]) and trace_b == TRACEPARENT[3:35]
    assert ids_a[0] != ids_b[0]


def test_only_the_latest_are_kept(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(pl, "_SPANS_KEPT", 3)
    with Telemetry.from_options(in_memory=True) as t:
        for i in range(5):
            t.record_invocation(make_record(invocation_id=f"inv-{i}", stdout=b""))
        kept = [t.invocation_span(f"inv-{i}") is not None for i in range(5)]
    assert kept == [False, False, True, True, True]
