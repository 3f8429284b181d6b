"""What a plain `pip install wasmscope` gives: run, profile and serve work, the decoder
and `inspect` import nothing heavy, and collect without its extra says what to install.

The packages a command imports are read from a fresh interpreter's ``sys.modules``
after the command ran, then matched against the closure of ``[project].dependencies``
in pyproject.toml (the installed metadata may be an older checkout's).
"""

from __future__ import annotations

import importlib.metadata
import json
import re
import subprocess
import sys
import tomllib
from pathlib import Path

import pytest
from packaging.requirements import Requirement

ROOT = Path(__file__).resolve().parent.parent

# Top-level modules that only run, profile, serve or collect may import.
HEAVY = (
    "wasmtime",
    "opentelemetry",
    "uvicorn",
    "prometheus_client",
    "chdb",
    "pyarrow",
    "grpc",
    "jinja2",
    "google",
)

LOOP_WAT = """(module
  (memory (export "memory") 1)
  (func (export "_start") (local i32)
    (loop $l (local.set 0 (i32.add (local.get 0) (i32.const 1)))
      (br_if $l (i32.lt_u (local.get 0) (i32.const 1000))))))"""

# Prints the third-party top-level modules imported once the command ran.
_PROBE = """
import json, sys
from wasmscope.cli import main
code = main(sys.argv[1:])
names = sorted({m.split(".")[0] for m in sys.modules} - set(sys.stdlib_module_names))
print(json.dumps({"code": code, "modules": names}))
"""


def _imported_by(*argv: str, cwd: Path) -> list[str]:
    done = subprocess.run(
        [sys.executable, "-c", _PROBE, *argv],
        capture_output=True,
        text=True,
        cwd=cwd,
        timeout=300,
        check=False,
    )
    assert done.returncode == 0, done.stderr
    result = json.loads(done.stdout.strip().splitlines()[-1])
    assert result["code"] == 0, done.stderr
    return [m for m in result["modules"] if not m.startswith("_")]


def _normal(name: str) -> str:
    """A distribution name as PEP 503 compares them."""
    return re.sub(r"[-_.]+", "-", name).lower()


def _core_distributions() -> set[str]:
    """The distributions of ``[project].dependencies`` and everything they require."""
    project = tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]
    todo = [Requirement(r) for r in project["dependencies"]]
    seen: set[str] = set()
    while todo:
        req = todo.pop()
        name = _normal(req.name)
        if name in seen:
            continue
        seen.add(name)
        for sub in importlib.metadata.requires(req.name) or []:
            dep = Requirement(sub)
            if dep.marker is None or dep.marker.evaluate({"extra": ""}):
                todo.append(dep)
    return seen


@pytest.fixture(scope="module")
def loop_wasm(tmp_path_factory: pytest.TempPathFactory) -> Path:
    wasmtime = pytest.importorskip("wasmtime")
    path = tmp_path_factory.mktemp("install") / "loop.wasm"
    path.write_bytes(wasmtime.wat2wasm(LOOP_WAT))
    return path


def test_decoder_and_inspect_import_nothing_heavy(loop_wasm: Path) -> None:
    modules = _imported_by("inspect", "--json", str(loop_wasm), cwd=loop_wasm.parent)
    assert modules == ["wasmscope"]
    code = "import sys, wasmscope.binary, wasmscope.analysis; print(sorted({m.split('.')[0] for m in sys.modules}))"
    out = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, check=True
    ).stdout
    assert not set(HEAVY) & set(eval(out))


@pytest.mark.parametrize(
    "argv",
    [
        ["run", "-q", "--telemetry", "jsonl:t.jsonl", "--cache-dir", "cache"],
        ["profile", "-q", "--telemetry", "jsonl:t.jsonl", "--cache-dir", "cache"],
    ],
    ids=["run", "profile"],
)
def test_run_and_profile_need_only_the_plain_install(loop_wasm: Path, argv: list[str]) -> None:
    modules = _imported_by(*argv, str(loop_wasm), cwd=loop_wasm.parent)
    assert "wasmtime" in modules and "opentelemetry" in modules
    _assert_installed_by_default(modules)


def test_serve_needs_only_the_plain_install(loop_wasm: Path) -> None:
    # What serve imports to build its app (metrics and telemetry on), and uvicorn, without listening.
    code = (
        "import sys, uvicorn\n"
        "from wasmscope.cli import build_parser\n"
        "from wasmscope.cli.serve import build_app\n"
        "args = build_parser().parse_args(['serve', '.', '--telemetry', 'jsonl:t.jsonl', '--cache-dir', 'cache'])\n"
        "build_app(args)\n"
        "print(sorted({m.split('.')[0] for m in sys.modules} - set(sys.stdlib_module_names)))\n"
    )
    done = subprocess.run(
        [sys.executable, "-c", code],
        capture_output=True,
        text=True,
        cwd=loop_wasm.parent,
        check=False,
    )
    assert done.returncode == 0, done.stderr
    modules = [m for m in eval(done.stdout.strip().splitlines()[-1]) if not m.startswith("_")]
    assert {"wasmtime", "uvicorn", "prometheus_client"} <= set(modules)
    _assert_installed_by_default(modules)


def _assert_installed_by_default(modules: list[str]) -> None:
    owners = importlib.metadata.packages_distributions()
    core = _core_distributions()
    missing = {
        m: owners.get(m)
        for m in modules
        if m != "wasmscope" and not any(_normal(d) in core for d in owners.get(m, []))
    }
    assert not missing, f"imported but not in the plain install's dependencies: {missing}"


def test_collect_without_its_extra_says_what_to_install(tmp_path: Path) -> None:
    # grpc set to None in sys.modules: the import fails as if grpcio were not installed.
    code = (
        "import sys; sys.modules['grpc'] = None; from wasmscope.cli import main; sys.exit(main())"
    )
    done = subprocess.run(
        [sys.executable, "-c", code, "collect", "--data", str(tmp_path / "data"), "--port", "0"],
        capture_output=True, text=True, timeout=120, check=False,
    )  # fmt: skip
    assert done.returncode == 2, done.stderr
    assert "pip install 'wasmscope[collect]'" in done.stderr
    assert "internal error" not in done.stderr
