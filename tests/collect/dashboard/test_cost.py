"""The Cost page over real runs: a WAT guest run under wasmscope's Runtime as three
functions with different memory limits (one right, one at ten times too much, one too
tight), their invocation spans made by the exporters' mapping (``_cost_runs``, in a
process of its own) and written to an embedded store. The page's per-function table is ``wasmscope cost summary``'s for the
same rows (read from the same store), its recommendations are ``cost recommend``'s,
a range past the page's budget is sampled and says so, the URL's choices are checked,
values are escaped and the CSP holds; and the page in chromium."""

from __future__ import annotations

import os
import subprocess
import sys
import threading
import time
import urllib.parse
import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from markupsafe import escape
from opentelemetry.proto.collector.trace.v1.trace_service_pb2 import ExportTraceServiceRequest

from tests.collect.dashboard.conftest import XSS_IMG, XSS_SCRIPT, Client, Scenario, clock
from wasmscope.collect.dashboard import CSP, Dashboard
from wasmscope.collect.receiver.sink import Signal
from wasmscope.collect.store import Store

pytest.importorskip("numpy")

from wasmscope.cost.prices import load_price_sheet
from wasmscope.cost.recommend import recommend_function
from wasmscope.cost.records import read_store
from wasmscope.cost.store_summary import summarize_store
from wasmscope.cost.summary import summarize

MIB = 1 << 20
ROOT = Path(__file__).resolve().parents[3]


def _spans(out: Path) -> ExportTraceServiceRequest:
    """The invocation spans of the real runs (made in a process of their own: see _cost_runs)."""
    env = {**os.environ, "PYTHONPATH": f"{ROOT / 'src'}{os.pathsep}{ROOT}"}
    done = subprocess.run([sys.executable, "-m", "tests.collect.dashboard._cost_runs", str(out)], cwd=ROOT, env=env,
                          capture_output=True, text=True, timeout=600)  # fmt: skip
    assert done.returncode == 0, done.stderr[-2000:]
    return ExportTraceServiceRequest.FromString(out.read_bytes())


@pytest.fixture(scope="module")
def cost_store(chdb_backend: Any, tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[Store, list[dict[str, Any]]]]:
    name = f"t_cost_{uuid.uuid4().hex[:10]}"
    st = Store(chdb_backend, name)
    st.ensure_schema()
    req = _spans(tmp_path_factory.mktemp("cost-guest") / "spans.pb")
    st.write(Signal.TRACES, req)
    spans = [{a.key: getattr(a.value, a.value.WhichOneof("value")) for a in span.attributes}
             for rs in req.resource_spans for ss in rs.scope_spans for span in ss.spans]  # fmt: skip
    yield st, spans
    chdb_backend.command(f"DROP DATABASE IF EXISTS {name}")


@pytest.fixture(scope="module")
def c(cost_store: tuple[Store, list[dict[str, Any]]]) -> Client:
    return Client(Dashboard(cost_store[0], clock=clock))


def q(**kw: Any) -> str:
    return "?" + urllib.parse.urlencode(kw)


def ok_json(c: Client, url: str) -> Any:
    r = c.get(url)
    assert r.status_code == 200, r.text[:800]
    return r.json()


def ok_html(c: Client, url: str) -> str:
    r = c.get(url)
    assert r.status_code == 200, r.text[:800]
    assert r.headers["content-security-policy"] == CSP
    return r.text


def test_the_runs_are_what_the_workload_says(cost_store: tuple[Store, list[dict[str, Any]]]) -> None:
    spans = cost_store[1]
    assert len(spans) == 44 and [s["wasm.outcome"] for s in spans].count("trap") == 2
    tight = [s for s in spans if s["faas.name"] == "tight.wasm"]
    assert len(tight) == 6 and all(s["wasm.memory.peak"] >= 1790 * 65536 for s in tight)
    assert all(s["wasm.cpu.time"] > 0 for s in spans)


@pytest.mark.parametrize(
    ("price", "memory_mb"),
    [
        ("aws-lambda-x86", None),  # the default: each function's limit rounded to a Lambda size
        ("aws-lambda-arm64", 512),
        ("cloud-run", None),
        ("azure-flex", 2048),
        ("cloudflare-workers", None),  # CPU time
        ("azure-consumption", None),  # observed memory
    ],
)
def test_the_table_is_the_summary_of_the_same_rows(
    c: Client, cost_store: tuple[Store, list[dict[str, Any]]], price: str, memory_mb: int | None
) -> None:
    params: dict[str, Any] = {} if price == "aws-lambda-x86" else {"price": price}
    if memory_mb is not None:
        params["memory_mb"] = memory_mb
    doc = ok_json(c, "/api/cost" + (q(**params) if params else ""))
    sheet = load_price_sheet(price)
    summary = summarize(read_store(cost_store[0]), sheet, memory_mb=memory_mb)
    # what `wasmscope cost summary STORE` prints: the summary made in the store
    in_store = summarize_store(cost_store[0], sheet, memory_mb=memory_mb)
    assert [(f.function, f.invocations) for f in in_store.functions] == [(f.function, f.invocations) for f in summary.functions]
    for a, b in zip(in_store.functions, summary.functions, strict=True):
        assert a.cost is not None and b.cost is not None
        assert a.cost.observed == pytest.approx(b.cost.observed, rel=1e-12)
        assert a.cost.per_invocation == pytest.approx(b.cost.per_invocation, rel=1e-12)
    assert doc["price"]["name"] == price and doc["method"] == "rows" and doc["sampled"] == {} and doc["notes"] == []
    assert doc["invocations"] == doc["priced"] == summary.total.invocations == 44
    rows = {r["function"]: r for r in doc["functions"]}
    assert set(rows) == {f.function for f in summary.functions} == {"small.wasm", "fat.wasm", "tight.wasm"}
    for fs in summary.functions:
        row = rows[fs.function]
        assert fs.cost is not None
        assert row["invocations"] == fs.invocations
        assert row["per_invocation"] == pytest.approx(fs.cost.per_invocation, rel=1e-12)
        assert row["per_million"] == pytest.approx(fs.cost.per_million, rel=1e-12)
        assert row["total"] == pytest.approx(fs.cost.observed, rel=1e-12)
        assert row["memory_mb"] == fs.cost.memory_mb
        assert row["unpriced"] == fs.cost.unpriced
    assert summary.total.cost is not None
    assert doc["total"] == pytest.approx(summary.total.cost.observed, rel=1e-12)
    assert sum(r["share"] for r in doc["functions"]) == pytest.approx(1.0)
    totals = [r["total"] for r in doc["functions"]]
    assert totals == sorted(totals, reverse=True)


def test_the_default_memory_is_each_functions_limit(c: Client) -> None:
    rows = {r["function"]: r for r in ok_json(c, "/api/cost")["functions"]}
    assert {fn: (r["memory_mb"], r["memory_source"]) for fn, r in rows.items()} == {
        "small.wasm": (128, "limit"), "fat.wasm": (1024, "limit"), "tight.wasm": (128, "limit")}  # fmt: skip
    given = {r["function"]: r for r in ok_json(c, "/api/cost" + q(memory_mb=1024))["functions"]}
    assert {(r["memory_mb"], r["memory_source"]) for r in given.values()} == {(1024, "given")}


def test_cost_over_time_sums_to_the_table(c: Client) -> None:
    doc = ok_json(c, "/api/cost")
    series = doc["series"]
    assert series["step"] == 30 and len(series["x"]) == 121
    by_fn = {s["label"]: s["values"] for s in series["usd"]}
    for row in doc["functions"]:
        values = by_fn[row["function"]]
        assert len(values) == len(series["x"])
        assert sum(values) == pytest.approx(row["total"], rel=1e-6)
    # the 44 runs are 65 s apart from 3000 s before NOW: each in a 30 s bucket of its own
    assert sum(1 for i in range(len(series["x"])) if any(v[i] for v in by_fn.values())) == 44


def test_recommendations_and_their_evidence(c: Client, cost_store: tuple[Store, list[dict[str, Any]]]) -> None:
    doc = ok_json(c, "/api/cost")
    recs = {r["function"]: r for r in doc["recommendations"]}
    assert {fn: r["finding"] for fn, r in recs.items()} == {
        "small.wasm": "Optimized", "fat.wasm": "MemoryOverprovisioned", "tight.wasm": "MemoryUnderprovisioned"}  # fmt: skip
    fat = recs["fat.wasm"]
    assert fat["configured_mb"] == 1024 and fat["memory_mb"] == 128
    # ~1 ms runs: the request fee is most of the cost, and less memory is less CPU on Lambda
    assert fat["saving_per_million"] > 0 and fat["usd_per_million_recommended"] < fat["usd_per_million_configured"]
    table = read_store(cost_store[0])
    sheet = load_price_sheet("aws-lambda-x86")
    for fn, rec in recs.items():
        want = recommend_function(fn, table.only(fn), sheet, headroom=0.2)
        assert (rec["finding"], rec["memory_mb"], rec["configured_mb"]) == (want.finding, want.memory_mb, want.configured_mb)
        assert rec["saving_per_million"] == pytest.approx(want.saving_per_million)
        # the evidence: the peak distribution of every invocation with a peak, never above the recommendation
        assert sum(b["count"] for b in rec["peak_histogram"]) == len(table.only(fn))
        assert rec["memory_mb"] * MIB >= rec["peak_memory_max"]
    page = ok_html(c, "/cost")
    for finding in ("Optimized", "MemoryOverprovisioned", "MemoryUnderprovisioned"):
        assert f'<span class="badge finding-{finding}">{finding}</span>' in page
    assert page.count('<svg class="hist memory"') == 3
    assert "saves $" in page  # the over-provisioned reason with its saving per million


def test_a_large_range_is_sampled_and_says_so(cost_store: tuple[Store, list[dict[str, Any]]], c: Client) -> None:
    small = Client(Dashboard(cost_store[0], clock=clock, cost_rows=12, cost_shapes=12))
    doc = ok_json(small, "/api/cost")
    exact = {r["function"]: r for r in ok_json(c, "/api/cost")["functions"]}
    assert doc["method"] == "sample" and doc["shapes"] is None  # 44 shapes: one invocation a bucket
    assert doc["invocations"] == 44 and doc["priced"] < 44
    assert set(doc["sampled"]) == {"small.wasm", "fat.wasm", "tight.wasm"}  # 12 / 3 functions: 4 each
    for row in doc["functions"]:
        assert row["invocations"] == exact[row["function"]]["invocations"]  # counted in the store
        assert 0 < row["priced"] < row["invocations"] and row["total"] > 0
        assert row["memory_mb"] == exact[row["function"]]["memory_mb"]
    # the recommendations still see each function's largest peak
    peaks = {r["function"]: r["peak_memory_max"] for r in ok_json(c, "/api/cost")["recommendations"]}
    recs = {r["function"]: r for r in doc["recommendations"]}
    assert {fn: r["peak_memory_max"] for fn, r in recs.items()} == peaks
    assert recs["tight.wasm"]["finding"] == "MemoryUnderprovisioned"
    page = ok_html(small, "/cost")
    assert f"Priced {doc['priced']} of the 44 invocations of the range" in page
    assert "scaled to its exact count" in page


@pytest.mark.parametrize("price", ["aws-lambda-x86", "cloud-run", "azure-consumption"])
def test_past_the_budget_the_billed_shapes_price_it_exactly(
    cost_store: tuple[Store, list[dict[str, Any]]], price: str
) -> None:
    # over 24 h the buckets are 12 minutes: ~11 runs a bucket, whose billed durations repeat
    c = Client(Dashboard(cost_store[0], clock=clock, cost_rows=40, cost_shapes=40))
    doc = ok_json(c, "/api/cost" + q(range="24h", price=price))
    assert doc["method"] == "shapes" and doc["shapes"] <= 40 and doc["sampled"]
    assert doc["invocations"] == doc["priced"] == 44
    summary = summarize(read_store(cost_store[0]), load_price_sheet(price))
    rows = {r["function"]: r for r in doc["functions"]}
    for fs in summary.functions:
        assert fs.cost is not None
        row = rows[fs.function]
        assert (row["invocations"], row["priced"], row["memory_mb"]) == (fs.invocations, fs.invocations, fs.cost.memory_mb)
        assert row["per_invocation"] == pytest.approx(fs.cost.per_invocation, rel=1e-12)
        assert row["total"] == pytest.approx(fs.cost.observed, rel=1e-12)
    # the recommendations from the sampled rows and each function's extremes
    assert doc["recommended_from"] < 44 + 3 * 3
    recs = {r["function"]: r["finding"] for r in doc["recommendations"]}
    assert recs["tight.wasm"] == "MemoryUnderprovisioned" and recs["fat.wasm"] == "MemoryOverprovisioned"
    page = ok_html(c, "/cost" + q(range="24h", price=price))
    assert f"grouped in the store by what {price} bills" in page


def test_the_urls_choices_are_checked(c: Client) -> None:
    doc = ok_json(c, "/api/cost" + q(price="/etc/passwd"))
    assert doc["price"]["name"] == "aws-lambda-x86"
    assert doc["notes"] == ["unknown price sheet '/etc/passwd': using aws-lambda-x86"]
    doc = ok_json(c, "/api/cost" + q(memory_mb="100"))
    assert doc["memory_mb"] is None and doc["notes"] == ["aws-lambda-x86 cannot configure 100 MB: memory_mb ignored"]
    doc = ok_json(c, "/api/cost" + q(memory_mb="junk"))
    assert doc["notes"] == ["memory_mb='junk' is not a size in MB: ignored"]
    doc = ok_json(c, "/api/cost" + q(price="cloudflare-workers", memory_mb=256))
    assert doc["price"]["meter"] == "cpu-time" and doc["memory_mb"] == 256
    assert "does not bill configured memory" in doc["notes"][0]
    # compared with the size asked for: 1 GiB for small.wasm is too much
    recs = {r["function"]: r for r in ok_json(c, "/api/cost" + q(memory_mb=1024))["recommendations"]}
    assert recs["small.wasm"]["finding"] == "MemoryOverprovisioned" and recs["small.wasm"]["configured_mb"] == 1024
    page = ok_html(c, "/cost" + q(price=XSS_SCRIPT, memory_mb=XSS_IMG))
    assert XSS_SCRIPT not in page.split('<script type="application/json"')[0] and XSS_IMG not in page


def test_a_sheet_of_ones_own(cost_store: tuple[Store, list[dict[str, Any]]], tmp_path: Path) -> None:
    from wasmscope.cli import CommandError, build_parser
    from wasmscope.cli.collect import check_price

    own = tmp_path / "own.toml"
    text = (Path(__file__).resolve().parents[3] / "src/wasmscope/cost/data/prices/aws-lambda-x86.toml").read_text()
    own.write_text(text.replace('name = "aws-lambda-x86"', 'name = "my-platform"'))
    assert check_price(str(own)) == str(own) and check_price("cloud-run") == "cloud-run"
    args = build_parser().parse_args(["collect"])
    assert args.price == "aws-lambda-x86"
    bad = tmp_path / "bad.toml"
    bad.write_text('name = "x"\nmeter = "by-the-moon"\n')
    for price, says in (("nope", "unknown price sheet 'nope'"), (str(bad), "bad.toml: `meter` = 'by-the-moon' is unknown")):
        with pytest.raises(CommandError) as info:
            check_price(price)
        assert info.value.code == 2 and says in str(info.value)
    c = Client(Dashboard(cost_store[0], clock=clock, price=str(own)))
    doc = ok_json(c, "/api/cost")
    assert doc["price"]["name"] == "my-platform" and "my-platform" in doc["sheets"] and "cloud-run" in doc["sheets"]
    assert ok_json(c, "/api/cost" + q(price="cloud-run"))["price"]["name"] == "cloud-run"
    assert str(own) not in ok_html(c, "/cost")  # the file is named by its sheet's name only


def test_page_links_escapes_and_keeps_the_csp(shared: tuple[Store, Scenario]) -> None:
    c = Client(Dashboard(shared[0], clock=clock))
    page = ok_html(c, "/cost")
    assert 'href="/cost"' in page and ">Cost</a>" in page  # in the navigation
    assert 'class="active" aria-current="page">Cost</a>' in page
    assert '<a class="function-link" href="/function?fn=resize">resize</a>' in page
    outside_json = page.split('<script type="application/json"')[0]
    assert XSS_SCRIPT not in outside_json and "<img" not in page
    assert str(escape(XSS_SCRIPT)) in page
    assert page.count('data-chart="c-cost"') == 1
    assert "Priced every invocation of the range (62)" in page
    # the filters narrow it as on every page
    doc = ok_json(c, "/api/cost" + q(service="edge"))
    assert [r["function"] for r in doc["functions"]] == ["hello"] and doc["invocations"] == 20


def test_an_empty_store_says_how_to_fill_it(chdb_backend: Any, database: str) -> None:
    st = Store(chdb_backend, database)
    st.ensure_schema()
    c = Client(Dashboard(st, clock=clock))
    assert "No invocation in this range" in ok_html(c, "/cost")
    doc = ok_json(c, "/api/cost")
    assert doc["functions"] == [] and doc["total"] == 0 and doc["recommendations"] == []


# --- in chromium ---------------------------------------------------------------------------------
def test_cost_page_in_chromium(cost_store: tuple[Store, list[dict[str, Any]]]) -> None:
    from tests.collect.dashboard import test_browser as tb

    if not Path(tb.CHROMIUM).exists():
        pytest.skip("needs Debian chromium")
    import uvicorn
    from playwright.sync_api import sync_playwright

    app = Dashboard(cost_store[0], clock=clock, live_poll=0.1, live_lifetime=3.0)
    port = tb._free_port()
    srv = uvicorn.Server(uvicorn.Config(app, host="127.0.0.1", port=port, log_level="warning", lifespan="off"))
    thread = threading.Thread(target=srv.run, daemon=True)
    thread.start()
    deadline = time.monotonic() + 20  # a guard against a hang, not a measurement
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
                page.get_by_role("link", name="Cost", exact=True).click()
                page.wait_for_url("**/cost*")
                assert page.locator("figure.chart .uplot canvas").count() == 1
                assert page.locator("table.cost tbody tr").count() == 3
                assert page.locator("article.rec").count() == 3
                tb._check(page, watch, "30-cost")
                page.locator("select[name=price]").select_option("cloud-run")
                page.get_by_role("button", name="Price", exact=True).click()
                page.wait_for_url("**/cost?*price=cloud-run*")
                assert page.locator(".card .value", has_text="cloud-run").count() == 1
                tb._check(page, watch, "31-cost-cloud-run")
                page.locator("table.cost a.function-link", has_text="fat.wasm").click()
                page.wait_for_url("**/function?*fn=fat.wasm*")
                assert page.locator("svg.hist .limit").count() == 2  # fuel and memory limits drawn
                tb._check(page, watch, "32-cost-function")
            finally:
                browser.close()
    finally:
        srv.should_exit = True
        thread.join(10)
