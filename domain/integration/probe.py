"""What a connectivity test of an integration found (the same for the test endpoint and the
health checker), and the health it means."""

from __future__ import annotations

from dataclasses import dataclass
from enum import StrEnum
from typing import Any

from domain.integration.values import HealthStatus


class ProbeFailure(StrEnum):
    UNREACHABLE = "unreachable"  # no connection (refused, DNS, TLS, timeout)
    AUTH_FAILED = "auth_failed"  # reached, but the integration's credentials were refused
    QUERY_FAILED = "query_failed"  # reached and authenticated, the test query failed


@dataclass(frozen=True)
class ProbeResult:
    connection_established: bool
    authentication_successful: bool
    test_query_executed: bool
    latency_ms: int
    failure: ProbeFailure | None = None
    message: str = "ok"  # safe to show: never a secret, never the server's raw answer

    @property
    def health(self) -> HealthStatus:
        if self.failure is None:
            return HealthStatus.HEALTHY
        if self.failure is ProbeFailure.UNREACHABLE:
            return HealthStatus.UNHEALTHY
        return HealthStatus.DEGRADED

    def details(self) -> dict[str, Any]:
        return {
            "connection_established": self.connection_established,
            "authentication_successful": self.authentication_successful,
            "test_query_executed": self.test_query_executed,
            "latency_ms": self.latency_ms,
        }
