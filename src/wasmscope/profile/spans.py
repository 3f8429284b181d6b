"""Span mode: guest function calls that last longer than a threshold, as OpenTelemetry
spans under the invocation's ``execute`` span (what Dylibso's Observe SDK gives by
calling the host on every function entry and exit, here without any host call).

What is known, and what is not: the guest's books hold its current call stack, not
the times of entries and exits, and the sampler sees that stack every ``1/rate``
seconds. So a call is *inferred*: the frame at depth ``d`` is taken to be the same
call for as long as consecutive samples show the same functions at depths ``0..d``
(the same function, reached through the same callers). Consequences:

- start and end are known to one sampling interval: a span starts half an interval
  before the first sample that shows the call and ends half an interval after the
  last one (clamped to the ``execute`` phase), so durations are multiples of the
  interval and a call shorter than the interval is seen once or not at all;
- two calls of the same function from the same place, back to back with no sample
  in between, merge into one span; a call that is never sampled has no span;
- the threshold is applied to those estimates, so calls close to it may or may not
  get a span. Every span carries ``wasm.profile.samples`` (how many samples saw it)
  and ``wasm.profile.approximate = true``.

Exact call *counts* come from the counters, never from here.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from typing import TYPE_CHECKING

from wasmscope.profile.sampler import LOST

if TYPE_CHECKING:
    from wasmscope.runtime.record import InvocationRecord
    from wasmscope.telemetry.pipeline import SpanNode

__all__ = ["DEFAULT_MAX_SPANS", "CallSpan", "SpanBuilder"]

DEFAULT_MAX_SPANS = 1000
DEFAULT_MAX_DEPTH = 100  # calls deeper on the stack get no span (deep recursion)


@dataclass(slots=True)
class CallSpan:
    """One inferred call: function index, depth, first and last sample times
    (``perf_counter_ns``), samples seen, and the inferred calls it made."""

    func: int
    depth: int
    first_ns: int
    last_ns: int
    samples: int = 1
    children: list[CallSpan] = field(default_factory=list)


class SpanBuilder:
    """Fed with every sample (``feed(t_ns, stack)``, outermost frame first), keeps the
    inferred calls whose estimated duration reaches ``threshold_ns``. Streaming: only
    the frames currently open are held, so memory does not grow with the run."""

    def __init__(self, threshold_ns: int, interval_ns: float) -> None:
        self.threshold_ns = max(0, int(threshold_ns))
        self.interval_ns = float(interval_ns)
        self.roots: list[CallSpan] = []
        self._open: list[CallSpan] = []
        self._stack: tuple[int, ...] = ()

    def _keep(self, span: CallSpan) -> bool:
        return (span.last_ns - span.first_ns) + self.interval_ns >= self.threshold_ns

    def _close_from(self, level: int) -> None:
        """Close the open frames at depth >= level, innermost first."""
        while len(self._open) > level:
            span = self._open.pop()
            into = self._open[-1].children if self._open else self.roots
            if span.func == LOST:  # not a call: its callees take its place
                into.extend(span.children)
            elif self._keep(span):
                into.append(span)

    def feed(self, t_ns: int, stack: tuple[int, ...]) -> None:
        prev = self._stack
        common = 0
        limit = min(len(prev), len(stack))
        while common < limit and prev[common] == stack[common]:
            common += 1
        self._close_from(common)
        for span in self._open:
            span.last_ns = t_ns
            span.samples += 1
        for depth in range(common, len(stack)):
            self._open.append(CallSpan(stack[depth], depth, t_ns, t_ns))
        self._stack = stack

    def finish(self) -> list[CallSpan]:
        """Close everything still open (the run is over) and return the root calls."""
        self._close_from(0)
        self._stack = ()
        return self.roots

    def span_nodes(
        self,
        names: list[str],
        to_unix_ns: Callable[[int], int],
        *,
        bounds: tuple[int, int] | None = None,
        max_spans: int = DEFAULT_MAX_SPANS,
        max_depth: int = DEFAULT_MAX_DEPTH,
    ) -> list[SpanNode]:
        """The kept calls as :class:`~wasmscope.telemetry.SpanNode` trees (name: the
        function's), times in unix nanoseconds clamped to ``bounds`` (the execute phase).
        At most ``max_spans``: the longest are kept (a parent is never shorter than its
        children, so trees stay whole from the root down); none for frames deeper than
        ``max_depth`` on the stack."""
        from wasmscope.telemetry.pipeline import SpanNode

        roots = self.finish()
        everything: list[tuple[int, int, int]] = []  # (-duration, depth, id)
        stack: list[CallSpan] = list(roots)
        while stack:
            s = stack.pop()
            if s.depth <= max_depth:
                everything.append((-(s.last_ns - s.first_ns), s.depth, id(s)))
                stack.extend(s.children)
        keep = {i for _, _, i in sorted(everything)[:max_spans]}
        half = self.interval_ns / 2

        def node(s: CallSpan) -> SpanNode:
            start = to_unix_ns(int(s.first_ns - half))
            end = to_unix_ns(int(s.last_ns + half))
            if bounds is not None:
                start = min(max(start, bounds[0]), bounds[1])
                end = min(max(end, start), bounds[1])
            name = names[s.func] if 0 <= s.func < len(names) else f"func[{s.func}]"
            return SpanNode(
                name=name,
                start_ns=start,
                end_ns=end,
                attributes={
                    "code.function.name": name,
                    "wasm.function.index": s.func,
                    "wasm.call.depth": s.depth,
                    "wasm.profile.samples": s.samples,
                    "wasm.profile.approximate": True,
                },
                children=[node(c) for c in sorted(s.children, key=lambda c: c.first_ns) if id(c) in keep],
            )

        return [node(r) for r in sorted(roots, key=lambda r: r.first_ns) if id(r) in keep]


def execute_bounds(record: InvocationRecord) -> tuple[int, int] | None:
    phase = record.phase("execute")
    return (phase.start_ns, phase.end_ns) if phase is not None else None
