"""The resource rules: modified z-score with warm-up, MAD = 0 (exact metrics), the
direction of each metric, EWMA drift, and the figures of a run record."""

from __future__ import annotations

import math
import random

import pytest

from wasmscope.errors import UsageError
from wasmscope.guard.findings import EventName, Severity
from wasmscope.guard.resources import (
    CPU,
    DURATION,
    FUEL,
    HOST_CALLS,
    MEMORY,
    OUTPUT,
    TIME_MIN_EXCESS,
    Direction,
    Ewma,
    MetricRule,
    Reference,
    ResourceSettings,
    check_figures,
    drift_finding,
    figures_from_record,
    modified_z,
    outlier_finding,
    validate_figures,
)
from wasmscope.runtime.host_calls import AuditLog
from wasmscope.runtime.record import InvocationRecord, ModuleIdentity, Phase

SETTINGS = ResourceSettings()


def _uniform(n: int, lo: float, hi: float, seed: int = 1) -> list[float]:
    rnd = random.Random(seed)
    return [rnd.uniform(lo, hi) for _ in range(n)]


def test_the_modified_z_score_is_iglewicz_and_hoaglins() -> None:
    ref = Reference.of([1.0, 2.0, 3.0, 4.0, 100.0])
    assert (ref.median, ref.mad, ref.low, ref.high) == (3.0, 1.0, 1.0, 100.0)
    assert modified_z(100.0, ref) == pytest.approx(0.6745 * 97.0)
    assert modified_z(3.0, ref) == 0.0


def test_an_outlier_names_the_metric_value_median_and_threshold() -> None:
    ref = Reference.of(_uniform(50, 900, 1100))
    assert outlier_finding(MEMORY, 1150, ref, SETTINGS) is None  # z about 1.8
    found = outlier_finding(MEMORY, 4000, ref, SETTINGS, function="_start", input_class="small")
    assert found is not None
    assert (found.name, found.rule, found.severity, found.category) == (
        EventName.ANOMALY,
        "anomaly.memory",
        Severity.WARN,
        "resources",
    )
    assert found.target == MEMORY
    d = found.details
    assert (d["metric"], d["value"], d["threshold"], d["method"]) == (
        MEMORY,
        4000,
        3.5,
        "modified-z",
    )
    assert d["median"] == ref.median and d["score"] > 3.5
    assert d["function"] == "_start" and d["input_class"] == "small"
    assert "median" in found.message and "3.5" in found.message


def test_nothing_is_judged_before_the_warm_up() -> None:
    values = _uniform(29, 900, 1100)
    refs = {MEMORY: Reference.of(values)}
    assert check_figures({MEMORY: 1e9}, refs, SETTINGS) == ([], set())
    refs = {MEMORY: Reference.of([*values, 1000.0])}
    findings, outliers = check_figures({MEMORY: 1e9}, refs, SETTINGS)
    assert outliers == {MEMORY} and len(findings) == 1
    # A metric never learned is not judged either.
    assert check_figures({"new_metric": 5.0}, refs, SETTINGS) == ([], set())


def test_the_warm_up_is_configurable() -> None:
    refs = {MEMORY: Reference.of(_uniform(5, 900, 1100))}
    settings = ResourceSettings(warmup=5)
    assert check_figures({MEMORY: 1e9}, refs, settings)[1] == {MEMORY}


def test_resources_alert_upwards_and_fuel_both_ways() -> None:
    ref = Reference.of(_uniform(50, 900, 1100))
    assert outlier_finding(MEMORY, 10, ref, SETTINGS) is None
    assert outlier_finding(DURATION, 10, ref, SETTINGS) is None
    assert outlier_finding(FUEL, 10, ref, SETTINGS) is not None
    low = outlier_finding(FUEL, 10, ref, SETTINGS)
    assert low is not None and "below" in low.message


def test_mad_zero_makes_the_metric_exact() -> None:
    ref = Reference.of([123456.0] * 40)
    assert ref.exact
    assert outlier_finding(FUEL, 123456, ref, SETTINGS) is None
    # fuel: deterministic for an input class; any change past a tiny tolerance is news
    assert outlier_finding(FUEL, 123456.1, ref, SETTINGS) is None  # within 1e-6 relative
    for changed in (123458.0, 123400.0, 2 * 123456.0):
        found = outlier_finding(FUEL, changed, ref, SETTINGS)
        assert found is not None and found.details["method"] == "exact"
        assert found.rule == "anomaly.fuel"
    # memory: exact too, but only more is news, and a page more is within its 10%
    pages = Reference.of([65536.0 * 17] * 40)
    assert outlier_finding(MEMORY, 65536 * 18, pages, SETTINGS) is None
    assert outlier_finding(MEMORY, 65536 * 19, pages, SETTINGS) is not None
    assert outlier_finding(MEMORY, 65536 * 1, pages, SETTINGS) is None


def test_ties_do_not_collapse_the_scale() -> None:
    # Half the runs made 20 calls, most others 30: the MAD is 0, the quartiles 10 apart.
    ref = Reference.of([10.0] * 4 + [20.0] * 26 + [30.0] * 20)
    assert (ref.mad, ref.scale, ref.exact) == (0.0, 5.0, False)
    assert outlier_finding("host_calls.fd_read", 31, ref, SETTINGS) is None  # z = 1.5, not exact
    assert outlier_finding("host_calls.fd_read", 50, ref, SETTINGS) is not None  # z = 4.0


def test_a_value_a_learned_run_had_is_never_news() -> None:
    # A concentrated sample: z(26) = 4.0, yet a learned run had 26 calls.
    values = [15, 16, *[17] * 5, *[18] * 4, *[19] * 5, *[20] * 13, *[21] * 9, *[22] * 6]
    ref = Reference.of([float(v) for v in [*values, 23, 23, 23, 23, 24, 26]])
    assert modified_z(26, ref) > 3.5
    assert outlier_finding("host_calls.fd_read", 26, ref, SETTINGS) is None
    assert outlier_finding("host_calls.fd_read", 27, ref, SETTINGS) is not None


def test_mad_zero_with_a_few_other_values_keeps_the_seen_range() -> None:
    # Most runs call random_get once, a few twice: MAD is 0, yet twice is normal.
    values = [1.0] * 45 + [2.0] * 5
    ref = Reference.of(values)
    assert ref.exact and ref.high == 2.0
    assert outlier_finding("host_calls.random_get", 2, ref, SETTINGS) is None
    found = outlier_finding("host_calls.random_get", 3, ref, SETTINGS)
    assert found is not None and found.rule == "anomaly.host_calls"


def test_rules_are_found_by_metric_or_family_and_thresholds_override() -> None:
    settings = ResourceSettings(
        rules={HOST_CALLS: MetricRule(Direction.BOTH), DURATION: MetricRule(threshold=10.0)}
    )
    assert settings.rule("host_calls.fd_read").direction is Direction.BOTH
    assert settings.rule(OUTPUT) == MetricRule()
    ref = Reference.of(_uniform(50, 900, 1100))
    assert outlier_finding(DURATION, 1300, ref, settings) is None  # z about 4.6 < 10
    assert outlier_finding(CPU, 1300, ref, settings) is not None
    assert outlier_finding("host_calls.fd_read", 10, ref, settings) is not None


def test_other_metrics_get_the_generic_rule_id() -> None:
    ref = Reference.of(_uniform(50, 10, 20))
    found = outlier_finding("random_bytes", 1e6, ref, SETTINGS)
    assert found is not None and found.rule == "anomaly.resource"


def test_a_slow_shift_drifts_while_no_run_is_an_outlier() -> None:
    ref = Reference.of(_uniform(100, 100, 200, seed=2))
    rnd = random.Random(3)
    steady = Ewma(ref.median, SETTINGS.warmup)
    for _ in range(300):
        steady.update(rnd.uniform(100, 200), SETTINGS.ewma_lambda)
        assert drift_finding(DURATION, steady, ref, SETTINGS) is None

    shifted = Ewma(ref.median, SETTINGS.warmup)
    drifted = None
    for i in range(100):
        x = rnd.uniform(160, 240)  # each one within the z-score threshold
        assert outlier_finding(DURATION, x, ref, SETTINGS) is None
        shifted.update(x, SETTINGS.ewma_lambda)
        drifted = drifted or (i if drift_finding(DURATION, shifted, ref, SETTINGS) else None)
    assert drifted is not None
    found = drift_finding(DURATION, shifted, ref, SETTINGS)
    assert found is not None
    assert (found.rule, found.severity) == ("anomaly.drift", Severity.INFO)
    assert found.details["ewma"] > ref.median and "drifts up" in found.message


def test_no_drift_for_exact_metrics_nor_before_the_warm_up() -> None:
    exact = Reference.of([5.0] * 40)
    assert drift_finding(FUEL, Ewma(50.0, 100), exact, SETTINGS) is None
    ref = Reference.of(_uniform(50, 100, 200))
    assert drift_finding(DURATION, Ewma(1000.0, 5), ref, SETTINGS) is None
    assert drift_finding(DURATION, Ewma(1000.0, 50), ref, SETTINGS) is not None


def test_figures_must_be_finite_numbers() -> None:
    assert validate_figures({FUEL: 3, DURATION: 0.5}) == {FUEL: 3.0, DURATION: 0.5}
    for bad in ({FUEL: math.nan}, {FUEL: math.inf}, {FUEL: "3"}, {FUEL: True}, {"": 1.0}):
        with pytest.raises(UsageError):
            validate_figures(bad)  # type: ignore[arg-type]


@pytest.mark.parametrize(
    "settings",
    [
        {"threshold": 0},
        {"warmup": 0},
        {"warmup": 300, "window": 256},
        {"ewma_lambda": 0},
        {"ewma_lambda": 1.5},
        {"drift_limit": -1},
    ],
)
def test_bad_settings_are_usage_errors(settings: dict[str, float]) -> None:
    with pytest.raises(UsageError):
        ResourceSettings(**settings)  # type: ignore[arg-type]


def test_the_figures_of_a_run_record() -> None:
    rec = InvocationRecord(
        invocation_id="i",
        module=ModuleIdentity(sha256="ab" * 32, name="m.wasm", size=10),
        entry="_start",
        start_ns=1_000_000_000,
        end_ns=1_250_000_000,
        cpu_seconds=0.2,
        fuel_consumed=12345,
        peak_memory=131072,
        stdout_bytes=100,
        stderr_bytes=5,
    )
    audit = AuditLog(counts={"fd_write": 3, "path_open": 1})
    assert figures_from_record(rec, audit) == {
        DURATION: 0.25,
        OUTPUT: 105.0,
        FUEL: 12345.0,
        MEMORY: 131072.0,
        CPU: 0.2,
        HOST_CALLS: 4.0,
        "host_calls.fd_write": 3.0,
        "host_calls.path_open": 1.0,
    }
    bare = InvocationRecord(invocation_id="j", module=rec.module, entry="_start")
    assert figures_from_record(bare) == {DURATION: 0.0, OUTPUT: 0.0}
    assert figures_from_record(bare, AuditLog())[HOST_CALLS] == 0.0


def test_a_time_is_news_only_20_ms_past_the_median() -> None:
    """Real runs of a greeting guest: CPU 0.1 ms with a MAD of 3.5 µs, so a run that
    took 0.2 ms had a z-score of 29 and alerted on the host's noise alone. A time is
    never news within TIME_MIN_EXCESS of the median; a 50 ms sleep still is."""
    ref = Reference.of(_uniform(50, 0.000100, 0.000115))
    for metric in (CPU, DURATION):
        assert outlier_finding(metric, 0.000259, ref, SETTINGS) is None
        assert outlier_finding(metric, 0.000100 + TIME_MIN_EXCESS, ref, SETTINGS) is None
        assert outlier_finding(metric, 0.050, ref, SETTINGS) is not None
    assert outlier_finding(OUTPUT, 0.000259, ref, SETTINGS) is not None  # other metrics: no floor
    ewma = Ewma(0.000200, count=100)
    assert drift_finding(CPU, ewma, ref, SETTINGS) is None


def test_the_duration_figure_is_the_guests_time() -> None:
    """Loading and compiling are the host's (a cold start took 70 ms of a 71 ms run of
    a guest that runs in 1 ms): the duration is instantiate + execute."""
    rec = InvocationRecord(
        invocation_id="i",
        module=ModuleIdentity(sha256="ab" * 32, name="m.wasm", size=10),
        entry="_start",
        start_ns=0,
        end_ns=71_000_000,
        phases=[
            Phase("load", 0, 1_000_000),
            Phase("compile", 1_000_000, 70_000_000),
            Phase("instantiate", 70_000_000, 70_200_000),
            Phase("execute", 70_200_000, 71_000_000),
        ],
    )
    assert figures_from_record(rec)[DURATION] == pytest.approx(0.001)
