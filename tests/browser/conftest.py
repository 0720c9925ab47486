"""The console's browser tests: one page per test on the session's headless Chromium, at
1280 px, with no cookie left from an earlier test."""

from __future__ import annotations

from collections.abc import Iterator

import pytest
from selenium import webdriver

from tests.peers.browser import Browser
from tests.peers.http import Api


@pytest.fixture
def browser(chromium: webdriver.Chrome, api: Api) -> Iterator[Browser]:
    chromium.delete_all_cookies()
    chromium.set_window_size(1280, 900)
    made = Browser(chromium, api.url)
    made.console_errors()  # drop what earlier tests left
    yield made
    chromium.delete_all_cookies()
