"""Hot reload of the real ``wasmscope serve`` (a subprocess on 127.0.0.1) under load:
client threads send requests without a pause while the module file is replaced
(renamed over, rewritten in place, broken, fixed) and the manifest edited. Every single
response must be a 200 (no error, no dropped connection), the answers must switch
between versions, and slow requests held in flight across a reload must finish with the
version they started on. Every wait is on a condition the server shows (a log line, an
answer, a file); the deadline of a wait only guards against a hang, and no test asserts a
wall-clock time."""

from __future__ import annotations

import contextlib
import os
import signal
import subprocess
import sys
import threading
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pytest

from tests.gateway.serving import free_port
from tests.gateway.test_reload import manifest_text, replace_atomically, rewrite_in_place, route
from tests.gateway.test_reload import versions as versions

httpx = pytest.importorskip("httpx")
pytest.importorskip("uvicorn")

DEADLINE = 120.0  # seconds: a generous bound on waiting for something, never a measurement
CLIENTS = 4
V1, V2 = "v1", "v2-second"


@dataclass
class Server:
    proc: subprocess.Popen[bytes]
    base: str
    stderr: list[str] = field(default_factory=list)

    def log(self) -> str:
        return "".join(self.stderr)


def wait_until(check: Callable[[], bool], what: str, server: Server) -> None:
    deadline = time.monotonic() + DEADLINE
    while not check():
        assert server.proc.poll() is None, f"the server died while waiting for {what}:\n{server.log()[-3000:]}"
        assert time.monotonic() < deadline, f"gave up waiting for {what}:\n{server.log()[-3000:]}"
        time.sleep(0.05)


STARTED = "Application startup complete."  # uvicorn's line once a process's lifespan startup ended


@contextlib.contextmanager
def serving(site: Path, *extra: str, workers: int = 1) -> Iterator[Server]:
    """``wasmscope serve`` on a free port (``--workers`` when above 1), ready: every
    worker has loaded its modules and started its watcher (its lifespan startup is
    complete), so a change made in the block is a reload for each of them. Stopped with
    SIGINT at the end of the block (exit status 0 checked), killed if the block failed."""
    port = free_port()
    cmd = [
        sys.executable, "-m", "wasmscope", "serve", str(site / "app.toml"), "--port", str(port),
        "--cache-dir", str(site / "cache"), "--no-access-log", "--reload-interval", "0.1", *extra,
        *(["--workers", str(workers)] if workers > 1 else []),
    ]  # fmt: skip
    proc = subprocess.Popen(cmd, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, env={**os.environ, "PYTHONUNBUFFERED": "1"})
    server = Server(proc, f"http://127.0.0.1:{port}")

    def drain() -> None:
        assert proc.stderr is not None
        for line in iter(proc.stderr.readline, b""):
            server.stderr.append(line.decode("utf-8", "replace"))

    reader = threading.Thread(target=drain, daemon=True)
    reader.start()
    try:
        with httpx.Client(base_url=server.base, timeout=30.0) as client:

            def ready() -> bool:
                try:
                    return bool(client.get("/readyz").status_code == 200)
                except httpx.TransportError:
                    return False

            wait_until(ready, "/readyz", server)
        # /readyz came from one process; a worker still starting would load the files of
        # the moment and never log the reload the test makes next
        wait_until(lambda: server.log().count(STARTED) == workers, f"{workers} worker(s) to start", server)
        yield server
        proc.send_signal(signal.SIGINT)
        proc.wait(timeout=DEADLINE)
        reader.join(timeout=DEADLINE)
        assert proc.returncode == 0, server.log()[-3000:]
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait(timeout=30)
        reader.join(timeout=30)
        # Closed only once the reader is done: close() waits on a readline() in progress.
        if proc.stderr is not None and not reader.is_alive():
            proc.stderr.close()


@pytest.fixture
def site(tmp_path: Path, versions: dict[str, bytes]) -> Path:
    (tmp_path / "gate").mkdir()
    (tmp_path / "version.wasm").write_bytes(versions["v1"])
    (tmp_path / "app.toml").write_text(manifest_text(route("/v") + route("/slow", extra='timeout = "300s"\nmax_concurrency = 4')))
    return tmp_path


class Load:
    """CLIENTS threads, each with its own keep-alive connection, sending GET /v back to
    back; every outcome is kept (status and body, or the exception)."""

    def __init__(self, base: str) -> None:
        self.base = base
        self.stop = threading.Event()
        self.results: list[list[tuple[int, str] | str]] = [[] for _ in range(CLIENTS)]
        self.threads = [threading.Thread(target=self._run, args=(i,), daemon=True) for i in range(CLIENTS)]

    def _run(self, index: int) -> None:
        out = self.results[index]
        with httpx.Client(base_url=self.base, timeout=60.0) as client:
            while not self.stop.is_set():
                try:
                    r = client.get("/v")
                    out.append((r.status_code, r.text.strip()))
                except Exception as exc:  # a dropped connection is a failure too
                    out.append(f"{type(exc).__name__}: {exc}")

    def __enter__(self) -> Load:
        for t in self.threads:
            t.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self.stop.set()
        for t in self.threads:
            t.join(timeout=DEADLINE)

    def count(self) -> int:
        return sum(len(r) for r in self.results)

    def answers_since(self, mark: list[int]) -> set[str]:
        """Bodies every client received since ``mark`` (its counts then)."""
        seen: set[str] = set()
        for out, start in zip(self.results, mark, strict=True):
            seen.update(item[1] for item in out[start:] if isinstance(item, tuple))
        return seen

    def mark(self) -> list[int]:
        return [len(r) for r in self.results]

    def switched_to(self, body: str, server: Server) -> None:
        """Wait until every client has received ``body`` (so each saw the swap)."""
        mark = self.mark()

        def everyone() -> bool:
            return all(any(isinstance(i, tuple) and i[1] == body for i in out[m:]) for out, m in zip(self.results, mark, strict=True))

        wait_until(everyone, f"every client to get {body!r}", server)


class Held:
    """A request to /slow?wait=NAME, held in flight by the handler until the test opens
    its gate: it started (its handler runs) once gate/NAME.started exists."""

    def __init__(self, server: Server, site: Path, name: str) -> None:
        self.site, self.name = site, name
        self.result: list[Any] = []
        self.thread = threading.Thread(target=self._run, args=(server.base,), daemon=True)
        self.thread.start()
        wait_until((site / "gate" / f"{name}.started").exists, f"held request {name} to start", server)

    def _run(self, base: str) -> None:
        try:
            r = httpx.get(f"{base}/slow", params=f"wait={self.name}", timeout=300.0)
            self.result.append((r.status_code, r.text.strip()))
        except Exception as exc:
            self.result.append(f"{type(exc).__name__}: {exc}")

    def release(self) -> Any:
        (self.site / "gate" / f"{self.name}.open").touch()
        self.thread.join(timeout=DEADLINE)
        assert self.result, f"held request {self.name} never answered"
        return self.result[0]


def test_reload_under_load(site: Path, versions: dict[str, bytes]) -> None:
    module = site / "version.wasm"
    manifest = site / "app.toml"
    with serving(site) as server, Load(server.base) as load:
        load.switched_to(V1, server)
        # 1. renamed over, with a request in flight since before the swap
        first = Held(server, site, "first")
        replace_atomically(module, versions["v2"])
        load.switched_to(V2, server)
        assert first.release() == (200, V1)
        # 2. rewritten in place
        rewrite_in_place(module, versions["v1"])
        load.switched_to(V1, server)
        # 3. broken: refused, logged, the old version keeps serving
        replace_atomically(module, b"\0asm\x01\0\0\0 definitely not a module")
        wait_until(lambda: "reload failed" in server.log(), "the reload error", server)
        mark = load.mark()
        wait_until(lambda: load.count() > sum(mark) + 20, "more requests", server)
        assert load.answers_since(mark) == {V1}
        # 4. fixed
        replace_atomically(module, versions["v2"])
        load.switched_to(V2, server)
        # 5. the manifest: a route added, /slow's max_concurrency changed (a new pool; the
        #    old one drains its held request first), env on /v
        second = Held(server, site, "second")
        manifest.write_text(manifest_text(
            route("/v", extra='env = { MODE = "edited" }') + route("/slow", extra='timeout = "300s"\nmax_concurrency = 2')
            + route("/added")
        ))  # fmt: skip
        with httpx.Client(base_url=server.base, timeout=60.0) as client:
            wait_until(lambda: client.get("/added").status_code == 200, "the added route", server)
            assert client.get("/added").text.strip() == V2
            assert client.get("/slow").text.strip() == V2  # the new pool serves
            assert client.get("/readyz").status_code == 200
        assert second.release() == (200, V2)
        # 6. back and forth a few more times after the manifest change
        for name, body in [("v1", V1), ("v2", V2)] * 2:
            replace_atomically(module, versions[name])
            load.switched_to(body, server)
    errors = [(i, item) for out in load.results for i, item in enumerate(out) if item not in ((200, V1), (200, V2))]
    assert not errors, f"{len(errors)} bad answers of {load.count()}: {errors[:10]}"
    assert all(len(out) > 0 for out in load.results)
    log = server.log()
    reloads = [line for line in log.splitlines() if "INFO: serve: reloaded" in line]
    assert len(reloads) >= 8, log[-3000:]  # 1, 2, 4, 5, 6 x 4 above
    assert any("+/added" in line and "/slow: max_concurrency 4 -> 2" in line and "/v: env" in line for line in reloads)
    failed = [line for line in log.splitlines() if "ERROR:" in line]
    assert failed and all("ERROR: serve: reload failed, still serving version" in line for line in failed), failed


def test_reload_with_workers(site: Path, versions: dict[str, bytes]) -> None:
    """--workers 2: each worker watches for itself; new connections (spread over the
    workers) all get the new version in the end, and none fails meanwhile."""
    answers: list[Any] = []
    with serving(site, workers=2) as server:

        def fresh() -> str:  # a new connection each time: the kernel spreads them over the workers
            r = httpx.get(f"{server.base}/v", timeout=60.0, headers={"connection": "close"})
            answers.append((r.status_code, r.text.strip()))
            return str(r.text.strip())

        wait_until(lambda: fresh() == V1, "v1", server)
        replace_atomically(site / "version.wasm", versions["v2"])
        wait_until(lambda: all(fresh() == V2 for _ in range(20)), "every worker to serve v2", server)
        # the kernel may have handed those 20 connections to one worker: each logs its reload
        wait_until(lambda: server.log().count("INFO: serve: reloaded") == 2, "both workers to log their reload", server)
        assert all(fresh() == V2 for _ in range(10))
    assert {a[0] for a in answers} == {200}
    assert server.log().count("INFO: serve: reloaded") == 2, server.log()[-3000:]
