"""Shared fixtures. Real peers are started by the plugins in tests/peers/ (session-scoped)."""

from __future__ import annotations

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
