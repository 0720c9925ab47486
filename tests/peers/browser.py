"""A real browser for the console tests: Debian's headless Chromium driven by Debian's
chromium-driver through selenium, both found at their executable paths (selenium is never left
to download a driver or a browser). One browser for the session, quit at the end; each test gets
it with its cookies cleared.

Screenshots go to `out/browser/` at the repository root (gitignored), one PNG per page a test
names. Missing chromium or chromedriver is a failure naming the install step, never a skip."""

from __future__ import annotations

import json
import shutil
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from selenium import webdriver
from selenium.webdriver.chrome.options import Options
from selenium.webdriver.chrome.service import Service

INSTALL = (
    "chromium and chromium-driver are not installed: run `make system-deps` as root "
    "(apt-get install -y --no-install-recommends chromium chromium-driver)"
)
ARTEFACTS = Path(__file__).resolve().parents[2] / "out" / "browser"


def _executable(*names: str) -> str:
    for name in names:
        found = shutil.which(name) or shutil.which(name, path="/usr/bin:/usr/lib/chromium")
        if found:
            return found
    pytest.fail(INSTALL)


def start_chromium() -> webdriver.Chrome:
    options = Options()
    options.binary_location = _executable("chromium", "chromium-browser")
    for argument in (
        "--headless=new",
        "--no-sandbox",  # the tests run as root
        "--disable-dev-shm-usage",
        "--disable-gpu",
        "--no-first-run",
        "--disable-extensions",
        "--disable-background-networking",  # nothing leaves 127.0.0.1
        "--disable-component-update",
        "--disable-sync",
        "--window-size=1280,900",
    ):
        options.add_argument(argument)
    options.set_capability("goog:loggingPrefs", {"browser": "ALL"})
    service = Service(executable_path=_executable("chromedriver"))
    return webdriver.Chrome(options=options, service=service)


class Browser:
    """The driver with the helpers the console tests share."""

    def __init__(self, driver: webdriver.Chrome, base_url: str) -> None:
        self.driver = driver
        self.base_url = base_url

    def open(self, path: str) -> None:
        self.driver.get(self.base_url + path)

    def screenshot(self, name: str) -> Path:
        ARTEFACTS.mkdir(parents=True, exist_ok=True)
        path = ARTEFACTS / f"{name}.png"
        self.driver.save_screenshot(str(path))
        return path

    def console_errors(self) -> list[str]:
        """What the page logged at SEVERE (a blocked inline script or style, a failed load)
        since the last call."""
        entries: list[dict[str, Any]] = self.driver.get_log("browser")
        return [json.dumps(e) for e in entries if e.get("level") == "SEVERE"]

    def cookie(self, name: str) -> dict[str, Any] | None:
        found: dict[str, Any] | None = self.driver.get_cookie(name)
        return found


@pytest.fixture(scope="session")
def chromium() -> Iterator[webdriver.Chrome]:
    driver = start_chromium()
    try:
        yield driver
    finally:
        driver.quit()
        driver.command_executor.close()  # its kept-alive connection to chromedriver
