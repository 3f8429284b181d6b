"""numpy is the cost extra: nothing else imports it, and without it `wasmscope cost` says
what to install (fresh interpreters: ``sys.modules`` tells what was imported)."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]


def _python(code: str, *argv: str) -> subprocess.CompletedProcess[str]:
    env = {**os.environ, "PYTHONPATH": str(ROOT / "src")}
    return subprocess.run([sys.executable, "-c", code, *argv], capture_output=True, text=True, env=env, timeout=120)


def test_the_cli_and_serve_without_usage_do_not_import_numpy(tmp_path: Path) -> None:
    (tmp_path / "h.wasm").write_bytes(b"\0asm\1\0\0\0")
    code = (
        "import sys, argparse\n"
        "from wasmscope.cli import build_parser\n"
        "build_parser()\n"
        "import wasmscope.cost, wasmscope.cost.accounting\n"
        "from wasmscope.cli.serve import build_app\n"
        f"ns = argparse.Namespace(target={str(tmp_path)!r}, telemetry=[], otlp=None, service_name=None,"
        f" no_cache=True, cache_dir=None, no_reload=True)\n"
        "asgi, gateway, _ = build_app(ns)\n"
        "gateway.close()\n"
        "print('numpy' in sys.modules)\n"
    )
    out = _python(code)
    assert out.returncode == 0, out.stderr
    assert out.stdout.strip() == "False"


def test_without_numpy_cost_says_what_to_install(tmp_path: Path) -> None:
    runs = tmp_path / "runs.jsonl"
    runs.write_text("")
    code = "import sys; sys.modules['numpy'] = None; from wasmscope.cli import main; sys.exit(main(sys.argv[1:]))"
    out = _python(code, "cost", "summary", str(runs), "--price", "aws-lambda-x86")
    assert out.returncode == 2
    assert "wasmscope cost needs numpy: pip install 'wasmscope[cost]'" in out.stderr
