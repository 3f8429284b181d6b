"""Serve's invocation metrics in plain counters and bucket arrays (a few µs per
request), handed to the SDK's metric readers at each collection."""

from __future__ import annotations

import bisect
import threading
import time
from typing import TYPE_CHECKING, Any

from wasmscope.telemetry import mapping
from wasmscope.telemetry import semconv as sc

if TYPE_CHECKING:
    from wasmscope.runtime.record import InvocationRecord

__all__ = ["ServeMetrics", "merge_metrics"]

_time_ns = time.time_ns


class _Hist:
    __slots__ = ("bounds", "count", "counts", "max", "min", "sum")

    def __init__(self, bounds: tuple[float, ...]) -> None:
        self.bounds = bounds
        self.counts = [0] * (len(bounds) + 1)
        self.count = 0
        self.sum = 0.0
        self.min = float("inf")
        self.max = float("-inf")

    def add(self, value: float) -> None:
        self.counts[_bisect(self.bounds, value)] += 1
        self.count += 1
        self.sum += value
        if value < self.min:
            self.min = value
        if value > self.max:
            self.max = value


_bisect = bisect.bisect_left


class _Series:
    """Everything measured for one set of metric attributes."""

    __slots__ = (
        "coldstarts",
        "cpu",
        "errors",
        "fuel",
        "init",
        "invocations",
        "invoke",
        "mem",
        "peak",
        "timeouts",
    )

    def __init__(self) -> None:
        self.invocations = 0
        self.errors: dict[str, int] = {}
        self.timeouts = 0
        self.coldstarts = 0
        self.fuel = 0
        self.peak: int | None = None
        self.invoke = _Hist(sc.DURATION_BUCKETS)
        self.init = _Hist(sc.DURATION_BUCKETS)
        self.mem = _Hist(sc.MEMORY_BUCKETS)
        self.cpu = _Hist(sc.DURATION_BUCKETS)


_INIT = frozenset(mapping.INIT_PHASES)


def _error_type(rec: InvocationRecord) -> str:
    fail = mapping.failure(rec)
    return fail.error_type if fail is not None else str(rec.outcome)


class ServeMetrics:
    """The invocation metrics of :data:`semconv.METRICS` (same names, units, buckets and
    attributes as the SDK path), aggregated here: cumulative, per (faas.trigger,
    faas.name, wasm.outcome). The SDK observes the counters and the gauge
    (:meth:`observe`); :meth:`histograms` makes the SDK ``Metric`` objects that the
    metric exporters get with the SDK's own metrics."""

    def __init__(self, trigger: str) -> None:
        self.trigger = trigger
        self.start_ns = _time_ns()
        self._series: dict[tuple[str, str], _Series] = {}
        self._lock = threading.Lock()

    def record(self, rec: InvocationRecord) -> None:
        key = (rec.module.name or rec.module.sha256[:12] or "wasm", rec.outcome)
        execute = init = 0
        has_execute = has_init = False
        for p in rec.phases:
            if p.name == "execute":
                execute, has_execute = p.end_ns - p.start_ns, True
            elif p.name in _INIT:
                init += p.end_ns - p.start_ns
                has_init = True
        ok = rec.outcome == "ok"
        error_type = "" if ok else _error_type(rec)
        with self._lock:
            s = self._series.get(key)
            if s is None:
                s = self._series[key] = _Series()
            if ok:
                s.invocations += 1
            else:
                s.errors[error_type] = s.errors.get(error_type, 0) + 1
                if rec.outcome == "timeout":
                    s.timeouts += 1
            if rec.cold_start:
                s.coldstarts += 1
            if has_execute:
                s.invoke.add(execute / 1e9)
            elif rec.outcome != "error":
                s.invoke.add(max(rec.duration_seconds, 0.0))
            if has_init:
                s.init.add(init / 1e9)
            if rec.peak_memory is not None:
                s.mem.add(rec.peak_memory)
                s.peak = rec.peak_memory
            if rec.cpu_seconds is not None:
                s.cpu.add(rec.cpu_seconds)
            if rec.fuel_consumed is not None:
                s.fuel += rec.fuel_consumed

    def _series_attrs(self, name: str, outcome: str) -> dict[str, Any]:
        return {sc.FAAS_TRIGGER: self.trigger, sc.FAAS_NAME: name, sc.WASM_OUTCOME: outcome}

    def observe(self, metric: str) -> list[tuple[int, dict[str, Any]]]:
        """``(value, attributes)`` of the counter or gauge ``metric`` (cumulative), for
        the SDK's observable instruments."""
        out: list[tuple[int, dict[str, Any]]] = []
        with self._lock:
            for (name, outcome), s in self._series.items():
                attrs = self._series_attrs(name, outcome)
                if metric == sc.M_FAAS_ERRORS.name:
                    out += [(n, {**attrs, sc.ERROR_TYPE: et}) for et, n in s.errors.items()]
                    continue
                value = {
                    sc.M_FAAS_INVOCATIONS.name: s.invocations,
                    sc.M_FAAS_TIMEOUTS.name: s.timeouts,
                    sc.M_FAAS_COLDSTARTS.name: s.coldstarts,
                    sc.M_WASM_FUEL_CONSUMED.name: s.fuel,
                    sc.M_WASM_MEMORY_PEAK.name: s.peak,
                }.get(metric)
                if value:
                    out.append((value, attrs))
        return out

    def histograms(self) -> list[Any]:
        """SDK ``Metric`` objects of the histograms (cumulative) that have points."""
        from opentelemetry.sdk.metrics.export import (
            AggregationTemporality,
            Histogram,
            HistogramDataPoint,
            Metric,
        )

        now = _time_ns()
        points: dict[str, list[Any]] = {}
        with self._lock:
            for (name, outcome), s in self._series.items():
                attrs = self._series_attrs(name, outcome)
                for spec, h in (
                    (sc.M_FAAS_INVOKE_DURATION, s.invoke),
                    (sc.M_FAAS_INIT_DURATION, s.init),
                    (sc.M_FAAS_MEM_USAGE, s.mem),
                    (sc.M_FAAS_CPU_USAGE, s.cpu),
                ):
                    if h.count:
                        points.setdefault(spec.name, []).append(
                            HistogramDataPoint(
                                attributes=attrs, start_time_unix_nano=self.start_ns, time_unix_nano=now, count=h.count,
                                sum=h.sum, bucket_counts=tuple(h.counts), explicit_bounds=h.bounds, min=h.min, max=h.max,
                            )
                        )  # fmt: skip
        return [
            Metric(
                name=spec.name,
                description=spec.description,
                unit=spec.unit,
                data=Histogram(
                    data_points=points[spec.name],
                    aggregation_temporality=AggregationTemporality.CUMULATIVE,
                ),
            )
            for spec in sc.METRICS
            if spec.name in points
        ]


def merge_metrics(data: Any, extra: list[Any], resource: Any, scope: Any) -> Any:
    """``data`` (an SDK ``MetricsData`` or None) with ``extra`` metrics added under
    ``scope`` (an ``InstrumentationScope``)."""
    from opentelemetry.sdk.metrics.export import MetricsData, ResourceMetrics, ScopeMetrics

    if not extra:
        return data
    sm = ScopeMetrics(scope=scope, metrics=extra, schema_url="")
    if data is None or not data.resource_metrics:
        return MetricsData(
            resource_metrics=[ResourceMetrics(resource=resource, scope_metrics=[sm], schema_url="")]
        )
    first = data.resource_metrics[0]
    scopes = list(first.scope_metrics)
    for i, other in enumerate(scopes):
        if (
            other.scope.name == scope.name
        ):  # one ScopeMetrics per scope (the OTLP encoder keys by scope)
            scopes[i] = ScopeMetrics(
                scope=other.scope, metrics=[*other.metrics, *extra], schema_url=other.schema_url
            )
            break
    else:
        scopes.append(sm)
    merged = ResourceMetrics(
        resource=first.resource, scope_metrics=scopes, schema_url=first.schema_url
    )
    return MetricsData(resource_metrics=[merged, *data.resource_metrics[1:]])
