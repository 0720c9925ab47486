"""Shadow mode and gaps in the console, in a real browser (Debian's headless Chromium) against the
real app with the real PostgreSQL and regorus: the data a user would have (a policy, legacy
decisions compared, a replay run, gap-analysis runs) made through the API and the job runner; the
charts drawn (non-blank canvases) with tables holding the API's figures; promotion step by step
through the buttons, the approval rule refused and then met, a rollback; gaps filtered, their
remediation snippets, a gap accepted; payloads in every free-text field shown inert."""

from __future__ import annotations

import csv
import io
import json
import re
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from typing import Any
from uuid import UUID

import httpx
import pytest
from selenium.common.exceptions import StaleElementReferenceException
from selenium.webdriver.common.by import By
from selenium.webdriver.support import expected_conditions as ec
from selenium.webdriver.support.ui import WebDriverWait

from api.console.gap_pages import remediation
from domain.maci import MaciRole
from domain.policy.gaps.catalogue import CATALOGUE
from tests.browser.console_support import (
    IMAGE,
    SCRIPT,
    assert_clean_console,
    assert_inert,
    fill,
    text,
    wait,
)
from tests.e2e.policy_support import WRITE, activate, run_gap_analysis, submitted
from tests.integration.shadow.support import SHADOW_REGO
from tests.peers.browser import Browser
from tests.peers.http import HASH, Api

pytestmark = [pytest.mark.browser, pytest.mark.e2e, pytest.mark.postgres, pytest.mark.rego]

OPEN_DOOR = "POLICY door\nDEFAULT allow\nRULE anyone-reads\n  THEN ALLOW\n"
CLOSED_DOOR = (
    "POLICY door\nDEFAULT deny\nRULE analysts-read\n"
    '  WHEN user.role == "analyst" AND action == "read" AND context.time < resource.expires_at\n'
    "  THEN ALLOW\n  OBLIGE audit\n"
)
PAYROLL = (
    "POLICY payroll\nRULE payroll-read\n"
    '  WHEN resource.type == "payroll" AND action == "read"\n  THEN ALLOW\n'
    'RULE clerk-proposes\n  WHEN user.role == "clerk" AND action IN ["propose", "approve"]\n'
    "  THEN ALLOW\n"
)
IVAN = f"ivan {IMAGE}"  # a principal's name is free text too (a directory user name)


class Tenant:
    def __init__(self, api: Api, platform: httpx.Client, slug: str) -> None:
        self.api = api
        self.id = UUID(
            api.create_tenant(platform, slug, tenant_name=f"Shadow {slug} {SCRIPT}")["tenant_id"]
        )
        self.clients: list[httpx.Client] = []

    def token(self, *roles: MaciRole, sub: str) -> str:
        return self.api.token(*roles, tenant_id=self.id, sub=sub)

    def client(self, *roles: MaciRole, sub: str = "setup") -> httpx.Client:
        self.clients.append(self.api.client(self.token(*roles, sub=sub)))
        return self.clients[-1]

    def get(self, path: str, **query: Any) -> dict[str, Any]:
        response = self.client(MaciRole.MONITOR).get(f"/v1/tenants/{self.id}{path}", params=query)
        assert response.status_code == 200, response.text
        body: dict[str, Any] = response.json()
        return body


@pytest.fixture
def tenant(api: Api, platform: httpx.Client, unique: str) -> Iterator[Tenant]:
    made = Tenant(api, platform, f"web-shd-{unique}")
    yield made
    for client in made.clients:
        client.close()


def _legacy(n: int, role: str, decision: str) -> dict[str, Any]:
    return {
        "decision_id": f"legacy-{n}",
        "principal": {"id": f"u{n}", "role": role},
        "action": "read",
        "resource": f"doc-{n}",
        "decision": decision,
        "latency_ms": 3.5,
    }


def _compare(tenant: Tenant, start: int, count: int, *extra: dict[str, Any]) -> None:
    agreeing = [
        _legacy(n, "owner", "allow") if n % 2 else _legacy(n, "guest", "deny")
        for n in range(start, start + count)
    ]
    client = tenant.client(MaciRole.IMPLEMENTER)
    for batch in (list(extra), agreeing):
        if batch:
            response = client.post(
                f"/v1/tenants/{tenant.id}/shadow/decisions",
                json={"decisions": batch},
                headers=WRITE,
            )
            assert response.status_code == 200, response.text


def _run_jobs(api: Api) -> None:
    api.wait_projected()
    runner = api.system.migration_runner(poll_seconds=0.05)
    while runner.run_once():
        api.wait_projected()
    api.wait_projected()


def _replay(tenant: Tenant, browser: Browser, shadow: str) -> str:
    """Imported legacy decisions (three hours of them, one missed violation in 20) replayed by a
    shadow_mode job, as a migration engineer runs it; the page's run table follows it live."""
    start = datetime(2025, 11, 2, 9, 0, tzinfo=UTC)
    out = io.StringIO()
    writer = csv.writer(out, lineterminator="\n")
    writer.writerow(("decision_id", "timestamp", "principal", "action", "resource", "context",
                     "decision", "reason", "policy_id", "latency_ms"))  # fmt: skip
    for i in range(60):
        owner = i % 2 == 0
        allowed = owner or i % 20 == 1  # a guest allowed: Rego denies
        writer.writerow((
            f"R-{i}", (start + timedelta(minutes=3 * i)).isoformat(), f"user{i}", "read",
            f"documents/{i}", json.dumps({"role": "owner" if owner else "guest"}),
            "allow" if allowed else "deny", "legacy rule", "legacy-docs", "4.5",
        ))  # fmt: skip
    ivan = tenant.client(MaciRole.IMPLEMENTER)
    imported = ivan.post(
        f"/v1/tenants/{tenant.id}/migrations/upload",
        files={"file": ("decisions.csv", out.getvalue().encode(), "text/csv")},
        data={"job_type": "decision_log_import", "source_system": "LegacyGovernanceV1",
              "constitutional_hash": HASH},
    )  # fmt: skip
    assert imported.status_code == 202, imported.text
    _run_jobs(tenant.api)
    replay = ivan.post(
        f"/v1/tenants/{tenant.id}/migrations",
        json={"job_type": "shadow_mode", "source_system": "LegacyGovernanceV1",
              "source_config": {"import_job_id": imported.json()["job_id"], "batch_size": 25},
              "constitutional_hash": HASH},
    )  # fmt: skip
    assert replay.status_code == 202, replay.text
    tenant.api.wait_projected()
    browser.open(shadow)
    wait(browser, "#runs-box[hx-trigger]")
    assert text(browser, "#runs tbody .status") == "pending"
    _run_jobs(tenant.api)
    # htmx may swap the table between finding the cell and reading it: look for it again then
    WebDriverWait(browser.driver, 30, ignored_exceptions=(StaleElementReferenceException,)).until(
        lambda d: d.find_element(By.CSS_SELECTOR, "#runs tbody .status").text == "completed"
    )  # without a reload: htmx refreshed the table, and stops now that nothing runs
    assert browser.driver.find_elements(By.CSS_SELECTOR, "#runs-box[hx-trigger]") == []
    return str(replay.json()["job_id"])


def _drawn(browser: Browser, css: str) -> int:
    """How many pixels of the chart's canvas are not blank (0 when nothing was drawn)."""
    wait(browser, f"{css}[data-drawn] canvas")
    found: int = browser.driver.execute_script(
        "const c = document.querySelector(arguments[0] + ' canvas');"
        "const d = c.getContext('2d').getImageData(0, 0, c.width, c.height).data;"
        "let n = 0; for (let i = 3; i < d.length; i += 4) { if (d[i] > 0) n++; } return n;",
        css,
    )
    return found


def _cells(browser: Browser, css: str) -> list[list[str]]:
    """A table's body rows as text, also when it is inside a closed <details>."""
    rows: list[list[str]] = browser.driver.execute_script(
        "return [...document.querySelectorAll(arguments[0] + ' tbody tr')]"
        ".map(r => [...r.children].map(c => c.textContent.trim()))",
        css,
    )
    return rows


def _click(browser: Browser, button: str, then: str) -> None:
    """Click (an id or a CSS selector) and wait for the next page to show `then`."""
    old = browser.driver.find_element(By.TAG_NAME, "html")
    css = button if button[0] in "#." else f"#{button}"
    browser.driver.find_element(By.CSS_SELECTOR, css).click()
    WebDriverWait(browser.driver, 15).until(ec.staleness_of(old))
    wait(browser, then)


def _assert_fits(browser: Browser) -> None:
    """Nothing wider than the screen, except inside a table that scrolls sideways in its own
    box (the console's phone layout), and the page itself never scrolls sideways."""
    wide = browser.driver.execute_script(
        "var scrolls = t => t && getComputedStyle(t).overflowX !== 'visible'"
        " && t.getBoundingClientRect().right <= window.innerWidth + 1;"
        "return [...document.querySelectorAll('main *')]"
        ".filter(e => e.getBoundingClientRect().right > window.innerWidth + 1)"
        ".filter(e => !e.closest('details:not([open])'))"
        ".filter(e => !scrolls(e.closest('table')))"
        ".map(e => e.tagName + '#' + e.id + '.' + e.className)"
    )
    assert wide == []
    page = browser.driver.execute_script(
        "return [document.documentElement.scrollWidth, window.innerWidth]"
    )
    assert page[0] <= page[1] + 1, page


def _scroll_to(browser: Browser, css: str) -> None:
    browser.driver.execute_script("document.querySelector(arguments[0]).scrollIntoView()", css)


def _sign_in(browser: Browser, token: str) -> None:
    """Operator sign-in with a tenant role's token (the landing page, the tenant's, is for its
    EXECUTIVE only, so this waits for the session cookie rather than for that page)."""
    browser.driver.delete_all_cookies()
    browser.open("/console/sign-in")
    wait(browser, "#token")
    browser.driver.find_element(By.ID, "token").send_keys(token)
    browser.driver.find_element(By.ID, "token-submit").click()
    WebDriverWait(browser.driver, 15).until(lambda d: "/sign-in" not in d.current_url)
    browser.console_errors()  # the landing page's 403 for roles other than EXECUTIVE


def _promote_to_50(browser: Browser, tenant: Tenant, shadow: str, start: int) -> None:
    """Two steps through the button, with 1,000 agreeing decisions compared at each step."""
    for target in (25, 50):
        _compare(tenant, start + target * 100, 1000)
        browser.open(shadow)
        _click(browser, "request-step", "#shadow-percentage")
        assert text(browser, "#shadow-percentage") == f"{target} %"


def _refused(browser: Browser, button: str, code: str) -> str:
    """Click; the command's refusal is shown on the page (its status logged by the browser)."""
    _click(browser, button, "#refusal")
    assert text(browser, "#refusal-code") == code
    assert len(browser.console_errors()) == 1  # the page's 403/409 status, nothing else
    return text(browser, "#refusal-message")


def test_shadow_mode_promoted_step_by_step_and_rolled_back(
    browser: Browser, api: Api, tenant: Tenant
) -> None:
    author = tenant.client(MaciRole.LEGISLATIVE)
    submitted(author, tenant.id, SHADOW_REGO, "rego")
    assert activate(author, tenant.id, "documents", 1).status_code == 200
    shadow = f"/console/tenants/{tenant.id}/shadow"

    # not configured yet: the form; a payload as the policy id is shown literally
    _sign_in(browser, tenant.token(MaciRole.IMPLEMENTER, sub=IVAN))
    browser.open(shadow)
    wait(browser, "#shadow-unconfigured")
    assert text(browser, ".who").startswith(IVAN)
    fill(browser, policy_id=SCRIPT)
    _click(browser, "configure", "#shadow-policy")
    assert text(browser, "#shadow-policy") == SCRIPT
    assert_inert(browser)
    configured = tenant.client(MaciRole.IMPLEMENTER).post(
        f"/v1/tenants/{tenant.id}/shadow",
        json={"action": "configure", "policy_id": "documents", "constitutional_hash": HASH},
    )
    assert configured.status_code == 200, configured.text

    # decisions compared: 2 missed violations, 1 legacy deny Rego allows, 1,000 agreeing
    _compare(
        tenant, 100, 1000,
        _legacy(0, "guest", "allow"), _legacy(1, "guest", "allow"), _legacy(2, "owner", "deny"),
    )  # fmt: skip
    replay = _replay(tenant, browser, shadow)
    status = tenant.get("/shadow")
    browser.open(shadow)
    wait(browser, "#shadow-percentage")
    assert text(browser, "#shadow-percentage") == "0 %"
    assert text(browser, "#shadow-policy") == "documents"
    assert text(browser, "#step-decisions") == str(status["current_step"]["decisions"])
    assert text(browser, "#all-decisions") == str(status["all_time"]["decisions"]) == "1063"
    assert _drawn(browser, "#agreement-chart") > 500
    assert _drawn(browser, "#kinds-chart") > 500
    series = status["all_time"]["agreement_series"]
    assert _cells(browser, "#agreement-table") == [[at, f"{rate * 100:.2f}"] for at, rate in series]
    kinds = {
        row.get_attribute("data-kind"): [c.text for c in row.find_elements(By.TAG_NAME, "td")]
        for row in browser.driver.find_elements(By.CSS_SELECTOR, "#kinds-table tbody tr")
    }
    assert kinds == {
        kind: [str(status["current_step"]["disagreements"][kind]),
               str(status["all_time"]["disagreements"][kind])]
        for kind in ("legacy_allow_rego_deny", "legacy_deny_rego_allow", "rego_error")
    }  # fmt: skip
    assert kinds["legacy_allow_rego_deny"][1] == "5"  # 2 live, 3 replayed
    assert_inert(browser)
    assert_clean_console(browser)
    browser.screenshot("shadow")
    _scroll_to(browser, "#agreement-heading")
    browser.screenshot("shadow-charts")

    # the replay run: its own page, chart and figures
    _click(browser, "#runs tbody a", "#run-status")
    assert browser.driver.current_url.endswith(f"/shadow/runs/{replay}")
    results = tenant.get(f"/migrations/{replay}/results")["result_summary"]
    assert text(browser, "#run-status") == "completed"
    assert text(browser, "#run-decisions") == str(results["decisions"]) == "60"
    assert _drawn(browser, "#run-agreement-chart") > 500
    assert _cells(browser, "#run-agreement-table") == [
        [at, f"{rate * 100:.2f}"] for at, rate in results["agreement_series"]
    ]
    # the tenant's series by hour: the three hours of the imported decisions (one missed
    # violation in 20 each), then the hour of the live ones
    assert [rate for _, rate in results["agreement_series"][:3]] == [0.95, 0.95, 0.95]
    assert _cells(browser, "#run-kinds-table")[0][1] == "3"
    assert_clean_console(browser)
    browser.screenshot("shadow-run")

    # step by step through the buttons (the first step on the decisions above), then 100 %
    # is only requested
    browser.open(shadow)
    _click(browser, "request-step", "#shadow-percentage")
    assert text(browser, "#shadow-percentage") == "25 %"
    _compare(tenant, 2000, 1000)
    browser.open(shadow)
    _click(browser, "request-step", "#shadow-percentage")
    assert text(browser, "#shadow-percentage") == "50 %"
    _compare(tenant, 4000, 1000)
    browser.open(shadow)
    assert text(browser, "#request-step") == "Request 100 %"
    _click(browser, "request-step", "#pending-requester")
    assert text(browser, "#shadow-percentage") == "50 %"
    assert text(browser, "#pending-requester") == IVAN
    assert "JUDICIAL, other than " + IVAN in text(browser, "#approve-who")
    assert_inert(browser)

    # the approval rule: not the requester's role; the refusal on the page
    assert "JUDICIAL" in _refused(browser, "approve", "FORBIDDEN")
    assert text(browser, "#shadow-percentage") == "50 %"
    assert_inert(browser)
    browser.screenshot("shadow-refused")

    # another principal, JUDICIAL, approves: 100 %; it may not roll back
    _sign_in(browser, tenant.token(MaciRole.JUDICIAL, sub="judy"))
    browser.open(shadow)
    _click(browser, "approve", "#shadow-percentage")
    assert text(browser, "#shadow-percentage") == "100 %"
    assert text(browser, "#shadow-next").startswith("none")
    assert tenant.get("/shadow")["percentage"] == 100
    fill(browser, reason="judy tries")
    _refused(browser, "roll-back", "FORBIDDEN")
    assert browser.driver.find_element(By.ID, "reason").get_attribute("value") == "judy tries"

    # the implementer rolls back, a payload as the reason
    _sign_in(browser, tenant.token(MaciRole.IMPLEMENTER, sub=IVAN))
    browser.open(shadow)
    fill(browser, reason=SCRIPT + IMAGE)
    _click(browser, "roll-back", "#shadow-percentage")
    assert text(browser, "#shadow-percentage") == "0 %"
    assert tenant.get("/shadow")["percentage"] == 0
    assert_inert(browser)

    # no evidence at the new step: the 409 with its evidence, on the page
    assert "at least 95% agreement" in _refused(browser, "request-step", "INVALID_STATE_TRANSITION")
    assert "decisions\n0" in text(browser, "#refusal-details")

    # separation of powers: a principal with both roles requests 100 % and cannot approve it
    _sign_in(browser, tenant.token(MaciRole.IMPLEMENTER, MaciRole.JUDICIAL, sub="dual"))
    _promote_to_50(browser, tenant, shadow, 10_000)
    _compare(tenant, 30_000, 1000)
    browser.open(shadow)
    _click(browser, "request-step", "#approve")
    assert "separation of powers" in _refused(browser, "approve", "FORBIDDEN")
    assert text(browser, "#refusal-details") == "requested by\ndual"
    assert tenant.get("/shadow")["pending_approval"] == {"target": 100, "requested_by": "dual"}

    # a phone's width: the same page, nothing wider than the screen, the charts drawn
    browser.driver.set_window_size(375, 812)
    browser.open(shadow)
    assert _drawn(browser, "#agreement-chart") > 500
    _assert_fits(browser)
    assert_clean_console(browser)
    browser.screenshot("shadow-phone")
    _scroll_to(browser, "#agreement-heading")
    browser.screenshot("shadow-phone-charts")


def test_gaps_with_their_charts_snippets_filters_and_a_review(
    browser: Browser, api: Api, tenant: Tenant
) -> None:
    author = tenant.client(MaciRole.LEGISLATIVE)
    for source in (OPEN_DOOR, PAYROLL):
        submitted(author, tenant.id, source, "dsl")
    for key in ("door", "payroll"):
        assert activate(author, tenant.id, key, 1).status_code == 200
    gaps = f"/console/tenants/{tenant.id}/gaps"

    _sign_in(browser, tenant.token(MaciRole.EXECUTIVE, sub="erin"))
    browser.open(gaps)
    wait(browser, "#no-runs")
    run_gap_analysis(api.system, tenant.id, batch_size=1)
    listed = tenant.get("/gaps")

    browser.open(gaps)
    wait(browser, "#gaps")
    assert _drawn(browser, "#severity-chart") > 500
    assert _drawn(browser, "#trend-chart") > 50
    latest = listed["trend"][-1]
    assert {row[0]: int(row[1]) for row in _cells(browser, "#severity-table")} == {
        s: latest["gap_severities"].get(s, 0) for s in ("critical", "high", "medium", "low")
    }
    assert [[int(c) for c in row[1:]] for row in _cells(browser, "#trend-table")] == [
        [r["score"], r["gaps_found"], r["open"], r["accepted"], r["new"], r["fixed"]]
        for r in listed["trend"]
    ]
    assert text(browser, "#gap-count") == f"{listed['total']} gaps" == "8 gaps"
    shown = browser.driver.find_elements(By.CSS_SELECTOR, "#gaps li.gap")
    assert [g.get_attribute("id") for g in shown] == [f"gap-{g['gap_id']}" for g in listed["gaps"]]
    snippets = {rule.id: rule.remediation_policy for rule in CATALOGUE}
    for item, gap in zip(shown, listed["gaps"], strict=True):
        snippet = item.find_element(By.CSS_SELECTOR, ".gap-snippet").get_attribute("textContent")
        assert snippet == snippets[gap["rule_id"]]
        rego = item.find_element(By.CSS_SELECTOR, ".gap-rego").get_attribute("textContent")
        assert rego == remediation(gap["rule_id"], HASH)[1]
        assert f'constitutional_hash := "{HASH}"' in rego
        assert gap["remediation"] in item.find_element(By.CSS_SELECTOR, ".gap-remediation").text
    assert_clean_console(browser)
    browser.screenshot("gaps")
    shown[0].find_element(By.TAG_NAME, "summary").click()
    _scroll_to(browser, "#gaps")
    browser.screenshot("gaps-snippets")

    # filters: severity, and a payload as the policy id (no gap has it; shown literally)
    browser.driver.find_element(By.CSS_SELECTOR, "#severity option[value=high]").click()
    _click(browser, "filter", "#gap-count")
    high = tenant.get("/gaps", severity="high")
    assert text(browser, "#gap-count") == f"{high['total']} gaps"
    assert {e.text for e in browser.driver.find_elements(By.CSS_SELECTOR, "#gaps .severity")} == {
        "HIGH"
    }
    fill(browser, policy_id=SCRIPT + IMAGE)
    _click(browser, "filter", "#no-gaps")
    assert browser.driver.find_element(By.ID, "policy_id").get_attribute("value") == SCRIPT + IMAGE
    assert_inert(browser)

    # accept the separation-of-powers gap: a blank reason is refused next to the field, then
    # a reason with payloads is recorded and shown literally
    separation = next(g for g in listed["gaps"] if g["rule_id"] == "GAP-006")
    browser.open(f"{gaps}?policy_id=payroll")
    card = f"#gap-{separation['gap_id']}"
    wait(browser, card)
    _click(browser, f"{card} .review-button", "#review-error")
    assert text(browser, "#review-error").startswith("VALIDATION_ERROR")
    assert len(browser.console_errors()) == 1  # the page's 422 status
    reason = f"two clerks sign by procedure {SCRIPT} {IMAGE}"
    fill(browser, **{f"reason-{separation['gap_id']}": reason})
    _click(browser, f"{card} .review-button", "#review-done")
    assert "policy_id=payroll" in browser.driver.current_url
    api.wait_projected()
    browser.open(f"{gaps}?policy_id=payroll&status=accepted")
    wait(browser, card)
    assert text(browser, f"{card} .gap-status") == "accepted"
    assert text(browser, f"{card} .gap-reason") == reason
    assert text(browser, f"{card} .review-button") == "Reopen"
    assert tenant.get("/gaps", status="accepted")["gaps"][0]["review"]["reason"] == reason
    assert_inert(browser)

    # door fixed and a second run: the trend has two runs, the score falls
    submitted(author, tenant.id, CLOSED_DOOR, "dsl")
    assert activate(author, tenant.id, "door", 2).status_code == 200
    run_gap_analysis(api.system, tenant.id, batch_size=1)
    trend = tenant.get("/gaps")["trend"]
    browser.open(gaps)
    wait(browser, "#trend-table")
    assert _drawn(browser, "#trend-chart") > 500
    assert [int(row[1]) for row in _cells(browser, "#trend-table")] == [r["score"] for r in trend]
    assert trend[-1]["score"] < trend[0]["score"]
    assert_clean_console(browser)
    browser.screenshot("gaps-trend")

    browser.driver.set_window_size(375, 812)
    browser.open(gaps)
    assert _drawn(browser, "#severity-chart") > 500
    _assert_fits(browser)
    browser.screenshot("gaps-phone")
    _scroll_to(browser, "#severity-heading")
    browser.screenshot("gaps-phone-charts")


def test_shadow_and_gap_forms_need_the_csrf_token(api: Api, tenant: Tenant) -> None:
    token = tenant.token(MaciRole.EXECUTIVE, sub="erin")
    with httpx.Client(base_url=api.url, timeout=30) as client:
        found = re.search(
            r'name="csrf_token" value="([0-9a-f]{64})"', client.get("/console/sign-in").text
        )
        assert found is not None
        signed = client.post(
            "/console/sign-in/token", data={"token": token, "csrf_token": found.group(1)}
        )
        assert signed.status_code == 303, signed.text
        shadow = client.get(f"/console/tenants/{tenant.id}/shadow")
        assert shadow.status_code == 200
        found = re.search(r'name="csrf_token" value="([0-9a-f]{64})"', shadow.text)
        assert found is not None
        for path, body in (
            (f"/console/tenants/{tenant.id}/shadow", {"action": "configure", "policy_id": "p"}),
            (
                f"/console/tenants/{tenant.id}/gaps/{UUID(int=1)}",
                {"action": "accept", "reason": "r"},
            ),
        ):
            for forged in ({}, {"csrf_token": "0" * 64}):
                refused = client.post(path, data={**body, **forged})
                assert refused.status_code == 403, refused.text
                assert "security token" in refused.text
        assert tenant.get("/gaps")["total"] == 0
        with pytest.raises(AssertionError, match="404"):
            tenant.get("/shadow")  # nothing configured by the forged posts
        # with the page's token the same post goes through
        accepted = client.post(
            f"/console/tenants/{tenant.id}/shadow",
            data={
                "action": "configure",
                "policy_id": "p",
                "constitutional_hash": HASH,
                "csrf_token": found.group(1),
            },
        )
        assert accepted.status_code == 303, accepted.text
        assert tenant.get("/shadow")["policy_id"] == "p"
