"""``wasmscope collect`` as a user runs it: a process fed by ``wasmscope serve`` and
``wasmscope run``, read through its dashboard's JSON; one owner per data folder; safe
defaults; and kill -9 during ingest loses no acknowledged span."""

from __future__ import annotations

import contextlib
import http.client
import json
import os
import signal
import subprocess
import sys
import threading
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.gateway.serving import free_port
from tests.runtime.conftest import clang_19
from wasmscope.cli import main

pytest.importorskip("chdb")

EXAMPLES = Path(__file__).resolve().parents[2] / "examples" / "serve"
WASMSCOPE = [sys.executable, "-m", "wasmscope"]


def _get(port: int, path: str, timeout: float = 30.0) -> tuple[int, bytes]:
    conn = http.client.HTTPConnection("127.0.0.1", port, timeout=timeout)
    try:
        conn.request("GET", path)
        resp = conn.getresponse()
        return resp.status, resp.read()
    finally:
        conn.close()


class Collect:
    """One ``wasmscope collect`` process on free ports over ``data``."""

    def __init__(self, data: Path, log: Path) -> None:
        self.data, self.log = data, log
        self.port = free_port()
        self.proc: subprocess.Popen[bytes] | None = None

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def start(self) -> Collect:
        with self.log.open("ab") as sink:
            self.proc = subprocess.Popen(
                [*WASMSCOPE, "collect", "--data", str(self.data), "--port", str(self.port), "--grpc-port", "0"],
                stdout=sink, stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL,
            )  # fmt: skip
        deadline = time.monotonic() + 120  # a bound, not a measurement
        while True:
            assert self.proc.poll() is None, self.log.read_text()
            with contextlib.suppress(OSError):
                if _get(self.port, "/healthz", 2)[0] == 200:
                    return self
            assert time.monotonic() < deadline, "collect did not answer /healthz"
            time.sleep(0.1)

    def stop(self) -> int:
        assert self.proc is not None
        if self.proc.poll() is None:
            self.proc.send_signal(signal.SIGINT)
            try:
                return self.proc.wait(timeout=60)
            except subprocess.TimeoutExpired:
                self.proc.kill()
        return self.proc.wait()

    def api(self, path: str) -> dict[str, object]:
        status, body = _get(self.port, path)
        assert status == 200, body[:500]
        doc: dict[str, object] = json.loads(body)
        return doc


@pytest.fixture
def collect(tmp_path: Path) -> Iterator[Collect]:
    c = Collect(tmp_path / "data", tmp_path / "collect.log").start()
    yield c
    c.stop()


# -- options ---------------------------------------------------------------------------


def test_an_exposed_address_needs_a_token(capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("WASMSCOPE_TOKEN", raising=False)
    assert main(["collect", "--host", "0.0.0.0"]) == 2
    assert "exposes the collector beyond this machine: set a token first" in capsys.readouterr().err


@pytest.mark.parametrize(
    ("argv", "message"),
    [
        (["--data", "d", "--store", "clickhouse://h:8123/db"], "--data and --store exclude each other"),
        (["--cluster", "c"], "--cluster needs --store"),
        (["--retention", "soon"], "invalid duration"),
        (["--max-disk", "lots"], "invalid size"),
        (["--port", "70000"], "expected 0-65535"),
        (["--token-file", "/nonexistent/token"], "--token-file /nonexistent/token"),
    ],
)
def test_bad_options_are_usage_errors(argv: list[str], message: str, capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["collect", *argv]) == 2
    assert message in capsys.readouterr().err


def test_retention_units() -> None:
    from wasmscope.cli.collect import parse_retention

    assert parse_retention("7d") == 7 * 86400
    assert parse_retention("2w") == 14 * 86400
    assert parse_retention("48h") == 48 * 3600
    assert parse_retention("30m") == 1800


# -- one process -------------------------------------------------------------------------


def test_a_second_collector_on_the_same_folder_says_who_owns_it(collect: Collect) -> None:
    assert collect.proc is not None
    done = subprocess.run(
        [*WASMSCOPE, "collect", "--data", str(collect.data), "--port", str(free_port()), "--grpc-port", "0"],
        capture_output=True, text=True, timeout=120,
    )  # fmt: skip
    assert done.returncode == 1
    assert f"is in use by process {collect.proc.pid}" in done.stderr


def test_metrics_need_the_token_when_one_is_set(tmp_path: Path) -> None:
    token = tmp_path / "token"
    token.write_text("s3cret\n")
    port = free_port()
    proc = subprocess.Popen(
        [*WASMSCOPE, "collect", "--data", str(tmp_path / "d"), "--port", str(port), "--grpc-port", "0",
         "--token-file", str(token)],
        stdout=subprocess.DEVNULL, stderr=subprocess.PIPE,
    )  # fmt: skip
    try:
        deadline = time.monotonic() + 120
        while True:
            assert proc.poll() is None
            with contextlib.suppress(OSError):
                if _get(port, "/healthz", 2)[0] == 200:
                    break
            assert time.monotonic() < deadline
            time.sleep(0.1)
        assert _get(port, "/metrics")[0] == 401
        conn = http.client.HTTPConnection("127.0.0.1", port, timeout=30)
        conn.request("GET", "/metrics", headers={"Authorization": "Bearer s3cret"})
        assert conn.getresponse().status == 200
        conn.close()
        conn = http.client.HTTPConnection("127.0.0.1", port, timeout=30)
        conn.request("POST", "/v1/traces", body=b"", headers={"Content-Type": "application/x-protobuf"})
        assert conn.getresponse().status == 401
        conn.close()
    finally:
        proc.send_signal(signal.SIGINT)
        proc.wait(timeout=60)
        if proc.stderr is not None:
            proc.stderr.close()


# -- serve and run into collect ---------------------------------------------------------------

MANIFEST = """\
[server]
timeout = "5s"

[[route]]
path = "/hello"
module = "hello.wasm"

[[route]]
path = "/crash"
module = "crash.wasm"
"""


@pytest.fixture(scope="module")
def handlers(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """examples/serve's hello and crash handlers (crash at -O0: its frame is its source line)."""
    clang = clang_19()
    out = tmp_path_factory.mktemp("handlers")
    for stem, opt in (("hello", "-O2"), ("crash", "-O0")):
        subprocess.run([clang, "--target=wasm32-wasi", opt, "-g", str(EXAMPLES / f"{stem}.c"), "-o", str(out / f"{stem}.wasm")],
                       check=True, capture_output=True, timeout=300)  # fmt: skip
    (out / "app.toml").write_text(MANIFEST)
    return out


def _crash_line() -> int:
    lines = (EXAMPLES / "crash.c").read_text().splitlines()
    return next(i for i, line in enumerate(lines, 1) if "__builtin_trap" in line)


def test_serve_and_run_telemetry_shows_in_the_dashboard(collect: Collect, handlers: Path, tmp_path: Path) -> None:
    port = free_port()
    serve = subprocess.Popen(
        [*WASMSCOPE, "serve", str(handlers / "app.toml"), "--port", str(port), "--otlp", collect.url,
         "--no-access-log", "--cache-dir", str(tmp_path / "cache")],
        stdout=subprocess.DEVNULL, stderr=subprocess.PIPE,
    )  # fmt: skip
    try:
        from tests.gateway.serving import wait_ready

        wait_ready(serve, f"http://127.0.0.1:{port}/readyz", 120)
        assert all(_get(port, f"/hello?n{i}")[0] == 200 for i in range(10))
        assert all(_get(port, "/crash?oops")[0] == 500 for _ in range(3))
    finally:
        serve.send_signal(signal.SIGINT)  # a clean stop flushes the telemetry
        code = serve.wait(timeout=60)
        if serve.stderr is not None:
            serve.stderr.close()
        assert code == 0
    run = subprocess.run([*WASMSCOPE, "run", "--quiet", "--otlp", collect.url, str(handlers / "crash.wasm")],
                         capture_output=True, text=True, timeout=120)  # fmt: skip
    assert run.returncode == 1, run.stderr

    deadline = time.monotonic() + 60  # the writer commits within a fraction of a second; a bound
    while True:
        doc = collect.api("/api/functions?range=1h")
        counts = {str(r["function"]): int(r["n"]) for r in doc["functions"]}  # type: ignore[union-attr, index, attr-defined]
        if counts == {"hello.wasm": 10, "crash.wasm": 4}:
            break
        assert time.monotonic() < deadline, counts
        time.sleep(0.2)
    rows = {str(r["function"]): r for r in doc["functions"]}  # type: ignore[union-attr, index, attr-defined]
    assert rows["crash.wasm"]["errors"] == 4 and rows["crash.wasm"]["outcomes"]["trap"] == 4  # type: ignore[index]
    assert rows["hello.wasm"]["errors"] == 0

    detail = collect.api("/api/function?range=1h&fn=crash.wasm")
    traps = detail["traps"]
    assert isinstance(traps, list) and traps, detail
    top = traps[0]
    assert top["n"] == 4
    assert top["func"] == "parse_order" and str(top["file"]).endswith("crash.c") and int(top["line"]) == _crash_line()


# -- kill -9 during ingest -------------------------------------------------------------------


def _batches(n: int, per: int) -> Iterator[tuple[bytes, list[str]]]:
    from opentelemetry.proto.collector.trace.v1.trace_service_pb2 import ExportTraceServiceRequest
    from opentelemetry.proto.trace.v1.trace_pb2 import Span

    now = time.time_ns()
    for _ in range(n):
        req = ExportTraceServiceRequest()
        ss = req.resource_spans.add().scope_spans.add()
        ids = []
        for _ in range(per):
            sid = os.urandom(8)
            ids.append(sid.hex())
            ss.spans.append(Span(trace_id=os.urandom(16), span_id=sid, name="s", kind=Span.SPAN_KIND_SERVER,
                                 start_time_unix_nano=now, end_time_unix_nano=now + 1000))  # fmt: skip
        yield req.SerializeToString(), ids


CHECK = """
import json, sys
from wasmscope.collect.store import Store
acked = set(json.load(open(sys.argv[2])))
with Store.open(data_dir=sys.argv[1]) as store:
    rows = store.backend.query("SELECT SpanId, count() FROM otel.otel_traces GROUP BY SpanId").rows
counts = {sid: n for sid, n in rows}
print(json.dumps({"missing": sorted(acked - counts.keys()), "twice": sorted(s for s, n in counts.items() if n > 1),
                  "stored": len(counts)}))
"""


def test_kill_9_during_ingest_loses_no_acknowledged_span(tmp_path: Path) -> None:
    c = Collect(tmp_path / "data", tmp_path / "collect.log").start()
    acked: list[str] = []
    stop = threading.Event()
    errors: list[BaseException] = []

    def sender() -> None:
        conn = http.client.HTTPConnection("127.0.0.1", c.port, timeout=30)
        try:
            for body, ids in _batches(400, 200):
                if stop.is_set():
                    return
                conn.request("POST", "/v1/traces", body=body, headers={"Content-Type": "application/x-protobuf"})
                resp = conn.getresponse()
                resp.read()
                if resp.status == 200:
                    acked.extend(ids)
        except (OSError, http.client.HTTPException):
            return  # the server died under us: what it answered 200 is what counts
        except BaseException as exc:  # pragma: no cover - reported below
            errors.append(exc)

    threads = [threading.Thread(target=sender) for _ in range(3)]
    for t in threads:
        t.start()
    deadline = time.monotonic() + 120
    while len(acked) < 6000 and time.monotonic() < deadline and any(t.is_alive() for t in threads):
        time.sleep(0.01)
    assert c.proc is not None
    c.proc.send_signal(signal.SIGKILL)
    c.proc.wait()
    stop.set()
    for t in threads:
        t.join(timeout=60)
    assert not errors
    assert len(acked) >= 6000, "the senders did not get far enough before the kill"
    snapshot = list(acked)

    # A restart over the same folder finds the data and takes new data.
    again = Collect(tmp_path / "data", tmp_path / "collect.log").start()
    again.stop()
    (tmp_path / "acked.json").write_text(json.dumps(snapshot))
    done = subprocess.run([sys.executable, "-c", CHECK, str(tmp_path / "data"), str(tmp_path / "acked.json")],
                          capture_output=True, text=True, timeout=300)  # fmt: skip
    assert done.returncode == 0, done.stderr
    result = json.loads(done.stdout)
    assert result["missing"] == [] and result["twice"] == []
    assert result["stored"] >= len(snapshot)
