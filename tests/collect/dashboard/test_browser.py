"""The dashboard in Debian's chromium (Playwright), served by uvicorn on 127.0.0.1.

Every page opens without a console error or a CSP violation, the path Functions ->
function -> Invocations -> Trace is followed by clicks, the live tail shows an
invocation written while it is open, and the XSS strings in names, attributes and log
lines stay text (no dialog, no injected element). Screenshots go to
/tmp/dashboard-shots/.
"""

from __future__ import annotations

import socket
import threading
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

pytest.importorskip("playwright")
pytest.importorskip("uvicorn")

import uvicorn
from playwright.sync_api import Page, sync_playwright

from tests.collect.dashboard import data
from tests.collect.dashboard.conftest import XSS_IMG, XSS_SCRIPT, Scenario, clock
from tests.collect.dashboard.data import Inv
from wasmscope.collect.dashboard import Dashboard
from wasmscope.collect.store import Store

CHROMIUM = "/usr/bin/chromium"
ARGS = ["--no-sandbox", "--headless", "--disable-gpu", "--disable-background-networking",
        "--disable-component-update", "--disable-sync", "--no-first-run"]  # fmt: skip
SHOTS = Path("/tmp/dashboard-shots")

pytestmark = pytest.mark.skipif(not Path(CHROMIUM).exists(), reason="needs Debian chromium")

# Runs in the page before its own scripts: records CSP violations and injected elements.
WATCH = """
window.__csp = [];
document.addEventListener('securitypolicyviolation', e => window.__csp.push(e.violatedDirective + ' ' + e.blockedURI));
"""


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


@pytest.fixture
def server(store: Store, seeded: Scenario) -> Iterator[str]:
    app = Dashboard(store, clock=clock, live_poll=0.1, live_lifetime=3.0)
    port = _free_port()
    config = uvicorn.Config(app, host="127.0.0.1", port=port, log_level="warning", lifespan="off")
    srv = uvicorn.Server(config)
    thread = threading.Thread(target=srv.run, daemon=True)
    thread.start()
    deadline = time.monotonic() + 120  # a guard against a hang, not a measurement
    while not srv.started:
        assert thread.is_alive() and time.monotonic() < deadline, "uvicorn did not start"
        time.sleep(0.02)
    yield f"http://127.0.0.1:{port}"
    srv.should_exit = True
    thread.join(10)


class Watch:
    def __init__(self, page: Page) -> None:
        self.errors: list[str] = []
        self.dialogs: list[str] = []
        page.on("console", lambda m: self.errors.append(m.text) if m.type == "error" else None)
        page.on("pageerror", lambda e: self.errors.append(str(e)))
        page.on("dialog", self._dialog)
        page.add_init_script(WATCH)

    def _dialog(self, dialog: Any) -> None:
        self.dialogs.append(dialog.message)
        dialog.dismiss()


def _check(page: Page, watch: Watch, name: str) -> None:
    page.wait_for_load_state("networkidle")
    SHOTS.mkdir(parents=True, exist_ok=True)
    page.screenshot(path=str(SHOTS / f"{name}.png"), full_page=True)
    csp = page.evaluate("window.__csp")
    assert csp == [], f"{name}: CSP violations {csp}"
    assert watch.errors == [], f"{name}: console errors {watch.errors}"
    assert watch.dialogs == [], f"{name}: a dialog fired {watch.dialogs}"
    injected = page.evaluate(
        "() => [document.querySelectorAll('img[src=\"x\"]').length,"
        " [...document.scripts].filter(s => !s.src && s.type !== 'application/json').length]"
    )
    assert injected == [0, 0], f"{name}: injected elements {injected}"


def test_every_page_in_chromium(server: str, seeded: Scenario, store: Store) -> None:
    resize = seeded.of("resize")
    with sync_playwright() as pw:
        browser = pw.chromium.launch(executable_path=CHROMIUM, args=ARGS)
        try:
            page = browser.new_page(viewport={"width": 1440, "height": 900})
            watch = Watch(page)

            # Functions -> function -> Invocations -> Trace, by clicks.
            page.goto(server + "/")
            assert page.locator("figure.chart .uplot canvas").count() >= 3
            assert page.locator("table.functions tbody tr").count() == 4
            assert page.get_by_text(XSS_SCRIPT, exact=True).count() >= 1  # shown as text
            _check(page, watch, "01-functions")
            page.locator("table.functions a", has_text="resize").first.click()
            page.wait_for_url("**/function?*")
            assert page.locator("svg.hist .limit").count() == 2  # fuel and memory limits drawn
            assert page.get_by_text("src/resize.rs:88").count() >= 1
            _check(page, watch, "02-function")
            page.get_by_role("link", name="Invocations →").click()
            page.wait_for_url("**/invocations?*")
            assert page.locator("table.invocations tbody tr").count() == 40
            _check(page, watch, "03-invocations")
            failed = next(i for i in resize if i.outcome == "trap")
            page.locator(f"a.trace-link[href^='/trace/{failed.trace_id}']").click()
            page.wait_for_url(f"**/trace/{failed.trace_id}*")
            assert page.locator(".wf-row").count() == 3
            assert page.locator("ol.stack li").first.inner_text() == "resize_rows (src/resize.rs:88)"
            _check(page, watch, "04-trace")

            # The XSS invocation's own trace and its search: its strings are text.
            xss = seeded.of(XSS_SCRIPT)[0]
            page.goto(f"{server}/trace/{xss.trace_id}")
            assert page.get_by_text(XSS_IMG).count() >= 1
            _check(page, watch, "05-trace-xss")
            page.goto(server + "/invocations?q=" + "onerror")
            assert page.locator("table.invocations tbody tr").count() == 1
            _check(page, watch, "06-invocations-search")

            for path, name in [("/modules", "07-modules"), (f"/modules/{data.sha_of('resize.wasm')}", "08-module"),
                               (f"/modules/{xss.sha256}", "09-module-xss"), ("/profiles", "10-profiles"),
                               ("/explore?name=faas.invocations&kind=sum", "12-metrics"),
                               ("/explore?name=faas.invoke_duration&kind=histogram", "13-metrics-histogram"),
                               ("/store", "14-store"), ("/cost", "16-cost")]:  # fmt: skip
                page.goto(server + path)
                _check(page, watch, name)
            page.goto(server + "/profiles")
            page.locator("table.data tbody a").first.click()
            page.wait_for_url("**/profiles/view?*")
            assert page.locator("svg.flame-svg rect").count() >= 5
            page.locator("svg.flame-svg g", has_text="resize_rows").first.click()  # zoom in
            _check(page, watch, "11-profile")

            # Live tail: an invocation written while the page is open appears.
            page.goto(server + "/live")
            page.wait_for_selector("#live-state.on")
            store.write(data.Signal.TRACES, data.traces_request([Inv("arrived-live", ago=-5, duration_ms=7.0)]))
            page.wait_for_selector("#live-rows tr:has-text('arrived-live')", timeout=10_000)
            page.locator("#live-toggle").click()
            assert page.locator("#live-state").inner_text() == "paused"
            _check(page, watch, "15-live")
        finally:
            browser.close()
