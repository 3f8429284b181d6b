"""Every page and JSON endpoint of the dashboard, in process, over a store filled
with realistic invocations: the numbers shown are those written."""

from __future__ import annotations

import html
import json
import re
import statistics
import urllib.parse
from typing import Any

import pytest
from markupsafe import escape

from tests.collect.dashboard import data
from tests.collect.dashboard.conftest import HOSTILE, XSS_IMG, XSS_SCRIPT, Client, Scenario, clock
from tests.collect.dashboard.data import Inv
from wasmscope.collect.dashboard import CSP, Dashboard
from wasmscope.collect.store import Store


@pytest.fixture(scope="module")
def c(shared: tuple[Store, Scenario]) -> Client:
    return Client(Dashboard(shared[0], clock=clock, live_poll=0.01, live_lifetime=0.0))


@pytest.fixture(scope="module")
def sc(shared: tuple[Store, Scenario]) -> Scenario:
    return shared[1]


def q(**kw: Any) -> str:
    return "?" + urllib.parse.urlencode(kw, doseq=True)


def ok_json(c: Client, url: str) -> Any:
    r = c.get(url)
    assert r.status_code == 200, r.text[:500]
    assert r.headers["content-type"] == "application/json"
    return r.json()


def ok_html(c: Client, url: str) -> str:
    r = c.get(url)
    assert r.status_code == 200, r.text[:800]
    assert r.headers["content-type"].startswith("text/html")
    assert r.headers["content-security-policy"] == CSP
    assert r.headers["x-content-type-options"] == "nosniff"
    return r.text


def exact_quantile(values: list[float], p: float) -> float:
    s = sorted(values)
    return s[0] + (s[-1] - s[0]) * 0 if len(s) == 1 else statistics.quantiles(s, n=1000, method="inclusive")[int(p * 1000) - 1]


# --- Functions ---------------------------------------------------------------------------------
def test_functions_table_matches_what_was_written(c: Client, sc: Scenario) -> None:
    doc = ok_json(c, "/api/functions")
    rows = {r["function"]: r for r in doc["functions"]}
    assert set(rows) == {"resize", "hello", XSS_SCRIPT, "hostile"}
    r = rows["resize"]
    invs = sc.of("resize")
    assert r["n"] == 40 and r["sha256"] == data.sha_of("resize.wasm") and r["module"] == "resize.wasm"
    assert r["errors"] == sum(i.outcome != "ok" for i in invs) == 6
    assert r["cold"] == 4
    assert r["outcomes"] == {"ok": 34, "exit": 0, "trap": 3, "timeout": 1, "out_of_fuel": 2, "out_of_memory": 0,
                             "stack_overflow": 0, "output_limit": 0, "error": 0}  # fmt: skip
    durations = [i.duration_ns for i in invs]
    for key, p in (("p50", 0.5), ("p95", 0.95), ("p99", 0.99)):
        assert r[key] == pytest.approx(exact_quantile(durations, p), rel=0.06), key
    assert rows["hello"]["service"] == "edge" and rows["hello"]["errors"] == 0
    assert doc["totals"] == {"n": 62, "errors": 7, "cold": 4}
    series = doc["series"]
    assert series["total"] == 62 and series["step"] == 30
    assert sum(series["rate"]["errors"]) * 30 == pytest.approx(7, rel=1e-4)
    assert sum(series["cold"]) * 30 == pytest.approx(4, rel=1e-4)


def test_functions_filters_and_ranges(c: Client) -> None:
    edge = ok_json(c, "/api/functions" + q(service="edge"))
    assert [r["function"] for r in edge["functions"]] == ["hello"]
    only = ok_json(c, "/api/functions" + q(fn="resize"))
    assert [r["function"] for r in only["functions"]] == ["resize"]
    # The last 15 minutes hold the resize invocations of ago <= 900 s (i >= 30) and the two singles.
    last = ok_json(c, "/api/functions" + q(range="15m"))
    assert {r["function"]: r["n"] for r in last["functions"]} == {"resize": 10, XSS_SCRIPT: 1, "hostile": 1}
    # An absolute range (ISO, UTC) around the hello invocations only.
    start, end = data.NOW - 1800 - 1, data.NOW - 1800 + 20 * 30
    iso = "%Y-%m-%dT%H:%M:%S"
    import datetime as dt

    def t(x: float) -> str:
        return dt.datetime.fromtimestamp(x, dt.UTC).strftime(iso)

    absolute = ok_json(c, "/api/functions" + q(range="abs", **{"from": t(start), "to": t(end)}, service="edge"))
    assert absolute["functions"][0]["n"] == 20
    assert absolute["range"] == {"start_ns": int(start) * 10**9, "end_ns": int(end) * 10**9}


def test_functions_page(c: Client) -> None:
    page = ok_html(c, "/")
    assert "resize.wasm" in page and "15%" in page  # resize: 6 of 40 failed
    assert 'href="/function?fn=resize&amp;sha=' + data.sha_of("resize.wasm") in page
    blocks = re.findall(r'<script type="application/json" id="(c-[a-z]+)">(.*?)</script>', page, re.S)
    assert [b[0] for b in blocks] == ["c-rate", "c-latency", "c-cold"]
    rate = json.loads(blocks[0][1])
    assert rate["kind"] == "bars" and sum(sum(s["values"]) for s in rate["series"]) * 30 == pytest.approx(62, rel=1e-4)
    # The range picker and the filters keep their state in links.
    assert 'href="/invocations?range=6h"' in ok_html(c, "/?range=6h")


# --- Function detail ---------------------------------------------------------------------------
def test_function_detail(c: Client) -> None:
    doc = ok_json(c, "/api/function" + q(fn="resize"))
    s = doc["summary"]
    assert s["n"] == 40 and s["cold"] == 4 and s["fuel_limit"] == 1_000_000 and s["max_memory"] == 1024 * 1024
    assert s["split"]["cold"]["n"] == 4 and s["split"]["warm"]["n"] == 36
    assert s["split"]["cold"]["mean"] == pytest.approx(2.5e6)  # 1, 2, 3, 4 ms
    assert sum(b["count"] for b in doc["latency"]) == 40
    assert {b["log2"] for b in doc["memory"]} == {16, 17, 18, 19}  # 64 KiB .. 512 KiB
    assert doc["memory_q"][3] == 65536 * 8
    top = doc["traps"][0]
    assert (top["code"], top["func"], top["file"], top["line"], top["n"]) == (
        "memory_out_of_bounds", "resize_rows", "src/resize.rs", "88", 3)  # fmt: skip
    assert {t["code"]: t["n"] for t in doc["traps"]} == {"memory_out_of_bounds": 3, "out_of_fuel": 2, "timeout": 1}
    page = ok_html(c, "/function" + q(fn="resize", sha=data.sha_of("resize.wasm")))
    assert "src/resize.rs:88" in page and "resize_rows" in page
    assert page.count('class="limit"') == 2 and "limit 1 MiB" in page
    assert ok_json(c, "/api/function" + q(fn="resize", sha="0" * 64))["summary"]["n"] == 0


def test_function_detail_needs_a_function(c: Client) -> None:
    assert c.get("/function").status_code == 404
    assert c.get("/api/function").status_code == 400


# --- Invocations -------------------------------------------------------------------------------
def ids(doc: dict[str, Any]) -> list[str]:
    return [r["span_id"] for r in doc["rows"]]


def test_invocation_search(c: Client, sc: Scenario) -> None:
    assert ok_json(c, "/api/invocations")["total"] == 62
    assert ok_json(c, "/api/invocations" + q(fn="resize", outcome="trap"))["total"] == 3
    assert ok_json(c, "/api/invocations" + q(fn="resize", outcome="failed"))["total"] == 6
    assert ok_json(c, "/api/invocations" + q(fn="resize", min_ms=10, max_ms=20))["total"] == 11
    one = sc.of("resize")[7]
    found = ok_json(c, "/api/invocations" + q(trace=one.trace_id.upper()))
    assert ids(found) == [one.span_id] and found["rows"][0]["invocation_id"] == one.invocation_id
    assert ok_json(c, "/api/invocations" + q(attr="tenant=acme"))["total"] == 20
    assert ok_json(c, "/api/invocations" + q(attr=["tenant=acme", "wasm.outcome=trap"]))["total"] == 1  # i = 35
    assert ok_json(c, "/api/invocations" + q(attr="faas.coldstart=true"))["total"] == 4
    assert ok_json(c, "/api/invocations" + q(attr="service.name=edge"))["total"] == 20  # a resource attribute
    assert ok_json(c, "/api/invocations" + q(q="resized image 7 "))["total"] == 1
    assert ok_json(c, "/api/invocations" + q(q="SLOW PATH"))["total"] == 4  # case-insensitive, stderr lines


@pytest.mark.parametrize("value", [HOSTILE, "'", "\\", "\\'", "%", "_", "{s_v0:String}", "\n", "\t", "ü🚀", "' OR '1'='1"])
def test_attribute_search_with_hostile_values(c: Client, value: str) -> None:
    doc = ok_json(c, "/api/invocations" + q(attr=f"tenant={value}"))
    assert doc["total"] == (1 if value == HOSTILE else 0)
    doc = ok_json(c, "/api/invocations" + q(attr=f"{value}=x", q=value))
    assert doc["total"] == (62 if not value.strip() else 0)  # blank filters do not apply


def test_hostile_values_round_trip(c: Client) -> None:
    doc = ok_json(c, "/api/invocations" + q(attr=f"tenant={HOSTILE}"))
    assert [r["function"] for r in doc["rows"]] == ["hostile"]
    assert ok_json(c, "/api/invocations" + q(q=HOSTILE))["total"] == 1  # the stdout line holds it
    assert ok_json(c, "/api/invocations" + q(attr=f"{XSS_SCRIPT}=k"))["total"] == 1
    page = ok_html(c, "/invocations" + q(attr=f"tenant={HOSTILE}"))
    assert str(escape(HOSTILE)) in page


def test_invocations_pagination(c: Client) -> None:
    seen: list[str] = []
    url = "/api/invocations" + q(fn="resize", limit=15)
    sizes = []
    while True:
        doc = ok_json(c, url)
        sizes.append(len(doc["rows"]))
        seen += ids(doc)
        stamps = [r["ts_ns"] for r in doc["rows"]]
        assert stamps == sorted(stamps, reverse=True)
        if not doc["next"]:
            break
        url = "/api/invocations" + q(fn="resize", limit=15, before=doc["next"])
    assert sizes == [15, 15, 10] and len(set(seen)) == 40
    page = ok_html(c, "/invocations" + q(fn="resize", limit=15))
    assert 'rel="next"' in page and "before=" in page


def test_invocations_bad_input_is_ignored_or_explained(c: Client) -> None:
    assert ok_json(c, "/api/invocations" + q(before="garbage", min_ms="abc", limit="x"))["total"] == 62
    page = ok_html(c, "/invocations" + q(attr="no-equals-sign", outcome="nonsense"))
    assert "ignored attribute filter" in page and "unknown outcome" in page


# --- Trace -------------------------------------------------------------------------------------
def test_trace_of_a_trap(c: Client, sc: Scenario) -> None:
    inv = next(i for i in sc.of("resize") if i.outcome == "trap")
    doc = ok_json(c, f"/api/trace/{inv.trace_id}")
    assert [s["name"] for s in doc["spans"]] == ["resize", "instantiate", "execute"]
    assert [line["body"] for line in doc["logs"]] == list(inv.stdout) + list(inv.stderr)
    page = ok_html(c, f"/trace/{inv.trace_id}")
    assert "at resize_rows (src/resize.rs:88)" in page
    assert page.index("resize_rows (src/resize.rs:88)</li>") < page.index("main (src/main.rs:12)</li>")
    assert inv.invocation_id in page and html.escape(inv.stdout[0]) in page
    # The log line (start + 2 µs) comes before the exception event (end - 1 µs).
    assert page.index("resized image") < page.index("exception — ")


def test_trace_of_a_cold_start_over_serve(c: Client, sc: Scenario) -> None:
    cold = sc.of("resize")[0]
    doc = ok_json(c, f"/api/trace/{cold.trace_id}")
    assert [s["name"] for s in doc["spans"]] == ["resize", "load", "compile", "instantiate", "execute"]
    hello = sc.of("hello")[3]
    page = ok_html(c, f"/trace/{hello.trace_id}?span={hello.span_id}")
    assert "GET /hello" in page and "hello 3" in page and "stderr" in page


def test_unknown_trace(c: Client) -> None:
    assert c.get("/trace/" + "ab" * 16).status_code == 404
    assert c.get("/trace/not-a-trace-id").status_code == 404
    assert c.get("/api/trace/" + "ab" * 16).status_code == 404


# --- Modules, profiles, metrics, store ---------------------------------------------------------
def test_modules(c: Client) -> None:
    rows = {m["name"]: m for m in ok_json(c, "/api/modules")["modules"]}
    assert rows["resize.wasm"]["invocations"] == 40 and rows["resize.wasm"]["has_report"] == 1
    assert rows["resize.wasm"]["profiles"] == 1 and rows["resize.wasm"]["kind"] == "module"
    assert rows["hello.wasm"]["has_report"] == 0
    sha = data.sha_of("resize.wasm")
    page = ok_html(c, f"/modules/{sha}")
    assert "fd_write" in page and "path_open" in page and "Filesystem" in page and "_start" in page
    assert ok_json(c, f"/modules/{sha}?format=json")["report"]["capabilities"][0]["key"] == "stdio"
    assert "No inspect report" in ok_html(c, f"/modules/{data.sha_of('hello.wasm')}")
    assert c.get("/modules/" + "0" * 64).status_code == 404
    assert c.get("/modules/../../etc/passwd").status_code == 404


def test_profiles(c: Client, sc: Scenario) -> None:
    page = ok_html(c, "/profiles")
    assert "resize.wasm" in page
    link = re.search(r'href="(/profiles/view\?[^"]+)"', page)
    assert link
    url = html.unescape(link.group(1))
    view = ok_html(c, url)
    flame = json.loads(re.search(r'id="flame-data">(.*?)</script>', view, re.S).group(1))  # type: ignore[union-attr]
    assert flame["stacks"] == data.PROFILE_DOC["stacks"]
    assert "1\u202f234\u202f567" in view  # lerp's exact calls
    doc = ok_json(c, url.replace("/profiles/view", "/api/profile"))
    assert doc["trace_id"] == sc.of("resize")[5].trace_id
    assert [f["name"] for f in doc["profile"]["functions"]][:1] == ["resize_rows"]  # by self samples
    assert c.get("/profiles/view?t=abc&sha=zz").status_code == 404
    assert c.get("/api/profile?t=1&sha=" + "0" * 64).status_code == 404


def test_metrics(c: Client) -> None:
    doc = ok_json(c, "/api/metric")
    kinds = {m["name"]: m["kind"] for m in doc["metrics"]}
    assert kinds == {"wasmscope.inflight": "gauge", "faas.invocations": "sum", "faas.invoke_duration": "histogram"}
    assert doc["series"] is None
    s = ok_json(c, "/api/metric" + q(name="faas.invocations", kind="sum"))["series"]
    assert list(s["series"]) == ["faas.name=resize"]
    assert [v for v in s["series"]["faas.name=resize"] if v is not None] == [10.0, 20.0, 30.0, 40.0, 50.0]
    h = ok_json(c, "/api/metric" + q(name="faas.invoke_duration", kind="histogram"))["series"]
    assert [v for v in h["series"]["faas.name=resize"] if v is not None] == [4.0, 8.0, 12.0, 16.0, 20.0]
    assert all(v == pytest.approx(0.002) for v in h["means"]["faas.name=resize"] if v is not None)
    page = ok_html(c, "/explore" + q(name="wasmscope.inflight", kind="gauge"))
    assert 'id="m-value"' in page and "Requests in flight." in page
    assert "Pick a metric" in ok_html(c, "/explore" + q(name="nope"))


def test_store_panel(c: Client, sc: Scenario, shared: tuple[Store, Scenario]) -> None:
    doc = ok_json(c, "/api/store")
    rows = {t["table"]: t["rows"] for t in doc["tables"]}
    spans = sum(len(i.spans()) for i in sc.invs)
    assert rows["otel_traces"] == spans
    assert rows["otel_logs"] == sum(len(i.stdout) + len(i.stderr) for i in sc.invs) + 2
    assert doc["bytes"] > 0 and doc["database"] == shared[0].database
    page = ok_html(c, "/store")
    assert "otel_traces" in page and "forever" in page


def test_store_panel_shows_retention_and_cap(chdb_backend: Any, shared: tuple[Store, Scenario]) -> None:
    st = Store(chdb_backend, shared[0].database, retention=7 * 86400, max_disk=2 * 1024**3)
    page = Client(Dashboard(st, clock=clock)).get("/store").text
    assert "7 d" in page and "2 GiB" in page


# --- Live tail ---------------------------------------------------------------------------------
def test_live_page_and_stream(c: Client, sc: Scenario) -> None:
    page = ok_html(c, "/live")
    assert page.count("<tr>") >= 30  # the backlog
    newest = max(i.start_ns for i in sc.invs)
    since = sorted(i.start_ns for i in sc.invs)[-3]
    r = c.get("/live/stream" + q(since=since))
    assert r.headers["content-type"].startswith("text/event-stream")
    events = [e for e in r.text.split("\n\n") if "event: invocations" in e]
    assert len(events) == 1
    rows = json.loads(events[0].split("data: ", 1)[1])
    assert len(rows) == 2 and rows[-1]["ts_ns"] == newest
    assert f"id: {newest}" in events[0]
    # Resumes from Last-Event-ID: nothing newer.
    again = c.get("/live/stream", headers={"last-event-id": str(newest)})
    assert "event: invocations" not in again.text
    only = c.get("/live/stream" + q(since=0, service="edge"))
    got = json.loads(only.text.split("data: ", 1)[1].split("\n", 1)[0])
    assert {x["function"] for x in got} == {"hello"} and len(got) == 20


def test_live_stream_sees_new_invocations(store: Store) -> None:
    client = Client(Dashboard(store, clock=clock, live_poll=0.01, live_lifetime=0.0))
    data.write(store, [Inv("first", ago=10)])
    assert "event: invocations" not in client.get("/live/stream" + q(since=int(data.NOW * 1e9))).text
    data.write(store, [Inv("later", ago=-1, outcome="trap", trap_code="unreachable")])
    text = client.get("/live/stream" + q(since=int(data.NOW * 1e9))).text
    rows = json.loads(text.split("data: ", 1)[1].split("\n", 1)[0])
    assert [(r["function"], r["outcome"], r["trap_code"]) for r in rows] == [("later", "trap", "unreachable")]


# --- Escaping ----------------------------------------------------------------------------------
def test_telemetry_values_are_escaped(c: Client, sc: Scenario) -> None:
    xss = sc.of(XSS_SCRIPT)[0]
    pages = ["/", "/invocations", f"/trace/{xss.trace_id}", "/function" + q(fn=XSS_SCRIPT), "/modules",
             f"/modules/{xss.sha256}", "/live", "/invocations" + q(q=XSS_IMG)]  # fmt: skip
    for url in pages:
        page = ok_html(c, url)
        outside_json = re.sub(r'<script type="application/json"[^>]*>.*?</script>', "", page, flags=re.S)
        assert XSS_SCRIPT not in outside_json, url
        assert XSS_IMG not in page and "<img" not in page, url
        assert str(escape(XSS_SCRIPT)) in page, url
        # JSON blocks never close their own script element early.
        for block in re.findall(r'<script type="application/json"[^>]*>(.*?)</script>', page, re.S):
            assert "<" not in block and json.loads(block) is not None
    trace_page = ok_html(c, f"/trace/{xss.trace_id}")
    assert str(escape(XSS_IMG)) in trace_page  # attribute value, trap code and log line, as text
    assert trace_page.count(str(escape(XSS_IMG))) >= 3


# --- HTTP --------------------------------------------------------------------------------------
def test_static_files_and_headers(c: Client) -> None:
    for path, ctype in [("/static/dashboard.js", "text/javascript"), ("/static/dashboard.css", "text/css"),
                        ("/static/vendor/htmx.min.js", "text/javascript"),
                        ("/static/vendor/uPlot.iife.min.js", "text/javascript")]:  # fmt: skip
        r = c.get(path)
        assert r.status_code == 200 and r.headers["content-type"].startswith(ctype)
        assert r.headers["x-content-type-options"] == "nosniff"
    for bad in ["/static/../app.py", "/static/%2e%2e/app.py", "/static/nope.js", "/static/"]:
        assert c.get(bad).status_code == 404, bad
    assert c.get("/nope").status_code == 404
    assert c.post("/").status_code == 405
    head = c.request("HEAD", "/")
    assert head.status_code == 200 and head.content == b""


def test_csp_has_no_inline_script(c: Client) -> None:
    assert "script-src 'self';" in CSP and "unsafe" not in CSP
    for url in ["/", "/invocations", "/live", "/modules", "/profiles", "/explore", "/store"]:
        page = ok_html(c, url)
        for tag in re.findall(r"<script\b[^>]*>", page):
            assert "src=" in tag or 'type="application/json"' in tag, (url, tag)
        assert not re.search(r"<[^>]*\son[a-z]+=", page), url  # no inline handlers
        assert "style=" not in page, url


def test_without_the_invocations_table_the_numbers_are_the_same(store: Store, chdb_backend: Any) -> None:
    """A store whose wasmscope_invocations is missing (a ClickHouse server we may only
    read) is read through the same rows as a subquery of otel_traces."""
    from tests.collect.dashboard.conftest import seed

    seed(store)
    fast = Client(Dashboard(store, clock=clock))
    fast_rows = ok_json(fast, "/api/functions")["functions"]
    chdb_backend.command(f"DROP VIEW {store.database}.wasmscope_invocations_mv")
    chdb_backend.command(f"DROP TABLE {store.database}.wasmscope_invocations")
    slow_app = Dashboard(store, clock=clock)
    assert slow_app.ctx.db.fast is False
    slow = Client(slow_app)
    assert ok_json(slow, "/api/functions")["functions"] == fast_rows
    assert ok_json(slow, "/api/function" + q(fn="resize"))["summary"]["n"] == 40
    assert {m["name"] for m in ok_json(slow, "/api/modules")["modules"]} >= {"resize.wasm", "hello.wasm"}
    assert ok_json(slow, "/api/invocations" + q(outcome="failed"))["total"] == 7


@pytest.mark.parametrize("url", [
    "/?range=abs&from=99999999999999&to=-1", "/?range=abs&from=2026-13-45", "/?range=%00", "/?fn=%ff%fe",
    "/?service=" + "x" * 5000, "/api/invocations?limit=-5&min_ms=-1&max_ms=1e400", "/api/invocations?before=1:zz",
    "/api/invocations?before=99999999999999999999:ab", "/api/invocations?trace=%27%22", "/trace/%ff%00",
    "/modules/%00", "/api/trace/" + "g" * 32, "/profiles/view?t=99999999999999999999&sha=" + "a" * 64,
    "/api/metric?name=faas.invocations&kind=nope", "/function?fn=resize&sha=%27", "/live/stream?since=abc",
    "/api/invocations?attr==&attr=%3D%3D%3D&attr=a%3D&q=%25%5F",
])  # fmt: skip
def test_bad_input_never_fails_the_server(c: Client, url: str) -> None:
    r = c.get(url)
    assert r.status_code in (200, 400, 404), (url, r.status_code, r.text[:300])
