"""The console's audit-log pages, tenant lifecycle and quota admission in a real browser
(Debian's headless Chromium) against the real app and PostgreSQL: filters (every bad one at
once), cursor paging both ways, one event's detail, the chart drawn from its JSON route, a CSV
export downloaded by the browser whose rows are those the page lists, XSS payloads in audit
fields shown literally, editing quotas with field errors, deactivation and purge behind a
confirmation page, console requests spending the tenant's request budget (the 429 page), the
error page with its navigation, and every page at a phone's width (375 px)."""

from __future__ import annotations

import csv
import hashlib
import io
import json
import time
from datetime import UTC, datetime, timedelta
from pathlib import Path
from urllib.parse import urlencode
from uuid import UUID, uuid4

import httpx
import pytest
from selenium.webdriver.common.by import By
from selenium.webdriver.common.keys import Keys
from selenium.webdriver.support.ui import Select, WebDriverWait

from api.console.session import COOKIE
from domain.maci import MaciRole
from tests.browser.console_support import (
    IMAGE,
    SCRIPT,
    assert_clean_console,
    assert_inert,
    fill,
    sign_in_with_token,
    text,
    wait,
)
from tests.peers.browser import Browser
from tests.peers.http import HASH, Api, ManualClock

pytestmark = [pytest.mark.browser, pytest.mark.e2e, pytest.mark.postgres]

BOTS = 30  # denied requests, each one audit row: more than one page of 25


def _stamp(at: datetime) -> str:
    return at.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%S")


def _ids(browser: Browser) -> list[str]:
    found: list[str] = browser.driver.execute_script(
        "return [...document.querySelectorAll('#audit-rows tbody tr[data-audit-id]')]"
        ".map(r => r.dataset.auditId)"
    )
    return found


def _column(browser: Browser, index: int) -> list[str]:
    found: list[str] = browser.driver.execute_script(
        "return [...document.querySelectorAll('#audit-rows tbody tr[data-audit-id]')]"
        ".map(r => r.cells[arguments[0]].textContent)",
        index,
    )
    return found


def _nothing_wider_than_the_screen(browser: Browser) -> None:
    """The page itself never scrolls sideways (a wide table scrolls inside its own box)."""
    width = browser.driver.execute_script(
        "return [document.documentElement.scrollWidth, window.innerWidth]"
    )
    assert width[0] <= width[1], width
    outside = browser.driver.execute_script(
        "return [...document.querySelectorAll('body *')]"
        ".filter(e => !e.closest('table') && e.getBoundingClientRect().right > innerWidth + 1)"
        ".map(e => e.tagName + '#' + e.id + '.' + e.className)"
    )
    assert outside == []


@pytest.fixture
def audited(api: Api, platform: httpx.Client) -> dict[str, object]:
    """A tenant (its name a payload) whose log holds denied requests of BOTS actors and of one
    whose name is a payload."""
    slug = f"aud-{uuid4().hex[:10]}"
    before = datetime.now(UTC) - timedelta(seconds=2)
    tenant_id = UUID(
        api.create_tenant(platform, slug, tenant_name=f"Audit {slug} {SCRIPT}")["tenant_id"]
    )
    actors = [*(f"bot-{i:02d}" for i in range(BOTS)), IMAGE]
    for actor in actors:
        token = api.token(MaciRole.AUDITOR, tenant_id=tenant_id, sub=actor)
        with api.client(token) as client:
            refused = client.patch(
                f"/v1/tenants/{tenant_id}",
                json={"tenant_name": "Renamed", "constitutional_hash": HASH},
            )
            assert refused.status_code == 403, refused.text
    api.wait_projected()
    return {"tenant_id": tenant_id, "slug": slug, "start": before, "actors": actors}


def test_audit_log_filters_pages_details_chart_and_export(
    browser: Browser, api: Api, audited: dict[str, object], tmp_path: Path
) -> None:
    tenant_id = audited["tenant_id"]
    assert isinstance(tenant_id, UUID)
    start = audited["start"]
    assert isinstance(start, datetime)
    end = datetime.now(UTC) + timedelta(seconds=1)
    time.sleep(1)  # what the console's own use adds to the log falls after `end`
    sign_in_with_token(browser, api.token(MaciRole.AUDITOR, tenant_id=tenant_id, sub="reader"))
    browser.console_errors()  # an auditor lands on the tenant page, which is an executive's
    nav = [a.text for a in browser.driver.find_elements(By.CSS_SELECTOR, "header nav a")]
    assert "Audit log" in nav

    # the whole range, one page of 250: every row, and the chart counts the same rows
    base = f"/console/tenants/{tenant_id}/audit"
    window = {"start_time": _stamp(start), "end_time": _stamp(end)}
    browser.open(f"{base}?{urlencode({**window, 'limit': 250})}")
    wait(browser, "#audit-rows")
    everything = _ids(browser)
    assert len(everything) >= BOTS + 2  # the denials, the tenant's creation
    assert text(browser, "#audit-count") == f"{len(everything)} events match"
    assert text(browser, "#audit-title") == f"Audit log of Audit {audited['slug']} {SCRIPT}"
    wait(browser, "#audit-chart[data-total]")
    chart = browser.driver.find_element(By.ID, "audit-chart")
    assert chart.get_attribute("data-total") == str(len(everything))
    canvas = browser.driver.find_elements(By.CSS_SELECTOR, "#audit-chart canvas")
    assert canvas
    assert canvas[0].size["width"] > 200
    assert text(browser, "#chart-summary").startswith(f"{len(everything)} events")
    assert IMAGE in _column(browser, 3)  # the actor column shows the payload as text
    assert_inert(browser)
    logged = browser.console_errors()
    assert logged == [], logged
    browser.screenshot("audit-log")

    # 25 a page: next by the cursor, then back by "Previous"
    browser.open(f"{base}?{urlencode(window)}")
    wait(browser, "#limit")
    Select(browser.driver.find_element(By.ID, "limit")).select_by_value("25")
    browser.driver.find_element(By.ID, "apply-filters").click()
    wait(browser, "#page-next")
    first = _ids(browser)
    assert first == everything[:25]
    assert browser.driver.find_elements(By.ID, "page-previous") == []
    browser.driver.find_element(By.ID, "page-next").click()
    wait(browser, "#page-previous")
    second = _ids(browser)
    assert second == everything[25:50]
    assert "page 2" in text(browser, "#rows-title")
    browser.screenshot("audit-log-page-2")
    browser.driver.find_element(By.ID, "page-previous").click()
    wait(browser, "#page-next")
    assert _ids(browser) == first

    # filters: outcome and actor (the payload typed into the field, shown back literally)
    browser.open(f"{base}?{urlencode(window)}")
    wait(browser, "#actor_id")
    Select(browser.driver.find_element(By.ID, "result")).select_by_value("denied")
    fill(browser, actor_id=IMAGE)
    browser.driver.find_element(By.ID, "apply-filters").click()
    wait(browser, "#audit-count")
    assert text(browser, "#audit-count") == "1 event matches"
    assert _column(browser, 3) == [IMAGE]
    assert _column(browser, 5) == ["denied"]
    assert browser.driver.find_element(By.ID, "actor_id").get_attribute("value") == IMAGE
    assert_inert(browser)
    browser.open(f"{base}?{urlencode({**window, 'event_type': SCRIPT})}")
    wait(browser, "#audit-rows")
    assert "No event matches." in text(browser, "#audit-rows")
    assert browser.driver.find_element(By.ID, "event_type").get_attribute("value") == SCRIPT
    assert_inert(browser)

    # one event's detail
    browser.open(f"{base}?{urlencode({**window, 'actor_id': IMAGE})}")
    wait(browser, "#audit-rows tbody a")
    browser.driver.find_element(By.CSS_SELECTOR, "#audit-rows tbody a").click()
    wait(browser, "#event-facts")
    assert text(browser, "#event-actor").startswith(IMAGE)
    details = json.loads(text(browser, "#event-details"))
    assert isinstance(details, dict)
    assert details  # a refusal says what was refused
    assert_inert(browser)
    assert_clean_console(browser)
    browser.screenshot("audit-event")

    # every bad filter at once, each next to its field, values kept
    bad = {"start_time": "yesterday", "end_time": _stamp(end), "event_category": "nope"}
    browser.open(f"{base}?{urlencode({**bad, 'limit': 7})}")
    wait(browser, "#start_time-error")
    assert text(browser, "#start_time-error") == "must be ISO 8601"
    assert text(browser, "#event_category-error").startswith("one of authentication")
    assert text(browser, "#limit-error") == "one of 25, 50, 100, 250"
    assert browser.driver.find_elements(By.ID, "export-form") == []

    # a CSV export of the whole range, downloaded by the browser: the rows the page listed
    browser.driver.execute_cdp_cmd(
        "Browser.setDownloadBehavior",
        {"behavior": "allow", "downloadPath": str(tmp_path), "eventsEnabled": True},
    )
    browser.open(f"{base}?{urlencode({**window, 'limit': 250})}")
    wait(browser, "#export-csv")
    browser.driver.find_element(By.ID, "export-csv").click()
    wait(browser, "#export-status")
    assert "/audit/exports/exp_" in browser.driver.current_url
    runner = api.system.export_runner()
    while runner.step():
        pass
    wait(browser, "#export-download", timeout=20)
    assert text(browser, "#export-status") == "completed"
    browser.screenshot("audit-export")
    digest = text(browser, "#export-sha256")
    browser.driver.find_element(By.ID, "export-download").click()
    files = WebDriverWait(browser.driver, 20).until(
        lambda _: [p for p in tmp_path.iterdir() if p.suffix == ".csv"] or False
    )
    content = files[0].read_bytes()
    assert hashlib.sha256(content).hexdigest() == digest
    rows = list(csv.DictReader(io.StringIO(content.decode())))
    assert sorted(r["audit_id"] for r in rows) == sorted(everything)
    by_id = {r["audit_id"]: r for r in rows}
    assert {by_id[i]["actor_id"] for i in everything} >= {IMAGE, "bot-00"}


def test_the_platform_reads_every_tenants_log(
    browser: Browser, api: Api, audited: dict[str, object]
) -> None:
    tenant_id = audited["tenant_id"]
    assert isinstance(tenant_id, UUID)
    sign_in_with_token(browser, api.token(MaciRole.AUDITOR))
    browser.driver.find_element(By.LINK_TEXT, "Audit log").click()
    wait(browser, "#tenant_id")
    assert browser.driver.current_url.split("?")[0].endswith("/console/audit")
    fill(browser, tenant_id=str(tenant_id), actor_id="bot-07")
    browser.driver.find_element(By.ID, "apply-filters").click()
    wait(browser, "#audit-count")
    assert text(browser, "#audit-count") == "1 event matches"
    tenants = browser.driver.execute_script(
        "return [...document.querySelectorAll('#audit-rows tbody tr[data-audit-id] td a')]"
        ".filter(a => a.getAttribute('href').endsWith('/audit'))"
        ".map(a => a.getAttribute('href'))"
    )
    assert tenants == [f"/console/tenants/{tenant_id}/audit"]
    wait(browser, "#audit-chart[data-total]")
    assert browser.driver.find_element(By.ID, "audit-chart").get_attribute("data-total") == "1"
    assert browser.driver.find_elements(By.ID, "export-form") == []  # exports are per tenant
    assert_clean_console(browser)
    browser.screenshot("audit-platform")
    # a tenant principal is refused the platform's log
    browser.driver.delete_all_cookies()
    sign_in_with_token(browser, api.token(MaciRole.AUDITOR, tenant_id=tenant_id))
    browser.open("/console/audit")
    wait(browser, "#error-message")
    assert text(browser, "h1") == "FORBIDDEN"
    assert browser.driver.find_elements(By.CSS_SELECTOR, "header nav a")  # the error page's nav


def test_quotas_are_edited_and_a_tenant_is_deactivated_then_purged(
    browser: Browser, api: Api, platform: httpx.Client
) -> None:
    slug = f"life-{uuid4().hex[:10]}"
    tenant_id = api.create_tenant(platform, slug)["tenant_id"]
    sign_in_with_token(browser, api.token(MaciRole.EXECUTIVE))
    browser.open(f"/console/tenants/{tenant_id}")
    wait(browser, "#edit-quotas")
    browser.driver.find_element(By.ID, "edit-quotas").click()
    wait(browser, "#quota-form")
    assert browser.driver.find_element(By.ID, "max_storage_gb").get_attribute("value") == "10"
    browser.screenshot("tenant-quotas")

    # every bad quota at once, each next to its field, the values kept
    browser.driver.execute_script(
        "for (const [k, v] of Object.entries(arguments[0])) document.getElementById(k).value = v",
        {"max_requests_per_minute": "0", "max_storage_gb": "1.5", "max_concurrent_connections": ""},
    )
    browser.driver.execute_script("document.getElementById('quota-form').noValidate = true")
    browser.driver.find_element(By.ID, "save-quotas").click()
    wait(browser, "#max_requests_per_minute-error")
    assert text(browser, "#max_requests_per_minute-error") == "must be between 1 and 1000000"
    assert text(browser, "#max_storage_gb-error") == "must be an integer"
    assert text(browser, "#max_concurrent_connections-error") == "required"
    assert browser.driver.find_element(By.ID, "max_storage_gb").get_attribute("value") == "1.5"
    browser.screenshot("tenant-quotas-errors")

    fill(browser, max_requests_per_minute="120", max_storage_gb="3", max_concurrent_connections="7")
    browser.driver.find_element(By.ID, "save-quotas").click()
    wait(browser, "#tenant-name")
    api.wait_projected()
    browser.open(f"/console/tenants/{tenant_id}")
    wait(browser, "#usage")
    limits = browser.driver.execute_script(
        "return [...document.querySelectorAll('#usage tbody tr')].map(r => r.cells[2].textContent)"
    )
    assert limits == ["120", "3", "7"]

    # deactivate: a confirmation page (no script needed); a wrong slug changes nothing
    browser.driver.find_element(By.ID, "deactivate").click()
    wait(browser, "#confirm-form")
    browser.screenshot("tenant-deactivate")
    fill(browser, confirm_slug="not-" + slug)
    browser.driver.find_element(By.ID, "confirm-deactivate").click()
    wait(browser, "#confirm_slug-error")
    api.wait_projected()
    assert platform.get(f"/v1/tenants/{tenant_id}").json()["status"] == "active"
    fill(browser, confirm_slug=slug)
    browser.driver.find_element(By.ID, "confirm-deactivate").click()
    wait(browser, "#tenant-name")
    api.wait_projected()
    browser.open(f"/console/tenants/{tenant_id}")
    wait(browser, "#tenant-status")
    assert text(browser, "#tenant-status") == "deactivated"
    assert browser.driver.find_elements(By.ID, "reactivate")

    # purge: gone, its page is the error page with the navigation bar
    browser.driver.find_element(By.ID, "purge").click()
    wait(browser, "#confirm-form")
    assert "cannot be undone" in text(browser, "#confirm-warning")
    fill(browser, confirm_slug=slug)
    browser.driver.find_element(By.ID, "confirm-purge").click()
    wait(browser, "#tenant-rows")
    api.wait_projected()
    refused = browser.console_errors()  # nothing failed to load but the two 422 pages
    assert [e for e in refused if "status of 422" not in e] == []
    browser.open(f"/console/tenants/{tenant_id}")
    wait(browser, "#error-message")
    assert text(browser, "h1") == "NOT_FOUND"
    nav = [a.text for a in browser.driver.find_elements(By.CSS_SELECTOR, "header nav a")]
    assert nav[:1] == ["Tenants"]
    assert browser.driver.find_elements(By.CSS_SELECTOR, "form.signout")
    logged = browser.console_errors()
    assert len(logged) == 1, logged  # the page's own 404
    assert "404" in logged[0]
    browser.screenshot("error-with-nav")


def test_console_requests_spend_the_tenants_request_budget(
    browser: Browser, api: Api, platform: httpx.Client, limiter_clock: ManualClock
) -> None:
    slug = f"rate-{uuid4().hex[:10]}"
    tenant_id = api.create_tenant(platform, slug, max_requests_per_minute=4)["tenant_id"]
    token = api.token(MaciRole.EXECUTIVE, tenant_id=UUID(tenant_id))
    sign_in_with_token(browser, token)  # the sign-in pages are not counted; its landing page is
    for _ in range(3):
        browser.open(f"/console/tenants/{tenant_id}/integrations")
        wait(browser, "h1")
        assert text(browser, "h1").startswith("Integrations of")
    browser.open(f"/console/tenants/{tenant_id}/integrations")
    wait(browser, "#error-message")
    assert text(browser, "h1") == "RATE_LIMITED"
    assert "4 requests per minute" in text(browser, "#error-message")
    assert text(browser, "#retry-after").startswith("Try again in ")
    assert browser.driver.find_elements(By.CSS_SELECTOR, "header nav a")
    browser.screenshot("rate-limited")
    cookie = browser.cookie(COOKIE)
    assert cookie is not None
    refused = httpx.get(
        f"{api.url}/console/tenants/{tenant_id}", cookies={COOKIE: cookie["value"]}, timeout=30
    )
    assert refused.status_code == 429
    assert int(refused.headers["retry-after"]) >= 1
    assert refused.headers["x-ratelimit-remaining"] == "0"
    assert "text/html" in refused.headers["content-type"]
    # the same budget as the API's: the tenant's token is refused there too
    with api.client(token) as client:
        assert client.get(f"/v1/tenants/{tenant_id}").status_code == 429
    # a minute later the console answers again
    limiter_clock.now += 61
    browser.open(f"/console/tenants/{tenant_id}/integrations")
    wait(browser, "h1")
    assert text(browser, "h1").startswith("Integrations of")


def test_every_page_at_a_phones_width(
    browser: Browser, api: Api, audited: dict[str, object]
) -> None:
    tenant_id = audited["tenant_id"]
    sign_in_with_token(browser, api.token(MaciRole.EXECUTIVE))
    browser.driver.set_window_size(375, 812)
    pages = {
        "tenants": ("/console/tenants", "#tenant-rows"),
        "tenant": (f"/console/tenants/{tenant_id}", "#usage"),
        "tenant-quotas": (f"/console/tenants/{tenant_id}/quotas", "#quota-form"),
        "tenant-deactivate": (f"/console/tenants/{tenant_id}/deactivate", "#confirm-form"),
        "tenant-new": ("/console/tenants/new", "#tenant_name"),
        "integrations": (f"/console/tenants/{tenant_id}/integrations", "table"),
        "integration-new": (f"/console/tenants/{tenant_id}/integrations/new", "#server_url"),
        "audit-log": (f"/console/tenants/{tenant_id}/audit", "#audit-chart[data-total]"),
        "audit-platform": ("/console/audit", "#audit-rows"),
        "error": (f"/console/tenants/{uuid4()}", "#error-message"),
    }
    for name, (path, ready) in pages.items():
        browser.open(path)
        wait(browser, ready)
        _nothing_wider_than_the_screen(browser)
        # the navigation wraps inside the screen
        right = browser.driver.execute_script(
            "return Math.max(...[...document.querySelectorAll('header *')]"
            ".map(e => e.getBoundingClientRect().right))"
        )
        assert right <= 375, name
        unlabelled = browser.driver.execute_script(
            "return [...document.querySelectorAll('main input:not([type=hidden]), main select,"
            " main textarea')].filter(f => document.querySelectorAll("
            '`label[for="${f.id}"]`).length !== 1).map(f => f.name)'
        )
        assert unlabelled == [], name  # every field has the one label that names it
        browser.screenshot(f"{name}-375")
    browser.open(f"/console/tenants/{tenant_id}/audit")
    wait(browser, ".table-scroll")
    scrolls = browser.driver.execute_script(
        "const box = document.querySelector('.table-scroll');"
        "return [box.scrollWidth > box.clientWidth, getComputedStyle(box).overflowX]"
    )
    assert scrolls == [True, "auto"]  # the table scrolls sideways inside its box
    browser.driver.delete_all_cookies()
    browser.open("/console/sign-in")
    wait(browser, "#token")
    _nothing_wider_than_the_screen(browser)
    browser.screenshot("sign-in-375")


def test_keyboard_order_and_focus_on_the_audit_page(
    browser: Browser, api: Api, audited: dict[str, object]
) -> None:
    tenant_id = audited["tenant_id"]
    assert isinstance(tenant_id, UUID)
    sign_in_with_token(browser, api.token(MaciRole.AUDITOR, tenant_id=tenant_id))
    browser.open(f"/console/tenants/{tenant_id}/audit")
    wait(browser, "#audit-chart[data-total]")
    browser.driver.find_element(By.TAG_NAME, "body").send_keys(Keys.TAB)
    order, outlines = [], []
    for _ in range(40):  # a date-time field takes a Tab for each of its parts
        active = browser.driver.switch_to.active_element
        order.append(active.get_attribute("id") or active.get_attribute("class") or active.text)
        outlines.append(
            browser.driver.execute_script(
                "const s = getComputedStyle(document.activeElement);"
                "return s.outlineStyle + ' ' + s.outlineWidth",
            )
        )
        active.send_keys(Keys.TAB)
    assert order[:2] == ["skip", "brand"]
    fields = ["start_time", "end_time", "event_category", "result", "event_type", "actor_id"]
    assert [o for o in dict.fromkeys(order) if o in fields] == fields
    unmarked = [(o, w) for o, w in zip(order, outlines, strict=True) if w != "solid 3px"]
    assert unmarked == []
    # every field has one label naming it
    for field in browser.driver.find_elements(
        By.CSS_SELECTOR, "main input:not([type=hidden]), main select"
    ):
        label = browser.driver.find_elements(
            By.CSS_SELECTOR, f"label[for='{field.get_attribute('id')}']"
        )
        assert len(label) == 1, field.get_attribute("id")
