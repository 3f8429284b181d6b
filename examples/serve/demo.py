"""The serve part of ``make demo``: build the example WAGI handlers, start
``wasmscope serve`` on 127.0.0.1, send it traffic, show what it recorded, stop it.

    .venv/bin/python examples/serve/demo.py [--out build/demo-serve] [--requests 300]

Steps: every ``examples/serve/*.c`` is built with ``clang-19 --target=wasm32-wasi -O2
-g`` into OUT, next to a copy of ``app.toml`` to which a ``[[key]]`` for a fresh API
key is appended (``wasmscope serve --hash-key``; the key is kept in OUT/api-key.txt).
The server runs on a free loopback port with telemetry to OUT/telemetry.jsonl and its
access log in OUT/access.log. A few requests are shown in full, then a burst (200s,
401s, 404s, 500s, 504s, some 503s), an excerpt of ``/metrics`` and of the access log;
then the server is stopped (SIGINT: a clean stop that flushes the telemetry) and one
trace is read back from the JSON lines: the HTTP server span, the invocation span
under it, and the phases. The server never outlives this script (stopped in a
``finally``, on SIGTERM/SIGHUP, and given a parent-death signal).
"""

from __future__ import annotations

import argparse
import collections
import concurrent.futures
import contextlib
import ctypes
import http.client
import json
import random
import shutil
import signal
import socket
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

HERE = Path(__file__).resolve().parent
ROOT = HERE.parent.parent
CLANG = "clang-19"
METRICS = (
    "wasmscope_http_requests_total",
    "wasmscope_http_request_duration_seconds_count",
    "wasmscope_http_request_duration_seconds_sum",
    "wasmscope_invocation_errors_total",
    "wasmscope_requests_rejected_total",
    "wasmscope_coldstarts_total",
)

Response = tuple[int, list[tuple[str, str]], bytes]


def say(text: str = "") -> None:
    print(text, flush=True)


def rel(path: Path) -> str:
    with contextlib.suppress(ValueError):
        return str(path.resolve().relative_to(Path.cwd()))
    return str(path)


# --- build -------------------------------------------------------------------------------
def build(out: Path) -> None:
    clang = shutil.which(CLANG)
    if clang is None:
        sys.exit(f"demo: {CLANG} not found; `make sysdeps` installs it (clang-19 lld-19 wasi-libc libclang-rt-19-dev-wasm32)")
    sources = sorted(HERE.glob("*.c"))
    procs = {src: subprocess.Popen([clang, "--target=wasm32-wasi", "-O2", "-g", str(src), "-o", str(out / f"{src.stem}.wasm")], stderr=subprocess.PIPE, text=True) for src in sources}
    for src, proc in procs.items():
        _, err = proc.communicate(timeout=300)
        if proc.returncode != 0:
            sys.exit(f"demo: {CLANG} could not build {src.name}:\n{err}")
    say(f"built {', '.join(f'{s.stem}.wasm' for s in sources)} into {rel(out)}/ ({CLANG} --target=wasm32-wasi -O2 -g)")


def add_key(out: Path) -> str:
    """A fresh API key; its [[key]] table (hash only) appended to OUT/app.toml."""
    from wasmscope.gateway.keys import generate_key

    key = generate_key()
    proc = subprocess.run(
        [sys.executable, "-m", "wasmscope", "serve", "--hash-key", "--key-id", "demo"],
        input=key, capture_output=True, text=True, check=True,
    )  # fmt: skip
    manifest = out / "app.toml"
    manifest.write_text((HERE / "app.toml").read_text() + "\n" + proc.stdout)
    key_file = out / "api-key.txt"
    key_file.write_text(key + "\n")
    key_file.chmod(0o600)
    say(f"manifest {rel(manifest)} (+ a [[key]] from `wasmscope serve --hash-key --key-id demo`; the key is in {rel(key_file)})")
    return key


# --- the server ----------------------------------------------------------------------------
def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def _die_with_parent() -> None:
    """In the child: SIGTERM when the demo dies, however it dies (Linux)."""
    with contextlib.suppress(Exception):
        ctypes.CDLL(None, use_errno=True).prctl(1, signal.SIGTERM)  # PR_SET_PDEATHSIG


class Server:
    def __init__(self, out: Path, port: int, otlp: str | None = None) -> None:
        """``otlp``: send the telemetry to this OTLP/HTTP URL instead of OUT/telemetry.jsonl."""
        self.out, self.port = out, port
        self.access, self.errors, self.jsonl = out / "access.log", out / "server.log", out / "telemetry.jsonl"
        self.telemetry = ["--otlp", otlp] if otlp else ["--telemetry", f"jsonl:{self.jsonl}"]
        self.cmd = [
            sys.executable, "-m", "wasmscope", "serve", str(out / "app.toml"), "--port", str(port),
            *self.telemetry, "--cache-dir", str(out / "cache"),
        ]  # fmt: skip
        self.proc: subprocess.Popen[bytes] | None = None

    def start(self) -> None:
        self.jsonl.unlink(missing_ok=True)  # the JSONL exporter appends
        with self.access.open("wb") as stdout, self.errors.open("wb") as stderr:
            self.proc = subprocess.Popen(self.cmd, stdout=stdout, stderr=stderr, stdin=subprocess.DEVNULL, preexec_fn=_die_with_parent)
        shown = " ".join(self.telemetry) if self.telemetry[0] == "--otlp" else f"--telemetry jsonl:{rel(self.jsonl)}"
        say(f"$ wasmscope serve {rel(self.out / 'app.toml')} --port {self.port} {shown} > {rel(self.access)} 2> {rel(self.errors)}")
        deadline = time.monotonic() + 120
        while time.monotonic() < deadline:
            if self.proc.poll() is not None:
                sys.exit(f"demo: the server exited with {self.proc.returncode}:\n{self.errors.read_text()[-2000:]}")
            with contextlib.suppress(OSError):
                if request(self.port, "GET", "/readyz", timeout=2)[0] == 200:
                    say(f"ready: http://127.0.0.1:{self.port}/readyz answers 200 (pid {self.proc.pid})")
                    return
            time.sleep(0.1)
        sys.exit("demo: the server was not ready within 120 s")

    def stop(self) -> None:
        if self.proc is None or self.proc.poll() is not None:
            return
        self.proc.send_signal(signal.SIGINT)  # serve's clean stop: requests finish, telemetry flushed
        try:
            code = self.proc.wait(timeout=20)
        except subprocess.TimeoutExpired:
            self.proc.kill()
            code = self.proc.wait()
        say(f"server stopped (SIGINT, exit status {code})")


def request(port: int, method: str, path: str, headers: dict[str, str] | None = None, body: bytes | None = None, timeout: float = 10) -> Response:
    conn = http.client.HTTPConnection("127.0.0.1", port, timeout=timeout)
    try:
        conn.request(method, path, body=body, headers=headers or {})
        resp = conn.getresponse()
        return resp.status, resp.getheaders(), resp.read()
    finally:
        conn.close()


def show(port: int, method: str, path: str, headers: dict[str, str] | None = None, body: bytes | None = None, shown: str = "") -> None:
    status, resp_headers, data = request(port, method, path, headers, body)
    extra = f" {shown}" if shown else ""
    say(f"\n$ curl -i{' -X ' + method if method != 'GET' else ''}{extra} 'http://127.0.0.1:{port}{path}'")
    say(f"HTTP/1.1 {status} {http.client.responses.get(status, '')}")
    for k, v in resp_headers:
        if k.lower() not in ("date",):
            say(f"{k}: {v}")
    say()
    text = data.decode("utf-8", "replace").rstrip("\n")
    say(text if len(text) <= 300 else text[:300] + " ...")


# --- traffic ---------------------------------------------------------------------------------
def burst(port: int, key: str, total: int) -> None:
    auth = {"Authorization": f"Bearer {key}"}
    plan: list[tuple[str, str, str, dict[str, str], bytes | None]] = []
    mix = [(0.66, "hello"), (0.14, "api"), (0.05, "api-nokey"), (0.02, "api-badkey"), (0.07, "404"), (0.03, "spin"), (0.03, "crash")]
    for share, kind in mix:
        plan.extend([(kind, "", "", {}, None)] * max(1, round(share * total)))
    rng = random.Random(5)
    rng.shuffle(plan)
    jobs = []
    for i, (kind, *_rest) in enumerate(plan):
        if kind == "hello":
            jobs.append((kind, "GET", f"/hello?visitor{i}", {}, None))
        elif kind == "api":
            jobs.append((kind, "POST", f"/api/orders/{i}?dry_run=1", {**auth, "Content-Type": "application/json"}, json.dumps({"item": i}).encode()))
        elif kind == "api-nokey":
            jobs.append((kind, "GET", "/api/orders", {}, None))
        elif kind == "api-badkey":
            jobs.append((kind, "GET", "/api/orders", {"X-API-Key": "wsk_not-a-key"}, None))
        elif kind == "404":
            jobs.append((kind, "GET", f"/nowhere/{i}", {}, None))
        elif kind == "spin":
            jobs.append((kind, "GET", "/spin", {}, None))
        else:
            jobs.append((kind, "GET", "/crash?oops", {}, None))
    counts: collections.Counter[tuple[str, int]] = collections.Counter()
    t0 = time.perf_counter()

    def one(job: tuple[str, str, str, dict[str, str], bytes | None]) -> tuple[str, int]:
        kind, method, path, headers, body = job
        return kind, request(port, method, path, headers, body)[0]

    with concurrent.futures.ThreadPoolExecutor(max_workers=8) as pool:
        for kind, status in pool.map(one, jobs):
            counts[(kind, status)] += 1
    seconds = time.perf_counter() - t0
    say(f"\n=== a burst of {len(jobs)} requests, 8 at a time ({seconds:.1f} s)")
    for (kind, status), n in sorted(counts.items()):
        say(f"  {n:4d} x {status} {http.client.responses.get(status, ''):24s} {kind}")


def metrics_excerpt(port: int) -> None:
    status, _, data = request(port, "GET", "/metrics")
    say(f"\n=== curl -s http://127.0.0.1:{port}/metrics   (excerpt: {', '.join(m.removeprefix('wasmscope_') for m in METRICS)}; status {status})")
    for line in data.decode().splitlines():
        if line.startswith(METRICS) and 'route="/metrics"' not in line and 'route="/readyz"' not in line:
            say(f"  {line}")


def access_excerpt(path: Path) -> None:
    lines = path.read_text().splitlines()
    picks = []
    for want in (200, 401, 504):
        for line in lines:
            with contextlib.suppress(ValueError):
                doc = json.loads(line)
                if doc.get("status") == want and doc.get("route"):
                    picks.append(line)
                    break
    say(f"\n=== access log: {rel(path)} ({len(lines)} lines, one JSON object per request), e.g.")
    for line in picks:
        say(f"  {line}")


# --- a trace from the JSON lines -----------------------------------------------------------
def show_trace(jsonl: Path) -> None:
    items = [json.loads(line) for line in jsonl.read_text().splitlines() if line.strip()]
    spans = [i for i in items if i.get("signal") == "span"]
    logs = [i for i in items if i.get("signal") == "log"]
    say(f"\n=== telemetry: {rel(jsonl)} ({len(spans)} spans, {len(logs)} log records, {sum(i.get('signal') == 'metric' for i in items)} metric points)")
    by_parent: dict[str | None, list[dict[str, Any]]] = collections.defaultdict(list)
    for s in spans:
        by_parent[s.get("parent_span_id")].append(s)
    for name in ("GET /hello", "GET /spin"):
        root = next((s for s in spans if s["name"] == name and by_parent.get(s["span_id"])), None)
        if root is None:
            continue
        say(f"one trace ({name}): name, trace id, span id, parent span id, duration, attributes")

        def walk(span: dict[str, Any], depth: int) -> None:
            a = span.get("attributes", {})
            keys = ("http.response.status_code", "url.query", "faas.invocation_id", "wasm.outcome", "faas.coldstart", "wasm.cache")
            attrs = " ".join(f"{k}={a[k]}" for k in keys if k in a)
            status = span.get("status", {}).get("code")
            ms = (span["end_ns"] - span["start_ns"]) / 1e6
            say(f"  {'  ' * depth}{span['name']:{24 - 2 * depth}s} {span['trace_id']} {span['span_id']} {span.get('parent_span_id') or '-':16s} {ms:8.3f} ms  {'ERROR ' if status == 'ERROR' else ''}{attrs}")
            for child in sorted(by_parent.get(span["span_id"], []), key=lambda c: c["start_ns"]):
                walk(child, depth + 1)

        walk(root, 0)
    crash = next((r for r in logs if "crash" in str(r.get("body"))), None)
    if crash is not None:
        say(f"a guest stderr line as a log record (/crash): severity {crash['severity_text']}, trace {crash['trace_id']}, body {crash['body']!r}")


# --- main --------------------------------------------------------------------------------------
def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description="the serve part of make demo")
    p.add_argument("--out", default=str(ROOT / "build" / "demo-serve"), help="build and log folder (default build/demo-serve)")
    p.add_argument("--requests", type=int, default=300, help="requests in the burst (default 300)")
    args = p.parse_args(argv)
    out = Path(args.out).resolve()
    out.mkdir(parents=True, exist_ok=True)

    def on_signal(signum: int, _frame: object) -> None:
        raise SystemExit(128 + signum)

    signal.signal(signal.SIGTERM, on_signal)
    signal.signal(signal.SIGHUP, on_signal)

    build(out)
    key = add_key(out)
    server = Server(out, free_port())
    port = server.port
    try:
        server.start()
        show(port, "GET", "/hello?world")
        show(port, "POST", "/api/orders/42?dry_run=1", {"Authorization": f"Bearer {key}"}, b'{"item": 42}', shown="-H 'Authorization: Bearer $KEY' --data '{\"item\": 42}'")
        show(port, "GET", "/api/orders")
        show(port, "GET", "/spin")
        show(port, "GET", "/crash?oops")
        show(port, "GET", "/nowhere")
        burst(port, key, args.requests)
        metrics_excerpt(port)
        access_excerpt(server.access)
    finally:
        server.stop()
    show_trace(server.jsonl)
    say(f"""
=== where to look
  metrics      http://127.0.0.1:PORT/metrics (Prometheus text) while a server runs:
               .venv/bin/wasmscope serve {rel(out / 'app.toml')} --port 8080 --telemetry jsonl:{rel(server.jsonl)}
  traces       {rel(server.jsonl)}: spans, log records and metric points, one JSON object a line
               (or --otlp http://127.0.0.1:4318 to an OpenTelemetry collector: README "Telemetry")
  access log   {rel(server.access)} (JSON, one line per request)
  server log   {rel(server.errors)} (start-up, handler failures, guest stderr)
  handlers     examples/serve/*.c, manifest examples/serve/app.toml; API key {rel(out / 'api-key.txt')}
  health       http://127.0.0.1:PORT/healthz, /readyz""")
    return 0


if __name__ == "__main__":
    sys.exit(main())
