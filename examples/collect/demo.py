"""The collect part of ``make demo``: ``wasmscope collect`` receives what ``wasmscope
serve`` and ``wasmscope run`` send, and its dashboard shows it.

    .venv/bin/python examples/collect/demo.py [--out build/demo-collect] [--requests 300]

Steps: start ``wasmscope collect`` on a free loopback port (data in OUT/data); build
the C handlers of ``examples/serve/`` (as the serve demo does) and serve them with
``--otlp`` pointing at the collector; send a burst of requests (hellos, API calls,
timeouts, traps); ``wasmscope run`` the crashing handler once on its own and push
its profile and the handlers' inspect reports (``--push``); stop serve (its telemetry
is flushed), wait until the collector has stored every span, print what it holds
and save a screenshot of the Functions page taken with Debian's Chromium
(OUT/functions.png). On a terminal the collector keeps running until Ctrl-C, so
the printed URL can be opened; otherwise it stops, and the line to start it again
over the same data is printed.
"""

from __future__ import annotations

import argparse
import contextlib
import importlib.util
import json
import re
import signal
import subprocess
import sys
import time
from pathlib import Path
from types import ModuleType

HERE = Path(__file__).resolve().parent
ROOT = HERE.parent.parent
CHROMIUM = "/usr/bin/chromium"
WAVES = 6
CHROMIUM_ARGS = ["--no-sandbox", "--headless", "--disable-gpu", "--disable-background-networking",
                 "--disable-component-update", "--disable-sync", "--no-first-run"]  # fmt: skip


def _serve_demo() -> ModuleType:
    """examples/serve/demo.py, for its build, key, server and burst helpers."""
    spec = importlib.util.spec_from_file_location("serve_demo", ROOT / "examples" / "serve" / "demo.py")
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


serve_demo = _serve_demo()
say, rel, request, free_port = serve_demo.say, serve_demo.rel, serve_demo.request, serve_demo.free_port


class Collector:
    def __init__(self, out: Path, port: int) -> None:
        self.out, self.port = out, port
        self.log = out / "collect.log"
        self.cmd = [sys.executable, "-m", "wasmscope", "collect", "--data", str(out / "data"),
                    "--port", str(port), "--grpc-port", "0"]  # fmt: skip
        self.proc: subprocess.Popen[bytes] | None = None

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def start(self) -> None:
        with self.log.open("wb") as sink:
            self.proc = subprocess.Popen(self.cmd, stdout=sink, stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL,
                                         preexec_fn=serve_demo._die_with_parent)  # fmt: skip
        say(f"$ wasmscope collect --data {rel(self.out / 'data')} --port {self.port} --grpc-port 0 > {rel(self.log)}")
        deadline = time.monotonic() + 120
        while time.monotonic() < deadline:
            if self.proc.poll() is not None:
                sys.exit(f"demo: collect exited with {self.proc.returncode}:\n{self.log.read_text()[-2000:]}")
            with contextlib.suppress(OSError):
                if request(self.port, "GET", "/healthz", timeout=2)[0] == 200:
                    break
            time.sleep(0.1)
        else:
            sys.exit("demo: collect was not ready within 120 s")
        time.sleep(0.2)
        say(self.log.read_text().rstrip())

    def stored(self, signal_name: str) -> int:
        """Items of one signal the collector stored (from its /metrics)."""
        _, _, body = request(self.port, "GET", "/metrics")
        total = 0.0
        pattern = re.compile(rf'^wasmscope_collect_received_items_total{{signal="{signal_name}",transport="[a-z]+"}} (\S+)$', re.M)
        for m in pattern.finditer(body.decode()):
            total += float(m.group(1))
        return int(total)

    def stop(self) -> None:
        if self.proc is None or self.proc.poll() is not None:
            return
        self.proc.send_signal(signal.SIGINT)
        try:
            self.proc.wait(timeout=60)
        except subprocess.TimeoutExpired:
            self.proc.kill()
            self.proc.wait()


def run_and_push(out: Path, collector: Collector) -> None:
    """One `wasmscope run` of the crashing handler, and the handlers' reports pushed."""
    run = [sys.executable, "-m", "wasmscope", "run", "--otlp", collector.url, "--quiet", str(out / "crash.wasm")]
    done = subprocess.run(run, capture_output=True, text=True, timeout=120)
    say(f"$ wasmscope run --otlp {collector.url} {rel(out / 'crash.wasm')}   (exit {done.returncode}: it traps)")
    for name in ("hello", "api", "crash", "spin"):
        subprocess.run([sys.executable, "-m", "wasmscope", "inspect", "--push", collector.url, str(out / f"{name}.wasm")],
                       capture_output=True, text=True, timeout=120)  # fmt: skip
    say(f"$ wasmscope inspect --push {collector.url} {{hello,api,crash,spin}}.wasm")
    prof = [sys.executable, "-m", "wasmscope", "profile", "--push", collector.url, str(out / "hello.wasm")]
    subprocess.run(prof, capture_output=True, text=True, timeout=120, env={**_env(), "QUERY_STRING": "profiled"})
    say(f"$ wasmscope profile --push {collector.url} {rel(out / 'hello.wasm')}")


def _env() -> dict[str, str]:
    import os

    return dict(os.environ)


def wait_stored(collector: Collector, seconds: float = 60.0) -> int:
    """Until the span count stops growing (serve flushed at its stop), at most ``seconds``."""
    deadline = time.monotonic() + seconds
    last, steady = -1, 0
    while time.monotonic() < deadline:
        now = collector.stored("traces")
        steady = steady + 1 if now == last and now > 0 else 0
        if steady >= 3:
            return now
        last = now
        time.sleep(0.3)
    return last


def screenshot(url: str, path: Path) -> bool:
    try:
        from playwright.sync_api import sync_playwright
    except ImportError:
        say("(no screenshot: playwright is not installed)")
        return False
    if not Path(CHROMIUM).exists():
        say(f"(no screenshot: {CHROMIUM} is missing; `make sysdeps` installs Debian's chromium)")
        return False
    with sync_playwright() as p:
        browser = p.chromium.launch(executable_path=CHROMIUM, args=CHROMIUM_ARGS)
        try:
            page = browser.new_page(viewport={"width": 1400, "height": 900}, device_scale_factor=1)
            page.goto(url, wait_until="networkidle")
            page.wait_for_timeout(500)  # the charts draw after load
            page.screenshot(path=str(path), full_page=False)
        finally:
            browser.close()
    return True


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description="the collect part of make demo")
    p.add_argument("--out", default=str(ROOT / "build" / "demo-collect"), help="build, data and log folder (default build/demo-collect)")
    p.add_argument("--requests", type=int, default=300, help="requests in the burst (default 300)")
    p.add_argument("--screenshot", default=None, help="also copy the screenshot here (e.g. docs/img/collect-functions.png)")
    p.add_argument("--stay", action=argparse.BooleanOptionalAction, default=None,
                   help="keep the collector running until Ctrl-C (default: on a terminal only)")  # fmt: skip
    args = p.parse_args(argv)
    out = Path(args.out).resolve()
    if (out / "data").exists():
        import shutil

        shutil.rmtree(out / "data")  # a fresh store each demo: the counts below are this run's
    out.mkdir(parents=True, exist_ok=True)

    def on_signal(signum: int, _frame: object) -> None:
        raise SystemExit(128 + signum)

    signal.signal(signal.SIGTERM, on_signal)
    signal.signal(signal.SIGHUP, on_signal)

    collector = Collector(out, free_port())
    try:
        collector.start()
        serve_demo.build(out)
        key = serve_demo.add_key(out)
        import shutil

        shutil.rmtree(out / "cache", ignore_errors=True)  # the first requests are cold starts
        server = serve_demo.Server(out, free_port(), otlp=collector.url)
        t_start = time.time()
        try:
            server.start()
            # Waves a few seconds apart, so that the charts have a shape.
            for wave in range(WAVES):
                serve_demo.burst(server.port, key, max(1, args.requests // WAVES))
                if wave < WAVES - 1:
                    time.sleep(2.0)
        finally:
            server.stop()
        run_and_push(out, collector)
        spans = wait_stored(collector)
        say(f"\n=== collect stored {spans} spans, {collector.stored('logs')} log records, "
            f"{collector.stored('metrics')} metric points")  # fmt: skip
        shot = out / "functions.png"
        window = f"range=abs&from={t_start - 5:.0f}&to={time.time() + 5:.0f}"
        if screenshot(f"{collector.url}/?{window}", shot):
            say(f"screenshot of the Functions page: {rel(shot)}")
            if args.screenshot:
                Path(args.screenshot).write_bytes(shot.read_bytes())
        stay = sys.stdin.isatty() if args.stay is None else args.stay
        say(f"\n=== the dashboard: {collector.url}/")
        say(f"  functions    {collector.url}/?{window}   (rate, errors, p50/p95/p99, cold starts, outcomes)")
        say(f"  invocations  {collector.url}/invocations?outcome=trap   (each row opens its trace)")
        say(f"  metrics      {collector.url}/metrics   (the collector's own, Prometheus text)")
        if stay:
            say("collect keeps running: open the URL above; Ctrl-C stops it")
            with contextlib.suppress(KeyboardInterrupt):
                assert collector.proc is not None
                collector.proc.wait()
        else:
            say(f"  again later  .venv/bin/wasmscope collect --data {rel(out / 'data')}   (the same data)")
    finally:
        collector.stop()
    summary = {"spans": spans}
    (out / "summary.json").write_text(json.dumps(summary) + "\n")
    return 0


if __name__ == "__main__":
    sys.exit(main())
