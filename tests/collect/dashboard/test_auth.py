"""Token login: a session cookie from /login (an HMAC of the token, HttpOnly,
SameSite=Strict) or a bearer token; without a token, no login."""

from __future__ import annotations

import hashlib
import hmac
import urllib.parse

import pytest

from tests.collect.dashboard.conftest import Client, clock
from wasmscope.collect.dashboard import Dashboard
from wasmscope.collect.dashboard.auth import COOKIE
from wasmscope.collect.store import Store

TOKEN = "s3cret-t0ken"
HTML = {"accept": "text/html,application/xhtml+xml"}


@pytest.fixture
def locked(store: Store) -> Client:
    return Client(Dashboard(store, token=TOKEN, clock=clock))


def test_pages_need_a_login(locked: Client) -> None:
    r = locked.get("/invocations?fn=resize", headers=HTML)
    assert r.status_code == 303
    assert r.headers["location"] == "/login?" + urllib.parse.urlencode({"next": "/invocations?fn=resize"})
    for path in ["/api/functions", "/live/stream", "/trace/" + "0" * 32]:
        r = locked.get(path)
        assert r.status_code == 401 and r.headers["www-authenticate"].startswith("Bearer"), path
    # htmx requests get 401, not a login page swapped into the view.
    assert locked.get("/", headers={**HTML, "hx-request": "true"}).status_code == 401
    # The login page and static files are open.
    assert locked.get("/login").status_code == 200
    assert locked.get("/static/dashboard.css").status_code == 200


def test_login_sets_an_hmac_cookie(locked: Client) -> None:
    wrong = locked.post("/login", data={"token": "nope", "next": "/modules"})
    assert wrong.status_code == 401 and "set-cookie" not in wrong.headers
    assert "not the right one" in wrong.text
    r = locked.post("/login", data={"token": TOKEN, "next": "/modules?range=6h"})
    assert r.status_code == 303 and r.headers["location"] == "/modules?range=6h"
    cookie = r.headers["set-cookie"]
    assert "HttpOnly" in cookie and "SameSite=Strict" in cookie and "Path=/" in cookie
    value = cookie.split(";", 1)[0].split("=", 1)[1]
    assert TOKEN not in cookie
    expected = hmac.new(TOKEN.encode(), b"wasmscope collect dashboard session v1", hashlib.sha256).hexdigest()
    assert value == expected
    ok = locked.get("/modules", headers={"cookie": f"{COOKIE}={value}"})
    assert ok.status_code == 200
    assert locked.get("/modules", headers={**HTML, "cookie": f"{COOKIE}={value[:-1]}0"}).status_code == 303
    assert locked.get("/modules", headers={**HTML, "cookie": f"{COOKIE}={TOKEN}"}).status_code == 303
    out = locked.get("/logout")
    assert out.status_code == 303 and "Max-Age=0" in out.headers["set-cookie"]


def test_bearer_token(locked: Client) -> None:
    assert locked.get("/api/functions", headers={"authorization": f"Bearer {TOKEN}"}).status_code == 200
    assert locked.get("/api/functions", headers={"authorization": f"bearer {TOKEN}"}).status_code == 200
    assert locked.get("/api/functions", headers={"authorization": f"Bearer {TOKEN}x"}).status_code == 401
    assert locked.get("/api/functions", headers={"authorization": f"Basic {TOKEN}"}).status_code == 401


@pytest.mark.parametrize("target", ["//evil.example/x", "https://evil.example/", "/\\evil.example", "javascript:alert(1)"])
def test_login_never_redirects_off_site(locked: Client, target: str) -> None:
    r = locked.post("/login", data={"token": TOKEN, "next": target})
    assert r.status_code == 303 and r.headers["location"] == "/"


def test_no_token_no_login(store: Store) -> None:
    open_client = Client(Dashboard(store, clock=clock))
    assert open_client.get("/", headers=HTML).status_code == 200
    assert open_client.get("/login").status_code == 303
