"""API keys in front of the gateway, in-process (httpx's ASGI transport): hashes,
route scopes (401/403), per-key rates (429), the cache of verified keys, the access
log's key id, the manifest's [[key]] tables and ``serve --hash-key``. No test asserts
a wall-clock time."""

from __future__ import annotations

import asyncio
import io
import json
import logging
import re
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

httpx = pytest.importorskip("httpx")

from tests.gateway.test_app import run  # noqa: E402
from wasmscope.cli import main  # noqa: E402
from wasmscope.errors import UsageError  # noqa: E402
from wasmscope.gateway.app import Gateway  # noqa: E402
from wasmscope.gateway.auth import ApiKeyAuth, wrap  # noqa: E402
from wasmscope.gateway.keys import hash_key, verify_key  # noqa: E402
from wasmscope.gateway.manifest import load_manifest  # noqa: E402
from wasmscope.gateway.rates import TokenBucket, parse_rate  # noqa: E402
from wasmscope.gateway.wagi import cgi_environ  # noqa: E402

ADMIN = "wsk_admin-secret-123"
READER = "wsk_reader-secret-456"
LIMITED = "wsk_limited-secret-789"


def _h(key: str) -> str:
    return hash_key(key, n=1024)  # cheap parameters: the format is the same


MANIFEST = """
[server]
auth = "key"

[[route]]
path = "/hello"
module = "{hello}"

[[route]]
path = "/echo/..."
module = "{echo}"

[[route]]
path = "/public"
module = "{hello}"
auth = "none"

[[key]]
id = "admin"
hash = "{admin}"
routes = "*"

[[key]]
id = "reader"
hash = "{reader}"
routes = ["/hello"]

[[key]]
id = "limited"
hash = "{limited}"
routes = ["/hello"]
rate = "2/min"
burst = 2
"""


@pytest.fixture(scope="module")
def manifest_path(wagi_modules: dict[str, Path], tmp_path_factory: pytest.TempPathFactory) -> Path:
    path = tmp_path_factory.mktemp("auth") / "app.toml"
    hashes = {"admin": _h(ADMIN), "reader": hash_key(READER, scheme="pbkdf2-sha256", iterations=1000), "limited": _h(LIMITED)}
    path.write_text(MANIFEST.format(hello=wagi_modules["hello"], echo=wagi_modules["echo"], **hashes))
    return path


@pytest.fixture(scope="module")
def gateway(manifest_path: Path, shared_runtime: Any) -> Iterator[Gateway]:
    gw = Gateway(load_manifest(manifest_path), runtime=shared_runtime)
    gw.prepare()
    yield gw
    gw.close()


@pytest.fixture
def app(gateway: Gateway) -> ApiKeyAuth:
    """A fresh middleware (fresh buckets and cache) over the shared gateway."""
    return ApiKeyAuth(gateway, gateway.manifest)


def bearer(key: str) -> dict[str, str]:
    return {"authorization": f"Bearer {key}"}


def test_hashes_are_self_describing_and_salted() -> None:
    a, b = hash_key("k", n=1024), hash_key("k", n=1024)
    assert a.startswith("scrypt$1024$8$1$") and a != b  # a random salt each time
    assert verify_key("k", a) and verify_key("k", b) and not verify_key("K", a)
    p = hash_key("k", scheme="pbkdf2-sha256", iterations=1000)
    assert p.startswith("pbkdf2-sha256$1000$") and verify_key("k", p) and not verify_key("x", p)
    assert "k" not in a.split("$")[4:]
    with pytest.raises(UsageError):
        verify_key("k", "md5$abc")


def test_rates_and_token_bucket() -> None:
    assert parse_rate("10/s") == (10.0, 10)
    assert parse_rate("600/min") == (10.0, 600)
    assert parse_rate("2 / hours")[1] == 2
    for bad in ("10", "x/s", "10/fortnight", "0/s"):
        with pytest.raises(UsageError):
            parse_rate(bad)
    now = [0.0]
    bucket = TokenBucket(rate=1.0, burst=2, clock=lambda: now[0])
    assert bucket.take() == 0.0 and bucket.take() == 0.0
    assert bucket.take() == pytest.approx(1.0)
    now[0] = 0.5
    assert bucket.take() == pytest.approx(0.5)
    now[0] = 1.0
    assert bucket.take() == 0.0 and bucket.take() > 0


def test_missing_and_unknown_keys_are_401(app: ApiKeyAuth) -> None:
    async def scenario(c: Any) -> list[Any]:
        return [await c.get("/hello"), await c.get("/hello", headers=bearer("wsk_nope")), await c.get("/echo/x", headers={"x-api-key": "nope"}),
                await c.get("/hello", headers={"authorization": f"Basic {ADMIN}"})]  # fmt: skip

    for r in run(scenario, app):
        assert r.status_code == 401
        assert r.headers["www-authenticate"].startswith("Bearer")
        assert r.headers["content-type"] == "application/json" and "error" in r.json()
        assert "x-wasmscope-invocation" not in r.headers  # nothing ran
    assert 'error="invalid_token"' in run(lambda c: c.get("/hello", headers=bearer("wsk_nope")), app).headers["www-authenticate"]


def test_keys_scoped_per_route(app: ApiKeyAuth) -> None:
    async def scenario(c: Any) -> dict[str, int]:
        return {
            "admin /hello": (await c.get("/hello?x", headers=bearer(ADMIN))).status_code,
            "admin /echo": (await c.get("/echo/a", headers={"x-api-key": ADMIN})).status_code,
            "reader /hello": (await c.get("/hello", headers={"X-API-Key": READER})).status_code,
            "reader /echo": (await c.get("/echo/a", headers=bearer(READER))).status_code,
            "bearer case": (await c.get("/hello", headers={"authorization": f"bearer {READER}"})).status_code,
        }

    assert run(scenario, app) == {"admin /hello": 200, "admin /echo": 200, "reader /hello": 200, "reader /echo": 403, "bearer case": 200}


def test_open_paths_need_no_key(app: ApiKeyAuth) -> None:
    async def scenario(c: Any) -> list[int]:
        return [(await c.get(p)).status_code for p in ("/public", "/healthz", "/readyz", "/nowhere")]

    assert run(scenario, app) == [200, 200, 200, 404]


def test_rate_limit_is_429_with_retry_after(app: ApiKeyAuth) -> None:
    async def scenario(c: Any) -> list[Any]:
        return [await c.get("/hello", headers=bearer(LIMITED)) for _ in range(3)] + [await c.get("/hello", headers=bearer(ADMIN))]

    first, second, third, other = run(scenario, app)
    assert first.status_code == 200 and second.status_code == 200
    assert third.status_code == 429 and int(third.headers["retry-after"]) >= 1
    assert other.status_code == 200  # buckets are per key


def test_the_kdf_runs_once_per_key(app: ApiKeyAuth) -> None:
    async def scenario(c: Any) -> list[int]:
        codes = [(await c.get("/hello", headers=bearer(ADMIN))).status_code for _ in range(5)]
        codes += [(await c.get("/hello", headers=bearer("wsk_wrong"))).status_code for _ in range(3)]
        return codes

    assert run(scenario, app) == [200] * 5 + [401] * 3
    # admin is the first [[key]]: 1 run; an unknown key is tried against all 3, once
    assert app.store.kdf_runs == 1 + 3


def test_concurrent_first_requests(app: ApiKeyAuth) -> None:
    async def scenario(c: Any) -> list[int]:
        rs = await asyncio.gather(*(c.get("/hello", headers=bearer(k)) for k in [ADMIN] * 3 + ["wsk_bad"] * 6 + [READER] * 3))  # <= 8 at once: the route's max_concurrency
        return [r.status_code for r in rs]

    assert run(scenario, app) == [200] * 3 + [401] * 6 + [200] * 3


def test_the_key_never_reaches_the_guest_nor_the_log(app: ApiKeyAuth, caplog: pytest.LogCaptureFixture) -> None:
    with caplog.at_level(logging.DEBUG, logger="wasmscope"):
        r = run(lambda c: c.get("/echo/k", headers={**bearer(ADMIN), "x-test": "t"}), app)
        denied = run(lambda c: c.get("/echo/k", headers=bearer(READER)), app)
    assert r.status_code == 200 and "HTTP_AUTHORIZATION=(unset)" in r.text and "HTTP_X_TEST=t" in r.text
    assert ADMIN not in r.text and denied.status_code == 403
    text = "\n".join(rec.getMessage() for rec in caplog.records)
    assert ADMIN not in text and READER not in text
    access = [json.loads(rec.getMessage()) for rec in caplog.records if rec.name == "wasmscope.access"]
    assert [(a["status"], a["key_id"], a["route"]) for a in access] == [(200, "admin", "/echo/..."), (403, "reader", "/echo/...")]
    env = cgi_environ({"headers": [(b"x-api-key", b"s3cret"), (b"authorization", b"Bearer s3cret"), (b"x-ok", b"1")]},
                      route_path="/x", script_name="/x", path_info_raw="", content_length=0)  # fmt: skip
    assert "s3cret" not in json.dumps(env) and env["HTTP_X_OK"] == "1"


def test_wrap_only_when_a_route_needs_a_key(gateway: Gateway, wat_modules: dict[str, Path], tmp_path: Path) -> None:
    assert isinstance(wrap(gateway, gateway.manifest), ApiKeyAuth)
    open_manifest = tmp_path / "open.toml"
    open_manifest.write_text(f'[[route]]\npath = "/hello"\nmodule = "{wat_modules["hello"]}"\n')
    m = load_manifest(open_manifest)
    assert m.routes[0].auth == "none" and m.keys == ()
    assert wrap(gateway, m) is gateway
    assert wrap(gateway, gateway.manifest).ready is True  # attributes of the wrapped app


@pytest.mark.parametrize(
    ("extra", "message"),
    [
        ('[server]\nauth = "key"\n', 'auth = "key" but there is no [[key]]'),
        ('[[key]]\nid = "a"\nkey = "plain"\nroutes = "*"\n', "never the key"),
        ('[[key]]\nid = "a"\nhash = "sha1$x"\nroutes = "*"\n', "key 'hash'"),
        ('[[key]]\nid = "a"\nhash = "{h}"\nroutes = ["/nope"]\n', "is not the path of a [[route]]"),
        ('[[key]]\nid = "a"\nhash = "{h}"\n', "key 'routes'"),
        ('[[key]]\nid = "a"\nhash = "{h}"\nroutes = "*"\nrate = "fast"\n', "key 'rate'"),
        ('[[key]]\nid = "a"\nhash = "{h}"\nroutes = "*"\nburst = 3\n', "needs a 'rate'"),
        ('[[key]]\nid = "a"\nhash = "{h}"\nroutes = "*"\n[[key]]\nid = "a"\nhash = "{h}"\nroutes = "*"\n', "same id"),
        ('[[key]]\nhash = "{h}"\nroutes = "*"\n', "missing key 'id'"),
    ],
)
def test_manifest_key_errors(wat_modules: dict[str, Path], tmp_path: Path, extra: str, message: str) -> None:
    path = tmp_path / "m.toml"
    route = f'[[route]]\npath = "/hello"\nmodule = "{wat_modules["hello"]}"\nauth = "key"\n'
    path.write_text(extra.replace("{h}", _h("k")) + "\n" + route)
    with pytest.raises(UsageError, match=re.escape(message)):
        load_manifest(path)


def test_route_auth_value_is_checked(wat_modules: dict[str, Path], tmp_path: Path) -> None:
    path = tmp_path / "m.toml"
    path.write_text(f'[[route]]\npath = "/hello"\nmodule = "{wat_modules["hello"]}"\nauth = "password"\n')
    with pytest.raises(UsageError, match="auth"):
        load_manifest(path)


def test_hash_key_cli(monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]) -> None:
    monkeypatch.setattr("sys.stdin", io.StringIO("my-secret-key\n"))
    assert main(["serve", "--hash-key", "--key-id", "ci"]) == 0
    out, err = capsys.readouterr()
    assert "my-secret-key" not in out and "my-secret-key" not in err
    entry = dict(line.split(" = ", 1) for line in out.splitlines() if " = " in line)
    assert out.startswith("[[key]]") and json.loads(entry["id"]) == "ci"
    assert verify_key("my-secret-key", json.loads(entry["hash"]))

    class Tty(io.StringIO):
        def isatty(self) -> bool:
            return True

    monkeypatch.setattr("sys.stdin", Tty(""))
    assert main(["serve", "--hash-key"]) == 0
    out, err = capsys.readouterr()
    generated = err.strip().splitlines()[-1].strip()
    assert generated.startswith("wsk_") and generated not in out
    entry = dict(line.split(" = ", 1) for line in out.splitlines() if " = " in line)
    assert verify_key(generated, json.loads(entry["hash"]))
