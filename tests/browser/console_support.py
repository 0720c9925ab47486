"""What the console's browser tests share: waiting for an element, reading and filling fields,
the XSS payloads and the check that none ran, a clean browser console, operator sign-in."""

from __future__ import annotations

import time

import pytest
from selenium.common.exceptions import NoAlertPresentException, TimeoutException
from selenium.webdriver.common.by import By
from selenium.webdriver.support import expected_conditions as ec
from selenium.webdriver.support.ui import WebDriverWait

from tests.peers.browser import Browser

SCRIPT = "<script>window.__xss = 1; alert('xss')</script>"
IMAGE = '"\'><img src=x onerror="window.__xss=1;alert(1)">'


def wait(browser: Browser, css: str, timeout: float = 15) -> None:
    try:
        WebDriverWait(browser.driver, timeout).until(
            ec.presence_of_element_located((By.CSS_SELECTOR, css))
        )
    except TimeoutException:
        browser.screenshot("failure")
        text = browser.driver.find_element(By.TAG_NAME, "body").text
        pytest.fail(f"{css} never showed on {browser.driver.current_url}: {text}")


def text(browser: Browser, css: str) -> str:
    return str(browser.driver.find_element(By.CSS_SELECTOR, css).text)


def fill(browser: Browser, **fields: str) -> None:
    for name, value in fields.items():
        element = browser.driver.find_element(By.ID, name)
        element.clear()
        element.send_keys(value)


def assert_inert(browser: Browser) -> None:
    """No payload ran: no alert, no flag set, no element a payload would have made."""
    try:
        alert = browser.driver.switch_to.alert
    except NoAlertPresentException:
        pass
    else:
        text = alert.text
        alert.dismiss()
        pytest.fail(f"a payload ran: alert {text!r}")
    assert browser.driver.execute_script("return window.__xss === undefined")
    assert browser.driver.find_elements(By.CSS_SELECTOR, "main img") == []
    assert browser.driver.find_elements(By.CSS_SELECTOR, "main script") == []


def assert_clean_console(browser: Browser) -> None:
    """The page loaded everything it names and the CSP blocked nothing of ours."""
    assert browser.console_errors() == []


def sign_in_with_token(browser: Browser, token: str) -> None:
    browser.open("/console/sign-in")
    wait(browser, "#token")
    browser.driver.find_element(By.ID, "token").send_keys(token)
    browser.driver.find_element(By.ID, "token-submit").click()
    wait(browser, "form.signout")


def reload_until(browser: Browser, path: str, css: str, timeout: float = 15) -> None:
    """Open `path` again (once a second) until `css` is on it: a page of an eventually
    consistent read model, reloaded as a user would."""
    deadline = time.monotonic() + timeout
    while True:
        browser.open(path)
        if browser.driver.find_elements(By.CSS_SELECTOR, css):
            return
        if time.monotonic() > deadline:
            wait(browser, css, timeout=0.1)  # fails, naming the page
        time.sleep(1)


def submitted(browser: Browser, button_id: str, timeout: float = 15) -> None:
    """Click a form's button and wait until the page it leads to has replaced this one (until
    then the old page is still there, and opening another would abort the post in flight)."""
    old = browser.driver.find_element(By.TAG_NAME, "html")
    browser.driver.find_element(By.ID, button_id).click()
    WebDriverWait(browser.driver, timeout).until(ec.staleness_of(old))
    wait(browser, "body")
