"""The summary: the statistics of each function are numpy's over its rows, the cost is
the price sheet's per invocation, and the month at a given or observed rate."""

from __future__ import annotations

import math

import numpy as np
import pytest

from wasmscope.cost.prices import load_price_sheet
from wasmscope.cost.records import UsageTable
from wasmscope.cost.summary import QUANTILES, SECONDS_PER_MONTH, summarize
from wasmscope.errors import UsageError
from wasmscope.runtime.record import InvocationRecord


def _table(n: int, wall: float | np.ndarray, *, functions: tuple[str, ...] = ("f",), memory_limit: float = float("nan"),
           cpu: float | np.ndarray = 0.001, seconds: float = 1.0) -> UsageTable:  # fmt: skip
    """``n`` invocations spread over ``seconds``, the functions taking turns."""
    names = np.array(functions, dtype=object)
    codes = np.arange(n) % len(functions)
    return UsageTable(
        function=names[codes], module=np.full(n, "m", dtype=object), wall_s=np.broadcast_to(wall, n).astype(float),
        cpu_s=np.broadcast_to(cpu, n).astype(float), fuel=np.full(n, np.nan), peak_memory=np.full(n, 1e6),
        memory_limit=np.full(n, memory_limit), host_calls=np.full(n, np.nan), outcome=np.full(n, "ok", dtype=object),
        start_ns=(np.linspace(0, (seconds - np.max(wall)) * 1e9, n)).astype(np.int64),
    )  # fmt: skip


def test_each_functions_statistics_are_numpys_over_its_rows(records: list[InvocationRecord]) -> None:
    t = UsageTable.from_records(records)
    s = summarize(t)
    assert [f.function for f in s.functions] == ["work.wasm:work", "work.wasm:boom"]  # most invoked first
    assert s.total.invocations == len(records) and s.total.errors == 2
    for f in [*s.functions, s.total]:
        rows = t.function == f.function if f.function != "(total)" else np.ones(len(t), dtype=bool)
        assert f.invocations == int(rows.sum())
        for attr, col in (("wall", "wall_s"), ("cpu", "cpu_s"), ("fuel", "fuel"), ("peak_memory", "peak_memory")):
            v = getattr(t, col)[rows]
            stats = getattr(f, attr)
            q = np.quantile(v, QUANTILES)
            assert (stats.min, stats.max, stats.known) == (v.min(), v.max(), len(v))
            assert stats.avg == pytest.approx(v.mean(), rel=1e-12)
            assert (stats.p50, stats.p95, stats.p99) == pytest.approx(tuple(q), rel=1e-12)
    work = s.functions[0]
    assert work.errors == 0 and s.functions[1].errors == 2
    assert work.peak_memory.max == 4 * 65536 and work.fuel.min == 13 * 1000 + 8


def test_unknown_values_are_left_out_and_counted() -> None:
    t = _table(10, 0.01, cpu=np.array([np.nan] * 4 + [0.002] * 6))
    s = summarize(t)
    assert s.total.cpu.known == 6 and s.total.cpu.min == 0.002
    assert s.total.fuel.known == 0 and math.isnan(s.total.fuel.p50)


def test_lambdas_worked_example_60m_invocations_of_28ms_at_1gb() -> None:
    """AWS's 1 ms billing example: $28 of compute plus $12 of requests a month."""
    s = summarize(_table(1000, 0.028), load_price_sheet("aws-lambda-x86"), memory_mb=1024, monthly_invocations=60e6)
    cost = s.total.cost
    assert cost is not None and cost.memory_mb == 1024
    assert cost.per_month == pytest.approx(28.0 + 12.0, rel=1e-4)
    assert cost.per_invocation == pytest.approx(0.028 * 0.0000166667 + 0.2e-6, rel=1e-9)
    assert cost.per_million == pytest.approx(cost.per_invocation * 1e6)
    assert cost.observed == pytest.approx(1000 * cost.per_invocation)


def test_functions_share_the_month_and_the_free_tier() -> None:
    sheet = load_price_sheet("aws-lambda-arm64")
    t = _table(3000, np.where(np.arange(3000) % 3 == 0, 0.2, 0.02), functions=("slow", "fast", "other"))
    for free in (False, True):
        s = summarize(t, sheet, memory_mb=512, rate_per_s=50, free_tier=free)
        assert s.rate == "given" and s.total.cost is not None
        assert s.total.cost.monthly_invocations == pytest.approx(50 * SECONDS_PER_MONTH)
        months = [f.cost.per_month for f in s.functions if f.cost is not None]
        assert sum(m for m in months if m is not None) == pytest.approx(s.total.cost.per_month)
        slow = next(f for f in s.functions if f.function == "slow")
        assert slow.cost is not None and slow.cost.per_invocation > 4 * s.functions[1].cost.per_invocation  # type: ignore[union-attr]


def test_the_observed_rate_prices_the_month() -> None:
    s = summarize(_table(600, 0.01, seconds=60.0), load_price_sheet("cloudflare-workers"))
    assert s.rate == "observed" and s.observed_rate == pytest.approx(10.0, rel=0.01)
    assert s.total.cost is not None and s.total.cost.monthly_invocations == pytest.approx(s.observed_rate * SECONDS_PER_MONTH)
    one = summarize(_table(1, 0.01), load_price_sheet("cloudflare-workers"))
    assert one.observed_rate is None and one.total.cost is not None and one.total.cost.per_month is None


def test_memory_time_sheets_price_the_records_memory_limit_at_the_next_size() -> None:
    sheet = load_price_sheet("aws-lambda-x86")
    s = summarize(_table(10, 0.01, memory_limit=64 << 20), sheet)
    assert s.total.cost is not None and s.total.cost.memory_mb == 128  # Lambda's smallest size
    s = summarize(_table(10, 0.01, memory_limit=300 << 20), sheet)
    assert s.total.cost is not None and s.total.cost.memory_mb == 300
    with pytest.raises(UsageError, match="carry no memory limit: give the size"):
        summarize(_table(10, 0.01), sheet)
    with pytest.raises(UsageError, match="memory_mb 100 cannot be configured"):
        summarize(_table(10, 0.01), sheet, memory_mb=100)


def test_a_cpu_time_sheet_counts_invocations_without_cpu_time_as_unpriced() -> None:
    s = summarize(_table(10, 0.01, cpu=np.array([np.nan] * 3 + [0.004] * 7)), load_price_sheet("fastly-compute"))
    assert s.total.cost is not None and s.total.cost.unpriced == 3 and s.total.cost.per_invocation > 0


def test_the_rate_and_the_monthly_volume_exclude_each_other() -> None:
    with pytest.raises(UsageError, match="not both"):
        summarize(_table(2, 0.01), load_price_sheet("cloud-run"), monthly_invocations=1e6, rate_per_s=1.0)


def test_an_empty_table_summarises_to_nothing() -> None:
    s = summarize(UsageTable.empty(), load_price_sheet("cloud-run"))
    assert s.functions == () and s.total.invocations == 0 and s.total.cost is None


def test_records_without_times_stay_out_of_the_window() -> None:
    t = _table(3, 0.01, seconds=2.0)
    start = t.start_ns.copy()
    start[0] = 0  # as a record of a run refused before it started
    t2 = UsageTable(t.function, t.module, t.wall_s, t.cpu_s, t.fuel, t.peak_memory, t.memory_limit, t.host_calls,
                    t.outcome, start)  # fmt: skip
    s = summarize(t2)
    assert s.seconds_observed == pytest.approx((t.start_ns[2] - t.start_ns[1]) / 1e9 + 0.01)
