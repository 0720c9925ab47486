"""The connectivity test of every integration type, behind each integration's circuit breaker
(`commands.integrations.Probe`): LDAP (connect, TLS, bind, one search), OIDC/OAuth (discovery,
JWKS), SAML (metadata, certificates); Kafka, SIEM and warehouse endpoints are tested by opening
a TCP connection (a DuckDB or NDJSON file: its directory must exist). Only an unreachable
endpoint counts as a breaker failure.
"""

from __future__ import annotations

import socket
import time
from collections.abc import Callable
from datetime import UTC, datetime
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit
from uuid import UUID

from domain.constitution import DEFAULT_CONSTITUTIONAL_HASH
from domain.integration.probe import ProbeFailure, ProbeResult
from domain.integration.values import IntegrationType
from domain.sinks import DeliveryFailed, test_record
from infra.circuit_breaker import CircuitBreakers
from infra.ldap.directory import DirectorySettings, LdapDirectory
from infra.oidc.discovery import check_provider
from infra.saml.metadata import check_idp
from infra.sinks import ADAPTERS, open_sink

Check = Callable[[dict[str, Any]], ProbeResult]


def tcp_check(host: str, port: int, timeout: float) -> ProbeResult:
    started = time.perf_counter()
    try:
        with socket.create_connection((host, port), timeout=timeout):
            pass
    except OSError as exc:
        return ProbeResult(
            connection_established=False,
            authentication_successful=False,
            test_query_executed=False,
            latency_ms=round((time.perf_counter() - started) * 1000),
            failure=ProbeFailure.UNREACHABLE,
            message=f"cannot connect to {host}:{port} ({type(exc).__name__})",
        )
    return ProbeResult(
        connection_established=True,
        authentication_successful=False,
        test_query_executed=True,
        latency_ms=round((time.perf_counter() - started) * 1000),
    )


def _endpoint(config: dict[str, Any], default_port: int) -> tuple[str, int] | None:
    if config.get("url"):
        url = urlsplit(str(config["url"]))
        return url.hostname or "", url.port or (443 if url.scheme == "https" else 80)
    if config.get("host"):
        return str(config["host"]), int(config.get("port") or default_port)
    if config.get("bootstrap_servers"):
        host, _, port = str(config["bootstrap_servers"][0]).rpartition(":")
        return host, int(port)
    return None


def _file_check(path: str) -> ProbeResult:
    ok = Path(path).parent.is_dir()
    return ProbeResult(
        ok,
        ok,
        ok,
        0,
        None if ok else ProbeFailure.UNREACHABLE,
        "ok" if ok else "the file's directory does not exist",
    )


def _endpoint_check(config: dict[str, Any]) -> ProbeResult:
    path = config.get("database_path") or config.get("path")
    if path:
        return _file_check(str(path))
    if config.get("provider") == "duckdb":  # its file under the data directory, made on use
        return ProbeResult(
            connection_established=True,
            authentication_successful=True,
            test_query_executed=True,
            latency_ms=0,
            message="ok (a file under the data directory)",
        )
    endpoint = _endpoint(config, 443)
    if endpoint is None:  # BigQuery/Snowflake reach a cloud API only
        return ProbeResult(
            connection_established=False,
            authentication_successful=False,
            test_query_executed=False,
            latency_ms=0,
            failure=ProbeFailure.QUERY_FAILED,
            message="this provider has no endpoint to test from here",
        )
    return tcp_check(*endpoint, float(config.get("timeout_seconds", 5)))


CHECKS: dict[IntegrationType, Check] = {
    IntegrationType.LDAP: lambda c: LdapDirectory(DirectorySettings.from_config(c)).check(),
    IntegrationType.OIDC: lambda c: check_provider(c, oidc=True),
    IntegrationType.OAUTH: lambda c: check_provider(c, oidc=False),
    IntegrationType.SAML: check_idp,
    IntegrationType.KAFKA: _endpoint_check,
    IntegrationType.SIEM: _endpoint_check,
    IntegrationType.DATA_WAREHOUSE: _endpoint_check,
}


def sink_check(
    integration_id: UUID, config: dict[str, Any], constitutional_hash: str
) -> ProbeResult:
    """A SIEM sink is tested by delivering one test record (`sink.test`) through its adapter."""
    if config.get("kind") not in ADAPTERS:
        return _endpoint_check(config)
    started = time.perf_counter()
    sink = open_sink(config)
    record = test_record(integration_id, constitutional_hash, datetime.now(UTC))
    try:
        sink.deliver([record])
    except DeliveryFailed as exc:
        refused = exc.credentials_refused
        return ProbeResult(
            connection_established=refused,
            authentication_successful=False,
            test_query_executed=False,
            latency_ms=round((time.perf_counter() - started) * 1000),
            failure=ProbeFailure.AUTH_FAILED if refused else ProbeFailure.UNREACHABLE,
            message=str(exc),
        )
    finally:
        sink.close()
    return ProbeResult(
        connection_established=True,
        authentication_successful=True,
        test_query_executed=True,
        latency_ms=round((time.perf_counter() - started) * 1000),
        message=f"test event {record.event_id} delivered",
    )


class ConnectivityProbe:
    def __init__(
        self, breakers: CircuitBreakers, *, constitutional_hash: str = DEFAULT_CONSTITUTIONAL_HASH
    ) -> None:
        self.breakers = breakers
        self.constitutional_hash = constitutional_hash

    def __call__(
        self, integration_id: UUID, integration_type: IntegrationType, config: dict[str, Any]
    ) -> ProbeResult:
        check = CHECKS[integration_type]
        if integration_type is IntegrationType.SIEM:
            hash_ = self.constitutional_hash

            def check(c: dict[str, Any]) -> ProbeResult:
                return sink_check(integration_id, c, hash_)

        return self.breakers.call(
            integration_id,
            lambda: check(config),
            failed=lambda r: r.failure is ProbeFailure.UNREACHABLE,
        )
