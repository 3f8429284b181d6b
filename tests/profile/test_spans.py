"""Span mode: long calls inferred from consecutive samples become spans nested under
the invocation's execute span."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

import wasmscope
from wasmscope.profile import LOST, SpanBuilder
from wasmscope.runtime import Runtime

MS = 1_000_000


def test_builder_infers_calls_from_consecutive_samples() -> None:
    b = SpanBuilder(threshold_ns=3 * MS, interval_ns=MS)
    for t, stack in enumerate([(0,), (0, 1), (0, 1, 2), (0, 1, 2), (0, 1), (0, 3), (0, 1), (0, 1), (0, 1), (0, 1)]):
        b.feed(t * MS, stack)
    (main,) = b.finish()
    assert (main.func, main.first_ns, main.last_ns, main.samples) == (0, 0, 9 * MS, 10)
    # 1 is seen twice: samples 1-4 (4 samples) and 6-9 (4 samples): two calls; 2 is
    # seen twice (too short); 3 once (too short)
    assert [(c.func, c.first_ns, c.last_ns) for c in main.children] == [(1, 1 * MS, 4 * MS), (1, 6 * MS, 9 * MS)]
    assert all(not c.children for c in main.children)


def test_builder_tells_calls_apart_by_their_callers() -> None:
    b = SpanBuilder(threshold_ns=0, interval_ns=MS)
    b.feed(0, (0, 1, 5))
    b.feed(MS, (0, 2, 5))  # 5 again at depth 2, but under another caller: another call
    roots = b.finish()
    (main,) = roots
    assert [c.func for c in main.children] == [1, 2]
    assert [c.children[0].func for c in main.children] == [5, 5]


def test_span_nodes_clamp_cap_and_skip_lost_frames() -> None:
    b = SpanBuilder(threshold_ns=0, interval_ns=MS)
    for t in range(5):
        b.feed(t * MS, (LOST, 1, 2))
    nodes = b.span_nodes(["a", "b", "c"], lambda ns: ns + 10**18, bounds=(10**18, 10**18 + 3 * MS), max_spans=1)
    (only,) = nodes  # LOST made no span; its callees are roots; max_spans=1 keeps the longest
    assert only.name == "b" and not only.children
    assert only.start_ns == 10**18 and only.end_ns == 10**18 + 3 * MS  # clamped to the bounds
    assert only.attributes is not None and only.attributes["wasm.profile.approximate"] is True


@pytest.fixture
def telemetry() -> Iterator[Any]:
    pytest.importorskip("opentelemetry.sdk")
    from wasmscope.telemetry import Telemetry

    tel = Telemetry.from_options(in_memory=True)
    yield tel
    tel.shutdown()


def _tree(spans: list[Any]) -> dict[str, Any]:
    by_id = {s.context.span_id: s for s in spans}
    return {"by_id": by_id, "parent": {s.context.span_id: s.parent.span_id if s.parent else None for s in spans}}


@pytest.mark.parametrize("how", ["telemetry", "runtime"])
def test_long_calls_become_spans_under_execute(
    telemetry: Any, prt: Runtime, progs: dict[str, Path], tmp_path: Path, how: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("WASMSCOPE_CACHE_DIR", str(tmp_path))
    if how == "telemetry":
        rec, prof = wasmscope.profile(progs["long"], ["20000000"], spans_threshold=0.005, telemetry=telemetry)
    else:  # the runtime's own telemetry gets them (as `wasmscope profile` does)
        with Runtime(cache_dir=tmp_path, telemetry=telemetry) as rt:
            rec, prof = wasmscope.profile(progs["long"], ["20000000"], spans_threshold=0.005, runtime=rt)
    assert rec.outcome == "ok"
    assert prof.calls["inner"] == 2 and prof.calls["outer"] == 1
    spans = telemetry.memory.spans()
    t = _tree(spans)
    (execute,) = [s for s in spans if s.name == "execute"]
    names = {s.name for s in spans}
    assert {"outer", "inner", "main"} <= names
    # the guest's spans hang under execute, nested by calls: inner under outer
    (outer,) = [s for s in spans if s.name == "outer"]
    inners = [s for s in spans if s.name == "inner"]
    assert 1 <= len(inners) <= 2
    assert all(t["parent"][s.context.span_id] == outer.context.span_id for s in inners)
    chain = outer
    while t["parent"][chain.context.span_id] != execute.context.span_id:
        chain = t["by_id"][t["parent"][chain.context.span_id]]
    assert chain.name.startswith("_start")
    for s in [outer, *inners]:
        assert execute.start_time <= s.start_time <= s.end_time <= execute.end_time
        assert s.attributes["wasm.profile.approximate"] is True
        assert s.end_time - s.start_time >= 5 * MS
    assert sum(1 for _ in _walk(prof.spans)) == sum(1 for s in spans if "wasm.profile.samples" in (s.attributes or {}))


def _walk(nodes: Any) -> Iterator[Any]:
    for n in nodes:
        yield n
        yield from _walk(n.children)
