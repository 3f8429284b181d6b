"""Per-function cost attribution: real profiled runs of a C guest with a known hot
function (tests/cost/guests/hot.c) and of yosys, priced with the shipped sheets; the
rules for hosts, lost frames and empty samples on profiles built by hand; the flame
graph coloured by cost; ``wasmscope profile --price``.

Never a wall-clock assertion: shares of samples against the known work, and sums."""

from __future__ import annotations

import json
import math
import os
import re
import subprocess
import sys
import xml.etree.ElementTree as ET
from collections.abc import Iterator
from pathlib import Path

import pytest

import wasmscope
from tests.instrument.support import compile_c
from tests.runtime.conftest import (  # noqa: F401  (fixtures)
    MUL_V,
    YOSYS_SCRIPT,
    shared_cache,
    yosys_share,
    yosys_wasm,
)
from wasmscope.cost.attribution import (
    MIN_SAMPLES,
    NOT_SAMPLED,
    OUTSIDE,
    FunctionCost,
    attribution_warning,
    function_costs,
    invocation_cost,
)
from wasmscope.errors import UsageError
from wasmscope.profile import LOST, Profile
from wasmscope.profile.model import LOST_NAME
from wasmscope.runtime import Outcome, Runtime
from wasmscope.runtime.record import InvocationRecord

GUESTS = Path(__file__).resolve().parent / "guests"
SVG = "{http://www.w3.org/2000/svg}"
TOLERANCE = 0.08  # of a share: sampling noise at ~1,000 samples is about 0.03
ROUNDS = "30000"  # hot.c rounds: about 0.4 s of work, 800 samples at 2 kHz
CLI = "import sys; from wasmscope.cli import main; sys.exit(main())"


def _sum_error(rows: list[FunctionCost], usd: float) -> float:
    """|sum of the rows' USD - the invocation's cost| / the cost."""
    return abs(math.fsum(r.usd for r in rows) - usd) / usd


# -- the rules, on profiles built by hand ------------------------------------------------------


def _profile(samples: dict[tuple[int, ...], int], counts: list[int], *, empty: int = 0) -> Profile:
    # 0: an import (host), 1 main, 2 f, 3 g, 4 never called
    return Profile(
        module="m.wasm", sha256="0" * 64, names=["wasi.fd_write", "main", "f", "g", "unused"], n_imported=1,
        counts=counts, samples=samples, duration_ns=10_000_000, rate=1000.0, empty_samples=empty,
    )  # fmt: skip


def test_self_time_charged_host_row_and_buckets() -> None:
    prof = _profile(
        {(1, 2): 50, (1, 2, 3): 20, (1, 3, 0): 10, (LOST, 2, 3): 10, (LOST,): 5}, [4, 1, 7, 9, 0], empty=5
    )
    rows = function_costs(prof, 2.0)
    by = {r.name: r for r in rows}
    assert [r.name for r in rows] == ["f", "g", "wasi.fd_write", LOST_NAME, OUTSIDE, "main"]
    assert by["f"].share == pytest.approx(0.5) and by["f"].usd == pytest.approx(1.0)
    assert by["f"].calls == 7 and by["f"].self_samples == 50 and by["f"].index == 2
    assert by["g"].share == pytest.approx(0.3)  # 20 + 10 with lost outer frames: its own
    assert by["wasi.fd_write"].host and by["wasi.fd_write"].calls == 4
    assert by["wasi.fd_write"].usd == pytest.approx(0.2)
    assert by[LOST_NAME].index is None and by[LOST_NAME].share == pytest.approx(0.05)
    assert by[OUTSIDE].share == pytest.approx(0.05) and by[OUTSIDE].calls == 0
    assert by["main"].usd == 0 and by["main"].calls == 1  # called, never innermost
    assert "unused" not in by  # neither called nor sampled
    assert math.fsum(r.share for r in rows) == pytest.approx(1.0, abs=1e-12)
    assert math.fsum(r.usd for r in rows) == pytest.approx(2.0, abs=1e-12)


def test_called_but_never_sampled_functions_have_zero_rows() -> None:
    prof = _profile({(1, 2): 10}, [0, 1, 3, 5, 0])
    rows = function_costs(prof, 1.0)
    assert [(r.name, r.usd) for r in rows] == [("f", 1.0), ("g", 0.0), ("main", 0.0)]
    assert rows[1].calls == 5 and rows[1].share_error == 0.0


def test_a_run_with_no_samples_is_one_bucket() -> None:
    prof = _profile({}, [2, 1, 0, 0, 0])
    rows = function_costs(prof, 3e-6)
    assert rows[0].name == NOT_SAMPLED and rows[0].share == 1.0 and rows[0].usd == 3e-6
    assert {r.name for r in rows[1:]} == {"main", "wasi.fd_write"}
    assert all(r.usd == 0 for r in rows[1:])
    warning = attribution_warning(prof)
    assert warning is not None and "no samples" in warning


def test_few_samples_are_said_so() -> None:
    few = _profile({(1, 2): 30, (1, 3): 10}, [0, 1, 1, 1, 0])
    warning = attribution_warning(few)
    assert warning is not None and "only 40 samples" in warning and "--rate" in warning
    rows = function_costs(few, 1.0)
    assert rows[0].share_error == pytest.approx(1.959964 * math.sqrt(0.75 * 0.25 / 40))
    many = _profile({(1, 2): MIN_SAMPLES}, [0, 1, 1, 0, 0])
    assert attribution_warning(many) is None
    assert attribution_warning(many, min_samples=MIN_SAMPLES + 1) is not None


@pytest.mark.parametrize("bad", [-1.0, float("nan"), float("inf")])
def test_a_bad_cost_is_a_usage_error(bad: float) -> None:
    with pytest.raises(UsageError, match="finite number of USD"):
        function_costs(_profile({(1,): 1}, [0, 1, 0, 0, 0]), bad)


# -- real runs of the hot.c guest ----------------------------------------------------------------


@pytest.fixture(scope="session")
def hot_wasm(tmp_path_factory: pytest.TempPathFactory) -> Path:
    out = tmp_path_factory.mktemp("cost-guests") / "hot.wasm"
    return compile_c((GUESTS / "hot.c").read_text(), out, "-O2", "-g")


@pytest.fixture(scope="session")
def crt(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Runtime]:
    with Runtime(cache_dir=tmp_path_factory.mktemp("cost-cache")) as rt:
        yield rt


@pytest.fixture(scope="session")
def hot_runs(hot_wasm: Path, crt: Runtime) -> dict[str, tuple[InvocationRecord, Profile]]:
    """hot.c profiled once per sampler mode (a warm-up run first: the instrumented
    module compiled and cached, so the runs measured are warm)."""
    wasmscope.profile(hot_wasm, ["10"], runtime=crt)
    runs = {}
    for mode in ("thread", "epoch"):
        rec, prof = wasmscope.profile(hot_wasm, [ROUNDS], runtime=crt, mode=mode, rate=2000)
        assert rec.outcome == Outcome.OK and rec.exit_code == 0, rec.error or rec.trap
        runs[mode] = (rec, prof)
    return runs


@pytest.mark.parametrize("mode", ["thread", "epoch"])
def test_hot_function_costs_most_and_shares_sum_to_the_cost(
    hot_runs: dict[str, tuple[InvocationRecord, Profile]], mode: str
) -> None:
    from wasmscope.cost.prices import load_price_sheet

    rec, prof = hot_runs[mode]
    assert prof.sampled >= MIN_SAMPLES and attribution_warning(prof) is None
    usd = invocation_cost(load_price_sheet("aws-lambda-x86"), rec, memory_mb=128)
    assert usd > 0
    rows = function_costs(prof, usd)
    assert _sum_error(rows, usd) < 0.01  # the bound; in fact float rounding:
    assert _sum_error(rows, usd) < 1e-9
    assert math.fsum(r.share for r in rows) == pytest.approx(1.0, abs=1e-9)
    assert rows[0].name == "hot" and rows[0].calls == int(ROUNDS)
    by = {r.name: r for r in rows}
    assert by["warm"].calls == by["cold"].calls == int(ROUNDS)
    assert by["wasi_snapshot_preview1.fd_write"].host
    assert by["wasi_snapshot_preview1.fd_write"].calls == int(ROUNDS) // 500
    # the known split of the work: 60 / 30 / 10
    three = by["hot"].usd + by["warm"].usd + by["cold"].usd
    assert three / usd > 0.9
    assert by["hot"].usd > by["warm"].usd > by["cold"].usd > 0
    if mode == "epoch":
        # The epoch sampler samples on the guest's own thread, so a guest descheduled
        # on a busy machine is not sampled meanwhile; the thread sampler's wall-clock
        # samples pile up wherever the guest was paused, so its split is looser then.
        for name, truth in (("hot", 0.6), ("warm", 0.3), ("cold", 0.1)):
            assert abs(by[name].usd / three - truth) <= TOLERANCE, (name, by[name], prof.samples)
    assert [r.usd for r in rows] == sorted((r.usd for r in rows), reverse=True)


@pytest.mark.parametrize(
    ("sheet", "memory_mb"), [("aws-lambda-arm64", 512), ("cloudflare-workers", None), ("azure-consumption", None)]
)
def test_every_meter_shape_splits_the_same_way(
    hot_runs: dict[str, tuple[InvocationRecord, Profile]], sheet: str, memory_mb: int | None
) -> None:
    from wasmscope.cost.prices import load_price_sheet

    rec, prof = hot_runs["epoch"]
    price = load_price_sheet(sheet)
    usd = invocation_cost(price, rec, memory_mb=memory_mb)
    assert usd > 0
    rows = function_costs(prof, usd)
    assert _sum_error(rows, usd) < 1e-9
    assert rows[0].name == "hot"
    reference = {r.name: r.share for r in function_costs(prof, 1.0)}
    assert all(r.share == reference[r.name] for r in rows)  # the split is the profile's


def test_a_memory_time_sheet_needs_the_configured_memory(
    hot_runs: dict[str, tuple[InvocationRecord, Profile]],
) -> None:
    from wasmscope.cost.prices import load_price_sheet

    rec, _ = hot_runs["epoch"]
    with pytest.raises(UsageError):
        invocation_cost(load_price_sheet("aws-lambda-x86"), rec)


# -- the flame graph coloured by cost ------------------------------------------------------------


def _frames(svg: str) -> list[tuple[str, str]]:
    """(tooltip, fill) per frame."""
    root = ET.fromstring(svg)
    out = []
    for g in root.iter(f"{SVG}g"):
        title, rect = g.find(f"{SVG}title"), g.find(f"{SVG}rect")
        assert title is not None and rect is not None
        out.append((title.text or "", rect.get("fill") or ""))
    return out


def test_svg_coloured_by_cost(hot_runs: dict[str, tuple[InvocationRecord, Profile]]) -> None:
    _, prof = hot_runs["epoch"]
    usd = 2e-6
    svg = prof.to_svg(cost_usd=usd)
    frames = _frames(svg)
    fills = {tip.split(":")[0]: fill for tip, fill in frames}
    assert fills["hot"] == "rgb(200,20,15)"  # the costliest: the deepest red
    assert fills["hot"] != fills["warm"] != fills["cold"]
    assert fills["all"] == "rgb(200,200,200)"
    hot_tip = next(tip for tip, _ in frames if tip.startswith("hot:"))
    assert re.search(r"\$0\.00000\d+ with its callees, \$0\.00000\d+ self \(the whole function\)", hot_tip)
    assert "per invocation" in svg and "colour = the function's self cost" in svg
    # self-contained: no script, nothing fetched
    assert "<script" not in svg and "href" not in svg
    assert "$0.00000200 per invocation" in svg
    # without a price: colours by name, as before
    assert "self cost" not in prof.to_svg()


def test_svg_by_cost_escapes_names() -> None:
    prof = _profile({(1, 2): 3}, [0, 1, 3, 0, 0])
    prof.names[2] = '<script>alert("x")</script>&'
    prof.module = "<m>&.wasm"
    svg = prof.to_svg(cost_usd=1.0, min_width=0)
    assert "<script>" not in svg and "<m>" not in svg
    tips = [tip for tip, _ in _frames(svg)]
    assert any(tip.startswith('<script>alert("x")</script>&: 3 samples') for tip in tips)


# -- wasmscope profile --price ---------------------------------------------------------------------


@pytest.fixture
def env(tmp_path: Path) -> dict[str, str]:
    e = dict(os.environ)
    e["WASMSCOPE_CACHE_DIR"] = str(tmp_path / "cache")
    e["NO_COLOR"] = "1"
    e.pop("WASMSCOPE_DEBUG", None)
    return e


def _cli(env: dict[str, str], *args: str, cwd: Path | None = None) -> subprocess.CompletedProcess[bytes]:
    return subprocess.run(
        [sys.executable, "-c", CLI, "profile", *args], capture_output=True, env=env, timeout=300, cwd=cwd, input=b""
    )


def _one_line_error(done: subprocess.CompletedProcess[bytes]) -> str:
    text = done.stderr.decode()
    assert done.returncode == 2, text
    assert "Traceback" not in text, text
    lines = text.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("wasmscope: error: "), text
    assert done.stdout == b"", "the guest ran before the error"
    return lines[0]


def test_cli_price_column_and_svg(env: dict[str, str], hot_wasm: Path, tmp_path: Path) -> None:
    done = _cli(
        env, "--price", "aws-lambda-x86", "--memory-mb", "128", "--svg", "cost.svg", "--mode", "epoch",
        "--rate", "2000", "--report", "rec.json", str(hot_wasm), "--", ROUNDS, cwd=tmp_path,
    )  # fmt: skip
    err = done.stderr.decode()
    assert done.returncode == 0, err
    assert done.stdout == b"round\n" * (int(ROUNDS) // 500)
    assert re.search(r"  cost         \$0\.\d+ per invocation, \$\d[\d.,]* per million \(aws-lambda-x86, 128 MB;", err)
    lines = err.splitlines()
    header = next(i for i, line in enumerate(lines) if line.strip().startswith("function "))
    assert lines[header].split() == ["function", "calls", "self", "%", "total", "%", "cost", "per", "1M"]
    first = lines[header + 1].split()
    assert first[0] == "hot" and first[1] == "30,000" and first[-1].startswith("$")
    assert "wrote cost.svg (flame graph, coloured by cost)" in err
    assert "colour = the function's self cost" in (tmp_path / "cost.svg").read_text()
    cost = json.loads((tmp_path / "rec.json").read_text())["cost"]
    assert cost["sheet"] == "aws-lambda-x86" and cost["memory_mb"] == 128 and cost["usd"] > 0
    assert cost["functions"][0]["name"] == "hot" and cost["functions"][0]["calls"] == int(ROUNDS)
    assert math.fsum(f["usd"] for f in cost["functions"]) == pytest.approx(cost["usd"], rel=1e-9)


def test_cli_memory_from_the_limit_and_the_few_samples_warning(env: dict[str, str], hot_wasm: Path) -> None:
    done = _cli(env, "--price", "aws-lambda-x86", "--memory-limit", "128MiB", "--rate", "100", str(hot_wasm), "--", "1000")
    err = done.stderr.decode()
    assert done.returncode == 0, err
    assert "(aws-lambda-x86, 128 MB;" in err
    assert re.search(r"  warning      (only \d+ samples \(fewer than 100\)|no samples)", err), err


def test_cli_price_errors(env: dict[str, str], hot_wasm: Path, tmp_path: Path) -> None:
    assert "--memory-mb needs --price" in _one_line_error(_cli(env, "--memory-mb", "128", str(hot_wasm)))
    assert "--memory-mb" in _one_line_error(_cli(env, "--price", "aws-lambda-x86", str(hot_wasm)))
    assert "above 0" in _one_line_error(_cli(env, "--price", "aws-lambda-x86", "--memory-mb", "0", str(hot_wasm)))
    assert "cannot be configured" in _one_line_error(
        _cli(env, "--price", "aws-lambda-x86", "--memory-mb", "100", str(hot_wasm))
    )
    assert "no-such-sheet" in _one_line_error(_cli(env, "--price", "no-such-sheet", str(hot_wasm)))
    bad = tmp_path / "bad.toml"
    bad.write_text("this is = = not toml\n")
    assert "bad.toml" in _one_line_error(_cli(env, "--price", str(bad), str(hot_wasm)))


# -- yosys ---------------------------------------------------------------------------------------------


@pytest.mark.slow
@pytest.mark.realcorpus
def test_yosys_costs_sum_and_its_hot_function_first(
    yosys_wasm: Path, yosys_share: Path, shared_cache: Path, tmp_path: Path  # noqa: F811  (the fixtures)
) -> None:
    from wasmscope.cost.prices import load_price_sheet

    (tmp_path / "mul.v").write_text(MUL_V)
    dirs = [f"{yosys_share}::/share:ro", f"{tmp_path}::/tmp"]
    with Runtime(cache_dir=shared_cache) as rt:
        rec, prof = wasmscope.profile(yosys_wasm, ["-p", YOSYS_SCRIPT], dirs=dirs, runtime=rt, mode="epoch", rate=5000)
    assert rec.outcome == Outcome.OK and rec.exit_code == 0, rec.error or rec.trap
    assert prof.sampled >= 10 * MIN_SAMPLES
    usd = invocation_cost(load_price_sheet("aws-lambda-x86"), rec, memory_mb=1024)
    rows = function_costs(prof, usd)
    assert _sum_error(rows, usd) < 0.01
    assert _sum_error(rows, usd) < 1e-9
    assert math.fsum(r.share for r in rows) == pytest.approx(1.0, abs=1e-9)
    assert len(rows) > 1000  # every function called has its row
    # opt_expr's replace_const_cells: the hottest function of this synthesis, by far
    assert rows[0].name.startswith("(anonymous namespace)::replace_const_cells("), rows[:3]
    assert rows[0].share > rows[1].share + 2 * rows[0].share_error, rows[:3]
    assert rows[0].calls > 0
