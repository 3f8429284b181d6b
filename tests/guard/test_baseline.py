"""The baseline store: learning and detecting, persistence across reopen, two
connections and two processes at once, bounds, schema versions and bad input."""

from __future__ import annotations

import sqlite3
import subprocess
import sys
import textwrap
from pathlib import Path

import pytest

from wasmscope.errors import UsageError
from wasmscope.guard.baseline import SCHEMA_VERSION, Baseline
from wasmscope.guard.findings import Severity
from wasmscope.guard.resources import FUEL, MEMORY, OUTPUT, ResourceSettings
from wasmscope.guard.sequences import SequenceSettings

SHA = "5e" * 32
RUN = ["args_get", "path_open", *["fd_read"] * 6, "fd_close", "fd_write", "proc_exit"]


def _figures(i: int) -> dict[str, float]:
    return {FUEL: 1000.0 + i % 7, MEMORY: 65536.0 * 2, OUTPUT: 100.0 + i % 5}


def _learn(b: Baseline, runs: int = 30, start: int = 0, sha: str = SHA) -> None:
    for i in range(start, start + runs):
        b.add_run(sha, "hello.wasm", "_start", "", RUN, _figures(i), {"run": i})


def test_nothing_is_reported_while_warming_up(tmp_path: Path) -> None:
    with Baseline.open(tmp_path / "g.db") as b:
        assert b.detect(SHA, "_start", "", ["odd"], {FUEL: 1e9}) == []
        _learn(b, 29)
        assert b.detect(SHA, "_start", "", ["odd"], {FUEL: 1e9}) == []
        _learn(b, 1, start=29)
        rules = {f.rule for f in b.detect(SHA, "_start", "", ["odd"], {FUEL: 1e9})}
        assert rules == {"anomaly.sequence", "anomaly.fuel"}


def test_what_was_learned_survives_a_reopen(tmp_path: Path) -> None:
    path = tmp_path / "g.db"
    with Baseline.open(path) as b:
        _learn(b)
    with Baseline.open(path) as b:
        assert b.runs(SHA, "_start") == 30
        assert b.detect(SHA, "_start", "", RUN, _figures(3)) == []
        odd = [*RUN[:4], "environ_get", *RUN[4:]]
        found = b.detect(SHA, "_start", "", odd, {**_figures(3), MEMORY: 65536.0 * 8})
        assert [f.rule for f in found] == ["anomaly.sequence", "anomaly.memory"]
        assert "environ_get" in found[0].details["foreign_calls"]
        assert [u["run"] for u in b.usages(SHA)] == list(range(30))
        assert b.usages(SHA, function="other") == []
        (module,) = b.modules()
        assert (module.sha256, module.name, module.runs) == (SHA, "hello.wasm", 30)


def test_keys_keep_functions_and_input_classes_apart(tmp_path: Path) -> None:
    with Baseline.open(tmp_path / "g.db") as b:
        _learn(b)
        # another function has learned nothing: nothing to judge it by
        assert b.detect(SHA, "other", "", ["x"], {FUEL: 1e9}) == []
        # another input class of the same function shares the n-grams, not the figures
        found = b.detect(SHA, "_start", "large", ["x"], {FUEL: 1e9})
        assert [f.rule for f in found] == ["anomaly.sequence"]
        assert b.runs(SHA, "_start", "large") == 0


def test_a_run_without_a_sequence_is_judged_on_its_figures(tmp_path: Path) -> None:
    with Baseline.open(tmp_path / "g.db") as b:
        _learn(b)
        b.add_run(SHA, "hello.wasm", "_start", "", None, _figures(1))
        assert b.runs(SHA, "_start") == 31
        assert b.detect(SHA, "_start", "", None, _figures(2)) == []
        found = b.detect(SHA, "_start", "", None, {FUEL: 5000.0})
        assert [f.rule for f in found] == ["anomaly.fuel"]
        with pytest.raises(UsageError):
            b.detect(SHA, "_start", "", "fd_read", {})


def test_two_connections_see_each_others_learning(tmp_path: Path) -> None:
    path = tmp_path / "g.db"
    with Baseline.open(path) as one, Baseline.open(path) as two:
        _learn(one, 15)
        _learn(two, 15, start=15)
        assert one.runs(SHA, "_start") == two.runs(SHA, "_start") == 30
        assert one.detect(SHA, "_start", "", RUN, _figures(1)) == []
        new_run = [*RUN, "fd_sync"]
        assert two.detect(SHA, "_start", "", new_run, _figures(1)) != []
        one.add_run(SHA, "hello.wasm", "_start", "", new_run, _figures(1))
        # two had the old n-grams cached: it reads the new generation
        assert two.detect(SHA, "_start", "", new_run, _figures(1)) == []


def test_two_processes_learning_at_once_lose_nothing(tmp_path: Path) -> None:
    path = tmp_path / "g.db"
    script = textwrap.dedent(
        f"""
        from wasmscope.guard.baseline import Baseline
        with Baseline.open({str(path)!r}) as b:
            for i in range(100):
                b.add_run({SHA!r}, "hello.wasm", "_start", "", ["a", "b{{}}".format(i % 3)],
                          {{"fuel": 1000.0}}, {{"who": "child", "i": i}})
        """
    )
    with Baseline.open(path) as b:
        child = subprocess.Popen([sys.executable, "-c", script])
        for i in range(100):
            b.add_run(SHA, "hello.wasm", "_start", "", ["a", "c"], {FUEL: 1000.0}, {"i": i})
        assert child.wait(timeout=120) == 0
        assert b.runs(SHA, "_start") == 200
        usages = b.usages(SHA)
        assert len(usages) == 200
        assert sum(1 for u in usages if u.get("who") == "child") == 100
        assert b.detect(SHA, "_start", "", ["a", "b2"], {FUEL: 1000.0}) == []


def test_learning_while_detecting_never_learns_an_anomaly(tmp_path: Path) -> None:
    with Baseline.open(tmp_path / "g.db") as b:
        for i in range(30):  # warm-up by detection with learning on
            assert b.detect(SHA, "_start", "", RUN, _figures(i), learn=True, name="h") == []
        assert b.runs(SHA, "_start") == 30
        odd = [*RUN, "sock_accept"]
        for _ in range(3):
            found = b.detect(SHA, "_start", "", odd, _figures(1), learn=True)
            assert [f.rule for f in found] == ["anomaly.sequence"]
        assert b.runs(SHA, "_start") == 30
        # After the warm-up a normal run adds its usage, not its figures (see drift).
        assert b.detect(SHA, "_start", "", RUN, _figures(2), learn=True, usage={"n": 1}) == []
        assert b.runs(SHA, "_start") == 30
        assert len(b.usages(SHA)) == 31 and b.usages(SHA)[-1] == {"n": 1}
        assert b.modules()[0].name == "h"


def test_learning_while_detecting_reports_drift(tmp_path: Path) -> None:
    with Baseline.open(tmp_path / "g.db") as b:
        for i in range(60):
            b.add_run(SHA, "m", "_start", "", RUN, {"duration": 1.0 + (i % 10) / 10})
        drift = []
        for i in range(60):
            value = 1.75 + (i % 5) / 10  # each within the z-score limit, all of them high
            found = b.detect(SHA, "_start", "", RUN, {"duration": value}, learn=True)
            assert all(f.severity == Severity.INFO for f in found)
            drift += [f for f in found if f.rule == "anomaly.drift"]
        assert drift and drift[0].details["metric"] == "duration"


def test_the_store_stays_bounded(tmp_path: Path) -> None:
    path = tmp_path / "g.db"
    resources = ResourceSettings(warmup=5, window=10)
    with Baseline.open(path, resources=resources, max_usages=7) as b:
        for i in range(40):
            b.add_run(SHA, "m", "_start", "", RUN, {FUEL: float(i)}, {"i": i})
        assert [u["i"] for u in b.usages(SHA)] == list(range(33, 40))
    with sqlite3.connect(path) as db:
        assert db.execute("SELECT count(*) FROM samples").fetchone() == (10,)
        assert db.execute("SELECT min(value) FROM samples").fetchone() == (30.0,)
        assert db.execute("SELECT count(*) FROM ngrams").fetchone() == (len(RUN) + 2 - 6 + 1,)


def test_forget_drops_one_module(tmp_path: Path) -> None:
    other = "0f" * 32
    with Baseline.open(tmp_path / "g.db") as b:
        _learn(b)
        _learn(b, sha=other)
        b.forget(SHA)
        assert [m.sha256 for m in b.modules()] == [other]
        assert b.usages(SHA) == [] and b.runs(SHA, "_start") == 0
        assert b.detect(SHA, "_start", "", ["x"], {FUEL: 1e9}) == []
        assert b.detect(other, "_start", "", ["x"], {FUEL: 1e9}) != []


def test_the_file_says_its_schema_version(tmp_path: Path) -> None:
    path = tmp_path / "g.db"
    Baseline.open(path).close()
    with sqlite3.connect(path) as db:
        assert db.execute("SELECT value FROM meta").fetchone() == (str(SCHEMA_VERSION),)
        assert db.execute("PRAGMA journal_mode").fetchone() == ("wal",)
        db.execute("UPDATE meta SET value = '99' WHERE key = 'schema_version'")
    with pytest.raises(UsageError, match="schema version 99"):
        Baseline.open(path)


def test_a_file_that_is_not_a_baseline_is_refused(tmp_path: Path) -> None:
    path = tmp_path / "g.db"
    path.write_bytes(b"this is not sqlite" * 100)
    with pytest.raises(UsageError, match="not a wasmscope baseline"):
        Baseline.open(path)
    with pytest.raises(UsageError):
        Baseline.open(tmp_path / "missing" / "dir" / "g.db")


def test_close_twice_and_use_after_close(tmp_path: Path) -> None:
    b = Baseline.open(tmp_path / "g.db")
    b.close()
    b.close()
    with pytest.raises(UsageError, match="closed"):
        b.detect(SHA, "_start", "", RUN, {})


def test_another_window_than_the_learned_one_is_refused(tmp_path: Path) -> None:
    path = tmp_path / "g.db"
    with Baseline.open(path) as b:
        _learn(b, 1)
    with (
        Baseline.open(path, sequences=SequenceSettings(window=4)) as b,
        pytest.raises(UsageError, match="n-grams of 6 calls"),
    ):
        b.detect(SHA, "_start", "", RUN, {})


@pytest.mark.parametrize(
    ("sha", "sequence", "resources", "usage"),
    [
        ("", RUN, {}, {}),
        (SHA, ["a", ""], {}, {}),
        (SHA, ["a", "<start>"], {}, {}),
        (SHA, ["a\x1fb"], {}, {}),
        (SHA, RUN, {FUEL: float("nan")}, {}),
        (SHA, RUN, {}, {"x": object()}),
    ],
)
def test_bad_input_is_a_usage_error(
    tmp_path: Path, sha: str, sequence: list[str], resources: dict[str, float], usage: object
) -> None:
    with Baseline.open(tmp_path / "g.db") as b, pytest.raises(UsageError):
        b.add_run(sha, "m", "_start", "", sequence, resources, usage)  # type: ignore[arg-type]


def test_a_name_or_function_that_is_not_a_string_is_a_usage_error(tmp_path: Path) -> None:
    with Baseline.open(tmp_path / "g.db") as b:
        with pytest.raises(UsageError):
            b.add_run(SHA, 3, "_start", "", RUN, {})  # type: ignore[arg-type]
        with pytest.raises(UsageError):
            b.detect(SHA, None, "", RUN, {})  # type: ignore[arg-type]
