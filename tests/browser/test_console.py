"""The web console in a real browser (Debian's headless Chromium) against the real app on
127.0.0.1 with the real PostgreSQL and slapd: operator sign-in with a token, directory
sign-in, creating a tenant and an LDAP integration and testing it, search, suspension, XSS
payloads in every free-text field shown literally and never run, CSRF and CSP, sign-out ending
the session, and error pages. Screenshots of each page land in out/browser/."""

from __future__ import annotations

import re
from urllib.parse import quote
from uuid import UUID, uuid4

import httpx
import pytest
from selenium.common.exceptions import StaleElementReferenceException
from selenium.webdriver.common.by import By
from selenium.webdriver.common.keys import Keys
from selenium.webdriver.support.ui import WebDriverWait

from api.console.session import COOKIE
from domain.maci import MaciRole
from tests.browser.console_support import (
    IMAGE,
    SCRIPT,
    assert_clean_console,
    assert_inert,
    fill,
    reload_until,
    sign_in_with_token,
    submitted,
    text,
    wait,
)
from tests.peers.browser import Browser
from tests.peers.http import HASH, Api
from tests.peers.slapd import BASE_DN, Slapd

EXECUTIVES = f"cn=executives,ou=groups,{BASE_DN}"

pytestmark = [pytest.mark.browser, pytest.mark.e2e, pytest.mark.postgres, pytest.mark.ldap]


def test_operator_creates_a_tenant_and_an_ldap_integration(
    browser: Browser, api: Api, slapd: Slapd
) -> None:
    browser.open("/console/")
    wait(browser, "#token")
    assert browser.driver.current_url.endswith("/console/sign-in")
    browser.screenshot("sign-in")
    assert_clean_console(browser)

    sign_in_with_token(browser, api.token(MaciRole.EXECUTIVE))
    assert browser.driver.current_url.endswith("/console/tenants")
    cookie = browser.cookie(COOKIE)
    assert cookie is not None
    assert cookie["httpOnly"] is True
    assert cookie["sameSite"] == "Lax"
    assert cookie["secure"] is False  # plain HTTP on 127.0.0.1; TLS is covered below
    assert browser.driver.execute_script("return document.cookie") == ""
    browser.screenshot("tenants")

    # create, with payloads in the free-text fields
    slug = f"web-{uuid4().hex[:10]}"
    name = f"Web {SCRIPT} {IMAGE}"
    browser.driver.find_element(By.ID, "new-tenant").click()
    wait(browser, "#tenant_name")
    browser.screenshot("tenant-new")
    fill(browser, tenant_name=name, tenant_slug=slug, admin_email=f"o'hara+x@{slug}.example.com")
    browser.driver.find_element(By.ID, "create-tenant").click()
    wait(browser, "#pending, #tenant-name")  # shown once the read model has it
    api.wait_projected()
    wait(browser, "#tenant-name")
    assert text(browser, "#tenant-name") == name
    assert text(browser, "#tenant-slug") == slug
    assert text(browser, "#tenant-status") == "active"
    assert browser.driver.title.startswith(name)
    assert_inert(browser)
    assert_clean_console(browser)
    browser.screenshot("tenant")
    tenant_id = UUID(browser.driver.current_url.rstrip("/").rsplit("/", 1)[1])
    # read in one step: htmx replaces the usage table every 5 s
    usage = browser.driver.execute_script(
        "return [...document.querySelectorAll('#usage tbody th')].map(e => e.textContent)"
    )
    assert usage == [
        "Requests per minute", "Storage (GB)", "Concurrent requests",
    ]  # fmt: skip

    # search (htmx as the visitor types; the plain form without script works the same way)
    api.wait_projected()
    browser.open("/console/tenants")
    wait(browser, "#q")
    browser.driver.find_element(By.ID, "q").send_keys(slug.upper())
    # htmx may swap the rows between finding the count and reading it: look for it again then
    WebDriverWait(browser.driver, 10, ignored_exceptions=(StaleElementReferenceException,)).until(
        lambda d: d.find_element(By.CSS_SELECTOR, "#tenant-rows .count").text == "1 tenant"
    )
    rows = browser.driver.find_elements(By.CSS_SELECTOR, "#tenant-rows tbody tr")
    assert len(rows) == 1
    assert rows[0].find_element(By.CSS_SELECTOR, "a").text == name
    assert_inert(browser)
    browser.screenshot("tenants-search")
    browser.open("/console/tenants?q=" + "no-such-tenant-" + uuid4().hex)
    assert "No tenant matches." in text(browser, "#tenant-rows")
    browser.open("/console/tenants?q=" + quote(slug.replace("-", "_")))  # "_" is no wildcard
    assert "No tenant matches." in text(browser, "#tenant-rows")
    browser.open("/console/tenants?q=" + quote(SCRIPT + IMAGE))
    wait(browser, "#q")
    assert browser.driver.find_element(By.ID, "q").get_attribute("value") == SCRIPT + IMAGE
    assert_inert(browser)

    # an LDAP integration on the fixture's slapd, its name and filter carrying payloads
    browser.open(f"/console/tenants/{tenant_id}/integrations")
    wait(browser, "#new-integration")
    browser.driver.find_element(By.ID, "new-integration").click()
    wait(browser, "#integration_name")
    browser.screenshot("integration-new")
    integration_name = f"Corp {IMAGE}"
    fill(
        browser,
        integration_name=integration_name,
        server_url=slapd.ldaps_url,
        base_dn=slapd.base_dn,
        bind_dn=slapd.service_dn,
        bind_password=slapd.service_password,
        group_search_filter="(|(member={user_dn})(memberUid={username}))",
    )
    browser.driver.execute_script(
        "document.getElementById('ca_cert_pem').value = arguments[0]", slapd.ca_pem
    )
    browser.driver.find_element(By.ID, "save-integration").click()
    wait(browser, "#pending, #test-integration")
    api.wait_projected()
    wait(browser, "#test-integration")
    assert browser.driver.find_element(By.ID, "integration_name").get_attribute("value") == (
        integration_name
    )
    assert browser.driver.find_element(By.ID, "bind_password").get_attribute("value") == ""
    assert slapd.service_password not in browser.driver.page_source
    assert_inert(browser)

    browser.driver.find_element(By.ID, "test-integration").click()
    wait(browser, "#test-outcome")
    assert text(browser, "#test-outcome").startswith("Connected"), text(browser, "#test-outcome")
    assert_clean_console(browser)
    browser.screenshot("integration")

    api.wait_projected()
    browser.open(f"/console/tenants/{tenant_id}/integrations")
    wait(browser, "table")
    cells = [c.text for c in browser.driver.find_elements(By.CSS_SELECTOR, "tbody tr td")]
    assert cells[0] == integration_name
    assert cells[1:4] == ["ldap", "yes", "healthy"]
    assert_inert(browser)
    browser.screenshot("integrations")

    # suspend, then reactivate
    browser.open(f"/console/tenants/{tenant_id}")
    wait(browser, "#suspend")
    submitted(browser, "suspend")
    api.wait_projected()
    # the read model is eventually consistent: reloaded as a user would until it shows the change
    reload_until(browser, f"/console/tenants/{tenant_id}", "#reactivate")
    assert text(browser, "#tenant-status") == "suspended"
    submitted(browser, "reactivate")
    api.wait_projected()
    reload_until(browser, f"/console/tenants/{tenant_id}", "#suspend")
    assert text(browser, "#tenant-status") == "active"

    # a phone's width: the same page, nothing wider than the screen
    browser.driver.set_window_size(390, 844)
    browser.open(f"/console/tenants/{tenant_id}")
    wait(browser, "#tenant-name")
    browser.screenshot("tenant-phone")
    wide = browser.driver.execute_script(
        "return [...document.querySelectorAll('body *')]"
        ".filter(e => e.getBoundingClientRect().right > window.innerWidth + 1)"
        ".map(e => e.tagName + '#' + e.id + '.' + e.className)"
    )
    assert wide == []


def test_tenant_user_signs_in_through_the_directory_and_out(
    browser: Browser,
    api: Api,
    platform: httpx.Client,
    slapd: Slapd,
    request: pytest.FixtureRequest,
) -> None:
    slug = f"dir-{uuid4().hex[:10]}"
    tenant_id = UUID(api.create_tenant(platform, slug)["tenant_id"])
    admin = api.client(api.token(MaciRole.EXECUTIVE, tenant_id=tenant_id))
    request.addfinalizer(admin.close)
    created = admin.post(
        f"/v1/tenants/{tenant_id}/integrations",
        json={
            "integration_type": "ldap",
            "integration_name": "Directory",
            "config": {
                "server_url": slapd.ldaps_url,
                "base_dn": slapd.base_dn,
                "bind_dn": slapd.service_dn,
                "bind_password": slapd.service_password,
                "ca_cert_pem": slapd.ca_pem,
                "group_search_filter": "(|(member={user_dn})(memberUid={username}))",
            },
            "constitutional_hash": HASH,
        },
    )
    assert created.status_code == 201, created.text
    mapped = admin.post(
        f"/v1/tenants/{tenant_id}/role-mappings",
        json={
            "integration_id": created.json()["integration_id"],
            "source_type": "ldap_group",
            "source_value": EXECUTIVES,
            "maci_role": "EXECUTIVE",
            "priority": 10,
            "constitutional_hash": HASH,
        },
    )
    assert mapped.status_code == 201, mapped.text
    api.wait_projected()

    # a wrong password, with a payload as the user name: one message, the name shown literally
    browser.open("/console/sign-in")
    wait(browser, "#username")
    fill(browser, tenant_slug=slug, username=IMAGE, password="wrong")
    browser.driver.find_element(By.ID, "ldap-submit").click()
    wait(browser, "#ldap-error")
    assert browser.driver.find_element(By.ID, "username").get_attribute("value") == IMAGE
    assert_inert(browser)
    browser.screenshot("sign-in-refused")
    logged = browser.console_errors()
    assert len(logged) == 1, logged
    assert "sign-in/ldap" in logged[0]
    assert "401" in logged[0]

    fill(browser, tenant_slug=slug, username="alice", password="alice-password")
    browser.driver.find_element(By.ID, "ldap-submit").click()
    wait(browser, "#tenant-name")
    assert browser.driver.current_url.endswith(f"/console/tenants/{tenant_id}")
    assert text(browser, "#tenant-slug") == slug
    assert "EXECUTIVE" in text(browser, ".who")
    assert browser.driver.find_elements(By.ID, "suspend") == []  # a platform operator's button
    assert_clean_console(browser)
    browser.screenshot("tenant-as-directory-user")

    # the platform's tenant list is not this principal's
    browser.open("/console/tenants")
    wait(browser, "#error-message")
    assert text(browser, "h1") == "FORBIDDEN"

    # sign-out ends the session: the cookie a thief kept is worth nothing afterwards
    kept = browser.cookie(COOKIE)
    assert kept is not None
    browser.open(f"/console/tenants/{tenant_id}")
    wait(browser, "form.signout button")
    browser.driver.find_element(By.CSS_SELECTOR, "form.signout button").click()
    wait(browser, "#token")
    assert browser.cookie(COOKIE) is None or browser.cookie(COOKIE)["value"] != kept["value"]
    replay = httpx.get(
        f"{api.url}/console/tenants/{tenant_id}", cookies={COOKIE: kept["value"]}, timeout=30
    )
    assert replay.status_code == 303
    assert replay.headers["location"] == "/console/sign-in"


def test_a_post_without_the_csrf_token_is_refused(api: Api) -> None:
    token = api.token(MaciRole.EXECUTIVE)
    with httpx.Client(base_url=api.url, timeout=30) as client:
        page = client.get("/console/sign-in")
        found = re.search(r'name="csrf_token" value="([0-9a-f]{64})"', page.text)
        assert found is not None
        csrf = found.group(1)
        signed = client.post("/console/sign-in/token", data={"token": token, "csrf_token": csrf})
        assert signed.status_code == 303, signed.text
        slug = f"csrf-{uuid4().hex[:10]}"
        body = {
            "tenant_name": "Forged",
            "tenant_slug": slug,
            "admin_email": f"a@{slug}.example.com",
            "constitutional_hash": HASH,
        }
        for forged in ({}, {"csrf_token": "0" * 64}, {"csrf_token": csrf}):
            refused = client.post("/console/tenants", data={**body, **forged})
            assert refused.status_code == 403, refused.text
            assert "text/html" in refused.headers["content-type"]
            assert "security token" in refused.text
        # the session's own token (after sign-in the seed is new)
        page = client.get("/console/tenants/new")
        found = re.search(r'name="csrf_token" value="([0-9a-f]{64})"', page.text)
        assert found is not None
        accepted = client.post("/console/tenants", data={**body, "csrf_token": found.group(1)})
        assert accepted.status_code == 303, accepted.text
        nul = client.post(
            "/console/tenants",
            data={**body, "tenant_name": "a\x00b", "csrf_token": found.group(1)},
        )
        assert nul.status_code == 422
        assert "tenant_name: must not contain a NUL character" in nul.text
        # sign-in itself needs a token
    with httpx.Client(base_url=api.url, timeout=30) as fresh:
        refused = fresh.post("/console/sign-in/token", data={"token": token})
        assert refused.status_code == 403


def test_every_console_response_has_the_strict_csp(api: Api) -> None:
    with httpx.Client(base_url=api.url, timeout=30) as client:
        for path in (
            "/console/sign-in",
            "/console/static/console.css",
            "/console/static/vendor/htmx.min.js",
            f"/console/tenants/{uuid4()}",
            "/console/no-such-page",
        ):
            response = client.get(path)
            csp = response.headers["content-security-policy"]
            directives = dict(d.strip().split(" ", 1) for d in csp.split(";"))
            assert directives["default-src"] == "'none'", path
            assert directives["script-src"] == "'self'", path
            assert directives["style-src"] == "'self'", path
            assert directives["form-action"] == "'self'", path
            assert directives["frame-ancestors"] == "'none'", path
            assert "unsafe" not in csp, path
            assert response.headers["x-frame-options"] == "DENY"
    # the pages hold no inline script, style or handler for the CSP to have to allow
    with httpx.Client(base_url=api.url, timeout=30) as client:
        html = client.get("/console/sign-in").text
    assert re.search(r"<script(?![^>]*\ssrc=)", html) is None
    assert "<style" not in html
    assert re.search(r"\sstyle=", html) is None
    assert re.search(r"\son[a-z]+=", html) is None


def test_cookie_is_secure_behind_a_tls_proxy(api: Api) -> None:
    with httpx.Client(base_url=api.url, timeout=30) as client:
        response = client.get("/console/sign-in", headers={"X-Forwarded-Proto": "https"})
    set_cookie = response.headers["set-cookie"]
    assert "HttpOnly" in set_cookie
    assert "samesite=lax" in set_cookie.lower()
    assert "Secure" in set_cookie
    assert "Path=/console" in set_cookie


def test_errors_render_a_page_without_internals(browser: Browser, api: Api) -> None:
    sign_in_with_token(browser, api.token(MaciRole.EXECUTIVE))
    missing = uuid4()
    browser.open(f"/console/tenants/{missing}")
    wait(browser, "#error-message")
    assert text(browser, "h1") == "NOT_FOUND"
    assert text(browser, "#error-message") == "tenant not found"
    assert "Traceback" not in browser.driver.page_source
    browser.screenshot("error")
    # not signed in: every page sends the visitor to the sign-in page
    browser.driver.delete_all_cookies()
    browser.open("/console/tenants")
    wait(browser, "#token")
    assert browser.driver.current_url.endswith("/console/sign-in")


def test_the_sign_in_page_in_keyboard_order(browser: Browser) -> None:
    browser.open("/console/sign-in")
    wait(browser, "#token")
    body = browser.driver.find_element(By.TAG_NAME, "body")
    body.send_keys(Keys.TAB)
    order = []
    for _ in range(8):
        active = browser.driver.switch_to.active_element
        order.append(active.get_attribute("id") or active.get_attribute("class"))
        active.send_keys(Keys.TAB)
    assert order == [
        "skip", "brand", "tenant_slug", "username", "password", "ldap-submit", "token",
        "token-submit",
    ]  # fmt: skip
    # every field has a label that names it
    for field in browser.driver.find_elements(By.CSS_SELECTOR, "main input:not([type=hidden])"):
        label = browser.driver.find_elements(
            By.CSS_SELECTOR, f"label[for='{field.get_attribute('id')}']"
        )
        assert len(label) == 1, field.get_attribute("id")
