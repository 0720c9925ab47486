"""Single sign-on, integration forms and role mappings in the console, in a real browser
(Debian's headless Chromium) against the real app, PostgreSQL, the real SAML IdP (pysaml2) and
the real OpenID provider (oidc-provider under Node): a tenant admin configures a SAML
integration through the form (every bad field shown at once, the key never shown back), maps a
group to a role and previews the roles a user would get, and a user signs in through the IdP's
own login page and lands in the console; the same through the OpenID provider's login and
consent pages; XSS payloads in the free-text fields stay inert; a return path that leaves the
console is refused. Screenshots land in out/browser/."""

from __future__ import annotations

from uuid import UUID, uuid4

import httpx
import pytest
from selenium.webdriver.common.by import By
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
from tests.e2e.oidc_support import OidcTenant
from tests.e2e.saml_support import ATTRIBUTE_MAP, SamlTenant
from tests.peers.browser import Browser
from tests.peers.http import HASH, Api
from tests.peers.oidc_provider import OidcProvider
from tests.peers.saml_idp import SamlIdp, make_key_pair

pytestmark = [
    pytest.mark.browser,
    pytest.mark.e2e,
    pytest.mark.postgres,
    pytest.mark.saml,
    pytest.mark.oidc,
]


@pytest.fixture
def tenant(api: Api, platform: httpx.Client) -> tuple[UUID, str]:
    slug = f"sso-{uuid4().hex[:10]}"
    return UUID(api.create_tenant(platform, slug)["tenant_id"]), slug


def _set(browser: Browser, element_id: str, value: str) -> None:
    """A multi-line value (a PEM block) into a text area, as a paste would."""
    browser.driver.execute_script(
        "document.getElementById(arguments[0]).value = arguments[1]", element_id, value
    )


def assert_clean_here(browser: Browser, api: Api) -> None:
    """No error logged by a page of this service (the identity provider's own pages are not
    ours to judge)."""
    ours = [e for e in browser.console_errors() if api.url in e]
    assert ours == [], ours


def _submit(browser: Browser, element_id: str) -> None:
    button = browser.driver.find_element(By.ID, element_id)
    browser.driver.execute_script("arguments[0].scrollIntoView()", button)
    button.click()


def test_an_admin_configures_saml_and_a_mapping_and_a_user_signs_in_through_the_idp(
    browser: Browser, api: Api, tenant: tuple[UUID, str], saml_idp: SamlIdp
) -> None:
    tenant_id, slug = tenant
    sign_in_with_token(browser, api.token(MaciRole.EXECUTIVE, tenant_id=tenant_id))

    # the integration form of the SAML type, built from its schema
    browser.open(f"/console/tenants/{tenant_id}/integrations")
    wait(browser, "#new-type")
    Select(browser.driver.find_element(By.ID, "new-type")).select_by_value("saml")
    browser.driver.find_element(By.ID, "new-integration").click()
    wait(browser, "#sp_entity_id")
    browser.screenshot("integration-new-saml")
    for field in browser.driver.find_elements(
        By.CSS_SELECTOR, "#integration-form input:not([type=hidden]), #integration-form select, "
        "#integration-form textarea"
    ):  # fmt: skip
        labels = browser.driver.find_elements(
            By.CSS_SELECTOR, f"label[for='{field.get_attribute('id')}']"
        )
        assert len(labels) == 1, field.get_attribute("id")

    keys = make_key_pair(f"SP {slug}")
    name = f"Corporate {SCRIPT} {IMAGE}"
    fill(
        browser,
        integration_name=name,
        idp_metadata_url=saml_idp.metadata_url,
        sp_entity_id=f"urn:acgs:sp:{slug}",
        idp_sso_url="not a url",  # two bad fields: both shown at once
        allowed_clock_skew_seconds="soon",
        timeout_seconds="30",  # the IdP's metadata, read by a loaded machine
    )
    _set(browser, "sp_private_key", keys.key_pem)
    _set(browser, "sp_certificate", keys.cert_pem)
    for prop, attribute in ATTRIBUTE_MAP.items():
        fill(browser, **{f"attribute_map.{prop}": attribute})
    _submit(browser, "save-integration")
    wait(browser, "#idp_sso_url-error")
    assert text(browser, "#allowed_clock_skew_seconds-error") == "must be an integer"
    assert "URL" in text(browser, "#idp_sso_url-error")
    assert browser.driver.find_element(By.ID, "integration_name").get_attribute("value") == name
    assert browser.driver.find_element(By.ID, "sp_private_key").get_attribute("value") == ""
    assert "PRIVATE KEY" not in browser.driver.page_source  # a secret is never sent back
    assert_inert(browser)
    browser.screenshot("integration-saml-errors")
    logged = browser.console_errors()  # the refused post itself, nothing else
    assert len(logged) == 1, logged
    assert "422" in logged[0]

    fill(browser, idp_sso_url="", allowed_clock_skew_seconds="60")
    _set(browser, "sp_private_key", keys.key_pem)
    _submit(browser, "save-integration")
    wait(browser, "#pending, #test-integration")
    api.wait_projected()
    wait(browser, "#test-integration")
    integration_id = browser.driver.current_url.split("?")[0].rstrip("/").rsplit("/", 1)[1]
    assert browser.driver.find_element(By.ID, "integration_name").get_attribute("value") == name
    assert browser.driver.find_element(By.ID, "sp_private_key").get_attribute("value") == ""
    assert "PRIVATE KEY" not in browser.driver.page_source
    assert (
        "stored, never shown"
        in browser.driver.find_element(By.CSS_SELECTOR, "label[for=sp_private_key]").text
    )
    assert (
        browser.driver.find_element(By.ID, "allowed_clock_skew_seconds").get_attribute("value")
        == "60"
    )
    assert_inert(browser)
    assert_clean_console(browser)
    browser.screenshot("integration-saml")

    # an edit that leaves the key empty keeps it: the IdP trusts the SP's metadata, signed with it
    fill(browser, allowed_clock_skew_seconds="90")
    _submit(browser, "save-integration")
    wait(browser, "#test-integration")
    api.wait_projected()
    metadata = httpx.get(f"{api.url}/v1/auth/saml/{integration_id}/metadata", timeout=30)
    assert metadata.status_code == 200, metadata.text
    saml_idp.trust(metadata.text, sp_cert_pem=keys.cert_pem)

    # role mappings: a payload as a value stays text; the group "admins" gives EXECUTIVE
    browser.open(f"/console/tenants/{tenant_id}/role-mappings")
    wait(browser, "#mapping-form")
    fill(browser, source_value=f"{SCRIPT}{IMAGE}", priority="5")
    Select(browser.driver.find_element(By.ID, "maci_role")).select_by_value("AUDITOR")
    _submit(browser, "create-mapping")
    wait(browser, "#pending, #mappings")
    api.wait_projected()
    wait(browser, "#mappings")
    assert f"{SCRIPT}{IMAGE}" in [e.text for e in browser.driver.find_elements(
        By.CSS_SELECTOR, "#mappings .mapping-value")]  # fmt: skip
    assert_inert(browser)
    fill(browser, source_value="admins", priority="lots")  # one bad field, the value kept
    Select(browser.driver.find_element(By.ID, "maci_role")).select_by_value("EXECUTIVE")
    _submit(browser, "create-mapping")
    wait(browser, "#priority-error")
    logged = browser.console_errors()  # the refused post itself, nothing else
    assert len(logged) == 1, logged
    assert "422" in logged[0]
    assert browser.driver.find_element(By.ID, "source_value").get_attribute("value") == "admins"
    fill(browser, priority="10")
    _submit(browser, "create-mapping")
    wait(browser, "#pending, #mappings")
    api.wait_projected()
    wait(browser, "#mappings")
    rows = [
        [c.text for c in r.find_elements(By.CSS_SELECTOR, "td")][:5]
        for r in browser.driver.find_elements(By.CSS_SELECTOR, "#mappings tbody tr")
    ]
    assert rows[0] == [name, "SAML attribute value", "admins", "EXECUTIVE", "10"]
    assert_inert(browser)
    browser.screenshot("role-mappings")

    # the preview: the sign-in's own resolution
    fill(browser, **{"preview-values": "engineers\nadmins"})
    _submit(browser, "preview-submit")
    wait(browser, "#preview-result")
    assert text(browser, "#preview-roles") == "EXECUTIVE"
    fill(browser, **{"preview-values": f"nobody {IMAGE}"})
    _submit(browser, "preview-submit")
    wait(browser, "#preview-result")
    assert text(browser, "#preview-roles") == "MONITOR"  # the tenant's default role
    assert "no mapping matched" in text(browser, "#preview-result")
    assert browser.driver.find_element(By.ID, "preview-values").get_attribute("value") == (
        f"nobody {IMAGE}"
    )
    assert_inert(browser)
    browser.screenshot("role-mappings-preview")
    assert_clean_console(browser)

    # a user signs in through the IdP's login page and lands in the console
    browser.driver.delete_all_cookies()
    browser.open(f"/console/sign-in?tenant={slug}")
    wait(browser, f"#sso-{integration_id}")
    assert browser.driver.find_element(By.ID, "tenant_slug").get_attribute("value") == slug
    assert_inert(browser)
    browser.screenshot("sign-in-sso")
    browser.driver.find_element(By.ID, f"sso-{integration_id}").click()
    wait(browser, "input[name=username]")
    assert not browser.driver.current_url.startswith(api.url)  # at the IdP
    browser.driver.find_element(By.NAME, "username").send_keys("alice")
    browser.driver.find_element(By.NAME, "password").send_keys("alice-password")
    browser.driver.find_element(By.CSS_SELECTOR, "form").submit()
    wait(browser, "#tenant-name")  # the IdP's form posted to the ACS, which landed here
    assert browser.driver.current_url == f"{api.url}/console/tenants/{tenant_id}"
    assert "EXECUTIVE" in text(browser, ".who")
    assert "#" not in browser.driver.current_url  # the tokens never in the URL
    cookie = browser.cookie(COOKIE)
    assert cookie is not None
    assert cookie["httpOnly"] is True
    assert cookie["path"] == "/console"
    assert_clean_here(browser, api)
    browser.screenshot("tenant-after-saml")

    # at a phone's width, the role mapping page fits
    browser.driver.set_window_size(375, 812)
    browser.open(f"/console/tenants/{tenant_id}/role-mappings")
    wait(browser, "#mappings")
    browser.screenshot("role-mappings-phone")
    wide = browser.driver.execute_script(
        "return [...document.querySelectorAll('body *')]"
        ".filter(e => e.getBoundingClientRect().right > window.innerWidth + 1)"
        ".map(e => e.tagName + '#' + e.id + '.' + e.className)"
    )
    assert wide == []

    # and the mapping is deleted from the page
    browser.driver.set_window_size(1280, 900)
    browser.open(f"/console/tenants/{tenant_id}/role-mappings")
    wait(browser, "#mappings")
    before = len(browser.driver.find_elements(By.CSS_SELECTOR, "#mappings tbody tr"))
    _submit(browser, browser.driver.find_element(
        By.CSS_SELECTOR, "#mappings tbody tr button.danger").get_attribute("id"))  # fmt: skip
    wait(browser, "#pending, #mappings")
    api.wait_projected()
    browser.open(f"/console/tenants/{tenant_id}/role-mappings")
    wait(browser, "#mappings")
    assert len(browser.driver.find_elements(By.CSS_SELECTOR, "#mappings tbody tr")) == before - 1


def test_a_user_signs_in_through_the_openid_provider_and_lands_in_the_console(
    browser: Browser, api: Api, platform: httpx.Client, oidc_provider: OidcProvider
) -> None:
    slug = f"oidc-{uuid4().hex[:10]}"
    made = OidcTenant(api, platform, oidc_provider, slug)
    browser.open(f"/console/sign-in?tenant={slug}")
    wait(browser, f"#sso-{made.integration_id}")
    assert "OpenID Connect" in text(browser, "#sso-buttons")
    browser.driver.find_element(By.ID, f"sso-{made.integration_id}").click()
    wait(browser, "input[name=username]")
    browser.driver.find_element(By.NAME, "username").send_keys("alice")
    browser.driver.find_element(By.NAME, "password").send_keys("alice-oidc-pw")
    browser.driver.find_element(By.CSS_SELECTOR, "form button").click()
    WebDriverWait(browser.driver, 15).until(
        lambda d: d.find_elements(By.ID, "tenant-name") or "/confirm" in d.page_source
    )
    if not browser.driver.find_elements(By.ID, "tenant-name"):  # the provider's consent step
        browser.screenshot("oidc-consent")
        browser.driver.find_element(By.CSS_SELECTOR, "form button").click()
    wait(browser, "#tenant-name")
    assert browser.driver.current_url == f"{api.url}/console/tenants/{made.id}"
    assert "EXECUTIVE" in text(browser, ".who")  # executives (10) and auditors (20)
    assert "AUDITOR" in text(browser, ".who")
    assert_clean_here(browser, api)
    browser.screenshot("tenant-after-oidc")
    # the console session is a real session: sign-out ends it
    browser.driver.find_element(By.CSS_SELECTOR, "form.signout button").click()
    wait(browser, "#token")
    browser.open(f"/console/tenants/{made.id}")
    wait(browser, "#token")


def test_the_sign_in_page_names_no_tenant_it_does_not_know(browser: Browser) -> None:
    browser.open("/console/sign-in?tenant=" + "no-such-" + uuid4().hex[:8])
    wait(browser, "#sso-error")
    assert text(browser, "#sso-error") == "no active tenant has this slug"
    browser.open("/console/sign-in")
    wait(browser, "#tenant")
    fill(browser, tenant=f"{SCRIPT}{IMAGE}")
    browser.driver.find_element(By.ID, "sso-find").click()
    wait(browser, "#sso-error")
    assert browser.driver.find_element(By.ID, "tenant").get_attribute("value") == (
        f"{SCRIPT}{IMAGE}"[:64].strip().lower()
    )
    assert_inert(browser)


def test_every_integration_type_has_its_form(
    browser: Browser, api: Api, tenant: tuple[UUID, str]
) -> None:
    tenant_id, _ = tenant
    sign_in_with_token(browser, api.token(MaciRole.EXECUTIVE, tenant_id=tenant_id))
    for kind, first in (
        ("ldap", "server_url"), ("saml", "idp_metadata_url"), ("oidc", "issuer"),
        ("oauth", "issuer"), ("kafka", "bootstrap_servers"), ("siem", "kind"),
        ("data_warehouse", "provider"),
    ):  # fmt: skip
        browser.open(f"/console/tenants/{tenant_id}/integrations/new?type={kind}")
        wait(browser, f"#{first}")
        assert (
            browser.driver.find_element(
                By.CSS_SELECTOR, "input[name=integration_type]"
            ).get_attribute("value")
            == kind
        )
        browser.screenshot(f"integration-new-{kind}")
    assert_clean_console(browser)
    # at a phone's width the longest form fits, and so does the sign-in page
    browser.driver.set_window_size(375, 812)
    for name, path, element in (
        ("integration-new-saml-phone", f"/console/tenants/{tenant_id}/integrations/new?type=saml",
         "#sp_entity_id"),
        ("integrations-phone", f"/console/tenants/{tenant_id}/integrations", "#new-type"),
        ("sign-in-phone", "/console/sign-in", "#tenant"),
    ):  # fmt: skip
        browser.open(path)
        wait(browser, element)
        browser.screenshot(name)
        wide = browser.driver.execute_script(
            "return [...document.querySelectorAll('body *')]"
            ".filter(e => e.getBoundingClientRect().right > window.innerWidth + 1)"
            ".map(e => e.tagName + '#' + e.id + '.' + e.className)"
        )
        assert wide == [], (path, wide)
    browser.driver.set_window_size(1280, 900)
    # a SIEM with a missing token and a bad URL: both named at once, the secret not kept
    browser.open(f"/console/tenants/{tenant_id}/integrations/new?type=siem")
    wait(browser, "#kind")
    fill(browser, integration_name="Splunk", url="ftp://nope", batch_size="many")
    _submit(browser, "save-integration")
    wait(browser, "#form-error")
    assert text(browser, "#url-error")
    assert text(browser, "#batch_size-error") == "must be an integer"
    assert browser.driver.find_element(By.ID, "batch_size").get_attribute("value") == "many"
    # the values right, the kind's own rule: a Splunk HEC needs its token
    fill(browser, url="https://splunk.acme.test:8088/services/collector/event", batch_size="100")
    _submit(browser, "save-integration")
    wait(browser, "#token-error")
    assert text(browser, "#token-error") == "is required for splunk_hec"


def test_a_return_that_leaves_the_console_is_refused(
    api: Api, platform: httpx.Client, oidc_provider: OidcProvider, saml_idp: SamlIdp
) -> None:
    made = OidcTenant(api, platform, oidc_provider, f"ret-{uuid4().hex[:10]}")
    saml = SamlTenant(api, platform, f"ret-{uuid4().hex[:10]}")
    created = saml.admin.post(
        f"/v1/tenants/{saml.id}/integrations",
        json={
            "integration_type": "saml",
            "integration_name": "Corporate SSO",
            "config": {
                "idp_metadata_url": saml_idp.metadata_url,
                "sp_entity_id": f"urn:acgs:sp:{saml.slug}",
                "sp_private_key": saml.sp_keys.key_pem,
                "sp_certificate": saml.sp_keys.cert_pem,
                "timeout_seconds": 30,  # the IdP's metadata, read by a loaded machine
            },
            "constitutional_hash": HASH,
        },
    )
    saml.admin.close()
    assert created.status_code == 201, created.text
    saml_id = created.json()["integration_id"]
    api.wait_projected()
    with httpx.Client(base_url=api.url, timeout=60) as client:
        for bad in ("//evil.test/console/", "/console/../v1/auth/me", "/v1/auth/me"):
            refused = client.get(f"/v1/auth/saml/{saml_id}/login", params={"return_to": bad})
            assert refused.status_code == 422, (bad, refused.text)
        started = client.get(f"/v1/auth/saml/{saml_id}/login", params={"return_to": "/console/"})
        assert started.status_code == 303, started.text
        assert started.headers["location"].startswith(saml_idp.url)
        for bad in ("https://evil.test/", "//evil.test/console/", "/console/../v1/auth/me"):
            refused = client.get(
                f"/v1/auth/oidc/{made.integration_id}/login", params={"return_to": bad}
            )
            assert refused.status_code == 422, (bad, refused.text)
        started = client.get(
            f"/v1/auth/oidc/{made.integration_id}/login", params={"return_to": "/console/"}
        )
        assert started.status_code == 303
        assert started.headers["location"].startswith(oidc_provider.issuer)
        # the console's button goes to the same flow, its return the console
        button = client.get(f"/console/sign-in/oidc/{made.integration_id}")
        assert button.status_code == 303
        assert button.headers["location"] == (
            f"/v1/auth/oidc/{made.integration_id}/login?return_to=%2Fconsole%2F"
        )
        assert client.get(f"/console/sign-in/ldap/{made.integration_id}").status_code == 404
