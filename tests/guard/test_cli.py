"""`wasmscope guard check` and `wasmscope guard learn`: exit status, text and JSON,
one-line errors."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
import wasmtime

from tests.guard.conftest import call, log_of, open_call, record
from tests.guard.test_check import HOST_IMPORT_WAT
from wasmscope.cli import main
from wasmscope.guard.policy import load_policy
from wasmscope.guard.usage import Usage
from wasmscope.runtime.options import RunOptions
from wasmscope.runtime.wasi import DirSpec


def one_line_error(err: str) -> str:
    lines = err.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("wasmscope: error: "), err
    return lines[0]


@pytest.fixture
def host_wasm(tmp_path: Path) -> Path:
    path = tmp_path / "host.wasm"
    path.write_bytes(wasmtime.wat2wasm(HOST_IMPORT_WAT))
    return path


def write(tmp_path: Path, name: str, text: str) -> Path:
    path = tmp_path / name
    path.write_text(text)
    return path


def test_check_clean(
    c_modules: dict[str, Path], tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    policy = write(
        tmp_path, "p.toml", 'mode = "enforce"\n[filesystem]\ndirs = ["/d"]\n[clocks]\n[random]\n'
    )
    assert main(["guard", "check", str(c_modules["hello"]), "--policy", str(policy)]) == 0
    out = capsys.readouterr().out
    assert "Imports (" in out and "wasi_snapshot_preview1.fd_write" in out
    assert out.rstrip().endswith("clean: the module links under the policy")


def test_check_refused(host_wasm: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    policy = write(tmp_path, "p.toml", 'mode = "enforce"\n')
    assert main(["guard", "check", str(host_wasm), "--policy", str(policy)]) == 1
    out = capsys.readouterr().out
    assert "denied   import.denied  import env.host_log" in out
    assert 'to allow it: imports.allow = ["env.host_log"]' in out
    assert "refused: 1 import outside the policy" in out
    # monitor: the same import is a warning, and the module links
    assert (
        main(["guard", "check", str(host_wasm), "--policy", str(policy), "--mode", "monitor"]) == 0
    )
    assert "links, with 3 warnings" in capsys.readouterr().out


def test_check_json(host_wasm: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    policy = write(tmp_path, "p.toml", 'mode = "kill"\n[random]\n')
    assert main(["guard", "check", str(host_wasm), "--policy", str(policy), "--json"]) == 1
    doc = json.loads(capsys.readouterr().out)
    assert doc["refused"] is True and doc["mode"] == "kill" and doc["kind"] == "module"
    assert {i["import"]: i["verdict"] for i in doc["imports"]}["env.host_log"] == "deny"
    denied = [f for f in doc["findings"] if f["rule"] == "import.denied"]
    assert denied[0]["event"] == "wasm.policy.denied" and denied[0]["target"] == "env.host_log"


@pytest.mark.parametrize(
    ("args", "code", "message"),
    [
        (["guard"], 2, "guard needs a subcommand"),
        (
            ["guard", "check", "{wasm}", "--policy", "{bad}"],
            2,
            "bad.toml: [clocks] key 'max_calls': expected a whole number",
        ),
        (["guard", "check", "{wasm}", "--policy", "{missing}"], 2, "no such policy file"),
        (["guard", "check", "{nowasm}", "--policy", "{good}"], 2, "no such file"),
        (["guard", "check", "{notwasm}", "--policy", "{good}"], 1, "magic header not detected"),
    ],
)
def test_check_errors(
    host_wasm: Path,
    tmp_path: Path,
    capsys: pytest.CaptureFixture[str],
    args: list[str],
    code: int,
    message: str,
) -> None:
    names = {
        "wasm": str(host_wasm), "bad": str(write(tmp_path, "bad.toml", "[clocks]\nmax_calls = 'x'\n")),
        "missing": str(tmp_path / "missing.toml"), "good": str(write(tmp_path, "good.toml", "")),
        "nowasm": str(tmp_path / "none.wasm"), "notwasm": str(write(tmp_path, "text.wasm", "hello")),
    }  # fmt: skip
    assert main([a.format(**names) for a in args]) == code
    assert message in one_line_error(capsys.readouterr().err)


def test_help_teaches_with_an_example(capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["guard", "--help"]) == 0
    out = capsys.readouterr().out
    assert "wasmscope guard check app.wasm --policy app.policy.toml" in out
    assert 'dirs = ["/data:ro"]' in out
    assert main(["guard", "learn", "--help"]) == 0
    assert "--glob-min" in capsys.readouterr().out


def usages_file(tmp_path: Path) -> Path:
    (tmp_path / "data").mkdir()
    options = RunOptions(env={"LANG": "C"}, dirs=[DirSpec(str(tmp_path / "data"), "/data", True)])
    lines = ["# runs of app.wasm", ""]
    for i in range(4):
        log = log_of(
            call("environ_get"), open_call(f"in/{i}.csv", fd=3, result=9), call("fd_close", fd=9)
        )
        lines.append(json.dumps(Usage.from_run(record([f"{i}.csv"]), log, options).to_json()))
    return write(tmp_path, "runs.jsonl", "\n".join(lines) + "\n")


def test_learn_writes_the_policy_and_lists_unused_grants(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    runs = usages_file(tmp_path)
    current = write(
        tmp_path,
        "current.toml",
        '[filesystem]\ndirs = ["/data", "/tmp:rw"]\n[environment]\nallow = ["LANG", "HOME"]\n',
    )
    out_path = tmp_path / "learned.toml"
    assert (
        main(
            [
                "guard",
                "learn",
                "--from",
                str(runs),
                "--policy",
                str(current),
                "-o",
                str(out_path),
                "--mode",
                "enforce",
            ]
        )
        == 0
    )
    out = capsys.readouterr().out
    assert "learned from 4 runs: 1 dirs, 1 read and 0 write paths, 1 variables" in out
    assert "filesystem.dirs /tmp:rw: no run went through it: remove it" in out
    assert "environment.allow 'HOME': no run read such a variable: remove it" in out
    learned = load_policy(out_path)
    assert learned.mode == "enforce" and learned.filesystem.read == ("/data/in/*",)
    assert learned.arguments == ("*.csv",)
    assert "# (largest of 4 runs:" in out_path.read_text()


def test_learn_to_stdout_and_from_two_files(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    runs = usages_file(tmp_path)
    assert (
        main(
            [
                "guard",
                "learn",
                "--from",
                str(runs),
                "--from",
                str(runs),
                "-o",
                "-",
                "--glob-min",
                "10",
            ]
        )
        == 0
    )
    captured = capsys.readouterr()
    assert captured.out.startswith("# wasmscope guard policy")
    assert '"/data/in/0.csv"' in captured.out  # fewer than 10 files: no glob
    assert "learned from 8 runs" in captured.err


def test_learn_errors(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    bad = write(tmp_path, "bad.jsonl", '{"env": []}\n{"env": 1}\n')
    assert main(["guard", "learn", "--from", str(bad), "-o", str(tmp_path / "o.toml")]) == 2
    assert f"--from {bad} line 2: not a usage: 'env' must be a list of strings" in one_line_error(
        capsys.readouterr().err
    )
    assert (
        main(
            [
                "guard",
                "learn",
                "--from",
                str(tmp_path / "none.jsonl"),
                "-o",
                str(tmp_path / "o.toml"),
            ]
        )
        == 2
    )
    assert "no such file" in one_line_error(capsys.readouterr().err)
    empty = write(tmp_path, "empty.jsonl", "\n")
    assert main(["guard", "learn", "--from", str(empty), "-o", str(tmp_path / "o.toml")]) == 2
    assert "nothing to learn from" in one_line_error(capsys.readouterr().err)
    assert (
        main(
            [
                "guard",
                "learn",
                "--from",
                str(empty),
                "-o",
                str(tmp_path / "o.toml"),
                "--glob-min",
                "0",
            ]
        )
        == 2
    )
    assert "--glob-min" in one_line_error(capsys.readouterr().err)
