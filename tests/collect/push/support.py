"""Helpers of the push tests: the CLI as a process, and pushed records decoded."""

from __future__ import annotations

import hashlib
import subprocess
import sys
from pathlib import Path
from typing import Any

from tests.telemetry.otlp_stub import OtlpStub
from wasmscope.telemetry import semconv as sc

CLI = "import sys; from wasmscope.cli import main; sys.exit(main())"


def attrs_of(kvs: Any) -> dict[str, Any]:
    out: dict[str, Any] = {}
    for kv in kvs:
        v = kv.value
        out[kv.key] = getattr(v, v.WhichOneof("value"))
    return out


def the_record(message: Any) -> Any:
    (rl,) = message.resource_logs
    (sl,) = rl.scope_logs
    assert sl.scope.name == "wasmscope"
    (lr,) = sl.log_records
    return lr


def cli(env: dict[str, str], *args: str, cwd: Path | None = None) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-c", CLI, *args], capture_output=True, text=True, env=env, timeout=300, cwd=cwd, stdin=subprocess.DEVNULL
    )


def pushed(stub: OtlpStub) -> Any:
    (msg,) = stub.of("/v1/logs")
    return the_record(msg), msg.resource_logs[0].resource


def module_attrs(path: Path) -> dict[str, Any]:
    data = path.read_bytes()
    return {
        sc.WASM_MODULE_SHA256: hashlib.sha256(data).hexdigest(),
        sc.WASM_MODULE_NAME: path.name,
        sc.WASM_MODULE_SIZE: len(data),
        sc.WASM_MODULE_KIND: "module",
    }
