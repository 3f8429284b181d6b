"""Calibration on real runs: fuel explains a compute-bound guest's CPU time (high R²),
not a guest whose host calls do work fuel does not count (reported poor); too little
to fit is said so; bad input gives clear errors."""

from __future__ import annotations

import json
from collections.abc import Sequence
from pathlib import Path

import numpy as np
import pytest

from wasmscope.cli import main
from wasmscope.cost.calibrate import POOR_R2, calibrate, fit_module
from wasmscope.cost.records import UsageTable
from wasmscope.errors import UsageError
from wasmscope.runtime import Limits, RunOptions, Runtime
from wasmscope.runtime.host_calls import AuditSettings
from wasmscope.runtime.record import InvocationRecord


def runs(rt: Runtime, wasm: Path, argvs: Sequence[Sequence[str]], *, fuel: int | None = 10**12) -> list[InvocationRecord]:
    options = RunOptions(limits=Limits(fuel=fuel), audit=AuditSettings(record=False))
    rt.run(wasm, list(argvs[0]), options)  # compiled and warm before the measured runs
    return [rt.run(wasm, list(argv), options) for argv in argvs]


def test_fuel_explains_a_compute_bound_guest(rt: Runtime, guests: dict[str, Path]) -> None:
    recs = runs(rt, guests["crunch"], [[str(k)] for k in (2, 4, 6, 8, 12, 16, 3, 10)])
    (fit,) = calibrate(UsageTable.from_records(recs))
    assert fit.status == "good" and not fit.poor
    assert fit.r2 is not None and fit.r2 > 0.95
    assert fit.invocations == 8 and fit.functions == ("crunch.wasm:_start",)
    assert fit.b is not None and fit.b > 0
    assert fit.seconds_per_gigafuel == pytest.approx(fit.b * 1e9)
    assert fit.residual_std_s is not None and fit.residual_rel is not None
    assert "good fit" in fit.verdict
    # host calls do not vary here: they are left out of the fit
    assert fit.terms == ("fuel",) and fit.c is None
    predicted = fit.predict(float(recs[3].fuel_consumed or 0))
    assert predicted is not None and predicted > 0


def test_host_work_that_fuel_does_not_count_is_a_poor_fit(rt: Runtime, guests: dict[str, Path]) -> None:
    # The size of the one write and the compute vary apart (every pair of a grid): fuel
    # follows the compute, and the write's CPU time, most of it, is left unexplained.
    pairs = [(mib, rounds) for mib in (2, 24, 48) for rounds in (1, 5, 9)]
    recs = runs(rt, guests["blob"], [[str(mib), str(rounds)] for mib, rounds in pairs])
    (fit,) = calibrate(UsageTable.from_records(recs))
    assert fit.status == "poor" and fit.poor
    assert fit.r2 is not None and fit.r2 < POOR_R2
    assert fit.verdict.startswith("poor fit") and "do not use fuel as its cost unit" in fit.verdict


def test_one_input_class_cannot_be_fitted(rt: Runtime, guests: dict[str, Path]) -> None:
    recs = runs(rt, guests["crunch"], [["3"]] * 4)
    (fit,) = calibrate(UsageTable.from_records(recs))
    assert fit.status == "insufficient" and fit.poor
    assert "one input class" in fit.verdict and fit.r2 is None
    unmetered = runs(rt, guests["crunch"], [["1"], ["2"], ["3"]], fuel=None)
    (none,) = calibrate(UsageTable.from_records(unmetered))
    assert none.status == "insufficient" and "no fuel was metered" in none.verdict


def test_modules_are_fitted_apart(rt: Runtime, guests: dict[str, Path]) -> None:
    recs = runs(rt, guests["crunch"], [["2"], ["4"], ["8"]]) + runs(rt, guests["alloc"], [["2"], ["8"], ["32"]])
    fits = calibrate(UsageTable.from_records(recs))
    assert sorted(f.functions for f in fits) == [("alloc.wasm:_start",), ("crunch.wasm:_start",)]


def test_the_fit_recovers_known_coefficients() -> None:
    fuel = np.array([1e6, 5e6, 2e7, 3e6, 8e6, 1.2e7])
    calls = np.array([10.0, 3.0, 50.0, 80.0, 7.0, 20.0])
    cpu = 0.002 + 3e-9 * fuel + 4e-6 * calls
    fit = fit_module("m", cpu, fuel, calls)
    assert fit.terms == ("fuel", "host_calls")
    assert fit.a == pytest.approx(0.002) and fit.b == pytest.approx(3e-9) and fit.c == pytest.approx(4e-6)
    assert fit.r2 == pytest.approx(1.0)
    # calls in step with fuel add nothing: the fit drops them
    collinear = fit_module("m", cpu, fuel, fuel / 1e5)
    assert collinear.terms == ("fuel",)
    too_few = fit_module("m", cpu[:2], fuel[:2], calls[:2])
    assert too_few.status == "insufficient" and "at least 3" in too_few.verdict


def test_bad_input() -> None:
    with pytest.raises(UsageError, match="no invocations"):
        calibrate(UsageTable.empty())


def test_cli_calibrate(rt: Runtime, guests: dict[str, Path], tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    recs = runs(rt, guests["crunch"], [[str(k)] for k in (2, 4, 8, 12)])
    path = tmp_path / "runs.jsonl"
    path.write_text("".join(json.dumps(r.to_json()) + "\n" for r in recs))
    assert main(["cost", "calibrate", str(path)]) == 0
    out = capsys.readouterr().out
    assert "crunch.wasm:_start" in out and "good" in out and "per 10^9 fuel" in out
    assert main(["cost", "calibrate", str(path), "--json"]) == 0
    (doc,) = json.loads(capsys.readouterr().out)
    assert doc["status"] == "good" and doc["r2"] > 0.95 and doc["poor"] is False
    bad = tmp_path / "bad.jsonl"
    bad.write_text("[1, 2")
    assert main(["cost", "calibrate", str(bad)]) == 2
    assert "bad.jsonl" in capsys.readouterr().err
    assert main(["cost", "calibrate", str(path), "--function", "nope"]) == 2
    assert "no invocations of nope" in capsys.readouterr().err
