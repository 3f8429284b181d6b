"""Resource anomalies per function and input class: robust outliers and drift.

Each run gives figures (``fuel``, ``memory_peak`` bytes, ``duration`` and ``cpu``
seconds, ``output_bytes``, ``host_calls`` and ``host_calls.<func>``; any other name
is a metric too). Against the normal runs of the same function and input class:

- **Outliers**: the modified z-score ``0.6745 * (x - median) / MAD`` (Iglewicz and
  Hoaglin), over ``threshold`` (3.5; 6 for ``duration`` and ``cpu``, whose tail the
  host's load makes long). Resources alert upwards only, except fuel, which alerts
  both ways. A metric's ``min_excess`` is how far from the median (in its own unit) a
  value must be before it can be news at all: 20 ms for ``duration`` and ``cpu``,
  since a busy host's scheduler delays a thread by a time slice or more, and the CPU
  time of a sub-millisecond run varies by as much as it lasts.
  The MAD used is never less than half the interquartile range (the same for normal
  data; with many ties, as call counts have, the MAD alone collapses). A value that
  a learned run had is never an outlier: learning trusts its runs (learn from runs
  known to be normal; :meth:`Baseline.forget` to start again).
- **MAD = 0** (and no interquartile range: most normal runs have the same value, as
  fuel does for an input class): the z-score is undefined, and the metric is exact: a
  value outside the range of the normal runs, beyond the metric's tolerance, is
  news. Memory grows by 64 KiB pages with the input, so its tolerance is 10%.
- **Drift**: an EWMA of the values that are not outliers (``ewma_lambda``), against
  the control limit ``median +- drift_limit * sigma * sqrt(lambda / (2 - lambda) +
  pi / 2n)``, drift_limit 4, sigma = 1.4826 MAD (the MAD as above), n the learned
  runs (the second term is the learned median's own error). A slow shift that no single run shows; reported as INFO.

Nothing is reported for a metric before ``warmup`` normal runs (30) have it. The
samples are kept in a bounded window (the last ``window`` normal runs, 256 by
default; :mod:`wasmscope.guard.baseline` stores it), and median and MAD are exact
over that window.
"""

from __future__ import annotations

import math
import statistics
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from enum import StrEnum
from types import MappingProxyType
from typing import TYPE_CHECKING

from wasmscope.errors import UsageError
from wasmscope.guard.findings import EventName, Finding, Outcome, Severity

if TYPE_CHECKING:
    from wasmscope.runtime.host_calls import AuditLog
    from wasmscope.runtime.record import InvocationRecord

__all__ = [
    "CPU",
    "DURATION",
    "FUEL",
    "HOST_CALLS",
    "MEMORY",
    "OUTPUT",
    "TIME_MIN_EXCESS",
    "Direction",
    "Ewma",
    "MetricRule",
    "Reference",
    "ResourceSettings",
    "check_figures",
    "drift_finding",
    "figures_from_record",
    "modified_z",
    "outlier_finding",
    "validate_figures",
]

FUEL = "fuel"
MEMORY = "memory_peak"
DURATION = "duration"
CPU = "cpu"
OUTPUT = "output_bytes"
HOST_CALLS = "host_calls"

MAD_SCALE = 0.6745  # the MAD of a standard normal distribution
SIGMA_PER_MAD = 1.4826  # 1 / MAD_SCALE: sigma estimated from the MAD


class Direction(StrEnum):
    """Which side of the normal range is news."""

    HIGH = "high"  # more than normal (memory, output, calls...)
    BOTH = "both"  # any change (fuel: deterministic for an input class)


@dataclass(frozen=True, slots=True)
class MetricRule:
    """``tolerance`` is relative to the median (at least 1 unit) and only applies to
    exact metrics; ``threshold`` overrides the settings' one for this metric;
    ``min_excess``: no value closer than this to the median is news (absolute, in
    the metric's unit)."""

    direction: Direction = Direction.HIGH
    tolerance: float = 0.0
    threshold: float | None = None
    min_excess: float = 0.0


# Time depends on the host's load as much as on the guest, so its tail is long; fuel
# measures the guest's work exactly, and time only has to catch what fuel cannot
# (sleeps, waits on the host), which is large: a higher threshold for the clocks,
# and a floor under which no time is news (a run of 1 ms with a MAD of 10 µs would
# otherwise alert on any preemption; CFS's latency target alone is 6 ms).
TIME_THRESHOLD = 6.0
TIME_MIN_EXCESS = 0.020  # seconds

DEFAULT_RULES: Mapping[str, MetricRule] = MappingProxyType(
    {
        FUEL: MetricRule(Direction.BOTH, tolerance=1e-6),
        MEMORY: MetricRule(tolerance=0.10),
        DURATION: MetricRule(threshold=TIME_THRESHOLD, min_excess=TIME_MIN_EXCESS),
        CPU: MetricRule(threshold=TIME_THRESHOLD, min_excess=TIME_MIN_EXCESS),
    }
)

_RULE_IDS = {
    FUEL: "anomaly.fuel",
    MEMORY: "anomaly.memory",
    DURATION: "anomaly.duration",
    CPU: "anomaly.cpu",
    OUTPUT: "anomaly.output",
    HOST_CALLS: "anomaly.host_calls",
}


def _family(metric: str) -> str:
    return metric.partition(".")[0]


@dataclass(frozen=True, slots=True)
class ResourceSettings:
    """See the module's text. ``rules`` by metric name, or by the name before a dot
    (``host_calls`` covers ``host_calls.fd_write``); the rest are ``MetricRule()``."""

    threshold: float = 3.5
    warmup: int = 30
    window: int = 256
    ewma_lambda: float = 0.1
    drift_limit: float = 4.0
    rules: Mapping[str, MetricRule] = field(default_factory=lambda: DEFAULT_RULES)

    def __post_init__(self) -> None:
        if not self.threshold > 0 or not self.drift_limit > 0:
            raise UsageError("resource thresholds must be positive")
        if self.warmup < 1 or self.window < self.warmup:
            raise UsageError(
                f"the resource warmup ({self.warmup}) must be at least 1 and at most "
                f"the window of samples kept ({self.window})"
            )
        if not 0 < self.ewma_lambda <= 1:
            raise UsageError(f"ewma_lambda must be in (0, 1], not {self.ewma_lambda}")

    def rule(self, metric: str) -> MetricRule:
        return self.rules.get(metric) or self.rules.get(_family(metric)) or MetricRule()

    def threshold_of(self, metric: str) -> float:
        own = self.rule(metric).threshold
        return self.threshold if own is None else own


@dataclass(frozen=True, slots=True)
class Reference:
    """One metric over the normal runs kept: their count, median, MAD and range.
    ``scale`` is the MAD, or half the interquartile range when that is larger: the
    two agree for normal data, but when many runs tie (call counts, memory pages)
    the MAD collapses towards 0 and would make a neighbouring value an outlier."""

    count: int
    median: float
    mad: float
    low: float
    high: float
    scale: float

    @classmethod
    def of(cls, values: Sequence[float]) -> Reference:
        if not values:
            raise UsageError("a reference needs at least one value")
        median = statistics.median(values)
        mad = statistics.median([abs(v - median) for v in values])
        iqr = 0.0
        if len(values) > 1:
            q1, _, q3 = statistics.quantiles(values, n=4, method="inclusive")
            iqr = q3 - q1
        return cls(len(values), median, mad, min(values), max(values), max(mad, iqr / 2))

    @property
    def exact(self) -> bool:
        """No spread at all (at least three quarters of the runs agree)."""
        return self.scale == 0


@dataclass(slots=True)
class Ewma:
    """An exponentially weighted moving average and how many values it has seen."""

    value: float
    count: int = 1

    def update(self, x: float, lam: float) -> None:
        self.value = lam * x + (1 - lam) * self.value
        self.count += 1


def modified_z(value: float, ref: Reference) -> float:
    """Iglewicz and Hoaglin's modified z-score (with ``ref.scale`` for the MAD)."""
    return MAD_SCALE * (value - ref.median) / ref.scale


def _is_outlier(metric: str, value: float, ref: Reference, settings: ResourceSettings) -> bool:
    rule = settings.rule(metric)
    if ref.exact:
        tol = rule.tolerance * max(abs(ref.median), 1.0)
        above = value > ref.high + tol
        below = value < ref.low - tol
    else:
        # A value some learned run had is normal; the z-score says how far past the
        # learned range a value must be to be news.
        z = modified_z(value, ref)
        above = z > settings.threshold_of(metric) and value > ref.high
        below = -z > settings.threshold_of(metric) and value < ref.low
    if abs(value - ref.median) <= rule.min_excess:
        return False
    return above or (below and rule.direction is Direction.BOTH)


def _where(function: str, input_class: str) -> str:
    return f"{function or 'the module'}" + (f" ({input_class})" if input_class else "")


def outlier_finding(
    metric: str,
    value: float,
    ref: Reference,
    settings: ResourceSettings,
    *,
    function: str = "",
    input_class: str = "",
) -> Finding | None:
    """The finding for one metric of one run, or None when it is normal."""
    if not _is_outlier(metric, value, ref, settings):
        return None
    threshold = settings.threshold_of(metric)
    side = "above" if value > ref.median else "below"
    details: dict[str, object] = {
        "metric": metric,
        "value": value,
        "median": ref.median,
        "mad": ref.mad,
        "scale": ref.scale,
        "threshold": threshold,
        "normal_low": ref.low,
        "normal_high": ref.high,
        "baseline_runs": ref.count,
        "function": function,
        "input_class": input_class,
    }
    if ref.exact:
        details["method"] = "exact"
        details["tolerance"] = settings.rule(metric).tolerance
        message = (
            f"{metric} {value:g} is {side} every normal run of {_where(function, input_class)} "
            f"({ref.low:g} to {ref.high:g}, median {ref.median:g}); the metric is exact there"
        )
    else:
        z = modified_z(value, ref)
        details["method"] = "modified-z"
        details["score"] = z
        message = (
            f"{metric} {value:g} is {side} normal for {_where(function, input_class)}: "
            f"median {ref.median:g}, modified z-score {z:.1f} over the threshold {threshold:g}"
        )
    return Finding(
        name=EventName.ANOMALY,
        rule=_RULE_IDS.get(_family(metric), "anomaly.resource"),
        severity=Severity.WARN,
        message=message,
        category="resources",
        outcome=Outcome.ALLOWED,
        target=metric,
        details=details,
    )


def drift_finding(
    metric: str,
    ewma: Ewma,
    ref: Reference,
    settings: ResourceSettings,
    *,
    function: str = "",
    input_class: str = "",
) -> Finding | None:
    """INFO when the EWMA has left its control limits (never for an exact metric,
    whose every change is already an outlier)."""
    if ref.exact or ewma.count < settings.warmup:
        return None
    lam = settings.ewma_lambda
    # The EWMA's own spread, plus the learned median's error (a median of n runs has
    # the variance pi sigma^2 / 2n): without it, a reference learned from few runs
    # would make normal runs drift.
    spread = math.sqrt(lam / (2 - lam) + math.pi / (2 * ref.count))
    limit = settings.drift_limit * SIGMA_PER_MAD * ref.scale * spread
    shift = ewma.value - ref.median
    rule = settings.rule(metric)
    limit = max(limit, rule.min_excess)
    if not (shift > limit or (rule.direction is Direction.BOTH and -shift > limit)):
        return None
    side = "up" if shift > 0 else "down"
    return Finding(
        name=EventName.ANOMALY,
        rule="anomaly.drift",
        severity=Severity.INFO,
        message=(
            f"{metric} of {_where(function, input_class)} drifts {side}: its moving average "
            f"{ewma.value:g} is {abs(shift):g} from the median {ref.median:g} (limit {limit:g})"
        ),
        category="resources",
        outcome=Outcome.ALLOWED,
        target=metric,
        details={
            "metric": metric,
            "ewma": ewma.value,
            "median": ref.median,
            "mad": ref.mad,
            "limit": limit,
            "threshold": settings.drift_limit,
            "ewma_lambda": lam,
            "baseline_runs": ref.count,
            "function": function,
            "input_class": input_class,
        },
    )


def check_figures(
    figures: Mapping[str, float],
    references: Mapping[str, Reference],
    settings: ResourceSettings,
    *,
    function: str = "",
    input_class: str = "",
) -> tuple[list[Finding], set[str]]:
    """The outlier findings of one run, and the metrics that were outliers. Metrics
    whose reference has fewer than ``warmup`` runs are not judged."""
    findings: list[Finding] = []
    outliers: set[str] = set()
    for metric, value in sorted(figures.items()):
        ref = references.get(metric)
        if ref is None or ref.count < settings.warmup:
            continue
        found = outlier_finding(
            metric, value, ref, settings, function=function, input_class=input_class
        )
        if found is not None:
            findings.append(found)
            outliers.add(metric)
    return findings, outliers


def validate_figures(figures: Mapping[str, float]) -> dict[str, float]:
    """The figures as floats; a name that is not a string or a value that is not a
    finite number is a UsageError."""
    out: dict[str, float] = {}
    for metric, value in figures.items():
        if not isinstance(metric, str) or not metric:
            raise UsageError(f"a resource name must be a non-empty string, not {metric!r}")
        if isinstance(value, bool) or not isinstance(value, int | float):
            raise UsageError(f"resource {metric} must be a number, not {value!r}")
        if not math.isfinite(value):
            raise UsageError(f"resource {metric} must be finite, not {value!r}")
        out[metric] = float(value)
    return out


_GUEST_PHASES = ("instantiate", "execute")


def figures_from_record(rec: InvocationRecord, audit: AuditLog | None = None) -> dict[str, float]:
    """The figures of one run: what the record measured (a figure it lacks is left
    out) and, with an audit log, the host calls in all and per function. The
    ``duration`` is the guest's (instantiate and execute) when the record has those
    phases: loading and compiling are the host's, and a cold start is not news."""
    guest = [p.seconds for p in rec.phases if p.name in _GUEST_PHASES]
    figures: dict[str, float] = {
        DURATION: sum(guest) if guest else rec.duration_seconds,
        OUTPUT: float(rec.stdout_bytes + rec.stderr_bytes),
    }
    if rec.fuel_consumed is not None:
        figures[FUEL] = float(rec.fuel_consumed)
    if rec.peak_memory is not None:
        figures[MEMORY] = float(rec.peak_memory)
    if rec.cpu_seconds is not None:
        figures[CPU] = rec.cpu_seconds
    counts = audit.counts if audit is not None else None
    if counts:
        figures[HOST_CALLS] = float(sum(counts.values()))
        for func, n in counts.items():
            figures[f"{HOST_CALLS}.{func}"] = float(n)
    elif audit is not None:
        figures[HOST_CALLS] = 0.0
    return figures
