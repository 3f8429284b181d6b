"""The worked example of the README and docs/guard.md: examples/guard/peek.c under
examples/guard/peek.policy.toml, through the real CLI, with a fake /etc."""

from __future__ import annotations

import json
import shutil
import subprocess
from pathlib import Path

import pytest

from tests.runtime.conftest import clang_19
from wasmscope.cli import main

EXAMPLE = Path(__file__).parents[2] / "examples" / "guard"


@pytest.fixture(scope="module")
def peek(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, Path, Path]:
    """(peek.wasm, its data dir, a fake /etc with passwd and hostname)."""
    tmp = tmp_path_factory.mktemp("peek")
    wasm = tmp / "peek.wasm"
    subprocess.run([clang_19(), "--target=wasm32-wasi", "-O2", str(EXAMPLE / "peek.c"), "-o", str(wasm)], check=True)
    data = tmp / "data"
    shutil.copytree(EXAMPLE / "data", data)
    etc = tmp / "etc"
    etc.mkdir()
    (etc / "passwd").write_text("root:x:0:0:root:/root:/bin/sh\n")
    (etc / "hostname").write_text("device-7\n")
    return wasm, data, etc


def _run(peek: tuple[Path, Path, Path], tmp_path: Path, *extra: str) -> tuple[int, dict[str, object], Path]:
    wasm, data, etc = peek
    report, ocsf = tmp_path / "run.json", tmp_path / "events.ocsf"
    code = main([
        "run", "-q", "--policy", str(EXAMPLE / "peek.policy.toml"), "--dir", f"{data}::/data:ro",
        "--dir", f"{etc}::/etc:ro", "--report", str(report), "--ocsf", str(ocsf), *extra, str(wasm),
    ])  # fmt: skip
    return code, json.loads(report.read_text()), ocsf


def test_enforce_denies_the_read_and_suggests_the_line(peek: tuple[Path, Path, Path], tmp_path: Path, capfd: pytest.CaptureFixture[str]) -> None:
    code, doc, ocsf = _run(peek, tmp_path)
    out = capfd.readouterr().out
    assert code == 0
    assert "/data/input.txt: hello from the input" in out
    assert "root:x" not in out  # the guest got notcapable
    findings = doc["guard"]["findings"]  # type: ignore[index]
    assert [(f["event"], f["rule"], f["target"], f["suggestion"]) for f in findings] == [
        ("wasm.policy.denied", "fs.read", "/etc/passwd", 'filesystem.read = ["/etc/passwd"]')
    ]
    (event,) = [json.loads(line) for line in ocsf.read_text().splitlines()]
    assert (event["class_uid"], event["activity_name"], event["action"]) == (1001, "Open", "Denied")
    assert event["file"]["path"] == "/etc/passwd"


def test_monitor_lets_it_through_and_reports_it(peek: tuple[Path, Path, Path], tmp_path: Path, capfd: pytest.CaptureFixture[str]) -> None:
    code, doc, _ = _run(peek, tmp_path, "--guard-mode", "monitor")
    assert code == 0
    assert "root:x" in capfd.readouterr().out
    findings = doc["guard"]["findings"]  # type: ignore[index]
    assert [(f["event"], f["target"]) for f in findings] == [("wasm.policy.violation", "/etc/passwd")]


def test_the_suggested_line_makes_it_pass(peek: tuple[Path, Path, Path], tmp_path: Path, capfd: pytest.CaptureFixture[str]) -> None:
    wasm, data, etc = peek
    policy = tmp_path / "fixed.toml"
    text = (EXAMPLE / "peek.policy.toml").read_text()
    policy.write_text(text.replace('read = ["/data/**", "/etc/hostname"]', 'read = ["/data/**", "/etc/hostname", "/etc/passwd"]'))
    report = tmp_path / "run.json"
    code = main(["run", "-q", "--policy", str(policy), "--dir", f"{data}::/data:ro", "--dir", f"{etc}::/etc:ro",
                 "--report", str(report), str(wasm)])  # fmt: skip
    assert code == 0
    assert "root:x" in capfd.readouterr().out
    assert json.loads(report.read_text())["guard"]["findings"] == []
