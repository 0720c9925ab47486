"""The console's acceptance journey, as a new tenant admin would walk it, with no curl: sign in
through the LDAP form (the directory's `executives` group is mapped to EXECUTIVE), configure a
SAML integration through its form, map a SAML group to a role, start a policy-conversion job
with a zip of legacy policies, watch it complete, and download its PDF report with the browser.
Real app, PostgreSQL, slapd, the pysaml2 IdP and headless Chromium; a job worker runs as `acgs
serve` would run it (the shared test server runs none)."""

from __future__ import annotations

import threading
import time
from pathlib import Path

import httpx
import pytest
from selenium.webdriver.common.by import By
from selenium.webdriver.support.ui import Select, WebDriverWait

from domain.maci import MaciRole
from tests.browser.console_support import assert_clean_console, assert_inert, fill, text, wait
from tests.e2e.ldap_support import directory_tenant
from tests.e2e.migration_support import corpus_files, zipped
from tests.e2e.saml_support import ATTRIBUTE_MAP
from tests.peers.browser import Browser
from tests.peers.http import Api
from tests.peers.saml_idp import SamlIdp, make_key_pair
from tests.peers.slapd import Slapd

pytestmark = [
    pytest.mark.browser,
    pytest.mark.e2e,
    pytest.mark.postgres,
    pytest.mark.ldap,
    pytest.mark.saml,
]


def _paste(browser: Browser, element_id: str, value: str) -> None:
    """A multi-line value (a PEM block) into a text area, as a paste would."""
    browser.driver.execute_script(
        "document.getElementById(arguments[0]).value = arguments[1]", element_id, value
    )


def _click(browser: Browser, css: str) -> None:
    element = browser.driver.find_element(By.CSS_SELECTOR, css)
    browser.driver.execute_script("arguments[0].scrollIntoView()", element)
    element.click()


def _until_shown(browser: Browser, api: Api, css: str) -> None:
    """After a write: the page waits (reloading itself) until the read model has it."""
    wait(browser, f"#pending, {css}")
    api.wait_projected()
    wait(browser, css, timeout=30)


def test_a_tenant_admin_signs_in_configures_saml_and_a_mapping_and_converts_policies(
    browser: Browser,
    api: Api,
    platform: httpx.Client,
    slapd: Slapd,
    saml_idp: SamlIdp,
    tmp_path: Path,
) -> None:
    tenant_id, slug = directory_tenant(api, platform, slapd, "journey")

    # 1. sign in through the directory, from the console's front door
    browser.open("/console/")
    wait(browser, "#username")
    fill(browser, tenant_slug=slug, username="alice", password="alice-password")
    browser.driver.find_element(By.ID, "ldap-submit").click()
    wait(browser, "#tenant-name")
    assert browser.driver.current_url.endswith(f"/console/tenants/{tenant_id}")
    assert "EXECUTIVE" in text(browser, ".who")
    browser.screenshot("journey-signed-in")

    # 2. a SAML integration, through the form of its type
    _click(browser, "main a[href$='/integrations']")
    wait(browser, "#new-type")
    Select(browser.driver.find_element(By.ID, "new-type")).select_by_value("saml")
    browser.driver.find_element(By.ID, "new-integration").click()
    wait(browser, "#sp_entity_id")
    keys = make_key_pair(f"SP {slug}")
    fill(
        browser,
        integration_name="Corporate SSO",
        idp_metadata_url=saml_idp.metadata_url,
        sp_entity_id=f"urn:acgs:sp:{slug}",
        timeout_seconds="30",  # the IdP's metadata, read by a busy machine
    )
    _paste(browser, "sp_private_key", keys.key_pem)
    _paste(browser, "sp_certificate", keys.cert_pem)
    for prop, attribute in ATTRIBUTE_MAP.items():
        fill(browser, **{f"attribute_map.{prop}": attribute})
    _click(browser, "#save-integration")
    _until_shown(browser, api, "#test-integration")
    saml_id = browser.driver.current_url.split("?")[0].rstrip("/").rsplit("/", 1)[1]
    assert "PRIVATE KEY" not in browser.driver.page_source  # the key is never sent back
    assert_clean_console(browser)
    browser.screenshot("journey-saml")

    # 3. a role mapping: the IdP's group "admins" gives EXECUTIVE through the SAML integration
    browser.open(f"/console/tenants/{tenant_id}")
    wait(browser, "#role-mappings-link")
    browser.driver.find_element(By.ID, "role-mappings-link").click()
    wait(browser, "#mapping-form")
    Select(browser.driver.find_element(By.ID, "integration_id")).select_by_value(saml_id)
    fill(browser, source_value="admins", priority="10")
    Select(browser.driver.find_element(By.ID, "maci_role")).select_by_value("EXECUTIVE")
    _click(browser, "#create-mapping")
    _until_shown(browser, api, "#mappings")
    rows = [r.text for r in browser.driver.find_elements(By.CSS_SELECTOR, "#mappings tbody tr")]
    assert any("admins" in r and "EXECUTIVE" in r and "Corporate SSO" in r for r in rows), rows
    with api.client(api.token(MaciRole.EXECUTIVE, tenant_id=tenant_id)) as admin:
        mappings = admin.get(f"/v1/tenants/{tenant_id}/role-mappings").json()["role_mappings"]
    assert any(
        m["integration_id"] == saml_id and m["source_value"] == "admins" for m in mappings
    ), mappings
    browser.screenshot("journey-mapping")

    # 4. a policy-conversion job of a zip of legacy policies, followed to its end
    archive = tmp_path / "legacy-policies.zip"
    archive.write_bytes(zipped(corpus_files(12)))
    browser.open(f"/console/tenants/{tenant_id}")
    wait(browser, "#tenant-jobs")
    browser.driver.find_element(By.ID, "tenant-jobs").click()
    wait(browser, "#new-job")
    browser.driver.find_element(By.ID, "new-job").click()
    wait(browser, "#job_type")
    Select(browser.driver.find_element(By.ID, "job_type")).select_by_value("policy_conversion")
    fill(browser, source_system="Legacy governance")
    browser.driver.find_element(By.ID, "file").send_keys(str(archive))
    _click(browser, "#start-job")
    _until_shown(browser, api, "#job-progress")
    runner = api.system.migration_runner(poll_seconds=0.05)
    worker = threading.Thread(target=runner.run_once, name="journey-job-runner", daemon=True)
    worker.start()
    deadline = time.monotonic() + 180
    status = ""
    while time.monotonic() < deadline and status not in ("completed", "failed"):
        api.wait_projected()  # the read models follow the log, as `acgs serve` runs them
        time.sleep(0.5)
        status = browser.driver.execute_script(  # the page replaces the element as it updates
            "var s = document.getElementById('job-status'); return s ? s.textContent : ''"
        )
    worker.join(timeout=60)
    assert text(browser, "#job-status") == "completed"
    assert text(browser, "#job-progress-label") == "100 %"
    assert text(browser, "#job-counts") == "12 of 12 done: 12 succeeded, 0 failed"
    assert_inert(browser)
    browser.screenshot("journey-job")

    # 5. its PDF report, downloaded by the browser
    browser.driver.execute_cdp_cmd(
        "Browser.setDownloadBehavior",
        {"behavior": "allow", "downloadPath": str(tmp_path), "eventsEnabled": True},
    )
    _click(browser, "#report-pdf")
    files = WebDriverWait(browser.driver, 30).until(
        lambda _: [p for p in tmp_path.iterdir() if p.suffix == ".pdf"] or False
    )
    report = files[0].read_bytes()
    assert report.startswith(b"%PDF-")
    assert len(report) > 2000
    assert_clean_console(browser)
