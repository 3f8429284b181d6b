"""Hot reload in-process (httpx's ASGI transport, direct calls): modules replaced or
rewritten, manifests edited, broken versions refused, half-written files never served,
in-flight requests finished on their version, the middlewares following the manifest.
The handler (``fixtures/version.c``) prints its build's VERSION. Reloads are triggered
by ``Gateway.reload()`` or single watcher polls, so nothing depends on timing; no test
asserts a wall-clock time."""

from __future__ import annotations

import asyncio
import hashlib
import logging
import os
import subprocess
import time
from collections.abc import Awaitable, Callable, Iterator
from pathlib import Path
from typing import Any, TypeVar

import pytest

httpx = pytest.importorskip("httpx")

from tests.runtime.conftest import clang_19  # noqa: E402
from wasmscope.gateway.app import Gateway  # noqa: E402
from wasmscope.gateway.auth import ApiKeyAuth, wrap  # noqa: E402
from wasmscope.gateway.keys import hash_key  # noqa: E402
from wasmscope.gateway.manifest import load, load_manifest  # noqa: E402
from wasmscope.runtime import Runtime  # noqa: E402

T = TypeVar("T")
FIXTURES = Path(__file__).parent / "fixtures"
VERSIONS = {"v1": "v1", "v2": "v2-second", "v3": "v3-the-third-version-string"}
DEADLINE = 120.0  # seconds: a generous bound on waiting for something, never a measurement
KEY = "wsk_reload_test_key"
OTHER_KEY = "wsk_reload_other_key"


# -- fixtures ------------------------------------------------------------------------------


@pytest.fixture(scope="session")
def versions(tmp_path_factory: pytest.TempPathFactory) -> dict[str, bytes]:
    """``fixtures/version.c`` built once per VERSIONS entry: name -> module bytes."""
    clang = clang_19()
    out_dir = tmp_path_factory.mktemp("versions")
    built: dict[str, bytes] = {}
    for name, text in VERSIONS.items():
        out = out_dir / f"{name}.wasm"
        proc = subprocess.run(
            [clang, "--target=wasm32-wasi", "-O2", f'-DVERSION="{text}"', str(FIXTURES / "version.c"), "-o", str(out)],
            capture_output=True, text=True, timeout=300,
        )  # fmt: skip
        if proc.returncode != 0:
            pytest.skip(f"clang-19 cannot build WASI programs here: {proc.stderr[-400:]}")
        built[name] = out.read_bytes()
    sizes = {len(b) for b in built.values()}
    assert len(sizes) == len(built)  # in-place rewrites then change the size, whatever the mtime granularity
    return built


def manifest_text(routes: str, *, server: str = "", keys: str = "") -> str:
    return f'[server]\ntimeout = "60s"\n{server}\n{routes}\n{keys}'


def route(path: str, module: str = "version.wasm", extra: str = "") -> str:
    return f'[[route]]\npath = "{path}"\nmodule = "{module}"\ndirs = ["gate::/gate:rw"]\n{extra}\n'


def key_table(key_id: str, key: str) -> str:
    return f'[[key]]\nid = "{key_id}"\nhash = "{hash_key(key, scheme="pbkdf2-sha256", iterations=1000)}"\nroutes = ["*"]\n'


@pytest.fixture
def site(tmp_path: Path, versions: dict[str, bytes]) -> Path:
    """A folder with version.wasm (v1), gate/ and app.toml serving /v."""
    (tmp_path / "gate").mkdir()
    (tmp_path / "version.wasm").write_bytes(versions["v1"])
    (tmp_path / "app.toml").write_text(manifest_text(route("/v")))
    return tmp_path


@pytest.fixture
def runtime(tmp_path: Path) -> Iterator[Runtime]:
    with Runtime(cache=False, capacity=8) as rt:
        yield rt


def make_gateway(site: Path, runtime: Runtime, **kwargs: Any) -> Gateway:
    gw = Gateway(load_manifest(site / "app.toml"), runtime=runtime, **kwargs)
    gw.prepare()
    return gw


@pytest.fixture
def gateway(site: Path, runtime: Runtime) -> Iterator[Gateway]:
    gw = make_gateway(site, runtime)
    yield gw
    gw.close()


# -- helpers -------------------------------------------------------------------------------


def run(coro_fn: Callable[[Any], Awaitable[T]], app: Any) -> T:
    async def main() -> T:
        transport = httpx.ASGITransport(app=app, client=("192.0.2.1", 1234))
        async with httpx.AsyncClient(transport=transport, base_url="http://testserver", timeout=DEADLINE) as client:
            return await coro_fn(client)

    return asyncio.run(main())


def get(app: Any, path: str, **kwargs: Any) -> Any:
    return run(lambda c: c.get(path, **kwargs), app)


def text(app: Any, path: str = "/v", **kwargs: Any) -> str:
    r = get(app, path, **kwargs)
    assert r.status_code == 200, (r.status_code, r.text)
    return str(r.text).strip()


def replace_atomically(path: Path, data: bytes) -> None:
    tmp = path.with_name(path.name + ".tmp")
    tmp.write_bytes(data)
    os.replace(tmp, path)


def rewrite_in_place(path: Path, data: bytes) -> None:
    ino = path.stat().st_ino
    with open(path, "r+b") as f:
        f.truncate(0)
        f.write(data)
    assert path.stat().st_ino == ino


def messages(caplog: pytest.LogCaptureFixture, level: int) -> list[str]:
    return [r.getMessage() for r in caplog.records if r.name == "wasmscope.gateway" and r.levelno == level]


# -- modules -------------------------------------------------------------------------------


def test_module_replaced_by_rename(gateway: Gateway, site: Path, versions: dict[str, bytes], caplog: pytest.LogCaptureFixture) -> None:
    caplog.set_level(logging.INFO, logger="wasmscope.gateway")
    assert text(gateway) == "v1" and gateway.version == 1
    assert gateway.reload() is False  # nothing changed
    replace_atomically(site / "version.wasm", versions["v2"])
    assert text(gateway) == "v1"  # not reloaded yet: the compiled version serves
    assert gateway.reload() is True
    assert text(gateway) == "v2-second" and gateway.version == 2
    (line,) = messages(caplog, logging.INFO)
    old, new = (hashlib.sha256(versions[v]).hexdigest()[:12] for v in ("v1", "v2"))
    assert f"version 1 -> 2: /v: version.wasm {old} -> {new} (compiled in " in line
    assert gateway.reload() is False
    replace_atomically(site / "version.wasm", versions["v1"])  # and back
    assert gateway.reload() is True and text(gateway) == "v1" and gateway.version == 3


def test_module_rewritten_in_place(gateway: Gateway, site: Path, versions: dict[str, bytes]) -> None:
    assert text(gateway) == "v1"
    rewrite_in_place(site / "version.wasm", versions["v2"])
    assert text(gateway) == "v1"  # the disk changed, the route did not: it runs what it compiled
    assert gateway.reload() is True
    assert text(gateway) == "v2-second"
    rewrite_in_place(site / "version.wasm", versions["v3"])
    assert gateway.reload() is True and text(gateway) == "v3-the-third-version-string"


def test_requests_never_read_the_module_file(site: Path, versions: dict[str, bytes]) -> None:
    """Garbage on disk and no compiled module cached: the route still runs the bytes it
    loaded (recompiled from memory), not the file."""
    with Runtime(cache=False, capacity=1) as rt:
        gw = make_gateway(site, rt)
        try:
            rewrite_in_place(site / "version.wasm", b"\0asm garbage, not a module")
            rt.compiled.clear()
            assert text(gw) == "v1"
            (site / "version.wasm").unlink()
            rt.compiled.clear()
            assert text(gw) == "v1"
        finally:
            gw.close()


def test_half_written_module_is_never_served(gateway: Gateway, site: Path, versions: dict[str, bytes], caplog: pytest.LogCaptureFixture) -> None:
    caplog.set_level(logging.INFO, logger="wasmscope.gateway")
    module = site / "version.wasm"
    data = versions["v2"]
    # The watcher waits for two polls with the same stamps: a file still growing is not read.
    with open(module, "r+b") as f:
        f.truncate(0)
        f.write(data[: len(data) // 2])
        f.flush()
        assert gateway.reloader.poll() is False  # first sight of the change
        assert text(gateway) == "v1"
        f.write(data[len(data) // 2 :])
    assert gateway.reloader.poll() is False  # it moved since the last poll: wait again
    assert not messages(caplog, logging.ERROR)  # nothing was loaded, nothing failed
    assert text(gateway) == "v1"
    assert gateway.reloader.poll() is True  # the same on two polls: loaded
    assert text(gateway) == "v2-second"
    # Asked to load a truncated file anyway (reload() does not wait): it does not compile,
    # the previous version keeps serving.
    rewrite_in_place(module, versions["v3"][: len(versions["v3"]) // 2])
    assert gateway.reload() is False
    (error,) = messages(caplog, logging.ERROR)
    assert "reload failed, still serving version 2" in error and "route /v" in error and "cannot be compiled" in error
    assert text(gateway) == "v2-second"
    assert gateway.reload() is False and len(messages(caplog, logging.ERROR)) == 1  # not retried until it changes
    rewrite_in_place(module, versions["v3"])
    assert gateway.reload() is True and text(gateway) == "v3-the-third-version-string"


def test_a_file_changing_while_it_is_read_is_put_off(
    gateway: Gateway, site: Path, versions: dict[str, bytes], monkeypatch: pytest.MonkeyPatch, caplog: pytest.LogCaptureFixture
) -> None:
    import wasmscope.runtime.identity as identity

    caplog.set_level(logging.INFO, logger="wasmscope.gateway")
    module = site / "version.wasm"
    real = identity.load_source

    def racing(path: Any) -> Any:  # a writer gets in while the reloader reads the file
        source = real(path)
        monkeypatch.setattr(identity, "load_source", real)
        rewrite_in_place(module, versions["v3"])
        return source

    replace_atomically(module, versions["v2"])
    monkeypatch.setattr(identity, "load_source", racing)
    assert gateway.reload() is False and text(gateway) == "v1"
    assert not messages(caplog, logging.ERROR) and gateway.reloader.failures == 0  # put off, not failed
    assert gateway.reload() is True and text(gateway) == "v3-the-third-version-string"  # the change was not forgotten


def test_broken_module_keeps_the_old_version(gateway: Gateway, site: Path, versions: dict[str, bytes], caplog: pytest.LogCaptureFixture) -> None:
    caplog.set_level(logging.INFO, logger="wasmscope.gateway")
    replace_atomically(site / "version.wasm", b"\0asm\x01\0\0\0\x01\xff")
    assert gateway.reload() is False
    (error,) = messages(caplog, logging.ERROR)
    assert "still serving version 1" in error and "version.wasm" in error
    assert text(gateway) == "v1" and gateway.version == 1
    replace_atomically(site / "version.wasm", versions["v2"])
    assert gateway.reload() is True and text(gateway) == "v2-second"


# -- the manifest --------------------------------------------------------------------------


def test_broken_manifest_keeps_the_old_version(gateway: Gateway, site: Path, versions: dict[str, bytes], caplog: pytest.LogCaptureFixture) -> None:
    caplog.set_level(logging.INFO, logger="wasmscope.gateway")
    manifest = site / "app.toml"
    replace_atomically(site / "version.wasm", versions["v2"])
    manifest.write_text(manifest_text(route("/v")) + "[[route]\n")  # not TOML
    assert gateway.reload() is False
    manifest.write_text(manifest_text(route("/v") + route("/w", "missing.wasm")))
    assert gateway.reload() is False
    errors = messages(caplog, logging.ERROR)
    assert len(errors) == 2 and all(str(manifest) in e and "still serving version 1" in e for e in errors)
    assert "not valid TOML" in errors[0] and "missing.wasm: no such file" in errors[1]
    assert text(gateway) == "v1"  # all or nothing: the new module waits for a good manifest
    assert get(gateway, "/w").status_code == 404
    manifest.write_text(manifest_text(route("/v") + route("/w")))
    assert gateway.reload() is True
    assert text(gateway) == "v2-second" and text(gateway, "/w") == "v2-second"


def test_routes_added_and_removed(gateway: Gateway, site: Path, versions: dict[str, bytes], caplog: pytest.LogCaptureFixture) -> None:
    caplog.set_level(logging.INFO, logger="wasmscope.gateway")
    (site / "other.wasm").write_bytes(versions["v3"])
    manifest = site / "app.toml"
    assert get(gateway, "/new").status_code == 404
    manifest.write_text(manifest_text(route("/v") + route("/new", "other.wasm")))
    assert gateway.reload() is True
    assert text(gateway, "/new") == "v3-the-third-version-string" and text(gateway) == "v1"
    assert "+/new (other.wasm " in messages(caplog, logging.INFO)[-1]
    manifest.write_text(manifest_text(route("/new", "other.wasm")))
    assert gateway.reload() is True
    assert get(gateway, "/v").status_code == 404 and text(gateway, "/new") == "v3-the-third-version-string"
    assert ": -/v (compiled in " in messages(caplog, logging.INFO)[-1]
    assert get(gateway, "/readyz").status_code == 200
    # The module file of a removed route is no longer watched; the new route's is.
    replace_atomically(site / "version.wasm", versions["v2"])
    assert gateway.reload() is False
    replace_atomically(site / "other.wasm", versions["v1"])
    assert gateway.reload() is True and text(gateway, "/new") == "v1"


def test_limits_and_env_changed(gateway: Gateway, site: Path, caplog: pytest.LogCaptureFixture) -> None:
    caplog.set_level(logging.INFO, logger="wasmscope.gateway")
    assert get(gateway, "/v", params={"x": "1"}).status_code == 200
    r = run(lambda c: c.post("/v", content=b"x" * 100), gateway)
    assert r.status_code == 200
    (site / "app.toml").write_text(manifest_text(route("/v", extra='max_request_bytes = 16\ntimeout = "30s"')))
    assert gateway.reload() is True
    r = run(lambda c: c.post("/v", content=b"x" * 100), gateway)
    assert r.status_code == 413
    line = messages(caplog, logging.INFO)[-1]
    assert "/v: timeout 60.0 -> 30.0, max_request_bytes 1048576 -> 16" in line
    assert "version.wasm" not in line  # the module did not change


def test_concurrency_change_drains_the_old_pool(gateway: Gateway, site: Path, versions: dict[str, bytes]) -> None:
    old_pool = gateway.route_pool("/v")

    async def scenario(client: Any) -> tuple[Any, str]:
        slow = asyncio.create_task(client.get("/v", params="wait=drain"))
        await _wait_for(site / "gate" / "drain.started")
        (site / "app.toml").write_text(manifest_text(route("/v", extra="max_concurrency = 3")))
        replace_atomically(site / "version.wasm", versions["v2"])
        assert await asyncio.to_thread(gateway.reload) is True
        assert gateway.route_pool("/v") is not old_pool
        assert old_pool.workers.shut_down is False  # its request still runs
        fresh = await client.get("/v")
        (site / "gate" / "drain.open").touch()
        return await slow, fresh.text.strip()

    slow, fresh = run(scenario, gateway)
    assert slow.status_code == 200 and slow.text.strip() == "v1"  # finished on its version
    assert fresh == "v2-second"
    assert old_pool.shut and old_pool.workers.shut_down
    assert gateway.route_pool("/v").limit == 3


def test_same_concurrency_keeps_the_pool(gateway: Gateway, site: Path, versions: dict[str, bytes]) -> None:
    pool = gateway.route_pool("/v")
    replace_atomically(site / "version.wasm", versions["v2"])
    (site / "app.toml").write_text(manifest_text(route("/v", extra='env = { A = "1" }')))
    assert gateway.reload() is True
    assert gateway.route_pool("/v") is pool and not pool.shut


def test_touch_is_not_a_reload(gateway: Gateway, site: Path, versions: dict[str, bytes], caplog: pytest.LogCaptureFixture) -> None:
    caplog.set_level(logging.INFO, logger="wasmscope.gateway")
    replace_atomically(site / "version.wasm", versions["v1"])  # same bytes, new inode
    (site / "app.toml").write_text((site / "app.toml").read_text())
    assert gateway.reload() is False and gateway.version == 1
    assert not messages(caplog, logging.INFO) and not messages(caplog, logging.ERROR)


# -- in flight -----------------------------------------------------------------------------


async def _wait_for(path: Path) -> None:
    deadline = time.monotonic() + DEADLINE
    while not path.exists():
        assert time.monotonic() < deadline, f"{path} never appeared"
        await asyncio.sleep(0.01)


def test_in_flight_request_finishes_on_its_version(gateway: Gateway, site: Path, versions: dict[str, bytes]) -> None:
    async def scenario(client: Any) -> list[tuple[int, str]]:
        slow = asyncio.create_task(client.get("/v", params="wait=one"))
        await _wait_for(site / "gate" / "one.started")
        replace_atomically(site / "version.wasm", versions["v2"])
        assert await asyncio.to_thread(gateway.reload) is True
        during = [await client.get("/v") for _ in range(3)]
        assert gateway.in_flight("/v") == 1
        (site / "gate" / "one.open").touch()
        done = await slow
        return [(r.status_code, r.text.strip()) for r in [*during, done]]

    assert run(scenario, gateway) == [(200, "v2-second")] * 3 + [(200, "v1")]


def test_request_pinned_to_a_drained_version_gets_the_new_one(gateway: Gateway, site: Path, versions: dict[str, bytes]) -> None:
    """A request that picked its version (in a middleware) before a reload whose old pool
    has shut since is served by the new version, not refused."""
    scope: dict[str, Any] = {"type": "http", "method": "GET", "path": "/v", "raw_path": b"/v", "query_string": b"", "headers": []}
    assert gateway.manifest_for(scope) is gateway.manifest
    (site / "app.toml").write_text(manifest_text(route("/v", extra="max_concurrency = 2")))
    replace_atomically(site / "version.wasm", versions["v2"])
    assert gateway.reload() is True
    sent: list[dict[str, Any]] = []

    async def receive() -> dict[str, Any]:
        return {"type": "http.request", "body": b"", "more_body": False}

    async def send(message: dict[str, Any]) -> None:
        sent.append(message)

    asyncio.run(gateway(scope, receive, send))
    assert sent[0]["status"] == 200 and sent[1]["body"].strip() == b"v2-second"


# -- API keys and the middlewares ------------------------------------------------------------


def test_auth_turned_on_and_keys_changed(gateway: Gateway, site: Path) -> None:
    app = wrap(gateway, always=True)
    assert isinstance(app, ApiKeyAuth) and gateway.auth_enforced
    assert text(app) == "v1"  # no route needs a key yet
    manifest = site / "app.toml"
    manifest.write_text(manifest_text(route("/v", extra='auth = "key"'), keys=key_table("ci", KEY)))
    assert gateway.reload() is True
    assert get(app, "/v").status_code == 401
    assert text(app, headers={"authorization": f"Bearer {KEY}"}) == "v1"
    manifest.write_text(manifest_text(route("/v"), server='auth = "key"', keys=key_table("other", OTHER_KEY)))
    assert gateway.reload() is True
    assert get(app, "/v", headers={"authorization": f"Bearer {KEY}"}).status_code == 401  # that key is gone
    assert text(app, headers={"x-api-key": OTHER_KEY}) == "v1"
    manifest.write_text(manifest_text(route("/v")))
    assert gateway.reload() is True
    assert text(app) == "v1"  # and off again


def test_key_changes_keep_what_still_holds(gateway: Gateway, site: Path) -> None:
    """A reload that changes the keys keeps the cached identity of a key still there
    (no key derivation again) and forgets what no longer holds."""
    app = wrap(gateway, always=True)
    assert isinstance(app, ApiKeyAuth)
    ci, other = key_table("ci", KEY), key_table("other", OTHER_KEY)
    manifest = site / "app.toml"
    manifest.write_text(manifest_text(route("/v", extra='auth = "key"'), keys=ci))
    assert gateway.reload() is True
    assert text(app, headers={"x-api-key": KEY}) == "v1"
    assert get(app, "/v", headers={"x-api-key": OTHER_KEY}).status_code == 401
    manifest.write_text(manifest_text(route("/v", extra='auth = "key"'), keys=ci + other))
    assert gateway.reload() is True
    assert text(app, headers={"x-api-key": KEY}) == "v1" and app.store.kdf_runs == 0  # still known
    assert text(app, headers={"x-api-key": OTHER_KEY}) == "v1" and app.store.kdf_runs > 0  # a new hash: checked again
    manifest.write_text(manifest_text(route("/v", extra='auth = "key"'), keys=other))
    assert gateway.reload() is True
    assert get(app, "/v", headers={"x-api-key": KEY}).status_code == 401  # removed: not remembered
    assert text(app, headers={"x-api-key": OTHER_KEY}) == "v1"


def test_auth_cannot_be_turned_on_without_the_middleware(gateway: Gateway, site: Path, caplog: pytest.LogCaptureFixture) -> None:
    caplog.set_level(logging.INFO, logger="wasmscope.gateway")
    assert wrap(gateway) is gateway and not gateway.auth_enforced
    (site / "app.toml").write_text(manifest_text(route("/v", extra='auth = "key"'), keys=key_table("ci", KEY)))
    assert gateway.reload() is False
    (error,) = messages(caplog, logging.ERROR)
    assert "/v would need an API key" in error and "restart" in error
    assert text(gateway) == "v1"


def test_metrics_and_spans_follow_the_manifest(gateway: Gateway, site: Path) -> None:
    pytest.importorskip("prometheus_client")
    telemetry_mod = pytest.importorskip("wasmscope.telemetry")
    from wasmscope.gateway.metrics import Metrics, MetricsMiddleware
    from wasmscope.gateway.tracing import TracingMiddleware

    try:
        tel = telemetry_mod.Telemetry.from_options(in_memory=True, trigger="http")
    except Exception as exc:  # the otel extra is missing
        pytest.skip(str(exc))
    metrics = Metrics()
    try:
        app = TracingMiddleware(MetricsMiddleware(wrap(gateway, always=True), metrics, gateway=gateway), tel, gateway=gateway)
        assert get(app, "/w").status_code == 404
        (site / "app.toml").write_text(manifest_text(route("/v") + route("/w")))
        assert gateway.reload() is True
        assert text(app, "/w") == "v1"
        exposition = metrics.exposition().decode()
        assert 'route="(unmatched)"' in exposition and 'route="/w",status="200"' in exposition
        names = [s["name"] for s in tel.memory.span_dicts() if s["attributes"].get("http.response.status_code")]
        assert names == ["GET", "GET /w"]
    finally:
        tel.shutdown()


# -- a folder of handlers --------------------------------------------------------------------


def test_folder_of_handlers(tmp_path: Path, runtime: Runtime, versions: dict[str, bytes]) -> None:
    (tmp_path / "a.wasm").write_bytes(versions["v1"])
    gw = Gateway(load(tmp_path), runtime=runtime)
    gw.prepare()
    try:
        assert text(gw, "/a") == "v1" and get(gw, "/b").status_code == 404
        replace_atomically(tmp_path / "b.wasm", versions["v2"])
        assert gw.reload() is True and text(gw, "/b") == "v2-second"
        rewrite_in_place(tmp_path / "a.wasm", versions["v3"])
        assert gw.reload() is True and text(gw, "/a") == "v3-the-third-version-string"
        (tmp_path / "a.wasm").unlink()
        assert gw.reload() is True and get(gw, "/a").status_code == 404 and text(gw, "/b") == "v2-second"
        (tmp_path / "b.wasm").unlink()
        assert gw.reload() is False and text(gw, "/b") == "v2-second"  # no handler left: refused, still serving
    finally:
        gw.close()


# -- the watcher and the lifespan ------------------------------------------------------------


def test_lifespan_runs_the_watcher(site: Path, runtime: Runtime, versions: dict[str, bytes]) -> None:
    gw = Gateway(load_manifest(site / "app.toml"), runtime=runtime, reload_interval=0.02)
    events: asyncio.Queue[dict[str, Any]] = asyncio.Queue()
    sent: list[str] = []

    async def send(message: dict[str, Any]) -> None:
        sent.append(message["type"])

    async def main() -> list[str]:
        await events.put({"type": "lifespan.startup"})
        lifespan = asyncio.create_task(gw({"type": "lifespan"}, events.get, send))
        deadline = time.monotonic() + DEADLINE
        while "lifespan.startup.complete" not in sent:
            assert time.monotonic() < deadline and "lifespan.startup.failed" not in sent
            await asyncio.sleep(0.01)
        assert gw.reloader.watching
        transport = httpx.ASGITransport(app=gw)
        seen = []
        async with httpx.AsyncClient(transport=transport, base_url="http://testserver") as client:
            seen.append((await client.get("/v")).text.strip())
            replace_atomically(site / "version.wasm", versions["v2"])
            while seen[-1] != "v2-second":
                assert time.monotonic() < deadline, seen[-5:]
                await asyncio.sleep(0.01)
                r = await client.get("/v")
                assert r.status_code == 200 and (await client.get("/readyz")).status_code == 200
                seen.append(r.text.strip())
        await events.put({"type": "lifespan.shutdown"})
        await lifespan
        return seen

    seen = asyncio.run(main())
    assert seen[0] == "v1" and set(seen) == {"v1", "v2-second"}
    assert sent[-1] == "lifespan.shutdown.complete" and not gw.reloader.watching and gw.closed
    gw.close()  # idempotent
    with pytest.raises(Exception, match="closed"):
        gw.prepare()


def test_reload_needs_a_prepared_gateway(site: Path, runtime: Runtime) -> None:
    gw = Gateway(load_manifest(site / "app.toml"), runtime=runtime)
    try:
        with pytest.raises(Exception, match="prepare"):
            gw.reload()
        assert text(gw) == "v1"  # before prepare() the file is run as it is
    finally:
        gw.close()
    with pytest.raises(Exception, match="above 0"):
        Gateway(load_manifest(site / "app.toml"), runtime=runtime, reload_interval=0)


def test_watcher_survives_a_failing_poll(gateway: Gateway, monkeypatch: pytest.MonkeyPatch, caplog: pytest.LogCaptureFixture) -> None:
    calls: list[int] = []

    def boom() -> bool:
        calls.append(1)
        raise RuntimeError("boom")

    monkeypatch.setattr(gateway.reloader, "poll", boom)
    gateway.reloader.interval = 0.01
    gateway.reloader.start()
    deadline = time.monotonic() + DEADLINE
    while len(calls) < 3:
        assert time.monotonic() < deadline
        time.sleep(0.01)
    assert gateway.reloader.watching
    gateway.reloader.stop()
    assert not gateway.reloader.watching
    assert any("keeps watching" in r.getMessage() for r in caplog.records)


# -- the CLI -------------------------------------------------------------------------------


def test_cli_reload_options(capsys: pytest.CaptureFixture[str], tmp_path: Path) -> None:
    from wasmscope.cli import main

    assert main(["serve", "--help"]) == 0
    out = " ".join(capsys.readouterr().out.split())
    assert "--reload-interval SECONDS" in out and "--no-reload" in out and "Hot reload" in out
    assert "each worker watches for itself" in out or "each --workers worker checks for itself" in out
    (tmp_path / "x.wasm").write_bytes(b"\0asm\x01\0\0\0")
    assert main(["serve", str(tmp_path), "--reload-interval", "0"]) == 2
    assert "--reload-interval 0.0: expected a number of seconds above 0" in capsys.readouterr().err
