"""The Security page over real security events: invocations recorded and findings
emitted by :class:`Telemetry` (the SDK pipeline of ``wasmscope run``), sent over
OTLP/HTTP to the collect receiver under uvicorn, and what it received written to the
store as ``wasmscope collect`` does. The numbers shown are those emitted, each event
links to its invocation and its trace, the filters narrow, values are escaped, the CSP
holds; and the page in chromium."""

from __future__ import annotations

import threading
import time
import urllib.parse
import uuid
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pytest
from markupsafe import escape

from tests.collect.dashboard.conftest import XSS_IMG, XSS_SCRIPT, Client, clock
from tests.collect.dashboard.data import NOW, NS
from tests.guard import findings_data as fd
from tests.guard.support import sdk_log_filters_kept
from tests.telemetry.records import make_record
from wasmscope.collect.dashboard import CSP, Dashboard
from wasmscope.collect.receiver.sink import InMemorySink
from wasmscope.collect.store import Store
from wasmscope.guard.findings import EventName, Finding, Outcome, Severity
from wasmscope.runtime.record import InvocationRecord
from wasmscope.telemetry import Telemetry

pytest.importorskip("uvicorn")


def xss_finding() -> Finding:
    return Finding(EventName.VIOLATION, "fs.path", Severity.WARN, f"opened {XSS_SCRIPT}", "filesystem",
                   Outcome.ALLOWED, target=XSS_IMG, suggestion=f'filesystem.read = ["{XSS_SCRIPT}"]')  # fmt: skip


@dataclass
class Seeded:
    """What was emitted: per invocation its record, findings and trace id."""

    runs: list[tuple[InvocationRecord, list[Finding], str]] = field(default_factory=list)


def _runs() -> list[tuple[InvocationRecord, list[Finding]]]:
    out: list[tuple[InvocationRecord, list[Finding]]] = []
    # reader.wasm: 12 runs over the last 40 minutes, each denied /etc/passwd; every third also an env violation
    for i in range(12):
        fs = [fd.passwd_denied()] + ([fd.env_violation()] if i % 3 == 0 else [])
        out.append((make_record(invocation_id=f"reader-{i}", name="reader.wasm",
                                start_ns=int((NOW - 2400 + i * 200) * NS)), fs))  # fmt: skip
    # worker.wasm: 5 runs with a fuel anomaly, 2 with a sequence anomaly
    for i in range(5):
        fs = [fd.fuel_anomaly()] + ([fd.sequence_anomaly()] if i < 2 else [])
        out.append((make_record(invocation_id=f"worker-{i}", name="worker.wasm",
                                start_ns=int((NOW - 1500 + i * 100) * NS)), fs))  # fmt: skip
    # a hostile module name and finding
    out.append((make_record(invocation_id="xss-0", name=XSS_IMG + ".wasm", start_ns=int((NOW - 300) * NS)),
                [xss_finding()]))  # fmt: skip
    # an invocation with no finding: no event
    out.append(
        (
            make_record(
                invocation_id="clean-0", name="reader.wasm", start_ns=int((NOW - 200) * NS)
            ),
            [],
        )
    )
    return out


def seed(store: Store) -> Seeded:
    from tests.collect.receiver.serving import serve
    from wasmscope.collect.receiver.http import OtlpHttpApp

    sink = InMemorySink()
    seeded = Seeded()
    with sdk_log_filters_kept(), serve(OtlpHttpApp(sink)) as url:
        tel = Telemetry.from_options(otlp=url, service_name="guarded")
        for rec, findings in _runs():
            trace_id = tel.record_invocation(rec)
            assert tel.emit_findings(rec, findings) == len(findings)
            seeded.runs.append((rec, findings, trace_id))
        assert tel.shutdown(timeout=20)
        assert tel.stats.failed() == 0, tel.stats
    for signal, request, _ in sink.requests:
        store.write(signal, request)
    return seeded


@pytest.fixture(scope="module")
def security_store(chdb_backend: Any) -> Iterator[tuple[Store, Seeded]]:
    name = f"t_sec_{uuid.uuid4().hex[:10]}"
    st = Store(chdb_backend, name)
    st.ensure_schema()
    yield st, seed(st)
    chdb_backend.command(f"DROP DATABASE IF EXISTS {name}")


@pytest.fixture(scope="module")
def c(security_store: tuple[Store, Seeded]) -> Client:
    return Client(Dashboard(security_store[0], clock=clock, live_poll=0.01, live_lifetime=0.0))


@pytest.fixture(scope="module")
def seeded(security_store: tuple[Store, Seeded]) -> Seeded:
    return security_store[1]


def q(**kw: Any) -> str:
    return "?" + urllib.parse.urlencode(kw, doseq=True)


def ok_json(c: Client, url: str) -> Any:
    r = c.get(url)
    assert r.status_code == 200, r.text[:500]
    return r.json()


def ok_html(c: Client, url: str) -> str:
    r = c.get(url)
    assert r.status_code == 200, r.text[:800]
    assert r.headers["content-security-policy"] == CSP
    return r.text


def test_counts_and_series_are_what_was_emitted(c: Client, seeded: Seeded) -> None:
    doc = ok_json(c, "/api/security")
    total = sum(len(fs) for _, fs, _ in seeded.runs)
    assert total == 12 + 4 + 5 + 2 + 1
    s = doc["summary"]
    assert (
        s["n"] == total and s["alerts"] == total
    )  # every one of these is a denial, violation or anomaly
    assert s["modules"] == 3 and s["rules"] == [
        "anomaly.fuel",
        "anomaly.sequence",
        "env.variable",
        "fs.path",
    ]
    assert s["names"] == ["wasm.anomaly.detected", "wasm.policy.denied", "wasm.policy.violation"]
    step = doc["by_rule"]["step"]
    by_rule = {k: round(sum(v)) for k, v in doc["by_rule"]["series"].items()}
    assert by_rule == {"fs.path": 13, "anomaly.fuel": 5, "env.variable": 4, "anomaly.sequence": 2}
    assert doc["by_module"]["total"] == total
    assert {k: round(sum(v)) for k, v in doc["by_module"]["series"].items()} == {
        "reader.wasm": 16, "worker.wasm": 7, XSS_IMG + ".wasm": 1}  # fmt: skip
    assert step == 30
    rows = doc["rows"]
    assert len(rows) == total and [r["ts_ns"] for r in rows] == sorted(
        (r["ts_ns"] for r in rows), reverse=True
    )


def test_each_event_carries_its_invocation_and_trace(c: Client, seeded: Seeded) -> None:
    rows = ok_json(c, "/api/security" + q(rule="fs.path", module="reader.wasm"))["rows"]
    assert len(rows) == 12
    trace_of = {rec.invocation_id: tid for rec, _, tid in seeded.runs}
    for r in rows:
        assert r["trace_id"] == trace_of[r["invocation_id"]]
        assert (
            r["event_name"] == "wasm.policy.denied"
            and r["severity"] == "ERROR"
            and r["kind"] == "alert"
        )
        assert (
            r["target"] == "/etc/passwd" and r["suggestion"] == 'filesystem.read = ["/etc/passwd"]'
        )
        assert r["service"] == "guarded" and r["function"] == "reader.wasm"
    # the invocation link finds the invocation, the trace link its trace with the event in it
    first = rows[0]
    inv = ok_json(c, "/api/invocations" + q(attr=f"faas.invocation_id={first['invocation_id']}"))
    assert inv["total"] == 1 and inv["rows"][0]["trace_id"] == first["trace_id"]
    trace = ok_json(c, f"/api/trace/{first['trace_id']}")
    assert any(
        line["body"] == "path_open of /etc/passwd denied by the policy" for line in trace["logs"]
    )
    page = ok_html(c, f"/trace/{first['trace_id']}")
    assert '<span class="chip s-security">security</span>' in page
    assert "wasm.policy.denied — path_open of /etc/passwd denied by the policy" in page


def test_the_event_name_column_is_what_is_queried(
    c: Client, security_store: tuple[Store, Seeded]
) -> None:
    store = security_store[0]
    names = store.backend.query(
        f"SELECT EventName, count() FROM {store.database}.otel_logs WHERE EventName != '' GROUP BY EventName ORDER BY 1"
    ).rows
    assert [(str(n), int(k)) for n, k in names] == [("wasm.anomaly.detected", 7), ("wasm.policy.denied", 12),
                                                    ("wasm.policy.violation", 5)]  # fmt: skip


@pytest.mark.parametrize(
    ("query", "n"),
    [
        ({"module": "worker.wasm"}, 7),
        ({"module": fd.passwd_denied().rule}, 0),
        ({"rule": "env.variable"}, 4),
        ({"event": "wasm.anomaly.detected"}, 7),
        ({"event": "wasm.anomaly.detected", "rule": "anomaly.sequence"}, 2),
        ({"fn": "worker.wasm"}, 7),
        ({"service": "elsewhere"}, 0),
        (
            {"range": "15m"},
            6,
        ),  # the last 4 reader runs (one with an env violation) and the hostile one
    ],
)
def test_filters(c: Client, query: dict[str, str], n: int) -> None:
    doc = ok_json(c, "/api/security" + q(**query))
    assert doc["summary"]["n"] == n and len(doc["rows"]) == n


def test_module_filter_takes_the_sha256_too(c: Client, seeded: Seeded) -> None:
    rec = next(r for r, fs, _ in seeded.runs if r.module.name == "worker.wasm")
    # the test records all have one sha256: every event is that module's
    assert ok_json(c, "/api/security" + q(module=rec.module.sha256))["summary"]["n"] == 24
    assert ok_json(c, "/api/security" + q(module="0" * 64))["summary"]["n"] == 0


def test_pagination_with_a_cursor(c: Client) -> None:
    first = ok_json(c, "/api/security" + q(limit=10))
    assert len(first["rows"]) == 10 and first["next"]
    second = ok_json(c, "/api/security" + q(limit=10, before=first["next"]))
    assert len(second["rows"]) == 10
    assert second["rows"][0]["ts_ns"] <= first["rows"][-1]["ts_ns"]
    ids = {(r["ts_ns"], r["trace_id"]) for r in first["rows"]} & {
        (r["ts_ns"], r["trace_id"]) for r in second["rows"]
    }
    assert not ids


def test_page_links_escapes_and_keeps_the_csp(c: Client, seeded: Seeded) -> None:
    page = ok_html(c, "/security")
    assert 'href="/security' in page and ">Security</a>" in page  # in the navigation
    assert page.count('class="trace-link"') == 24 and page.count('class="invocation-link"') == 24
    trace_id = next(tid for rec, _, tid in seeded.runs if rec.invocation_id == "reader-11")
    assert f'href="/trace/{trace_id}"' in page
    assert 'href="/invocations?attr=faas.invocation_id%3Dreader-11"' in page
    assert str(escape('filesystem.read = ["/etc/passwd"]')) in page
    # hostile values stay text
    outside_json = page.split('<script type="application/json"')[0]
    assert XSS_SCRIPT not in outside_json and XSS_IMG not in page and "<img" not in page
    assert (
        str(escape(XSS_IMG)) in page and str(escape(f'filesystem.read = ["{XSS_SCRIPT}"]')) in page
    )
    assert page.count('data-chart="c-sec-') == 2


def test_bad_input_is_ignored_or_explained(c: Client) -> None:
    doc = ok_json(c, "/api/security" + q(event="nope", before="junk", limit="x"))
    assert doc["notes"] == ["unknown event name 'nope'"] and doc["summary"]["n"] == 24
    page = ok_html(c, "/security" + q(module="' OR 1=1; --", rule=XSS_SCRIPT))
    assert "No security event in this range with these filters" in page


def test_an_empty_store_says_how_to_fill_it(chdb_backend: Any, database: str) -> None:
    st = Store(chdb_backend, database)
    st.ensure_schema()
    page = ok_html(Client(Dashboard(st, clock=clock)), "/security")
    assert "No security event in this range" in page


# --- in chromium ---------------------------------------------------------------------------------
def test_security_page_in_chromium(security_store: tuple[Store, Seeded], seeded: Seeded) -> None:
    from tests.collect.dashboard import test_browser as tb

    if not Path(tb.CHROMIUM).exists():
        pytest.skip("needs Debian chromium")
    import uvicorn
    from playwright.sync_api import sync_playwright

    app = Dashboard(security_store[0], clock=clock, live_poll=0.1, live_lifetime=3.0)
    port = tb._free_port()
    srv = uvicorn.Server(
        uvicorn.Config(app, host="127.0.0.1", port=port, log_level="warning", lifespan="off")
    )
    thread = threading.Thread(target=srv.run, daemon=True)
    thread.start()
    deadline = time.monotonic() + 20
    while not srv.started:
        assert thread.is_alive() and time.monotonic() < deadline, "uvicorn did not start"
        time.sleep(0.02)
    base = f"http://127.0.0.1:{port}"
    try:
        with sync_playwright() as pw:
            browser = pw.chromium.launch(executable_path=tb.CHROMIUM, args=tb.ARGS)
            try:
                page = browser.new_page(viewport={"width": 1440, "height": 900})
                watch = tb.Watch(page)
                page.goto(base + "/")
                page.get_by_role("link", name="Security").click()
                page.wait_for_url("**/security*")
                assert page.locator("figure.chart .uplot canvas").count() == 2
                assert page.locator("table.security tbody tr").count() == 24
                assert page.get_by_text(XSS_IMG, exact=True).count() >= 1  # shown as text
                tb._check(page, watch, "20-security")
                page.locator("table.security a", has_text="worker.wasm").first.click()
                page.wait_for_url("**/security?*module=worker.wasm*")
                assert page.locator("table.security tbody tr").count() == 7
                tb._check(page, watch, "21-security-module")
                trace_id = next(
                    tid for rec, _, tid in seeded.runs if rec.invocation_id == "worker-4"
                )
                page.locator(f"a.trace-link[href^='/trace/{trace_id}']").first.click()
                page.wait_for_url(f"**/trace/{trace_id}*")
                assert page.get_by_text("fuel 2400000 is 9.1 MADs above the median").count() >= 1
                tb._check(page, watch, "22-security-trace")
            finally:
                browser.close()
    finally:
        srv.should_exit = True
        thread.join(10)
