"""Shared fixtures. Real peers are started by the plugins in tests/peers/ (session-scoped).

The suite may run in several processes (pytest-xdist: `make test`, `--dist loadgroup`). A test
module goes to one process as a whole (its module fixtures are set up once), unless its tests
name a group of their own (`xdist_group`: the fuzzing, one group per principal, since one module
of it would outlast the rest of the suite). What a test reports for the terminal summary travels
in its report's user properties, which reach the process that prints the summary whichever
process ran the test."""

from __future__ import annotations

from typing import Any

import pytest

pytest_plugins = [
    "tests.peers.postgres",
    "tests.peers.kafka",
    "tests.peers.http",
    "tests.peers.s3",
    "tests.peers.slapd",
    "tests.peers.openbao",
    "tests.peers.saml_idp",
    "tests.peers.oidc_provider",
    "tests.peers.splunk_hec",
    "tests.peers.rsyslog",
    "tests.peers.elasticsearch",
    "tests.peers.datadog",
    "tests.peers.sentinel",
    "tests.peers.redis",
    "tests.peers.bigquery",
    "tests.peers.browser",
]

# A fault case's line of figures (tests/faults: the `figures` fixture records it).
FIGURES_PROPERTY = "fault suite figures"
_FIGURES: list[tuple[str, str]] = []


def pytest_runtest_logreport(report: Any) -> None:
    if report.when == "call":
        test = report.nodeid.rpartition("::")[2]
        _FIGURES.extend((test, str(v)) for k, v in report.user_properties if k == FIGURES_PROPERTY)


def pytest_terminal_summary(terminalreporter: Any) -> None:
    if not _FIGURES:
        return
    terminalreporter.section(FIGURES_PROPERTY)
    for test, line in _FIGURES:
        terminalreporter.write_line(f"{test}: {line}")


@pytest.hookimpl(tryfirst=True)  # before xdist reads the groups
def pytest_collection_modifyitems(items: list[pytest.Item]) -> None:
    for item in items:
        if item.get_closest_marker("xdist_group") is None:
            item.add_marker(pytest.mark.xdist_group(item.nodeid.partition("::")[0]))
