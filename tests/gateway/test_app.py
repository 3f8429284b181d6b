"""The ASGI gateway in-process (httpx's ASGI transport): WAGI handlers in C, limits,
hostile handlers, concurrency, health. No test asserts a wall-clock time."""

from __future__ import annotations

import asyncio
import json
import logging
import uuid
from collections.abc import Awaitable, Callable, Iterator
from pathlib import Path
from typing import Any, TypeVar

import pytest

httpx = pytest.importorskip("httpx")

from wasmscope.gateway.app import Gateway  # noqa: E402
from wasmscope.gateway.manifest import load, load_manifest  # noqa: E402

T = TypeVar("T")
TRACEPARENT = "00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01"


def run(coro_fn: Callable[[httpx.AsyncClient], Awaitable[T]], app: Any) -> T:
    async def main() -> T:
        transport = httpx.ASGITransport(app=app, client=("192.0.2.1", 1234))
        async with httpx.AsyncClient(transport=transport, base_url="http://testserver") as client:
            return await coro_fn(client)

    return asyncio.run(main())


MANIFEST = """
[server]
timeout = "10s"
memory_limit = "64MiB"

[[route]]
path = "/hello"
module = "{hello}"

[[route]]
path = "/echo/..."
module = "{echo}"
argv = ["fixed"]
env = {{ MODE = "test" }}

[[route]]
path = "/small"
module = "{echo}"
max_request_bytes = 16

[[route]]
path = "/redirect"
module = "{redirect}"

[[route]]
path = "/notfound"
module = "{notfound}"

[[route]]
path = "/noheaders"
module = "{noheaders}"

[[route]]
path = "/stderr"
module = "{stderr}"

[[route]]
path = "/spin"
module = "{spin}"
timeout = "500ms"

[[route]]
path = "/busy"
module = "{version}"
dirs = ["gate::/gate:rw"]
max_concurrency = 1

[[route]]
path = "/membomb"
module = "{membomb}"
memory_limit = "16MiB"

[[route]]
path = "/deep"
module = "{deep}"

[[route]]
path = "/flood"
module = "{flood}"
max_response_bytes = "64KiB"

[[route]]
path = "/fail"
module = "{fail}"

[[route]]
path = "/escape"
module = "{escape}"
dirs = ["sandbox::/sandbox"]
"""


@pytest.fixture(scope="module")
def site(wagi_modules: dict[str, Path], tmp_path_factory: pytest.TempPathFactory) -> Path:
    root = tmp_path_factory.mktemp("site")
    (root / "gate").mkdir()  # /busy?wait=NAME holds its request until gate/NAME.open exists
    (root / "sandbox").mkdir()
    (root / "sandbox" / "inside.txt").write_text("inside")
    (root / "secret").write_text("TOP-SECRET")
    (root / "sandbox" / "link-out").symlink_to(root / "secret")
    path = root / "app.toml"
    path.write_text(MANIFEST.format(**{k: str(v) for k, v in wagi_modules.items()}))
    return path


@pytest.fixture(scope="module", params=["on-demand", "pooling"])
def gateway(request: pytest.FixtureRequest, site: Path, shared_runtime: Any, gateway_cache: Path) -> Iterator[Gateway]:
    """Every test runs twice: on the shared on-demand Runtime, and on a Gateway's own
    Runtime with wasmtime's pooling allocator (what ``wasmscope serve`` uses)."""
    if request.param == "pooling":
        gw = Gateway(load_manifest(site), cache_dir=str(gateway_cache), pooling=True)
        assert gw.runtime.pooling is not None
    else:
        gw = Gateway(load_manifest(site), runtime=shared_runtime)
    gw.prepare()
    yield gw
    gw.close()


def test_hello(gateway: Gateway) -> None:
    r = run(lambda c: c.get("/hello?world"), gateway)
    assert r.status_code == 200
    assert r.text == "hello world\n"
    assert r.headers["content-type"] == "text/plain"
    assert len(r.headers["x-wasmscope-invocation"]) == 16  # 64 bits, hex


def test_echo_body_env_and_argv(gateway: Gateway) -> None:
    r = run(
        lambda c: c.post(
            "/echo/a%20b/c?x=1&y=2",
            content=b"the body",
            headers={"content-type": "application/x-test", "x-test": "yes", "authorization": "Bearer s3cret", "traceparent": TRACEPARENT},
        ),
        gateway,
    )
    assert r.status_code == 200 and r.headers["x-handler"] == "echo"
    lines = dict(line.split("=", 1) for line in r.text.splitlines() if "=" in line)
    assert lines["REQUEST_METHOD"] == "POST"
    assert lines["SCRIPT_NAME"] == "/echo"
    assert lines["PATH_INFO"] == "/a b/c"
    assert lines["X_RAW_PATH_INFO"] == "/a%20b/c"
    assert lines["X_MATCHED_ROUTE"] == "/echo/..."
    assert lines["QUERY_STRING"] == "x=1&y=2"
    assert lines["CONTENT_TYPE"] == "application/x-test"
    assert lines["CONTENT_LENGTH"] == "8"
    assert lines["SERVER_NAME"] == "testserver"
    assert lines["REMOTE_ADDR"] == "192.0.2.1"
    assert lines["X_FULL_URL"] == "http://testserver:80/echo/a%20b/c?x=1&y=2"
    assert lines["GATEWAY_INTERFACE"] == "CGI/1.1"
    assert lines["HTTP_X_TEST"] == "yes"
    assert lines["HTTP_AUTHORIZATION"] == "(unset)"
    assert lines["TRACEPARENT"] == TRACEPARENT
    assert lines["MODE"] == "test"
    assert lines["argv[0]"] == "/echo/a b/c"
    assert [lines["argv[1]"], lines["argv[2]"], lines["argv[3]"]] == ["fixed", "x=1", "y=2"]
    assert lines["body"] == "the body"


def test_redirect_and_status(gateway: Gateway) -> None:
    r = run(lambda c: c.get("/redirect"), gateway)
    assert r.status_code == 302 and r.headers["location"] == "/hello?from=redirect"
    r = run(lambda c: c.get("/notfound"), gateway)
    assert r.status_code == 404 and r.text == "nothing here\n"


def test_unknown_path_is_404(gateway: Gateway) -> None:
    r = run(lambda c: c.get("/nope"), gateway)
    assert r.status_code == 404 and r.json()["error"] == "no route for this path"
    r = run(lambda c: c.get("/hello/below"), gateway)  # exact route
    assert r.status_code == 404


def test_bad_header_block_is_502(gateway: Gateway, caplog: pytest.LogCaptureFixture) -> None:
    with caplog.at_level(logging.WARNING, logger="wasmscope.gateway"):
        r = run(lambda c: c.get("/noheaders"), gateway)
    assert r.status_code == 502
    doc = r.json()
    assert doc["error"] == "the handler printed no valid CGI header block"
    assert doc["outcome"] == "ok" and doc["invocation_id"] == r.headers["x-wasmscope-invocation"]
    assert "just some text" not in r.text  # never the guest's output
    assert any("no blank line" in rec.getMessage() for rec in caplog.records)


def test_oversized_body_is_413_before_running(gateway: Gateway) -> None:
    r = run(lambda c: c.post("/small", content=b"x" * 17), gateway)
    assert r.status_code == 413 and "x-wasmscope-invocation" not in r.headers

    async def streamed(c: httpx.AsyncClient) -> httpx.Response:
        async def chunks() -> Any:
            for _ in range(4):
                yield b"x" * 8

        return await c.post("/small", content=chunks())  # no content-length: counted as read

    assert run(streamed, gateway).status_code == 413
    r = run(lambda c: c.post("/small", content=b"x" * 16), gateway)
    assert r.status_code == 200


def test_timeout_is_504(gateway: Gateway) -> None:
    r = run(lambda c: c.get("/spin"), gateway)
    assert r.status_code == 504
    doc = r.json()
    assert doc["outcome"] == "timeout" and doc["error"] == "the handler ran past its time limit"
    assert doc["invocation_id"] == r.headers["x-wasmscope-invocation"]


@pytest.mark.parametrize(("path", "outcome"), [("/membomb", "out_of_memory"), ("/deep", "stack_overflow")])
def test_hostile_handlers_are_500(gateway: Gateway, path: str, outcome: str) -> None:
    r = run(lambda c: c.get(path), gateway)
    assert r.status_code == 500
    doc = r.json()
    assert doc["outcome"] == outcome
    assert "wasm" not in r.text.lower()  # no trap message, no frames
    assert set(doc) <= {"error", "outcome", "invocation_id", "trace_id"}


def test_non_zero_exit_is_500(gateway: Gateway) -> None:
    r = run(lambda c: c.get("/fail"), gateway)
    assert r.status_code == 500
    assert r.json()["outcome"] == "exit" and "partial" not in r.text


def test_output_flood_is_capped(gateway: Gateway) -> None:
    r = run(lambda c: c.get("/flood"), gateway)
    assert r.status_code == 502
    doc = r.json()
    assert doc["outcome"] == "output_limit" and "65536 bytes" in doc["error"]
    assert len(r.content) < 1024


def test_escape_attempts_stay_in_the_preopen(gateway: Gateway) -> None:
    r = run(lambda c: c.get("/escape"), gateway)
    assert r.status_code == 200
    assert "OPENED /sandbox/inside.txt (6 bytes): inside" in r.text
    assert r.text.count("OPENED") == 1, r.text
    assert "TOP-SECRET" not in r.text
    assert "create-denied /sandbox/new.txt" in r.text  # read-only by default
    assert not (Path(gateway.manifest.source).parent / "sandbox" / "new.txt").exists()


def hold(c: httpx.AsyncClient, gateway: Gateway) -> tuple[asyncio.Task[httpx.Response], Path]:
    """A request to /busy that its handler holds in flight, and the file that releases
    it (the handler runs until the test creates it, whatever the machine's load)."""
    name = uuid.uuid4().hex
    gate = Path(gateway.manifest.source).parent / "gate" / f"{name}.open"
    return asyncio.create_task(c.get(f"/busy?wait={name}")), gate


def test_other_routes_answer_while_one_is_held_and_saturation_is_503(gateway: Gateway) -> None:
    async def scenario(c: httpx.AsyncClient) -> tuple[int, int, str | None, bool, int]:
        busy, gate = hold(c, gateway)
        while gateway.in_flight("/busy") < 1:
            assert not busy.done(), busy.result().text if busy.done() else ""
            await asyncio.sleep(0.01)
        hello = await c.get("/hello?still")
        saturated = await c.get("/busy")
        busy_running = not busy.done()
        gate.touch()
        first = await busy
        return hello.status_code, saturated.status_code, saturated.headers.get("retry-after"), busy_running, first.status_code

    hello, saturated, retry_after, busy_running, first = run(scenario, gateway)
    assert hello == 200
    assert saturated == 503 and retry_after == "1"
    assert busy_running  # /hello and the 503 were answered while /busy still ran
    assert first == 200
    assert gateway.in_flight("/busy") == 0


def test_health_and_readiness(site: Path, shared_runtime: Any) -> None:
    gw = Gateway(load_manifest(site), runtime=shared_runtime)
    try:
        assert run(lambda c: c.get("/healthz"), gw).status_code == 200
        r = run(lambda c: c.get("/readyz"), gw)
        assert r.status_code == 503 and r.headers["retry-after"] == "1"
        gw.prepare()
        r = run(lambda c: c.get("/readyz"), gw)
        assert r.status_code == 200 and r.json() == {"status": "ready"}
    finally:
        gw.close()


def test_lifespan_compiles_and_a_bad_module_fails_startup(tmp_path: Path, shared_runtime: Any, wagi_modules: dict[str, Path]) -> None:
    async def lifespan(app: Gateway) -> list[dict[str, Any]]:
        sent: list[dict[str, Any]] = []
        messages = iter([{"type": "lifespan.startup"}, {"type": "lifespan.shutdown"}])

        async def receive() -> dict[str, Any]:
            return next(messages)

        async def send(m: Any) -> None:
            sent.append(dict(m))

        await app({"type": "lifespan"}, receive, send)
        return sent

    good = Gateway(load_manifest_text(tmp_path, f'[[route]]\npath = "/h"\nmodule = "{wagi_modules["hello"]}"\n'), runtime=shared_runtime)
    sent = asyncio.run(lifespan(good))
    assert [m["type"] for m in sent] == ["lifespan.startup.complete", "lifespan.shutdown.complete"]
    (tmp_path / "bad.wasm").write_bytes(b"\0asm\1\0\0\0\xff")
    bad = Gateway(load_manifest_text(tmp_path, '[[route]]\npath = "/bad"\nmodule = "bad.wasm"\n'), runtime=shared_runtime)
    try:
        sent = asyncio.run(lifespan(bad))
        assert sent[0]["type"] == "lifespan.startup.failed"
        assert "route /bad" in sent[0]["message"] and "cannot be compiled" in sent[0]["message"]
        assert not bad.ready
    finally:
        bad.close()


def load_manifest_text(tmp_path: Path, text: str) -> Any:
    path = tmp_path / "m.toml"
    path.write_text(text)
    return load_manifest(path)


def test_access_log_and_stderr_log(gateway: Gateway, caplog: pytest.LogCaptureFixture) -> None:
    with caplog.at_level(logging.INFO, logger="wasmscope"):
        r = run(lambda c: c.post("/stderr", content=b"abc"), gateway)
    assert r.status_code == 200 and r.text == "ok\n"
    access = [json.loads(rec.getMessage()) for rec in caplog.records if rec.name == "wasmscope.access"]
    assert len(access) == 1
    line = access[0]
    assert line["method"] == "POST" and line["path"] == "/stderr" and line["status"] == 200
    assert line["route"] == "/stderr" and line["outcome"] == "ok"
    assert line["invocation_id"] == r.headers["x-wasmscope-invocation"]
    assert line["bytes_in"] == 3 and line["bytes_out"] == 3 and line["duration_ms"] >= 0
    guest = [rec.getMessage() for rec in caplog.records if rec.name == "wasmscope.gateway"]
    assert any("handler log line" in m and line["invocation_id"] in m for m in guest)


def test_dir_mode_serves_each_file(wagi_modules: dict[str, Path], tmp_path: Path, shared_runtime: Any) -> None:
    for stem in ("hello", "notfound"):
        (tmp_path / f"{stem}.wasm").write_bytes(wagi_modules[stem].read_bytes())
    gw = Gateway(load(tmp_path), runtime=shared_runtime)
    try:
        gw.prepare()
        assert run(lambda c: c.get("/hello?dir"), gw).text == "hello dir\n"
        assert run(lambda c: c.get("/notfound"), gw).status_code == 404
    finally:
        gw.close()


def test_telemetry_gets_the_incoming_trace(site: Path, shared_runtime: Any) -> None:
    telemetry_mod = pytest.importorskip("wasmscope.telemetry")
    try:
        tel = telemetry_mod.Telemetry.from_options(in_memory=True, trigger="http")
    except Exception as exc:  # the otel extra is missing
        pytest.skip(str(exc))
    gw = Gateway(load_manifest(site), runtime=shared_runtime, telemetry=tel)
    try:
        r = run(lambda c: c.get("/noheaders", headers={"traceparent": TRACEPARENT}), gw)
        assert r.status_code == 502
        assert r.json()["trace_id"] == "4bf92f3577b34da6a3ce929d0e0e4736"
        spans = tel.memory.span_dicts()
        mine = [s for s in spans if s["trace_id"] == "4bf92f3577b34da6a3ce929d0e0e4736" and s["parent_span_id"] == "00f067aa0ba902b7"]
        assert mine and mine[0]["attributes"]["http.route"] == "/noheaders"
        assert mine[0]["attributes"]["faas.invocation_id"] == r.headers["x-wasmscope-invocation"]
    finally:
        gw.close()
        tel.shutdown()
