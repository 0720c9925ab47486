"""The console's policy and migration-job pages in a real browser (Debian's headless Chromium)
against the real app, PostgreSQL and regorus: a legacy JSON policy with XSS payloads in its
free-text fields submitted (and a broken one refused with its line and column), activated,
evaluated (the decision equal to the API's), rolled back and retired; a conversion job started on
an uploaded archive, its progress bar followed until 100 % without a reload, its results and its
PDF report; a job cancelled; the controls hidden from a role that may not use them, and the
server refusing it anyway. Screenshots of each page land in out/browser/."""

from __future__ import annotations

import json
import re
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager
from html.parser import HTMLParser
from pathlib import Path
from typing import Any
from uuid import UUID

import httpx
import pytest
from selenium.common.exceptions import WebDriverException
from selenium.webdriver.common.by import By
from selenium.webdriver.support.ui import WebDriverWait

from api.console.session import COOKIE
from domain.maci import MaciRole
from tests.browser.console_support import (
    IMAGE,
    SCRIPT,
    assert_clean_console,
    assert_inert,
    fill,
    text,
    wait,
)
from tests.e2e.migration_support import corpus_files, zipped
from tests.peers.browser import Browser
from tests.peers.http import HASH, Api

pytestmark = [pytest.mark.browser, pytest.mark.e2e, pytest.mark.postgres, pytest.mark.rego]

POLICY_KEY = "web-documents"


def legacy_policy(*, default: str, obligation: str) -> str:
    """A legacy JSON policy whose free-text fields (name, description, a deny reason, an
    obligation's value) carry the payloads."""
    return json.dumps(
        {
            "policy_id": POLICY_KEY,
            "name": f"Documents {SCRIPT}",
            "description": f"Who reads documents {IMAGE}",
            "default": default,
            "rules": [
                {
                    "id": "owners",
                    "effect": "allow",
                    "priority": 10,
                    "when": {"field": "user.role", "op": "eq", "value": "owner"},
                    "obligations": [{"type": "audit", "note": obligation}],
                },
                {
                    "id": "guests",
                    "effect": "deny",
                    "priority": 20,
                    "reason": f"guests never {IMAGE}",
                    "when": {"field": "user.role", "op": "eq", "value": "guest"},
                },
            ],
        },
        indent=2,
    )


def sign_in(browser: Browser, token: str, landing: str) -> None:
    """Operator sign-in with a tenant principal's token, then `landing` (a principal without
    EXECUTIVE may not read the tenant page the sign-in lands on)."""
    browser.open("/console/sign-in")
    wait(browser, "#token")
    browser.driver.find_element(By.ID, "token").send_keys(token)
    browser.driver.find_element(By.ID, "token-submit").click()
    WebDriverWait(browser.driver, 15).until(lambda d: "/sign-in" not in d.current_url)
    browser.console_errors()  # the landing page's 403, if any
    browser.open(landing)
    wait(browser, "form.signout")


def set_value(browser: Browser, element_id: str, value: str) -> None:
    """A long text into a field at once (typing it key by key takes seconds)."""
    browser.driver.execute_script(
        "document.getElementById(arguments[0]).value = arguments[1]", element_id, value
    )


def after_write(browser: Browser, api: Api, css: str, expected: str) -> None:
    """The page a write redirects to (`since=`): the pending page, reloading itself, until the
    read model has the write; then `css` reads `expected`."""
    WebDriverWait(browser.driver, 15).until(lambda d: "since=" in d.current_url)
    api.wait_projected()
    WebDriverWait(browser.driver, 30, ignored_exceptions=(WebDriverException,)).until(
        lambda d: d.find_element(By.CSS_SELECTOR, css).text == expected
    )


def tenant_of(api: Api, platform: httpx.Client, prefix: str) -> UUID:
    slug = f"{prefix}-{time.time_ns() % 10**12}"
    return UUID(api.create_tenant(platform, slug)["tenant_id"])


def assert_fits(browser: Browser) -> None:
    wide = browser.driver.execute_script(
        "return [...document.querySelectorAll('body *')]"
        ".filter(e => e.getBoundingClientRect().right > window.innerWidth + 1)"
        ".map(e => e.tagName + '#' + e.id + '.' + e.className)"
    )
    assert wide == []


def assert_labelled(browser: Browser) -> None:
    """Every field of the page has a label that names it (or an aria-label)."""
    fields = browser.driver.find_elements(
        By.CSS_SELECTOR, "main input:not([type=hidden]), main select, main textarea"
    )
    assert fields
    for field in fields:
        name = field.get_attribute("id")
        labels = browser.driver.find_elements(By.CSS_SELECTOR, f"label[for='{name}']")
        assert len(labels) == 1 or field.get_attribute("aria-label"), name


class _Inline(HTMLParser):
    """What of a page the strict CSP would block: inline scripts, styles and handlers."""

    def __init__(self) -> None:
        super().__init__()
        self.found: list[str] = []

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        names = {name for name, _ in attrs}
        if tag == "script" and "src" not in names:
            self.found.append("inline script")
        if tag == "style":
            self.found.append("style element")
        self.found += [f"{tag} {n}" for n in sorted(names) if n == "style" or n.startswith("on")]


def assert_no_inline_code(html: str) -> None:
    """Nothing the strict CSP would have to allow (parsed, so escaped payloads in text do not
    count)."""
    parser = _Inline()
    parser.feed(html)
    assert parser.found == []


def decide(api: Api, tenant_id: UUID, token: str, document: dict[str, Any]) -> dict[str, Any]:
    with api.client(token) as client:
        response = client.post(
            f"/v1/tenants/{tenant_id}/decisions", json={"policy_id": POLICY_KEY, "input": document}
        )
    assert response.status_code == 200, response.text
    body: dict[str, Any] = response.json()
    return body


def evaluate_in_console(browser: Browser, document: dict[str, Any]) -> dict[str, Any]:
    set_value(browser, "input", json.dumps(document))
    before = browser.driver.execute_script(
        "var e = document.getElementById('decision-id'); return e ? e.textContent : ''"
    )
    browser.driver.find_element(By.ID, "evaluate").click()
    WebDriverWait(browser.driver, 30).until(
        lambda d: (
            d.execute_script(
                "var e = document.getElementById('decision-id'); return e ? e.textContent : ''"
            )
            not in ("", before)
        )
    )
    deny = browser.driver.find_elements(By.CSS_SELECTOR, "#decision-deny .reason")
    obligations = browser.driver.find_elements(By.CSS_SELECTOR, "#decision-obligations .reason")
    return {
        "allow": text(browser, "#decision-allow") == "allow",
        "deny": [e.text for e in deny],
        "obligations": [json.loads(e.text) for e in obligations],
        "policy_version": int(text(browser, "#decision-version")),
    }


def the_apis(answer: dict[str, Any]) -> dict[str, Any]:
    return {k: answer[k] for k in ("allow", "deny", "obligations", "policy_version")}


def test_a_legislator_submits_activates_evaluates_and_rolls_back_a_policy(
    browser: Browser, api: Api, platform: httpx.Client, tmp_path: Path
) -> None:
    tenant_id = tenant_of(api, platform, "pol")
    token = api.token(MaciRole.LEGISLATIVE, tenant_id=tenant_id, sub="lee")
    sign_in(browser, token, f"/console/tenants/{tenant_id}/policies")
    nav = [a.text for a in browser.driver.find_elements(By.CSS_SELECTOR, "nav[aria-label=Main] a")]
    assert "Policies" in nav
    assert "Migration jobs" in nav
    browser.open(f"/console/tenants/{tenant_id}/policies")
    wait(browser, "#new-policy")
    assert text(browser, "#policy-count") == "0 policies"
    browser.driver.find_element(By.ID, "new-policy").click()
    wait(browser, "#source")
    assert_labelled(browser)
    browser.screenshot("policy-new")

    # a source that does not convert: nothing registered, the line and column shown, text kept
    broken = '{\n  "policy_id": "broken",\n  "rules": [\n    {"id": "r", "effect": }\n  ]\n}'
    set_value(browser, "source", broken)
    browser.driver.find_element(By.ID, "submit-policy").click()
    wait(browser, "#refusal")
    assert re.fullmatch(r"Line 4, column \d+\.", text(browser, "#refusal-where"))
    assert text(browser, "#refusal-message").startswith("the source does not convert")
    assert re.fullmatch(r"Line 4, column \d+: Expecting value", text(browser, "#source-error"))
    assert browser.driver.find_element(By.ID, "source").get_attribute("value") == broken
    logged = browser.console_errors()  # the refusal's 422 is all the page logged
    assert logged
    assert all("422" in entry for entry in logged), logged
    browser.screenshot("policy-refused")

    # version 1 as pasted text (format json), payloads in every free-text field
    first = legacy_policy(default="deny", obligation=f"note {SCRIPT}")
    set_value(browser, "source", first)
    browser.driver.find_element(By.CSS_SELECTOR, "#format option[value=json]").click()
    browser.driver.find_element(By.ID, "submit-policy").click()
    wait(browser, "#added")
    cells = [c.text for c in browser.driver.find_elements(By.CSS_SELECTOR, "#added tbody td")]
    assert cells[:2] == [POLICY_KEY, "1"]
    assert cells[2] in ("converted", "unproven")
    assert "Rules converted" in browser.driver.find_element(By.CSS_SELECTOR, ".result").text
    assert_inert(browser)
    assert_clean_console(browser)
    browser.screenshot("policy-submitted")

    # version 2 as an uploaded file (format auto from the .json extension): default allow
    upload = tmp_path / "documents.json"
    upload.write_text(legacy_policy(default="allow", obligation=f"second {IMAGE}"))
    browser.open(f"/console/tenants/{tenant_id}/policy-submission")
    wait(browser, "#file")
    browser.driver.find_element(By.ID, "file").send_keys(str(upload))
    browser.driver.find_element(By.ID, "submit-policy").click()
    wait(browser, "#added")
    assert [c.text for c in browser.driver.find_elements(By.CSS_SELECTOR, "#added tbody td")][
        :2
    ] == [POLICY_KEY, "2"]
    assert_inert(browser)

    # the list shows it (by its name, literally)
    api.wait_projected()
    browser.open(f"/console/tenants/{tenant_id}/policies")
    wait(browser, "#policies")
    row = [c.text for c in browser.driver.find_elements(By.CSS_SELECTOR, "#policies tbody td")]
    assert row[:5] == [POLICY_KEY, f"Documents {SCRIPT}", "draft", "none", "2"]
    assert_inert(browser)
    browser.screenshot("policies")
    browser.open(f"/console/tenants/{tenant_id}/policies?status=active")
    wait(browser, "#policies")
    assert text(browser, "#policy-count") == "0 policies"

    # activate version 2
    browser.open(f"/console/tenants/{tenant_id}/policies/{POLICY_KEY}")
    wait(browser, "#activate-2")
    assert text(browser, "#policy-name") == f"Documents {SCRIPT}"
    browser.driver.find_element(By.ID, "activate-2").click()
    after_write(browser, api, "#active-version", "2")
    assert text(browser, "#policy-status") == "active"
    assert "Roll back to version 1" in text(browser, "#activate-1")

    # evaluate: the console's decision is the API's
    samples: list[dict[str, Any]] = [{"user": {"role": "owner"}}, {"user": {"role": "guest"}}]
    for document in [*samples, {"user": {}}]:
        shown = evaluate_in_console(browser, document)
        assert shown == the_apis(decide(api, tenant_id, token, document)), document
        assert shown["policy_version"] == 2
    assert shown["allow"] is True  # version 2's default
    guest = evaluate_in_console(browser, {"user": {"role": "guest"}})
    assert guest["allow"] is False
    assert guest["deny"] == [f"guests never {IMAGE}"]
    owner = evaluate_in_console(browser, {"user": {"role": "owner"}})
    assert owner["obligations"] == [{"type": "audit", "note": f"second {IMAGE}"}]
    assert_inert(browser)
    # a sample that is not JSON: the message next to the field, the text kept
    set_value(browser, "input", "{not json")
    browser.driver.find_element(By.ID, "evaluate").click()
    wait(browser, "#input-error")
    assert "is not valid JSON" in text(browser, "#input-error")
    assert_labelled(browser)
    browser.screenshot("policy")

    # roll back to version 1: its default denies the empty input again
    browser.driver.find_element(By.ID, "activate-1").click()
    after_write(browser, api, "#active-version", "1")
    empty = evaluate_in_console(browser, {"user": {}})
    assert empty == the_apis(decide(api, tenant_id, token, {"user": {}}))
    assert empty["allow"] is False
    assert empty["policy_version"] == 1
    assert_clean_console(browser)

    # one version: its source (payloads literal), its Rego, its report
    browser.open(f"/console/tenants/{tenant_id}/policies/{POLICY_KEY}/versions/1")
    wait(browser, "#version-source")
    assert json.loads(text(browser, "#version-source")) == json.loads(first)
    assert "package " in text(browser, "#version-rego")
    assert_inert(browser)
    assert_clean_console(browser)
    browser.screenshot("policy-version")

    # at a phone's width
    browser.driver.set_window_size(375, 812)
    browser.open(f"/console/tenants/{tenant_id}/policies/{POLICY_KEY}")
    wait(browser, "#versions")
    browser.screenshot("policy-phone")
    assert_fits(browser)
    browser.driver.set_window_size(1280, 900)

    # retire: final, the controls go away
    browser.driver.find_element(By.ID, "confirm").click()
    browser.driver.find_element(By.ID, "retire").click()
    after_write(browser, api, "#policy-status", "retired")
    assert browser.driver.find_elements(By.CSS_SELECTOR, "[id^=activate-], #retire") == []


def test_a_reader_sees_no_author_controls_and_the_server_refuses_them(
    browser: Browser, api: Api, platform: httpx.Client
) -> None:
    tenant_id = tenant_of(api, platform, "polr")
    author = api.token(MaciRole.LEGISLATIVE, tenant_id=tenant_id)
    with api.client(author) as client:
        submitted = client.post(
            f"/v1/tenants/{tenant_id}/policies",
            json={
                "source": legacy_policy(default="deny", obligation="x"),
                "format": "json",
                "constitutional_hash": HASH,
            },
        )
        assert submitted.status_code == 201, submitted.text
    api.wait_projected()
    sign_in(
        browser,
        api.token(MaciRole.AUDITOR, tenant_id=tenant_id),
        f"/console/tenants/{tenant_id}/policies",
    )
    browser.open(f"/console/tenants/{tenant_id}/policies")
    wait(browser, "#policies")
    assert browser.driver.find_elements(By.ID, "new-policy") == []
    browser.open(f"/console/tenants/{tenant_id}/policies/{POLICY_KEY}")
    wait(browser, "#versions")
    assert browser.driver.find_elements(By.CSS_SELECTOR, "[id^=activate-], #retire") == []
    assert browser.driver.find_elements(By.ID, "evaluate") != []  # every role may decide
    browser.open(f"/console/tenants/{tenant_id}/migrations")
    wait(browser, "#jobs")
    assert browser.driver.find_elements(By.ID, "new-job") == []
    browser.open(f"/console/tenants/{tenant_id}/policy-submission")
    wait(browser, "#error-message")
    assert text(browser, "h1") == "FORBIDDEN"

    # the same session's own CSRF token does not make the server accept what the role may not
    cookie = browser.cookie(COOKIE)
    assert cookie is not None
    with httpx.Client(base_url=api.url, cookies={COOKIE: cookie["value"]}, timeout=30) as client:
        csrf = re.search(
            r'name="csrf_token" value="([0-9a-f]{64})"',
            client.get(f"/console/tenants/{tenant_id}/policies/{POLICY_KEY}").text,
        )
        assert csrf is not None
        base = f"/console/tenants/{tenant_id}/policies"
        for path, data in (
            (f"{base}/{POLICY_KEY}/activate", {"version": "1"}),
            (f"{base}/{POLICY_KEY}/retire", {"confirm": "on"}),
            (base, {"source": legacy_policy(default="allow", obligation="y"), "format": "json"}),
        ):
            body = {**data, "csrf_token": csrf.group(1), "constitutional_hash": HASH}
            refused = client.post(path, data=body)
            assert refused.status_code == 403, (path, refused.text)
            without = client.post(path, data={**data, "constitutional_hash": HASH})
            assert without.status_code == 403
            assert "security token" in without.text
        # every page of the group as served: nothing inline for the CSP to allow
        for path in (
            base,
            f"{base}/{POLICY_KEY}",
            f"{base}/{POLICY_KEY}/versions/1",
            f"/console/tenants/{tenant_id}/migrations",
        ):
            served = client.get(path)
            assert served.status_code == 200, path
            assert "'unsafe" not in served.headers["content-security-policy"]
            assert_no_inline_code(served.text)
    api.wait_projected()
    with api.client(author) as client:
        policy = client.get(f"/v1/tenants/{tenant_id}/policies/{POLICY_KEY}").json()
    assert policy["status"] == "draft"
    assert policy["latest_version"] == 1


@contextmanager
def projecting(api: Api) -> Iterator[None]:
    """The read models follow the log in the background (as `acgs serve` runs them), so the
    job's progress reaches its page while the job runs. Nothing else may catch up meanwhile."""
    stop = threading.Event()
    failures: list[BaseException] = []

    def follow() -> None:
        while not stop.is_set():
            try:
                api.wait_projected()
            except BaseException as failure:  # noqa: BLE001 - reported by the test
                failures.append(failure)
                return
            stop.wait(0.2)

    thread = threading.Thread(target=follow, name="test-projections", daemon=True)
    thread.start()
    try:
        yield
    finally:
        stop.set()
        thread.join(timeout=30)
    assert failures == []


def test_a_conversion_job_runs_with_a_live_progress_bar_and_its_pdf_report(
    browser: Browser, api: Api, platform: httpx.Client, tmp_path: Path
) -> None:
    tenant_id = tenant_of(api, platform, "job")
    token = api.token(MaciRole.LEGISLATIVE, tenant_id=tenant_id, sub="lee")
    sign_in(browser, token, f"/console/tenants/{tenant_id}/migrations")
    files = corpus_files(160, broken=True)  # 81 batches of 2: long enough to be seen moving
    archive = tmp_path / f"legacy {IMAGE}.zip"
    archive.write_bytes(zipped(files))
    source_system = f"Legacy {SCRIPT}"
    with projecting(api):
        browser.open(f"/console/tenants/{tenant_id}/migrations")
        wait(browser, "#new-job")
        assert text(browser, "#job-count") == "0 jobs"
        browser.driver.find_element(By.ID, "new-job").click()
        wait(browser, "#job_type")
        kinds = [
            o.get_attribute("value")
            for o in browser.driver.find_elements(By.CSS_SELECTOR, "#job_type option")
        ]
        assert kinds[0] == "policy_conversion"
        assert "decision_log_import" not in kinds  # a LEGISLATIVE principal converts
        assert browser.driver.find_element(By.ID, "gap-options").is_displayed() is False
        assert_labelled(browser)
        browser.screenshot("job-new")

        # every bad field at once, values kept
        fill(browser, source_system=source_system, batch_size="0")
        set_value(browser, "parameters", "[1]")
        browser.driver.find_element(By.ID, "start-job").click()
        wait(browser, "#parameters-error")
        assert text(browser, "#parameters-error") == "must be a JSON object"
        set_value(browser, "parameters", "")
        browser.driver.find_element(By.ID, "start-job").click()
        wait(browser, "#file-error")
        assert "upload a file or archive" in text(browser, "#file-error")
        assert "1 to" in text(browser, "#batch_size-error")
        assert browser.driver.find_element(By.ID, "source_system").get_attribute("value") == (
            source_system
        )
        assert_inert(browser)
        browser.screenshot("job-refused")
        logged = browser.console_errors()  # the two refusals' 422s
        assert len(logged) == 2
        assert all("422" in entry for entry in logged), logged

        fill(browser, batch_size="2")
        browser.driver.find_element(By.ID, "file").send_keys(str(archive))
        browser.driver.find_element(By.ID, "start-job").click()
        wait(browser, "#job-progress", timeout=30)
        assert text(browser, "#job-status") == "pending"
        assert text(browser, "#job-source-system") == source_system
        assert text(browser, "#job-source-file") == archive.name
        assert_inert(browser)
        job_href = browser.driver.current_url.split("?")[0]
        browser.driver.execute_script("window.__sameDocument = true")

        # a worker runs the job now; the page follows it without a reload
        seen = [int(browser.driver.find_element(By.ID, "job-progress").get_attribute("value"))]
        assert seen == [0]
        runner = api.system.migration_runner(poll_seconds=0.05)
        worker = threading.Thread(target=runner.run_once, name="test-job-runner", daemon=True)
        worker.start()
        deadline = time.monotonic() + 180
        while time.monotonic() < deadline:
            status, value = browser.driver.execute_script(
                "var s = document.getElementById('job-status'), "
                "p = document.getElementById('job-progress');"
                "return [s ? s.textContent : '', p ? p.value : -1]"
            )
            if value >= 0 and (not seen or seen[-1] != value):
                seen.append(int(value))
            if status in ("completed", "failed"):
                break
            time.sleep(0.1)
        worker.join(timeout=60)
        assert text(browser, "#job-status") == "completed", seen
        assert browser.driver.execute_script("return window.__sameDocument === true")
        assert seen[-1] == 100, seen
        assert any(0 < value < 100 for value in seen), seen  # 81 batches, each a step
        assert seen == sorted(seen)
        live = browser.driver.find_element(By.ID, "job-live")
        assert live.get_attribute("hx-trigger") is None  # the polling stopped
        assert text(browser, "#job-progress-label") == "100 %"
        assert text(browser, "#job-counts") == "162 of 162 done: 160 succeeded, 2 failed"
        failed = [c.text for c in browser.driver.find_elements(By.CSS_SELECTOR, "#job-failures td")]
        assert any("broken-syntax" in c for c in failed), failed
        assert any("broken-rule" in c for c in failed), failed
        assert browser.driver.find_elements(By.ID, "cancel-job") == []
        assert_inert(browser)
        assert_clean_console(browser)
        browser.screenshot("job")

        # the PDF report, fetched with the session's cookie as the browser would
        href = browser.driver.find_element(By.ID, "report-pdf").get_attribute("href")
        cookie = browser.cookie(COOKIE)
        assert href is not None
        assert cookie is not None
        pdf = httpx.get(href, cookies={COOKIE: cookie["value"]}, timeout=60)
        assert pdf.status_code == 200
        assert pdf.headers["content-type"] == "application/pdf"
        assert "attachment" in pdf.headers["content-disposition"]
        assert pdf.content.startswith(b"%PDF-")
        assert len(pdf.content) > 2000
        assert httpx.get(href, timeout=30).status_code == 303  # not without the session

        # the list: the job, done
        browser.open(f"/console/tenants/{tenant_id}/migrations")
        wait(browser, "#jobs")
        row = [c.text for c in browser.driver.find_elements(By.CSS_SELECTOR, "#jobs tbody td")]
        assert row[1:5] == ["policy_conversion", f"{source_system} ({archive.name})", "completed",
                            "100 %"]  # fmt: skip
        assert browser.driver.find_element(By.ID, "job-rows").get_attribute("hx-trigger") is None
        assert_inert(browser)
        browser.screenshot("jobs")

        # the converted policies are registered
        browser.open(f"/console/tenants/{tenant_id}/policies")
        wait(browser, "#policies")
        assert text(browser, "#policy-count") == "160 policies, 1 to 50 shown"

        # a gap analysis, cancelled before any worker takes it
        browser.open(f"/console/tenants/{tenant_id}/migrations/new")
        wait(browser, "#job_type")
        browser.driver.find_element(By.CSS_SELECTOR, "#job_type option[value=gap_analysis]").click()
        assert browser.driver.find_element(By.ID, "gap-options").is_displayed()
        assert browser.driver.find_element(By.ID, "conversion-options").is_displayed() is False
        fill(browser, source_system="registry")
        browser.driver.find_element(By.ID, "start-job").click()
        wait(browser, "#cancel-job", timeout=30)
        browser.driver.find_element(By.ID, "cancel-job").click()
        WebDriverWait(browser.driver, 30, ignored_exceptions=(WebDriverException,)).until(
            lambda d: (
                "since=" in d.current_url
                and d.find_element(By.ID, "job-status").text == "cancelled"
            )
        )
        assert browser.driver.find_elements(By.ID, "cancel-job") == []

        # at a phone's width
        browser.driver.set_window_size(375, 812)
        browser.open(job_href.removeprefix(api.url))
        wait(browser, "#job-progress")
        browser.screenshot("job-phone")
        assert_fits(browser)
