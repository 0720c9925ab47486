"""Shared fixtures. Real peers are started by the plugins in tests/peers/ (session-scoped).

The suite may run in several processes (pytest-xdist: `make test`). A test module goes to one
process as a whole, so that its module fixtures are set up once (`ModuleScheduling`); the
longest modules are handed out first (`FIRST`). What a test reports for the terminal
summary travels in its report's user properties, which reach the process that prints the
summary whichever process ran the test.

Under `make test` coverage is measured in the processes the tests start too (coverage's
subprocess patch: the variable COVERAGE_PROCESS_CONFIG in their environment), except in those a
test marked `faults` or `processes` starts: those run, for long and several at a time, code the
rest of the suite measures already, and measuring them cost about a tenth of the suite's CPU."""

from __future__ import annotations

import os
from collections.abc import Iterator
from typing import Any

import pytest
from xdist.scheduler import LoadScopeScheduling

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


# The longest modules first (`make test` keeps this order when it hands modules to processes), so
# that none starts late and outlasts the rest: the fuzzing, the fault suite, the browser and the
# end-to-end tests; then the others as collected.
FIRST = ("tests/fuzz/", "tests/faults/", "tests/browser/", "tests/e2e/")


def pytest_collection_modifyitems(items: list[pytest.Item]) -> None:
    def rank(item: pytest.Item) -> int:
        return next((i for i, d in enumerate(FIRST) if item.nodeid.startswith(d)), len(FIRST))

    items.sort(key=rank)


class ModuleScheduling(LoadScopeScheduling):
    """pytest-xdist's scheduling by scope, a scope being a test module (xdist's own `loadscope`
    takes a class as a scope, and its `loadgroup` no longer groups under pytest 9)."""

    def _split_scope(self, nodeid: str) -> str:
        return nodeid.partition("::")[0]


def pytest_xdist_make_scheduler(config: pytest.Config, log: Any) -> ModuleScheduling:
    return ModuleScheduling(config, log)


UNMEASURED = ("faults", "processes")  # markers of tests whose processes coverage does not measure
_COVERAGE_OF_PROCESSES = "COVERAGE_PROCESS_CONFIG"


@pytest.hookimpl(wrapper=True)
def pytest_runtest_protocol(item: pytest.Item) -> Iterator[None]:
    """The test run (fixtures included) with its processes unmeasured when it is marked so."""
    if not any(item.get_closest_marker(name) for name in UNMEASURED):
        return (yield)
    kept = os.environ.pop(_COVERAGE_OF_PROCESSES, None)
    try:
        return (yield)
    finally:
        if kept is not None:
            os.environ[_COVERAGE_OF_PROCESSES] = kept
