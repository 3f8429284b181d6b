"""Pushes into collect's own OTLP/HTTP receiver (``OtlpHttpApp`` under uvicorn on
127.0.0.1, in this process): the CLI's records pass its validation and reach the sink,
its bearer token is the push token, and its 429 (an overloaded sink) is retried."""

from __future__ import annotations

import json
import socket
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import pytest

pytest.importorskip("uvicorn")
pytest.importorskip("google.protobuf")

from tests.collect.push.support import attrs_of, cli, module_attrs
from tests.collect.push.test_reports import inspect_record
from wasmscope.collect.receiver import InMemorySink, OtlpHttpApp, Signal
from wasmscope.errors import OverloadedError
from wasmscope.telemetry import reports
from wasmscope.telemetry import semconv as sc


@contextmanager
def receiving(sink: Any, token: str | None = None) -> Iterator[str]:
    """The receiver app over ``sink`` on a free port of 127.0.0.1; its base URL."""
    import uvicorn

    app = OtlpHttpApp(sink, token=token, workers=2)
    sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    sock.bind(("127.0.0.1", 0))
    config = uvicorn.Config(app, log_level="warning", lifespan="off", access_log=False)
    server = uvicorn.Server(config)
    thread = threading.Thread(target=server.run, kwargs={"sockets": [sock]}, daemon=True)
    thread.start()
    deadline = time.monotonic() + 120  # a guard against a hang, not a measurement
    while not server.started:
        if time.monotonic() > deadline or not thread.is_alive():
            raise RuntimeError("the receiver did not start")
        time.sleep(0.01)
    try:
        yield f"http://127.0.0.1:{sock.getsockname()[1]}"
    finally:
        server.should_exit = True
        thread.join(10)
        app.close()
        sock.close()


class FlakySink(InMemorySink):
    """Overloaded for the first ``busy`` requests, then an in-memory sink."""

    def __init__(self, busy: int) -> None:
        super().__init__()
        self.busy = busy

    def deliver(self, signal: Signal, request: Any, items: int) -> None:
        if self.busy > 0:
            self.busy -= 1
            raise OverloadedError("queue full", retry_after=0.2)
        super().deliver(signal, request, items)


def records_of(sink: InMemorySink) -> list[Any]:
    return [
        r
        for signal, req, _ in sink.requests if signal is Signal.LOGS
        for rl in req.resource_logs for sl in rl.scope_logs for r in sl.log_records
    ]  # fmt: skip


def test_cli_reports_reach_the_receivers_sink(env: dict[str, str], wasm: dict[str, Path], tmp_path: Path) -> None:
    sink = InMemorySink()
    with receiving(sink, token="s3cret") as url:
        inspected = cli(env, "inspect", "--json", "--push", url, "--push-token", "s3cret", str(wasm["prog"]))
        profiled = cli({**env, "WASMSCOPE_PUSH_TOKEN": "s3cret"}, "profile", "-q", "--report", str(tmp_path / "r.json"),
                       "--push", url, str(wasm["prog"]))  # fmt: skip
    assert inspected.returncode == 0 and inspected.stderr == "", inspected.stderr
    assert profiled.returncode == 0 and profiled.stderr == f"pushed the profile to {url}/v1/logs\n", profiled.stderr
    assert sink.items(Signal.LOGS) == 2
    ins, prof = records_of(sink)
    assert attrs_of(ins.attributes) == {sc.EVENT_NAME: sc.EVENT_INSPECT_REPORT, **module_attrs(wasm["prog"])}
    assert json.loads(ins.body.string_value) == json.loads(inspected.stdout)
    assert attrs_of(prof.attributes)[sc.EVENT_NAME] == sc.EVENT_PROFILE
    rec = json.loads((tmp_path / "r.json").read_text())
    calls = {f["name"]: f["calls"] for f in json.loads(prof.body.string_value)["functions"]}
    assert calls["fib"] == rec["call_counts"]["fib"] == 242_785


def test_wrong_token_is_a_warning_not_a_failure(env: dict[str, str], wasm: dict[str, Path]) -> None:
    sink = InMemorySink()
    with receiving(sink, token="s3cret") as url:
        plain = cli(env, "inspect", str(wasm["prog"]))
        done = cli(env, "inspect", "--push", url, "--push-token", "nope", str(wasm["prog"]))
        missing = cli(env, "inspect", "--push", url, str(wasm["prog"]))
    assert done.returncode == missing.returncode == 0
    assert done.stdout == missing.stdout == plain.stdout
    line = f"wasmscope: warning: could not push the inspect report to {url}/v1/logs: HTTP 401 Unauthorized"
    assert done.stderr.splitlines() == [line] == missing.stderr.splitlines()
    assert sink.requests == []


def test_overloaded_receiver_is_retried() -> None:
    sink = FlakySink(busy=2)
    slept: list[float] = []
    with receiving(sink) as url:
        result = reports.push(url, [inspect_record()], resource={"service.name": "t"}, sleep=slept.append)
    assert result.ok and result.attempts == 3
    assert slept == [1.0, 1.0]  # the receiver's Retry-After: whole seconds, at least 1
    assert len(records_of(sink)) == 1
