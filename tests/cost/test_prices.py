"""Price sheets: each shipped model reproduces its provider's published worked examples
(rounding and free tiers included), a bad sheet is a UsageError that names the file, the
key and what is expected, and the vectorised costs equal a scalar loop.

Published examples, with where they are published:

- AWS, "New for AWS Lambda - 1ms Billing Granularity Adds Cost Savings" (2020-12-01):
  60 million invocations of 28 ms at 1 GB: $28 of compute plus $12 of requests; with the
  old 100 ms rounding, $100 of compute. A 27.55 ms invocation is billed 28 ms.
- AWS Lambda pricing page, Example 1 (the copy that prices $0.00001667 per GB-s): 512 MB,
  3 million invocations of 1 s, free tier applied: $18.34 + $0.40 = $18.74.
- AWS, "Introducing tiered pricing for AWS Lambda": 10% off from 6 billion GB-s a month,
  20% off from 15 billion (x86); 7.5 and 18.75 billion on arm64.
- Cloudflare Workers pricing, "Example 1": 15 million requests of 7 ms CPU: $5 + $1.50 +
  $1.50 = $8.00 a month.
- Azure "Estimating consumption-based costs": 0.5 GB for 3 s is 1.5 GB-s; a process using
  160 MB is charged for 256 MB; Flex Consumption, 2,048 MB instances, 40 requests/s,
  10 at once: $1.9296 an hour on 10 instances (CPU-bound), $0.245 on one (IO-bound).

Fastly and Google publish no worked example (none was found): their tests check the
published rates and rules (Cloud Run's 100 ms rounding, requests sharing an instance).
"""

from __future__ import annotations

import math
import os
import subprocess
import sys
import tomllib
from pathlib import Path

import numpy as np
import pytest

from wasmscope.cost.prices import (
    _KEYS,
    METERS,
    SHEETS,
    PriceSheet,
    load_price_sheet,
    parse_price_sheet,
)
from wasmscope.errors import UsageError

ROOT = Path(__file__).resolve().parents[2]
DATA = ROOT / "src" / "wasmscope" / "cost" / "data" / "prices"
MIB = 1024 * 1024


def costs(
    sheet: PriceSheet,
    n: int,
    *,
    wall: float = 0.0,
    cpu: float = 0.0,
    peak: float = 0.0,
    **kw: object,
) -> np.ndarray:
    return sheet.invocation_costs(np.full(n, wall), np.full(n, cpu), np.full(n, peak), **kw)  # type: ignore[arg-type]


def user_sheet(tmp_path: Path, text: str, name: str = "mine.toml") -> Path:
    path = tmp_path / name
    path.write_text(text, encoding="utf-8")
    return path


HEADER = """
name = "mine"
provider = "My platform"
date = 2026-12-01
source = "https://example.com/pricing"
"""


# -- the shipped sheets ------------------------------------------------------------------


@pytest.mark.parametrize("name", SHEETS)
def test_every_shipped_sheet_is_dated_sourced_and_metered(name: str) -> None:
    sheet = load_price_sheet(name)
    assert sheet.name == name and (DATA / f"{name}.toml").is_file()
    assert sheet.meter in METERS
    assert len(sheet.date) == 10 and sheet.date[4] == "-"
    assert sheet.source.startswith("https://")
    text = (DATA / f"{name}.toml").read_text()
    assert text.startswith("#") and "Read on" in text  # where and when the prices were read


def test_the_shipped_sheets_are_exactly_the_data_files() -> None:
    assert sorted(SHEETS) == sorted(p.stem for p in DATA.glob("*.toml"))


def test_package_data_ships_the_sheets() -> None:
    # `pip install .` installs what [tool.setuptools.package-data] names.
    config = tomllib.loads((ROOT / "pyproject.toml").read_text())
    globs = config["tool"]["setuptools"]["package-data"]["wasmscope.cost"]
    package = ROOT / "src" / "wasmscope" / "cost"
    shipped = {p for g in globs for p in package.glob(g)}
    assert {p for p in DATA.glob("*.toml")} <= shipped
    extras = config["project"]["optional-dependencies"]
    assert any(r.startswith("numpy") for r in extras["cost"])


def test_import_wasmscope_cost_does_not_import_numpy() -> None:
    code = (
        "import sys, wasmscope.cost as c; assert 'numpy' not in sys.modules; "
        "assert 'load_price_sheet' in dir(c); c.load_price_sheet; assert 'numpy' in sys.modules"
    )
    env = {**os.environ, "PYTHONPATH": str(ROOT / "src")}
    subprocess.run([sys.executable, "-c", code], check=True, env=env, timeout=120)


def test_without_numpy_the_error_says_what_to_install() -> None:
    code = (
        "import sys; sys.modules['numpy'] = None\n"
        "from wasmscope.errors import UsageError\n"
        "try:\n    import wasmscope.cost.prices\nexcept UsageError as e:\n    print(e)\n"
    )
    env = {**os.environ, "PYTHONPATH": str(ROOT / "src")}
    out = subprocess.run(
        [sys.executable, "-c", code],
        check=True,
        env=env,
        capture_output=True,
        text=True,
        timeout=120,
    ).stdout
    assert "pip install 'wasmscope[cost]'" in out


# -- AWS Lambda --------------------------------------------------------------------------


def test_lambda_1ms_billing_example() -> None:
    sheet = load_price_sheet("aws-lambda-x86")
    usd = costs(sheet, 10, wall=0.028, memory_mb=1024)
    bill = sheet.bill(usd, monthly_invocations=60e6)
    assert bill.compute_per_month == pytest.approx(28.00, abs=0.005)
    assert bill.requests_per_month == pytest.approx(12.00, abs=1e-9)
    assert bill.per_month == pytest.approx(40.00, abs=0.005)


def test_lambda_rounds_up_to_the_millisecond() -> None:
    sheet = load_price_sheet("aws-lambda-x86")
    # The blog's REPORT line: Duration 27.55 ms, Billed Duration 28 ms.
    billed, exact = sheet.invocation_costs([0.02755, 0.028], 0, 0, memory_mb=1024)
    assert billed == exact
    # 28 ms exactly stays 28 ms (0.028 / 0.001 is not exactly 28 in binary floating point).
    assert sheet.invocation_costs([0.028], 0, 0, memory_mb=1024)[0] == pytest.approx(
        0.028 * 0.0000166667 + 0.2e-6, rel=1e-12
    )
    below, above = sheet.invocation_costs([0.028, 0.0280001], 0, 0, memory_mb=1024)
    assert above > below


def test_lambda_old_100ms_rounding_as_a_users_sheet(tmp_path: Path) -> None:
    old = load_price_sheet(
        user_sheet(
            tmp_path,
            HEADER
            + """
meter = "memory-time"
[duration]
rounding_ms = 100
[memory]
steps_mb = { min = 128, max = 10240 }
[price]
gb_second = 0.0000166667
requests_per_million = 0.20
""",
        )
    )
    usd = old.invocation_costs(np.full(4, 0.0274), 0, 0, memory_mb=1024)  # Duration 27.40 ms
    bill = old.bill(usd, monthly_invocations=60e6)
    assert bill.compute_per_month == pytest.approx(100.00, abs=0.005)


def test_lambda_pricing_page_example_with_the_free_tier(tmp_path: Path) -> None:
    # That copy of the page prices $0.00001667 per GB-s: a user's sheet at that price.
    text = (DATA / "aws-lambda-x86.toml").read_text()
    text = text.replace('name = "aws-lambda-x86"', 'name = "lambda-2020"')
    text = text.replace("gb_second = 0.0000166667", "gb_second = 0.00001667")
    sheet = load_price_sheet(user_sheet(tmp_path, text))
    usd = costs(sheet, 3, wall=1.0, memory_mb=512)
    bill = sheet.bill(usd, monthly_invocations=3e6, free_tier=True)
    assert round(bill.compute_per_month or 0, 2) == 18.34
    assert round(bill.requests_per_month or 0, 2) == 0.40
    assert round(bill.per_month or 0, 2) == 18.74
    # Without the free tier, all of it: 1.5M GB-s and 3M requests.
    full = sheet.bill(usd, monthly_invocations=3e6)
    assert full.per_month == pytest.approx(1_500_000 * 0.00001667 + 0.60)


@pytest.mark.parametrize(
    ("name", "first", "second", "rates"),
    [
        ("aws-lambda-x86", 6e9, 15e9, (0.0000166667, 0.000015, 0.0000133334)),
        ("aws-lambda-arm64", 7.5e9, 18.75e9, (0.0000133334, 0.0000120001, 0.0000106667)),
    ],
)
def test_lambda_tiers(name: str, first: float, second: float, rates: tuple[float, ...]) -> None:
    sheet = load_price_sheet(name)
    one = sheet.invocation_costs([1.0], 0, 0, memory_mb=1024)  # 1 GB-s each
    for units, expected in [
        (first / 2, first / 2 * rates[0]),
        (first + 1e9, first * rates[0] + 1e9 * rates[1]),
        (second + 2e9, first * rates[0] + (second - first) * rates[1] + 2e9 * rates[2]),
    ]:
        bill = sheet.bill(one, monthly_invocations=units)
        assert bill.compute_per_month == pytest.approx(expected, rel=1e-6)
    # The discounts the blog announces: 10% and 20% off the first rate.
    assert rates[1] == pytest.approx(rates[0] * 0.9, rel=1e-4)
    assert rates[2] == pytest.approx(rates[0] * 0.8, rel=1e-4)


def test_lambda_cpu_grows_with_memory() -> None:
    for name in ("aws-lambda-x86", "aws-lambda-arm64"):
        sheet = load_price_sheet(name)
        assert sheet.cpu_per_mb == pytest.approx(1 / 1769)
        steps = sheet.memory_steps_mb
        assert steps is not None and steps[0] == 128 and steps[-1] == 10240 and len(steps) == 10113


def test_memory_steps_round_a_size_up() -> None:
    lam = load_price_sheet("aws-lambda-x86")
    assert lam.memory_step_for(0) == 128
    assert lam.memory_step_for(1000.2) == 1001
    assert lam.memory_step_for(1024) == 1024
    assert lam.memory_step_for(20000) is None
    flex = load_price_sheet("azure-flex")
    assert [flex.memory_step_for(m) for m in (100, 512, 513, 4096, 5000)] == [
        512,
        512,
        2048,
        4096,
        None,
    ]
    assert load_price_sheet("cloudflare-workers").memory_step_for(64) is None


# -- Cloudflare Workers, Fastly ----------------------------------------------------------


def test_workers_example_1() -> None:
    sheet = load_price_sheet("cloudflare-workers")
    usd = costs(sheet, 5, cpu=0.007, wall=0.5)  # wall time is not billed
    bill = sheet.bill(usd, monthly_invocations=15e6, free_tier=True)
    assert bill.fee_per_month == 5.00
    assert bill.requests_per_month == pytest.approx(1.50)
    assert bill.compute_per_month == pytest.approx(1.50)
    assert bill.per_month == pytest.approx(8.00)
    assert sheet.memory_steps_mb is None and sheet.cpu_per_mb is None


def test_workers_bills_cpu_not_wall_nor_memory() -> None:
    sheet = load_price_sheet("cloudflare-workers")
    a, b = sheet.invocation_costs([0.001, 30.0], [0.007, 0.007], [0, 128 * MIB])
    assert a == b == pytest.approx(7 * 0.02e-6 + 0.30e-6)


def test_fastly_published_rates_and_free_tier() -> None:
    sheet = load_price_sheet("fastly-compute")
    usd = costs(sheet, 3, cpu=0.001, wall=0.2)
    assert usd[0] == pytest.approx(
        0.05e-6 + 0.50e-6
    )  # $0.05 per million vCPU ms, $0.50 per million requests
    within = sheet.bill(usd, monthly_invocations=10e6, free_tier=True)  # 10M requests, 10M vCPU ms
    assert within.per_month == 0.0
    past = sheet.bill(usd, monthly_invocations=200e6, free_tier=True)
    assert past.requests_per_month == pytest.approx(190 * 0.50)
    assert past.compute_per_month == pytest.approx(100 * 0.05)


# -- Cloud Run ---------------------------------------------------------------------------


def test_cloud_run_rounds_up_to_100ms_and_prices_cpu_and_memory() -> None:
    sheet = load_price_sheet("cloud-run")
    short, full, longer = sheet.invocation_costs([0.005, 0.1, 0.1001], 0, 0, memory_mb=512)
    per_second = 1 * 0.000024 + 0.5 * 0.0000025  # 1 vCPU and 512 MiB
    assert short == full == pytest.approx(0.1 * per_second + 0.40e-6)
    assert longer == pytest.approx(0.2 * per_second + 0.40e-6)


def test_cloud_run_concurrent_requests_share_the_instance() -> None:
    sheet = load_price_sheet("cloud-run")
    alone = sheet.invocation_costs([0.25], 0, 0, memory_mb=1024)[0] - 0.40e-6
    shared = sheet.invocation_costs([0.25], 0, 0, memory_mb=1024, concurrency=80)[0] - 0.40e-6
    assert shared == pytest.approx(alone / 80)
    # An instance kept busy: its busy period is long, its rounding negligible.
    steady = sheet.invocation_costs([0.25], 0, 0, memory_mb=1024, steady=True)[0] - 0.40e-6
    assert steady == pytest.approx(0.25 * (0.000024 + 0.0000025))
    assert alone == pytest.approx(0.3 * (0.000024 + 0.0000025))


def test_cloud_run_free_tier() -> None:
    sheet = load_price_sheet("cloud-run")
    usd = costs(sheet, 2, wall=0.1, memory_mb=1024)
    # 1.8M requests of 100 ms: 180,000 vCPU-s and 180,000 GiB-s, all within the free tier.
    assert sheet.bill(usd, monthly_invocations=1.8e6, free_tier=True).per_month == pytest.approx(
        0, abs=1e-9
    )
    # 10M: 1M vCPU-s, 1M GiB-s, 10M requests, less the free tier.
    bill = sheet.bill(usd, monthly_invocations=10e6, free_tier=True)
    assert bill.compute_per_month == pytest.approx(
        (1e6 - 180_000) * 0.000024 + (1e6 - 360_000) * 0.0000025
    )
    assert bill.requests_per_month == pytest.approx(8 * 0.40)


# -- Azure -------------------------------------------------------------------------------


def test_azure_consumption_documented_examples() -> None:
    sheet = load_price_sheet("azure-consumption")
    # 0.5 GB for 3 seconds: 1.5 GB-s.
    (gbs,) = sheet.invocation_costs([3.0], 0, [512 * MIB]) - 0.20e-6
    assert gbs == pytest.approx(1.5 * 0.000016)
    # A process using 160 MB is charged for 256 MB.
    (used,) = sheet.invocation_costs([1.0], 0, [160 * MIB]) - 0.20e-6
    assert used == pytest.approx(0.25 * 0.000016)


def test_azure_consumption_minimums_rounding_and_cap() -> None:
    sheet = load_price_sheet("azure-consumption")
    fee = 0.20e-6
    tiny, ms, big = (
        sheet.invocation_costs([0.010, 0.1504, 2.0], 0, [1 * MIB, 128 * MIB, 4096 * MIB]) - fee
    )
    assert tiny == pytest.approx(0.1 * 0.125 * 0.000016)  # 100 ms and 128 MB minimum
    assert ms == pytest.approx(0.151 * 0.125 * 0.000016)  # rounded up to 1 ms
    assert big == pytest.approx(2.0 * 1.5 * 0.000016)  # capped at 1,536 MB
    # Concurrent executions in one process: their memory is bucketed together.
    (shared,) = sheet.invocation_costs([1.0], 0, [100 * MIB], concurrency=2) - fee
    assert shared == pytest.approx(1.0 * (256 / 2) / 1024 * 0.000016)
    assert math.isnan(sheet.invocation_costs([1.0], 0, [math.nan])[0])  # memory unknown: no price


def test_azure_consumption_free_grant() -> None:
    sheet = load_price_sheet("azure-consumption")
    usd = costs(sheet, 2, wall=1.0, peak=512 * MIB)
    bill = sheet.bill(usd, monthly_invocations=3e6, free_tier=True)
    assert bill.compute_per_month == pytest.approx((1_500_000 - 400_000) * 0.000016)
    assert bill.requests_per_month == pytest.approx(2 * 0.20)


def test_azure_flex_documented_example() -> None:
    sheet = load_price_sheet("azure-flex")
    per_hour = 40 * 3600  # 40 requests a second, each 0.25 s with 10 at once
    wall = np.full(per_hour, 0.25)
    # CPU-bound: one request per instance, 10 instances always busy.
    cpu_bound = sheet.invocation_costs(wall, 0, 0, memory_mb=2048, steady=True).sum()
    assert cpu_bound == pytest.approx(1.872 + 0.0576)
    assert round(cpu_bound, 4) == 1.9296
    # IO-bound: all 10 on one instance.
    io_bound = sheet.invocation_costs(wall, 0, 0, memory_mb=2048, concurrency=10, steady=True).sum()
    assert round(io_bound, 3) == 0.245


def test_azure_flex_minimum_and_rounding_of_an_activity_period() -> None:
    sheet = load_price_sheet("azure-flex")
    fee = 0.40e-6
    alone, longer = sheet.invocation_costs([0.25, 1.01], 0, 0, memory_mb=512) - fee
    assert alone == pytest.approx(1.0 * 0.5 * 0.000026)  # at least 1,000 ms
    assert longer == pytest.approx(1.1 * 0.5 * 0.000026)  # then in 100 ms steps
    assert sheet.memory_steps_mb == (512, 2048, 4096)
    with pytest.raises(
        UsageError,
        match=r"memory_mb 1024 cannot be configured \(expected one of 512, 2048, 4096 MB\)",
    ):
        sheet.invocation_costs([1.0], 0, 0, memory_mb=1024)


# -- vectorised = scalar -----------------------------------------------------------------


@pytest.mark.parametrize("name", SHEETS)
def test_vectorised_costs_equal_a_scalar_loop(name: str) -> None:
    sheet = load_price_sheet(name)
    rng = np.random.default_rng(14)
    n = 500
    wall = rng.exponential(0.2, n)
    cpu = wall * rng.uniform(0.1, 1.0, n)
    peak = rng.uniform(1, 3000, n) * MIB
    conc = rng.integers(1, 8, n).astype(float)
    steps = sheet.memory_steps_mb
    memory = rng.choice(np.asarray(steps)) if steps else None
    vector = sheet.invocation_costs(wall, cpu, peak, memory_mb=memory, concurrency=conc)
    scalar = [
        sheet.invocation_costs(w, c, p, memory_mb=memory, concurrency=k)[0]
        for w, c, p, k in zip(wall, cpu, peak, conc, strict=True)
    ]
    assert vector.shape == (n,)
    np.testing.assert_array_equal(vector, np.asarray(scalar))
    bill = sheet.bill(vector, invocations=n, seconds_observed=60.0)
    assert bill.per_invocation == pytest.approx(float(np.mean(scalar)))


# -- bills -------------------------------------------------------------------------------


def test_bill_scales_the_observed_rate_to_30_days() -> None:
    sheet = load_price_sheet("aws-lambda-x86")
    usd = costs(sheet, 100, wall=0.1, memory_mb=128)
    bill = sheet.bill(usd, seconds_observed=10.0)
    assert bill.monthly_invocations == pytest.approx(10 * 86400 * 30)
    assert bill.per_month == pytest.approx(bill.per_invocation * 10 * 86400 * 30)
    assert bill.per_million == pytest.approx(bill.per_invocation * 1e6)
    sampled = sheet.bill(usd, invocations=1000, seconds_observed=10.0)  # the costs are a sample
    assert sampled.monthly_invocations == pytest.approx(100 * 86400 * 30)
    none = sheet.bill(usd)
    assert none.per_month is None and none.compute_per_month is None


def test_bill_leaves_out_unpriced_invocations() -> None:
    sheet = load_price_sheet("cloudflare-workers")
    usd = sheet.invocation_costs([0.1, 0.1, 0.1], [0.002, math.nan, 0.004], 0)
    bill = sheet.bill(usd)
    assert bill.unpriced == 1
    assert bill.per_invocation == pytest.approx(3e-3 * 1000 * 0.02e-6 + 0.30e-6)


def test_bill_rejects_a_bad_rate() -> None:
    sheet = load_price_sheet("cloudflare-workers")
    with pytest.raises(UsageError, match="seconds_observed must be > 0"):
        sheet.bill([1e-6], seconds_observed=0)
    with pytest.raises(UsageError, match="monthly_invocations must be a number >= 0"):
        sheet.bill([1e-6], monthly_invocations=-5)


# -- bad calls ---------------------------------------------------------------------------


def test_memory_time_needs_the_configured_memory() -> None:
    sheet = load_price_sheet("aws-lambda-x86")
    with pytest.raises(
        UsageError,
        match=r"aws-lambda-x86: the memory-time meter needs memory_mb.*128 to 10240 MB in steps of 1 MB",
    ):
        sheet.invocation_costs([0.1], 0, 0)
    with pytest.raises(UsageError, match="memory_mb 64 cannot be configured"):
        sheet.invocation_costs([0.1], 0, 0, memory_mb=64)
    per_invocation = sheet.invocation_costs([0.1, 0.1], 0, 0, memory_mb=[128, 256])
    assert per_invocation[1] > per_invocation[0]


def test_bad_columns() -> None:
    sheet = load_price_sheet("cloudflare-workers")
    with pytest.raises(UsageError, match="the columns differ in length"):
        sheet.invocation_costs([0.1, 0.2], [0.1, 0.2, 0.3], 0)
    with pytest.raises(UsageError, match="wall_s has negative values"):
        sheet.invocation_costs([-1.0], [0.1], 0)
    with pytest.raises(UsageError, match="cpu_s must be numbers"):
        sheet.invocation_costs([1.0], ["fast"], 0)
    with pytest.raises(UsageError, match="concurrency must be > 0"):
        sheet.invocation_costs([1.0], [0.1], 0, concurrency=0)


# -- a user's sheet ----------------------------------------------------------------------


def test_a_users_sheet_from_a_path(tmp_path: Path) -> None:
    path = user_sheet(
        tmp_path,
        HEADER
        + """
meter = "cpu-time"
[duration]
rounding_ms = 1
[price]
cpu_ms_per_million = 0.10
requests_per_million = 1.00
""",
    )
    for ref in (path, str(path)):
        sheet = load_price_sheet(ref)
        assert (sheet.name, sheet.date, sheet.meter) == ("mine", "2026-12-01", "cpu-time")
        assert sheet.invocation_costs([1.0], [0.0021], 0)[0] == pytest.approx(3 * 0.10e-6 + 1e-6)


def test_unknown_sheet_name() -> None:
    with pytest.raises(UsageError) as e:
        load_price_sheet("aws-lambda")
    assert "unknown price sheet 'aws-lambda'" in str(e.value)
    assert all(name in str(e.value) for name in SHEETS)


GOOD = (
    HEADER
    + """
meter = "memory-time"
[memory]
steps_mb = [128, 256]
[price]
gb_second = 0.00001
requests_per_million = 0.2
"""
)


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("colour = 'red'\n" + GOOD, "unknown key `colour`: expected one of date, meter, name, notes, provider, source, [duration]"),
        (
            GOOD + "colour = 'red'\n",
            "unknown key `price.colour`: expected one of cpu_ms_per_million",
        ),
        (
            GOOD.replace("[price]", "[price]\nper_gb = 1"),
            "unknown key `price.per_gb`: expected one of cpu_ms_per_million, gb_second",
        ),
        (
            GOOD.replace("gb_second = 0.00001", "gb_second = '0.00001'"),
            "`price.gb_second` must be USD per GB-second, >= 0, not '0.00001'",
        ),
        (
            GOOD.replace("gb_second = 0.00001", "gb_second = -0.00001"),
            "`price.gb_second` = -1e-05: expected USD per GB-second, >= 0",
        ),
        (
            GOOD.replace("requests_per_million = 0.2", "requests_per_million = true"),
            "`price.requests_per_million` must be USD per million requests",
        ),
        (
            GOOD.replace('meter = "memory-time"', ""),
            "`meter` is missing: expected one of memory-time, cpu-time, observed-memory-time",
        ),
        (
            GOOD.replace('meter = "memory-time"', 'meter = "gpu-time"'),
            "`meter` = 'gpu-time' is unknown: expected one of memory-time",
        ),
        (
            GOOD.replace("[memory]\nsteps_mb = [128, 256]\n", ""),
            "`memory.steps_mb` is missing: the memory-time meter needs it",
        ),
        (
            GOOD.replace("steps_mb = [128, 256]", "steps_mb = [128, 'big']"),
            "`memory.steps_mb` must be a list of sizes in MB",
        ),
        (
            GOOD.replace("gb_second = 0.00001", "gb_second = 0.00001\ncpu_ms_per_million = 1"),
            "`price.cpu_ms_per_million` is not used by the memory-time meter",
        ),
        (GOOD.replace("requests_per_million = 0.2", ""), "`price.requests_per_million` is missing"),
        (
            GOOD.replace("date = 2026-12-01", 'date = "Dec 1"'),
            "`date` must be a TOML date (2026-12-04, unquoted), not 'Dec 1'",
        ),
        (GOOD.replace("date = 2026-12-01", ""), "`date` is missing"),
        (GOOD.replace('name = "mine"', "name = 7"), "`name` must be a string, not 7"),
        (
            GOOD + "[duration]\nscope = 'request'\n",
            '`duration.scope` = \'request\': expected "invocation" or "instance"',
        ),
        (
            GOOD + "[duration]\nrounding_ms = -1\n",
            "`duration.rounding_ms` = -1: expected a number of milliseconds >= 0",
        ),
        (
            GOOD + "[free_tier]\ncpu_ms = 5\n",
            "`free_tier.cpu_ms` is not used by the memory-time meter",
        ),
        (
            GOOD
            + "[[tiers]]\nup_to_gb_seconds = 10\ngb_second = 0.00002\n[[tiers]]\ngb_second = 0.00001\n",
            "the first of `tiers` must have the price of `price.gb_second`",
        ),
        (
            GOOD + "[[tiers]]\ngb_second = 0.00001\n[[tiers]]\ngb_second = 0.000009\n",
            "`tiers` 1 lacks `up_to_gb_seconds`",
        ),
        ("tiers = 3\n" + GOOD, "`tiers` must be an array of tables"),
        ("price = 3\n" + GOOD, "not valid TOML"),  # TOML itself refuses a key defined twice
        (GOOD.replace("[price]", "[price]\ngb_second = 1"), "not valid TOML"),
        (GOOD.replace("[price]", "[price"), "not valid TOML"),
        (
            HEADER
            + "meter = 'observed-memory-time'\n[price]\ngb_second = 1\nrequests_per_million = 0\n",
            "`memory.bucket_mb` is missing: the observed-memory-time meter needs it (a number of MB > 0)",
        ),
        (
            HEADER
            + "meter = 'memory-time'\n[memory]\nsteps_mb = [128]\n[price]\ngb_second = 1\nvcpu_second = 1\nrequests_per_million = 0\n",
            "`instance.vcpus` is missing",
        ),
    ],
)
def test_a_bad_sheet_names_the_file_the_key_and_what_is_expected(
    tmp_path: Path, text: str, expected: str
) -> None:
    path = user_sheet(tmp_path, text)
    with pytest.raises(UsageError) as e:
        load_price_sheet(path)
    message = str(e.value)
    assert message.startswith(f"{path}: "), message
    assert expected.lower() in message.lower(), message


def test_unreadable_sheets(tmp_path: Path) -> None:
    with pytest.raises(UsageError, match=r"missing\.toml: no such price sheet"):
        load_price_sheet(tmp_path / "missing.toml")
    folder = tmp_path / "folder.toml"
    folder.mkdir()
    with pytest.raises(UsageError, match="is a directory, not a price sheet"):
        load_price_sheet(folder)
    binary = tmp_path / "binary.toml"
    binary.write_bytes(b"\xff\xfe\x00name")
    with pytest.raises(UsageError, match="not valid TOML: not UTF-8 text"):
        load_price_sheet(binary)


def test_nothing_but_usage_error_escapes_a_mangled_sheet() -> None:
    # Every key of a good sheet, in turn, replaced by values of every TOML type.
    base = tomllib.loads((DATA / "aws-lambda-x86.toml").read_text())
    values: list[object] = ["text", -1, 0, 1.5, True, [1, "a"], {"k": 1}, [], {}]
    import datetime as dt

    values.append(dt.date(2026, 1, 1))
    paths = [(k,) for k in base] + [
        (s, k) for s, t in base.items() if isinstance(t, dict) for k in t
    ]
    for path in paths:
        for value in values:
            data = tomllib.loads((DATA / "aws-lambda-x86.toml").read_text())
            table = data
            for part in path[:-1]:
                table = table[part]
            table[path[-1]] = value
            try:
                parse_price_sheet(data, "mangled")
            except UsageError as e:
                assert str(e).startswith("mangled: ")


# -- docs --------------------------------------------------------------------------------


def test_docs_describe_every_sheet_and_key() -> None:
    text = (ROOT / "docs" / "cost.md").read_text()
    section = text[text.index("## Price sheets") :]
    for name in SHEETS:
        sheet = load_price_sheet(name)
        assert f"`{name}`" in section and sheet.date in section and sheet.source in section, name
    for meter in METERS:
        assert f"`{meter}`" in section
    for table, keys in _KEYS.items():
        for key in keys:
            assert f"`{key}`" in section, f"docs/cost.md does not document {table}.{key}"
