"""``wasmscope inspect --push`` and ``wasmscope profile --push`` as a user runs them: a
real process posting to a real OTLP/HTTP receiver on 127.0.0.1 (the telemetry tests'
stub, which decodes the request with opentelemetry-proto), a C program built with
clang-19, and a closed port for the failure path."""

from __future__ import annotations

import hashlib
import json
import subprocess
import sys
from pathlib import Path

import pytest

from tests.analysis.tools import TINY_MODULE
from tests.collect.push.support import CLI, attrs_of, cli, module_attrs, pushed
from tests.telemetry.otlp_stub import OtlpStub, closed_port
from wasmscope.telemetry import semconv as sc


# --- inspect --------------------------------------------------------------------------------------
def test_inspect_push_body_is_the_json_report(env: dict[str, str], wasm: dict[str, Path], stub: OtlpStub) -> None:
    done = cli(env, "inspect", "--json", "--push", stub.url, "--push-token", "s3cret", str(wasm["prog"]))
    assert done.returncode == 0 and done.stderr == "", done.stderr
    lr, resource = pushed(stub)
    assert json.loads(lr.body.string_value) == json.loads(done.stdout)
    assert attrs_of(lr.attributes) == {sc.EVENT_NAME: sc.EVENT_INSPECT_REPORT, **module_attrs(wasm["prog"])}
    assert lr.severity_text == "INFO" and lr.time_unix_nano > 0
    assert attrs_of(resource.attributes)["service.name"] == "wasmscope"
    (got,) = stub.received
    assert got.path == "/v1/logs" and got.headers["authorization"] == "Bearer s3cret"
    assert got.headers["content-type"] == "application/x-protobuf"


def test_inspect_push_text_output_unchanged_and_env_token(env: dict[str, str], wasm: dict[str, Path], stub: OtlpStub) -> None:
    plain = cli(env, "inspect", str(wasm["prog"]))
    e = {**env, "WASMSCOPE_PUSH_TOKEN": "from-env", "OTEL_SERVICE_NAME": "edge-fleet"}
    done = cli(e, "inspect", "--push", stub.url + "/", str(wasm["prog"]))
    assert done.returncode == 0 and done.stderr == ""
    assert done.stdout == plain.stdout
    lr, resource = pushed(stub)
    assert stub.received[0].headers["authorization"] == "Bearer from-env"
    assert attrs_of(resource.attributes)["service.name"] == "edge-fleet"
    body = json.loads(lr.body.string_value)
    assert body["schema"] and body["size"] == wasm["prog"].stat().st_size


@pytest.mark.parametrize("which", ["prog", "tiny"])
def test_inspect_stdin_push(env: dict[str, str], wasm: dict[str, Path], stub: OtlpStub, which: str) -> None:
    data = wasm["prog"].read_bytes() if which == "prog" else TINY_MODULE
    done = subprocess.run(
        [sys.executable, "-c", CLI, "inspect", "--json", "--push", stub.url, "-"], capture_output=True,
        env=env, timeout=60, input=data,
    )  # fmt: skip
    assert done.returncode == 0, done.stderr
    lr, _ = pushed(stub)
    attrs = attrs_of(lr.attributes)
    # the name section's module name (clang's is the output file's), else <stdin>
    expected = "prog.wasm" if which == "prog" else "<stdin>"
    assert json.loads(done.stdout)["debug"]["module_name"] == (expected if which == "prog" else None)
    assert attrs[sc.WASM_MODULE_NAME] == expected
    assert attrs[sc.WASM_MODULE_SHA256] == hashlib.sha256(data).hexdigest()
    assert attrs[sc.WASM_MODULE_SIZE] == len(data)


def test_inspect_push_refused_is_one_warning(env: dict[str, str], wasm: dict[str, Path]) -> None:
    plain = cli(env, "inspect", "--json", str(wasm["prog"]))
    url = f"http://127.0.0.1:{closed_port()}"
    done = cli(env, "inspect", "--json", "--push", url, str(wasm["prog"]))
    assert done.returncode == 0
    assert done.stdout == plain.stdout
    assert done.stderr.splitlines() == [
        f"wasmscope: warning: could not push the inspect report to {url}/v1/logs: "
        "connection refused (is `wasmscope collect` or a collector running there?)"
    ]


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["--push", "127.0.0.1:4318"], "--push: expected an http:// or https:// URL"),
        (["--push", "http://127.0.0.1:4318?x=1"], "--push: expected a base URL without ?query"),
        (["--push-token", "t"], "--push-token needs --push URL"),
    ],
)
def test_push_usage_errors(env: dict[str, str], wasm: dict[str, Path], args: list[str], message: str) -> None:
    for command in ("inspect", "profile"):
        done = cli(env, command, *args, str(wasm["prog"]))
        assert done.returncode == 2, (command, done.stderr)
        assert done.stdout == ""
        lines = done.stderr.splitlines()
        assert len(lines) == 1 and lines[0].startswith(f"wasmscope: error: {message}"), done.stderr


def test_help_documents_push(env: dict[str, str]) -> None:
    for command in ("inspect", "profile"):
        text = " ".join(cli(env, command, "--help").stdout.split())
        assert "--push URL" in text and "--push-token TOKEN" in text and "WASMSCOPE_PUSH_TOKEN" in text
        assert "never a change of output or exit status" in text
        assert f"wasmscope {command} --push http://127.0.0.1:4318" in text


# --- profile --------------------------------------------------------------------------------------
def test_profile_push_exact_calls_and_the_invocation_span(
    env: dict[str, str], wasm: dict[str, Path], stub: OtlpStub, tmp_path: Path
) -> None:
    report = tmp_path / "rec.json"
    done = cli(env, "profile", "--rate", "5000", "--otlp", stub.url, "--push", stub.url, "--report", str(report), str(wasm["prog"]))
    assert done.returncode == 0, done.stderr
    assert done.stdout.endswith("fib(25) = 75025\n")
    assert f"pushed the profile to {stub.url}/v1/logs\n" in done.stderr
    rec = json.loads(report.read_text())
    found = [
        (r, rl.resource)
        for m in stub.of("/v1/logs") for rl in m.resource_logs for sl in rl.scope_logs for r in sl.log_records
        if attrs_of(r.attributes).get(sc.EVENT_NAME) == sc.EVENT_PROFILE
    ]  # fmt: skip
    ((lr, log_resource),) = found
    attrs = attrs_of(lr.attributes)
    assert attrs == {
        sc.EVENT_NAME: sc.EVENT_PROFILE, **module_attrs(wasm["prog"]),
        sc.FAAS_NAME: "prog.wasm", sc.FAAS_INVOCATION_ID: rec["invocation_id"], sc.WASM_OUTCOME: "ok",
    }  # fmt: skip
    body = json.loads(lr.body.string_value)
    assert body["format"] == "wasmscope.profile/1" and body["unit"] == "samples"
    assert body["module"] == {"name": "prog.wasm", "sha256": attrs[sc.WASM_MODULE_SHA256]}
    calls = {f["name"]: f["calls"] for f in body["functions"]}
    assert calls["fib"] == 242_785 == rec["call_counts"]["fib"]
    assert calls["leaf"] == 37 == rec["call_counts"]["leaf"]
    for name, n in {**rec["call_counts"], **rec["host_calls"]}.items():
        assert calls[name] == n, name
    assert calls["wasi_snapshot_preview1.fd_write"] >= 37
    assert sum(s["value"] for s in body["stacks"]) == body["samples"] == sum(f["self"] for f in body["functions"])
    assert all(f["self"] <= f["total"] <= body["samples"] for f in body["functions"])
    assert body["interval_s"] > 0
    # the trace and span ids are those of the run's invocation span (kind SERVER)
    spans = [s for m in stub.of("/v1/traces") for rs in m.resource_spans for ss in rs.scope_spans for s in ss.spans]
    (inv,) = [s for s in spans if s.kind == 2]
    assert attrs_of(inv.attributes)[sc.FAAS_INVOCATION_ID] == rec["invocation_id"]
    assert attrs_of(inv.attributes)[sc.FAAS_NAME] == attrs[sc.FAAS_NAME]
    assert lr.trace_id == inv.trace_id and lr.span_id == inv.span_id and lr.flags == 1
    # and the same resource as the run's telemetry (one service.instance.id)
    span_res = attrs_of(stub.of("/v1/traces")[0].resource_spans[0].resource.attributes)
    log_res = attrs_of(log_resource.attributes)
    assert log_res[sc.SERVICE_INSTANCE_ID] == span_res[sc.SERVICE_INSTANCE_ID]


def test_profile_push_without_telemetry_has_no_span_ids(env: dict[str, str], wasm: dict[str, Path], stub: OtlpStub) -> None:
    done = cli(env, "profile", "-q", "--push", stub.url, "--service-name", "prof-svc", str(wasm["prog"]))
    assert done.returncode == 0, done.stderr
    assert done.stderr == f"pushed the profile to {stub.url}/v1/logs\n"
    lr, resource = pushed(stub)
    assert lr.trace_id == b"" and lr.span_id == b""
    assert attrs_of(resource.attributes)["service.name"] == "prof-svc"
    assert stub.of("/v1/traces") == []


def test_profile_push_refused_keeps_output_and_status(env: dict[str, str], wasm: dict[str, Path]) -> None:
    url = f"http://127.0.0.1:{closed_port()}"
    plain = cli(env, "profile", "-q", str(wasm["trap"]))
    done = cli(env, "profile", "-q", "--push", url, str(wasm["trap"]))
    assert plain.returncode == done.returncode == 1
    assert done.stdout == plain.stdout == "before\n"
    assert done.stderr.splitlines() == [
        f"wasmscope: warning: could not push the profile to {url}/v1/logs: "
        "connection refused (is `wasmscope collect` or a collector running there?)"
    ]


def test_trapped_profile_is_pushed(env: dict[str, str], wasm: dict[str, Path], stub: OtlpStub) -> None:
    done = cli(env, "profile", "--push", stub.url, str(wasm["trap"]))
    assert done.returncode == 1 and "trap" in done.stderr
    lr, _ = pushed(stub)
    assert attrs_of(lr.attributes)[sc.WASM_OUTCOME] == "trap"
    calls = {f["name"]: f["calls"] for f in json.loads(lr.body.string_value)["functions"]}
    assert calls["down"] == 10


def test_inspect_push_of_a_component(env: dict[str, str], stub: OtlpStub, tmp_path: Path) -> None:
    path = tmp_path / "empty.wasm"
    path.write_bytes(b"\x00asm\x0d\x00\x01\x00")  # an empty component
    done = cli(env, "inspect", "--push", stub.url, str(path))
    assert done.returncode == 0 and done.stderr == ""
    lr, _ = pushed(stub)
    assert attrs_of(lr.attributes) == {sc.EVENT_NAME: sc.EVENT_INSPECT_REPORT, **module_attrs(path), sc.WASM_MODULE_KIND: "component"}
    assert json.loads(lr.body.string_value)["kind"] == "component"


def test_invalid_module_pushes_nothing(env: dict[str, str], stub: OtlpStub, tmp_path: Path) -> None:
    path = tmp_path / "bad.wasm"
    path.write_bytes(b"\x00asm\x01\x00\x00\x00\x01\xff")
    done = cli(env, "inspect", "--push", stub.url, str(path))
    assert done.returncode == 1 and done.stderr.startswith("wasmscope: error: ")
    assert stub.received == []
