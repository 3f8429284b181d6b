"""Right-sizing from real runs of C guests: memory never below an observed peak, the
under- and over-provisioned findings with their numbers, fuel limits and timeouts,
the duration model, the measured sweep, and clear errors on bad input."""

from __future__ import annotations

import json
import math
from collections.abc import Sequence
from pathlib import Path

import pytest

from wasmscope.cli import main
from wasmscope.cost import _throttle
from wasmscope.cost.prices import load_price_sheet
from wasmscope.cost.recommend import MIB, predict_wall, recommend, recommend_function, vcpu_share
from wasmscope.cost.records import UsageTable
from wasmscope.errors import UsageError
from wasmscope.runtime import Limits, RunOptions, Runtime
from wasmscope.runtime.host_calls import AuditSettings
from wasmscope.runtime.record import InvocationRecord

LAMBDA = load_price_sheet("aws-lambda-x86")


def runs(rt: Runtime, wasm: Path, argvs: Sequence[Sequence[str]], *, memory_mb: int | None, fuel: int | None = 10**12) -> list[InvocationRecord]:
    limits = Limits(memory_limit=None if memory_mb is None else memory_mb * MIB, fuel=fuel)
    options = RunOptions(limits=limits, audit=AuditSettings(record=False))
    return [rt.run(wasm, list(argv), options) for argv in argvs]


def test_never_below_an_observed_peak(rt: Runtime, guests: dict[str, Path]) -> None:
    recs = runs(rt, guests["alloc"], [["3"], ["37"], ["150"], ["61"]], memory_mb=512)
    table = UsageTable.from_records(recs)
    peak = max(r.peak_memory or 0 for r in recs)
    assert peak > 150 * MIB
    for sheet in ("aws-lambda-x86", "cloud-run", "cloudflare-workers", "azure-consumption"):
        for headroom in (0.0, 0.05, 0.2, 1.0):
            (rec,) = recommend(table, load_price_sheet(sheet), headroom=headroom)
            assert rec.memory_limit is not None and rec.memory_limit >= peak * (1 + headroom)
            assert rec.memory_mb is not None and rec.memory_mb * MIB >= peak
            assert rec.peak_memory_max == peak


def test_a_guest_that_needs_more_than_its_limit_is_underprovisioned(rt: Runtime, guests: dict[str, Path]) -> None:
    recs = runs(rt, guests["alloc"], [["300"], ["300"], ["20"]], memory_mb=160)
    assert [r.outcome for r in recs] == ["out_of_memory", "out_of_memory", "ok"]
    (rec,) = recommend(UsageTable.from_records(recs), LAMBDA)
    assert rec.finding == "MemoryUnderprovisioned"
    assert rec.out_of_memory == 2 and rec.configured_mb == 160
    assert rec.memory_mb is not None and rec.memory_mb >= 160 * 1.2
    assert "2 of 3 invocations ran out of memory at the 160.0 MiB limit" in rec.reasons[0]
    assert rec.saving_per_million is not None and rec.saving_per_million < 0  # more memory costs more


def test_too_little_headroom_is_underprovisioned(rt: Runtime, guests: dict[str, Path]) -> None:
    recs = runs(rt, guests["alloc"], [["150"]], memory_mb=160)
    assert recs[0].outcome == "ok"
    (rec,) = recommend(UsageTable.from_records(recs), LAMBDA, headroom=0.2)
    assert rec.finding == "MemoryUnderprovisioned"
    assert "less than 20% headroom" in rec.reasons[0]
    (loose,) = recommend(UsageTable.from_records(recs), LAMBDA, headroom=0.05)
    assert loose.finding == "Optimized"


def test_a_tenth_of_its_limit_is_overprovisioned_with_the_saving(rt: Runtime, guests: dict[str, Path]) -> None:
    # 25 MiB of a 256 MiB limit, and a 20 ms wait in a host call per invocation.
    recs = runs(rt, guests["alloc"], [["25", "1", "20"]] * 3, memory_mb=256)
    peak = max(r.peak_memory or 0 for r in recs)
    assert 0.09 < peak / (256 * MIB) < 0.11
    table = UsageTable.from_records(recs)
    (rec,) = recommend(table, LAMBDA)
    assert rec.finding == "MemoryOverprovisioned"
    assert rec.memory_mb == 128  # Lambda's smallest size holds 25 MiB with headroom
    assert rec.usd_per_million_configured is not None and rec.usd_per_million_recommended is not None
    assert rec.saving_per_million == pytest.approx(rec.usd_per_million_configured - rec.usd_per_million_recommended)
    assert rec.saving_per_million > 0
    assert f"saves ${rec.saving_per_million:,.4f} per million" in rec.reasons[0]
    # The saving is the price of the memory given back while it waits (CPU-bound time
    # costs the same at any size below one vCPU): check it against the sheet directly.
    import numpy as np

    wall, cpu, peak_col = table.wall_s, table.cpu_s, table.peak_memory
    at = {m: float(np.mean(LAMBDA.invocation_costs(predict_wall(wall, cpu, m, LAMBDA.cpu_per_mb), cpu, peak_col, memory_mb=m))) for m in (128, 256)}
    assert rec.saving_per_million == pytest.approx((at[256] - at[128]) * 1e6)
    # A host where CPU does not come with memory saves the memory's share outright.
    (run_rec,) = recommend(table, load_price_sheet("cloud-run"))
    assert run_rec.finding == "MemoryOverprovisioned" and run_rec.saving_per_million is not None
    assert run_rec.saving_per_million > 0


def test_records_without_a_limit_take_the_configured_size(rt: Runtime, guests: dict[str, Path]) -> None:
    table = UsageTable.from_records(runs(rt, guests["alloc"], [["10"]], memory_mb=None))
    (rec,) = recommend(table, LAMBDA)
    assert rec.finding == "Unavailable" and rec.configured_mb is None
    (given,) = recommend(table, LAMBDA, configured_mb=1024)
    assert given.finding == "MemoryOverprovisioned" and given.configured_mb == 1024


def test_fuel_limit_and_timeout(rt: Runtime, guests: dict[str, Path]) -> None:
    recs = runs(rt, guests["crunch"], [["1"], ["2"], ["3"], ["2"]], memory_mb=256)
    fuels = [r.fuel_consumed or 0 for r in recs]
    assert fuels[1] == fuels[3]  # fuel is deterministic per input
    (rec,) = recommend(UsageTable.from_records(recs), LAMBDA, headroom=0.5)
    assert rec.fuel_max == max(fuels) and rec.fuel_inputs == 3
    assert rec.fuel_limit == math.ceil(max(fuels) * 1.5)
    assert rec.timeout_s is not None and rec.wall_max is not None
    assert rec.timeout_s >= rec.wall_max * 1.5
    # The timeout holds at the recommended size: slower than the unthrottled runs.
    assert rec.wall_max >= max(r.duration_seconds for r in recs)
    # A run that ran out of fuel is a risk, and its fuel a floor.
    short = runs(rt, guests["crunch"], [["3"]], memory_mb=256, fuel=fuels[0])
    assert short[0].outcome == "out_of_fuel"
    (risky,) = recommend(UsageTable.from_records(recs + short), LAMBDA)
    assert risky.out_of_fuel == 1 and any("ran out of fuel" in r for r in risky.risks)


def test_the_duration_model() -> None:
    import numpy as np

    wall = np.array([0.100, 0.050])
    cpu = np.array([0.080, 0.010])
    assert vcpu_share(1769, LAMBDA.cpu_per_mb) == pytest.approx(1.0)
    assert vcpu_share(3008, LAMBDA.cpu_per_mb) == 1.0  # one thread: one vCPU at most
    half = 1769 / 2
    np.testing.assert_allclose(predict_wall(wall, cpu, 1769, LAMBDA.cpu_per_mb), wall)
    np.testing.assert_allclose(predict_wall(wall, cpu, half, LAMBDA.cpu_per_mb), [0.180, 0.060])
    np.testing.assert_allclose(predict_wall(wall, cpu, 128, None), wall)  # no CPU coupling
    # records measured at half a vCPU predict the full-vCPU time
    np.testing.assert_allclose(predict_wall(wall, cpu, 1769, LAMBDA.cpu_per_mb, measured_share=0.5), [0.060, 0.045])


def test_bad_inputs_are_usage_errors(rt: Runtime, guests: dict[str, Path]) -> None:
    table = UsageTable.from_records(runs(rt, guests["crunch"], [["1"]], memory_mb=256))
    with pytest.raises(UsageError, match="headroom"):
        recommend(table, LAMBDA, headroom=-0.1)
    with pytest.raises(UsageError, match="headroom"):
        recommend(table, LAMBDA, headroom=float("nan"))
    with pytest.raises(UsageError, match="no invocations"):
        recommend(UsageTable.empty(), LAMBDA)
    with pytest.raises(UsageError, match="measured_share"):
        recommend(table, LAMBDA, measured_share=0)
    with pytest.raises(UsageError, match="no invocations of f"):
        recommend_function("f", UsageTable.empty(), LAMBDA)


# -- the command ----------------------------------------------------------------------------


def _report(tmp_path: Path, recs: Sequence[InvocationRecord]) -> Path:
    path = tmp_path / "runs.jsonl"
    path.write_text("".join(json.dumps(r.to_json()) + "\n" for r in recs))
    return path


def test_cli_recommend(rt: Runtime, guests: dict[str, Path], tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    recs = runs(rt, guests["alloc"], [["25", "1", "20"]] * 2, memory_mb=256)
    big = tmp_path / "big.wasm"  # the same guest as another function
    big.write_bytes(guests["alloc"].read_bytes())
    recs += runs(rt, big, [["300"]], memory_mb=160)
    path = _report(tmp_path, recs)
    assert main(["cost", "recommend", str(path), "--price", "aws-lambda-x86"]) == 0
    out = capsys.readouterr().out
    assert "MemoryOverprovisioned" in out and "MemoryUnderprovisioned" in out
    assert "per million" in out and "--memory-limit 31MiB" in out
    assert main(["cost", "recommend", str(path), "--price", "aws-lambda-x86", "--headroom", "0.5", "--json"]) == 0
    doc = json.loads(capsys.readouterr().out)
    assert doc["headroom"] == 0.5 and doc["sheet"]["name"] == "aws-lambda-x86"
    (f,) = [f for f in doc["functions"] if f["finding"] == "MemoryOverprovisioned"]
    assert f["memory_mb"] == 128 and f["saving_per_million"] > 0


@pytest.mark.parametrize(
    ("argv", "message"),
    [
        (["--price", "no-such-host"], "no-such-host"),
        (["--price", "aws-lambda-x86", "--headroom", "-1"], "--headroom"),
        (["--price", "aws-lambda-x86", "--repeat", "0"], "--repeat"),
        (["--price", "aws-lambda-x86", "--memory-mb", "0"], "--memory-mb"),
        (["--price", "aws-lambda-x86", "--sweep", "--sweep-mb", "128,lots"], "--sweep-mb"),
        (["--price", "aws-lambda-x86", "--function", "nope"], "no invocations of nope"),
    ],
)
def test_cli_usage_errors(
    rt: Runtime, guests: dict[str, Path], tmp_path: Path, capsys: pytest.CaptureFixture[str], argv: list[str], message: str
) -> None:
    path = _report(tmp_path, runs(rt, guests["crunch"], [["1"]], memory_mb=256))
    assert main(["cost", "recommend", str(path), *argv]) == 2
    assert message in capsys.readouterr().err


def test_cli_bad_records_and_bad_sheet(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    bad = tmp_path / "bad.jsonl"
    bad.write_text('{"module": {"name": "x"}, "start_ns": 1, "end_ns": 2}\nnot json\n')
    assert main(["cost", "recommend", str(bad), "--price", "aws-lambda-x86"]) == 2
    assert "bad.jsonl" in capsys.readouterr().err
    sheet = tmp_path / "mine.toml"
    sheet.write_text('name = "mine"\nmeter = "memory-time"\n')
    good = tmp_path / "one.jsonl"
    good.write_text('{"module": {"name": "x", "sha256": "ab"}, "entry": "_start", "start_ns": 1, "end_ns": 2000000, "outcome": "ok"}\n')
    assert main(["cost", "recommend", str(good), "--price", str(sheet)]) == 2
    assert "mine.toml" in capsys.readouterr().err
    assert main(["cost", "recommend", str(tmp_path / "missing.json"), "--price", "aws-lambda-x86"]) == 2


def test_cli_sweep_measures_each_size(rt: Runtime, guests: dict[str, Path], tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    recs = runs(rt, guests["alloc"], [["150", "1"]], memory_mb=512)
    path = _report(tmp_path, recs)
    argv = ["cost", "recommend", str(path), "--price", "aws-lambda-x86", "--sweep", "--sweep-mb", "128,512,1769", "--repeat", "1", "--json"]
    assert main(argv) == 0
    (f,) = json.loads(capsys.readouterr().out)["functions"]
    sweep = f["sweep"]
    assert sweep["emulated"] is _throttle.available()
    assert sweep["runs"] == 3
    by_mb = {p["memory_mb"]: p for p in sweep["points"]}
    assert by_mb[128]["outcome"] == "out_of_memory"  # the limit is real: 150 MiB do not fit in 128
    assert by_mb[512]["outcome"] == by_mb[1769]["outcome"] == "ok"
    assert by_mb[512]["vcpu_share"] == pytest.approx(512 / 1769)
    for p in sweep["points"]:
        assert p["wall_s_predicted"] > 0 and p["usd_per_million"] > 0


def test_cli_sweep_needs_run_records(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    good = tmp_path / "one.jsonl"
    good.write_text('{"module": {"name": "x", "sha256": "ab"}, "entry": "_start", "start_ns": 1, "end_ns": 2000000, "outcome": "ok", "peak_memory": 65536, "memory_limit": 134217728}\n')
    assert main(["cost", "recommend", str(good), "--price", "aws-lambda-x86", "--sweep"]) == 2
    assert "do not name its module's file" in capsys.readouterr().err
