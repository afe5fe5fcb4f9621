"""The web page in headless Chromium against the whole simulated stack.

Live values, a relay command with the token dialog, the history chart, the phone layout, and
not one console error. Screenshots go to tests/artifacts/ (gitignored) for a human to look at.
"""

from __future__ import annotations

import json
import re
import time
from collections.abc import Callable, Iterator
from pathlib import Path

import httpx
import pytest
from playwright.sync_api import Browser, ConsoleMessage, Page, Route, sync_playwright
from playwright.sync_api import Error as PlaywrightError

from tests.api.alone import run_api
from tests.api.conftest import Stack, wait_until
from tests.api.test_automation import SECTIONS, STATE, put
from tests.api.test_automation import TOKEN as AUTO_TOKEN
from tests.conftest import ROOT, Broker, Watcher

CHROMIUM = Path("/usr/bin/chromium")
ARTIFACTS = ROOT / "tests" / "artifacts"
ARGS = ["--no-sandbox", "--disable-gpu", "--disable-background-networking",
        "--disable-component-update", "--disable-sync", "--no-first-run"]
HISTORY_SERIES = "teleinfo/linky/apparent_power_va"

pytestmark = pytest.mark.skipif(
    not CHROMIUM.exists(), reason="/usr/bin/chromium is missing (`make test` installs it)"
)


@pytest.fixture(scope="module")
def browser() -> Iterator[Browser]:
    with sync_playwright() as p:
        b = p.chromium.launch(executable_path=str(CHROMIUM), headless=True, args=ARGS)
        try:
            yield b
        finally:
            b.close()


# Chromium also logs a CSP refusal as a console error; this names the directive for sure.
CSP_SPY = ("window.__csp = []; document.addEventListener('securitypolicyviolation',"
           " (e) => window.__csp.push(`${e.violatedDirective} ${e.blockedURI}`));")


class Console:
    """Every console error, uncaught exception and CSP violation of a page."""

    def __init__(self, page: Page) -> None:
        self.errors: list[str] = []
        self.page = page
        page.add_init_script(CSP_SPY)
        page.on("console", self._console)
        page.on("pageerror", self._page_error)

    def csp_violations(self) -> list[str]:
        """What the page's Content-Security-Policy refused so far."""
        found: list[str] = self.page.evaluate("window.__csp || []")
        return found

    def _console(self, msg: ConsoleMessage) -> None:
        if msg.type == "error":
            self.errors.append(f"console: {msg.text} ({msg.location})")

    def _page_error(self, exc: PlaywrightError) -> None:
        self.errors.append(f"pageerror: {exc}")


def number(text: str) -> float:
    """'1 234 VA' (French grouping with narrow spaces) -> 1234.0."""
    digits = re.sub(r"[^\d,.-]", "", text).replace(",", ".")
    assert digits, f"no number in {text!r}"
    return float(digits)


def relays(stack: Stack) -> dict[str, dict[str, object]]:
    """Relay id -> its state object, from the API."""
    answer = httpx.get(f"{stack.url}/api/relays", timeout=5).json()
    return {r["id"]: r["state"] or {} for r in answer}


def nothing_shed(stack: Stack) -> bool:
    """No load shed right now: a command's effect is then visible (shed wins over it)."""
    state = httpx.get(f"{stack.url}/api/state", timeout=5).json()
    shed = (state.get("shedding") or {}).get("shed") or []
    return not shed and not any(s.get("shed") for s in relays(stack).values())


def history_has_points(stack: Stack) -> bool:
    """The historian has written at least one minute of the meter's apparent power."""
    now = time.time()
    r = httpx.get(f"{stack.url}/api/history", timeout=5, params={
        "service": "teleinfo", "device": "linky", "field": "apparent_power_va",
        "start": now - 86400, "end": now, "step": 60})
    return r.status_code == 200 and any(p[2] is not None for p in r.json()["points"])


@pytest.mark.timeout(300)
def test_page_live_values_commands_and_history(stack: Stack, browser: Browser) -> None:
    ARTIFACTS.mkdir(parents=True, exist_ok=True)
    # A browser in another zone than the box: the hours shown are still the box's.
    context = browser.new_context(viewport={"width": 1280, "height": 900}, locale="fr-FR",
                                  timezone_id="America/New_York")
    page = context.new_page()
    console = Console(page)
    try:
        page.goto(f"{stack.url}/")
        page.wait_for_selector("#ws-status[data-state='connected']", state="attached",
                               timeout=15_000)
        assert page.is_hidden("#ws-status")

        # Live values: numbers that move as the simulated meter plays its profile (drawing
        # or, at midday, feeding in: then the import stays 0 and the export moves).
        grid = page.locator("#grid-import")
        page.wait_for_function(
            "() => /\\d/.test(document.querySelector('#grid-import').textContent)",
            timeout=15_000)
        first = [page.get_attribute(f"#grid-{way}", "data-value") for way in ("import", "export")]
        page.wait_for_function(
            "(v) => ['import', 'export'].some((way, i) => {"
            " const t = document.querySelector('#grid-' + way).dataset.value;"
            " return t !== undefined && t !== '' && t !== v[i]; })", arg=first, timeout=15_000)
        assert "VA" in grid.inner_text()
        assert page.inner_text("#tariff-period").strip() not in ("", "—")
        assert page.get_attribute("#tempo-today", "data-colour") in ("blue", "white", "red")
        assert re.search(r"\d", page.inner_text("#battery-soc"))
        assert re.search(r"\d", page.inner_text("#pv-power"))

        # Commands: shedding overrides them, so act while nothing is shed (the simulated
        # peak sheds for about a minute in every ten).
        wait_until(lambda: nothing_shed(stack), 120)
        before = relays(stack)
        order = "hors-gel" if before["living"].get("order") == "eco" else "eco"
        living = page.locator('[data-relay="living"]')
        living.locator("select[data-order]").select_option(order)
        # First write: the page asks for the token once, in its own dialog.
        page.wait_for_selector("#token-dialog[open]", timeout=5_000)
        page.fill("#token-input", stack.token)
        page.click("#token-ok")
        living.locator(f'[data-relay-state="{order}"]').wait_for(timeout=10_000)
        assert living.locator("[data-relay-error]").inner_text() == ""

        target = "off" if before["water-heater"].get("state") == "on" else "on"
        heater = page.locator('[data-relay="water-heater"]')
        heater.locator(f'[data-command="{target}"]').click()
        heater.locator(f'[data-relay-state="{target}"]').wait_for(timeout=10_000)
        # The state comes over the WebSocket before the POST's answer: wait for that too.
        page.wait_for_function("() => !document.querySelector('.relay.busy')", timeout=10_000)
        assert heater.locator(f'[data-command="{target}"]').get_attribute("aria-pressed") == "true"
        assert page.locator("[data-relay-error]:not(:empty)").count() == 0
        assert page.is_hidden("#token-dialog")  # the stored token was reused
        assert page.evaluate("localStorage.getItem('enerbox.token')") == stack.token

        # History: once the historian has written a minute, the day chart has data.
        wait_until(lambda: history_has_points(stack), 150)
        page.click('[data-range="day"]')
        chart = page.locator("#history-chart")
        page.wait_for_function(
            "() => Number(document.querySelector('#history-chart').dataset.points) > 0",
            timeout=15_000)
        assert chart.get_attribute("data-series") == HISTORY_SERIES
        assert chart.locator("canvas").count() >= 1
        assert page.locator("#daily-table tbody tr").count() >= 1

        # Labels in the chooser, a proper plural, French event lines.
        assert "apparent_power_va" not in page.inner_text("#history-field")
        assert " 1 points" not in page.inner_text("#history-status")
        page.wait_for_function("() => Number(document.querySelector('#hourly-chart')"
                               ".dataset.hours) > 0", timeout=15_000)
        assert page.locator("[data-compare='production_wh']").count() == 1
        assert page.locator("#hourly-chart .hb-axis").first.text_content() == "0 h"
        bad = httpx.get(f"{stack.url}/api/energy/hourly", params={"date": "02/12"}, timeout=5)
        assert bad.status_code == 400 and "YYYY-MM-DD" in bad.json()["detail"]
        page.screenshot(path=str(ARTIFACTS / "page.png"), full_page=True)
        assert console.errors == []
        assert console.csp_violations() == []
    finally:
        context.close()
        for relay in ("living", "water-heater"):  # back to auto for whoever comes next
            httpx.post(f"{stack.url}/api/relays/{relay}", json={"mode": "auto"},
                       headers=stack.auth, timeout=10)


# Sums every layout shift not caused by input, from the first paint on.
CLS_SPY = ("window.__cls = 0; new PerformanceObserver((list) => { for (const e of"
           " list.getEntries()) if (!e.hadRecentInput) window.__cls += e.value; })"
           ".observe({type: 'layout-shift', buffered: true});")
# Whether the connection banner was ever shown: on a prompt connection it must not flash
# (shown then hidden, it moved the whole page twice: Lighthouse's CLS 0.1).
BANNER_SPY = ("document.addEventListener('DOMContentLoaded', () => {"
              " const b = document.getElementById('ws-status'); window.__banner = !b.hidden;"
              " new MutationObserver(() => { if (!b.hidden) window.__banner = true; })"
              ".observe(b, {attributes: true}); });")
# Every visible button, select and checkbox label shorter than a finger (44 px).
SMALL_TARGETS = """() => [...document.querySelectorAll(
    'button, select, label.for-hour, .auto-switch')]
  .filter((e) => e.offsetParent !== null && e.getBoundingClientRect().height < 44)
  .map((e) => `${e.textContent.trim().slice(0, 20)} ${e.getBoundingClientRect().height}`)"""


# Elements of a relay card wider than the card (a label pushed out by its neighbour).
STICKING_OUT = """() => [...document.querySelectorAll('[data-relay]')].flatMap((card) => {
  const edge = card.getBoundingClientRect().right + 1;
  return [...card.querySelectorAll('*')]
    .filter((e) => e.getClientRects().length && e.getBoundingClientRect().right > edge)
    .map((e) => `${card.dataset.relay}: ${e.className || e.tagName}`);
})"""


def test_page_on_a_phone(stack: Stack, browser: Browser) -> None:
    context = browser.new_context(viewport={"width": 375, "height": 812}, locale="fr-FR",
                                  is_mobile=True, has_touch=True, device_scale_factor=2)
    page = context.new_page()
    page.add_init_script(CLS_SPY)
    page.add_init_script(BANNER_SPY)
    console = Console(page)
    try:
        page.goto(f"{stack.url}/")
        # The flows' picture draws what the box has data for: the simulated home has all.
        page.wait_for_function("() => document.querySelector('#flow').dataset.nodes"
                               ".split(' ').length === 5", timeout=15_000)
        page.wait_for_selector("[data-relay='living'] [data-relay-state]", timeout=15_000)
        page.wait_for_function(
            "() => /\\d/.test(document.querySelector('#grid-import').textContent)",
            timeout=15_000)
        # One column, and nothing wider than the screen (the daily table scrolls inside).
        boxes = [page.locator(s).bounding_box() for s in ("#overview", "#relays", "#today")]
        assert all(b is not None for b in boxes)
        lefts = {round(b["x"]) for b in boxes if b is not None}
        assert len(lefts) == 1, lefts
        assert page.evaluate("document.documentElement.scrollWidth") <= 375
        page.wait_for_selector("#daily-table tbody tr[data-day]", timeout=15_000)
        wrap = page.evaluate("[document.querySelector('.table-wrap').scrollWidth,"
                             " document.querySelector('.table-wrap').clientWidth]")
        assert wrap[0] <= wrap[1], f"the 30-day table scrolls sideways: {wrap}"
        assert page.evaluate(SMALL_TARGETS) == []
        assert page.evaluate(STICKING_OUT) == []
        # The tiles, cards and charts kept their room while the live data came in.
        assert page.evaluate("window.__cls") < 0.1
        assert page.evaluate("window.__banner") is False
        assert re.search(r"Compteur : \d\d:\d\d", page.inner_text("#meter-clock"))
        page.wait_for_timeout(1000)  # let the chart and the energy table settle
        ARTIFACTS.mkdir(parents=True, exist_ok=True)
        page.screenshot(path=str(ARTIFACTS / "page-phone.png"), full_page=True)
        assert console.errors == []
        assert console.csp_violations() == []
    finally:
        context.close()


def test_docs_render_offline_under_their_csp(stack: Stack, browser: Browser) -> None:
    context = browser.new_context(viewport={"width": 1280, "height": 900})
    page = context.new_page()
    console = Console(page)
    elsewhere: list[str] = []

    def refuse(route: Route) -> None:  # a CDN request would fail offline: record it
        elsewhere.append(route.request.url)
        route.abort()

    page.route(re.compile(r"^https?://(?!127\.0\.0\.1)"), refuse)
    try:
        page.goto(f"{stack.url}/docs")
        page.wait_for_selector("#operations-default-get_state_api_state_get", timeout=15_000)
        assert elsewhere == []
        assert console.errors == []
        assert console.csp_violations() == []
    finally:
        context.close()


def test_relay_card_shows_the_automation_in_french(
        broker: Broker, prefix: str, tmp_path: Path, browser: Browser,
        watch: Callable[[str], Watcher]) -> None:
    """Against the api alone: the card keeps the automation's room before its state comes
    (no layout shift), then shows it in French; the toggle is finger-sized and publishes."""
    context = browser.new_context(viewport={"width": 390, "height": 844}, locale="fr-FR",
                                  is_mobile=True, has_touch=True)
    page = context.new_page()
    console = Console(page)
    switches = watch(f"{prefix}/automation/+/set")
    try:
        with run_api(tmp_path, broker, prefix, {"token": AUTO_TOKEN}, sections=SECTIONS) as api:
            page.goto(f"{api.url}/")
            card = page.locator('[data-relay="water-heater"]')
            card.locator(".relay-auto.waiting").wait_for(timeout=15_000)
            assert page.locator('[data-relay="pump"] .relay-auto').count() == 0
            before = card.bounding_box()
            put(broker, f"{prefix}/automation/water-heater/state", json.dumps(STATE))
            status = card.locator("[data-auto-status]")
            page.wait_for_function(
                "() => document.querySelector('[data-relay=\"water-heater\"] "
                "[data-auto-status]').dataset.autoStatus === 'catch_up'", timeout=15_000)
            assert status.inner_text() == "rattrapage"
            assert card.locator("[data-auto-reason]").inner_text() == STATE["reason"]
            assert card.locator("[data-auto-time]").inner_text() == "1 h 40 / 3 h avant 06:00"
            more = card.locator("[data-auto-more]").inner_text()
            assert "reste 1 h 20" in more and "départ au plus tard 03:20" in more
            assert card.bounding_box() == before  # the state took the room kept for it
            switch = card.locator(".auto-switch").bounding_box()
            assert switch is not None and switch["height"] >= 44 and switch["width"] >= 44
            assert card.locator("[data-auto-toggle]").is_checked()
            put(broker, f"{prefix}/automation/water-heater/state",
                json.dumps({**STATE, "status": "blocked", "reason": "bloqué : jour rouge HP"}))
            card.locator('[data-auto-status="blocked"]').wait_for(timeout=15_000)
            assert status.inner_text() == "bloqué"
            assert card.bounding_box() == before
            # The automation's events: its reason in French (`reason`), not `reason_en`.
            put(broker, f"{prefix}/automation/events", json.dumps({
                "type": "decision", "relay": "water-heater", "wish": "off",
                "status": "blocked", "reason": "bloqué : jour rouge HP",
                "reason_en": "blocked: red day HP", "ts": STATE["ts"]}))
            page.wait_for_function("() => document.querySelector('#event-list')"
                                   ".textContent.includes('bloqué : jour rouge HP')",
                                   timeout=15_000)
            assert "red day" not in page.inner_text("#event-list")
            card.locator(".auto-switch").tap()
            page.wait_for_selector("#token-dialog[open]", timeout=5_000)
            page.fill("#token-input", AUTO_TOKEN)
            page.click("#token-ok")
            seen = switches.topic(f"{prefix}/automation/water-heater/set")
            assert seen.payload == b"OFF"
            page.wait_for_function("() => !document.querySelector('[data-auto-toggle]')"
                                   ".disabled", timeout=15_000)
            ARTIFACTS.mkdir(parents=True, exist_ok=True)
            page.screenshot(path=str(ARTIFACTS / "page-automation.png"), full_page=True)
            assert console.errors == []
            assert console.csp_violations() == []
    finally:
        context.close()
