"""``wasmscope cost summary`` over real records: the tables, --json, the price options,
the collect store (in processes of their own: chDB opens one folder per process) and
the usage errors (exit 2, the file and line named)."""

from __future__ import annotations

import importlib.util
import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

from tests.cost.conftest import WORKLOAD
from wasmscope.cli import CommandError, main
from wasmscope.cli.cost import parse_count, parse_rate, usd
from wasmscope.runtime.record import InvocationRecord

ROOT = Path(__file__).resolve().parents[2]


@pytest.fixture
def runs(records: list[InvocationRecord], tmp_path: Path) -> Path:
    path = tmp_path / "runs.jsonl"
    path.write_text("".join(json.dumps(r.to_json(), default=str) + "\n" for r in records))
    return path


def _json(capsys: pytest.CaptureFixture[str], *argv: str) -> dict:  # type: ignore[type-arg]
    assert main(["cost", "summary", *argv, "--json"]) == 0
    return json.loads(capsys.readouterr().out)


def test_the_human_summary(runs: Path, capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["cost", "summary", str(runs), "--price", "aws-lambda-x86", "--monthly", "5M"]) == 0
    out = capsys.readouterr().out
    assert f"{len(WORKLOAD)} invocations of 2 functions" in out
    for heading in ("wall time", "CPU time", "fuel", "peak memory", "cost under aws-lambda-x86 (memory-time)"):
        assert heading in out
    assert "min" in out and "p99" in out and "per million" in out and "per month at 5M invocations" in out
    assert "work.wasm:work" in out and "work.wasm:boom" in out and "(total)" in out
    assert "2 (100.0%)" in out  # boom always traps
    assert "16 MB" not in out and "128 MB" in out  # a 16 MiB limit is priced at Lambda's smallest size


def test_json_and_the_function_filter(runs: Path, capsys: pytest.CaptureFixture[str]) -> None:
    doc = _json(capsys, str(runs), "--price", "cloudflare-workers", "--rate", "100/s", "--free-tier")
    assert doc["price"] == "cloudflare-workers" and doc["meter"] == "cpu-time" and doc["free_tier"] is True
    assert doc["total"]["invocations"] == len(WORKLOAD) and doc["total"]["errors"] == 2
    assert doc["total"]["cost"]["monthly_invocations"] == pytest.approx(100 * 30 * 86400)
    assert [f["function"] for f in doc["functions"]] == ["work.wasm:work", "work.wasm:boom"]
    only = _json(capsys, str(runs), "--function", "work.wasm:boom")
    assert only["total"]["invocations"] == 2 and only["total"]["cost"] is None
    assert only["total"]["peak_memory"]["max"] == 65536


def test_a_memory_time_sheet_without_a_limit_asks_for_the_size(work_wasm: Path, tmp_path: Path,
                                                               capsys: pytest.CaptureFixture[str]) -> None:  # fmt: skip
    report = tmp_path / "run.json"
    assert main(["run", "--invoke", "work", "--report", str(report), "-q", str(work_wasm), "10", "0"]) == 0
    capsys.readouterr()
    assert main(["cost", "summary", str(report), "--price", "cloud-run"]) == 2
    assert "give the size (--memory-mb N)" in capsys.readouterr().err
    doc = _json(capsys, str(report), "--price", "cloud-run", "--memory-mb", "512")
    assert doc["total"]["cost"]["memory_mb"] == 512 and doc["total"]["cost"]["per_month"] is None


@pytest.mark.parametrize(
    ("argv", "expected"),
    [
        (["--price", "no-such-host"], "no-such-host"),
        (["--rate", "fast"], "--rate 'fast'"),
        (["--monthly", "-3"], "--monthly '-3'"),
        (["--memory-mb", "0"], "--memory-mb 0"),
        (["--function", "nothing"], "no invocations of nothing"),
    ],
)
def test_usage_errors_exit_2(runs: Path, capsys: pytest.CaptureFixture[str], argv: list[str], expected: str) -> None:
    assert main(["cost", "summary", str(runs), *argv]) == 2
    assert expected in capsys.readouterr().err


def test_a_bad_records_file_names_its_line(runs: Path, capsys: pytest.CaptureFixture[str]) -> None:
    with runs.open("a") as f:
        f.write('{"module": {"name": "x"}, "start_ns": 1}\n')
    assert main(["cost", "summary", str(runs)]) == 2
    assert f"{runs}:{len(WORKLOAD) + 1}: 'start_ns' and 'end_ns' must be integers" in capsys.readouterr().err


def test_a_bad_price_sheet_file_is_a_usage_error(runs: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    sheet = tmp_path / "mine.toml"
    sheet.write_text('name = "mine"\nmeter = "per-vibe"\n')
    assert main(["cost", "summary", str(runs), "--price", str(sheet)]) == 2
    assert "mine.toml" in capsys.readouterr().err


def test_the_command_needs_a_subcommand_and_teaches(capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["cost"]) == 2
    assert "missing SUBCOMMAND: summary" in capsys.readouterr().err
    assert main(["cost", "summary", "--help"]) == 0
    assert "wasmscope cost summary runs.jsonl --price cloudflare-workers" in capsys.readouterr().out
    assert main(["cost", "--help"]) == 0
    assert "aws-lambda-x86" in capsys.readouterr().out


def test_numbers_rates_and_dollars() -> None:
    assert parse_count("5M", "--monthly") == 5e6 and parse_count("2.5k", "x") == 2500
    assert parse_count("10,000,000", "x") == 1e7 and parse_count("1e7", "x") == 1e7
    assert parse_rate("20/s") == 20 and parse_rate("120/min") == 2 and parse_rate("8.64M/day") == pytest.approx(100)
    with pytest.raises(CommandError):
        parse_rate("3/fortnight")
    assert usd(12.345) == "$12.35" and usd(0.042) == "$0.0420" and usd(2.01e-7) == "$0.000000201"
    assert usd(None) == "-" and usd(float("nan")) == "-" and usd(0) == "$0"


def _python(*argv: str, cwd: Path = ROOT) -> subprocess.CompletedProcess[str]:
    env = {**os.environ, "PYTHONPATH": os.pathsep.join([str(ROOT / "src"), str(ROOT)])}
    return subprocess.run([sys.executable, *argv], capture_output=True, text=True, env=env, cwd=cwd, timeout=300)


@pytest.fixture(scope="module")
def filled_store(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, Path]:
    """(a collect store folder, the JSON lines of the same runs), made by another process.
    chDB is not imported here: imported after wasmtime set up its signal handlers, its own
    would replace them, and the next guest trap in this process would kill it."""
    if importlib.util.find_spec("chdb") is None:
        pytest.skip("the collect extra (chdb) is not installed")
    folder = tmp_path_factory.mktemp("store")
    data, runs = folder / "store", folder / "runs.jsonl"
    filled = _python("-m", "tests.cost._fill_store", str(data), str(runs))
    assert filled.returncode == 0, filled.stderr
    return data, runs


def test_the_collect_store_gives_the_summary_of_the_same_records(filled_store: tuple[Path, Path],
                                                                 capsys: pytest.CaptureFixture[str]) -> None:  # fmt: skip
    data, runs = filled_store
    out = _python("-m", "wasmscope", "cost", "summary", str(data), "--price", "fastly-compute", "--json")
    assert out.returncode == 0, out.stderr
    from_store = json.loads(out.stdout)
    from_file = _json(capsys, str(runs), "--price", "fastly-compute")
    # The store names a function by faas.name (the module): both entries are one there.
    assert [f["function"] for f in from_store["functions"]] == ["work.wasm"]
    a, b = from_store["total"], from_file["total"]
    assert (a["invocations"], a["errors"]) == (b["invocations"], b["errors"]) == (len(WORKLOAD), 2)
    for metric in ("wall", "cpu", "fuel", "peak_memory"):
        for stat in ("min", "avg", "p50", "p95", "p99", "max", "known"):
            assert a[metric][stat] == pytest.approx(b[metric][stat], rel=1e-9), (metric, stat)
    assert a["cost"]["per_invocation"] == pytest.approx(b["cost"]["per_invocation"], rel=1e-9)
    assert from_store["seconds_observed"] == pytest.approx(from_file["seconds_observed"], abs=1e-6)
    # --function is a WHERE in the store
    one = _python("-m", "wasmscope", "cost", "summary", str(data), "--function", "work.wasm", "--json")
    assert one.returncode == 0 and json.loads(one.stdout)["total"]["invocations"] == len(WORKLOAD)
    none = _python("-m", "wasmscope", "cost", "summary", str(data), "--function", "other")
    assert none.returncode == 2 and "no invocations of other" in none.stderr
    # A store a collector holds (its lock taken, as `wasmscope collect` takes it) is refused
    # with the way out; the lock is taken before chDB opens anything.
    import fcntl

    with open(data / ".wasmscope.lock", "a+") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX | fcntl.LOCK_NB)
        assert main(["cost", "summary", str(data)]) == 2
    assert "in use by a running `wasmscope collect`" in capsys.readouterr().err


def test_the_store_aggregates_as_numpy_does_on_the_rows(filled_store: tuple[Path, Path]) -> None:
    """Each sheet's meter, the monthly options, the free tier and --function: the summary
    aggregated in the store equals numpy's over the rows read out of it."""
    out = _python("-m", "tests.cost._fill_store", "--compare", str(filled_store[0]))
    assert out.returncode == 0, out.stderr
    docs = [json.loads(line) for line in out.stdout.splitlines()]
    assert len(docs) == 6

    def same(a: object, b: object, where: str) -> None:
        if isinstance(a, dict) and isinstance(b, dict):
            assert a.keys() == b.keys(), where
            for k in a:
                same(a[k], b[k], f"{where}.{k}")
        elif isinstance(a, list) and isinstance(b, list):
            assert len(a) == len(b), where
            for i, (x, y) in enumerate(zip(a, b, strict=True)):
                same(x, y, f"{where}[{i}]")
        elif isinstance(a, float) and isinstance(b, float):
            assert a == pytest.approx(b, rel=1e-9), where
        else:
            assert a == b, where

    for doc in docs:
        same(doc["store"], doc["numpy"], doc["sheet"])
        assert doc["store"]["total"]["cost"]["per_invocation"] > 0


def test_a_folder_that_is_no_store(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["cost", "summary", str(tmp_path)]) == 2
    assert "not a collect store folder" in capsys.readouterr().err
    assert not (tmp_path / "metadata").exists()  # nothing was created there
