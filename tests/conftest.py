"""Shared fixtures. Real peers are started by the plugins in tests/peers/ (session-scoped).

The suite may run in several processes (pytest-xdist: `make test`); what a test reports for the
terminal summary travels in its report's user properties, which reach the process that prints
the summary whichever process ran the test."""

from __future__ import annotations

from typing import Any

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
