"""The health checker's view of the `enterprise_integrations` read model, as the projector role
(it sees every tenant's rows): which integrations to check, which archived ones are due for
crypto-shredding, and the time and outcome of each check (`last_health_check`)."""

from __future__ import annotations

from datetime import datetime
from typing import Any
from uuid import UUID

import psycopg

from domain.integration.values import HealthStatus

_CHECKED = (
    "UPDATE enterprise_integrations SET health_status = %s, "
    "last_health_check = greatest(last_health_check, %s) "
    "WHERE integration_id = %s AND tenant_id = %s AND archived_at IS NULL"
)


class IntegrationHealthLedger:
    def __init__(self, conninfo: str) -> None:
        self._conninfo = conninfo

    def checked(
        self, tenant_id: UUID, integration_id: UUID, status: HealthStatus, at: datetime
    ) -> None:
        with psycopg.connect(self._conninfo, autocommit=True) as conn:
            conn.execute(_CHECKED, [status.value, at, integration_id, tenant_id])

    def due(self) -> list[tuple[UUID, UUID]]:
        """(tenant, integration) of every enabled live integration, least recently checked first."""
        return self._pairs(
            "SELECT tenant_id, integration_id FROM enterprise_integrations "
            "WHERE enabled AND archived_at IS NULL ORDER BY last_health_check NULLS FIRST",
            [],
        )

    def expired_archives(self, now: datetime) -> list[tuple[UUID, UUID]]:
        return self._pairs(
            "SELECT tenant_id, integration_id FROM enterprise_integrations "
            "WHERE archived_at IS NOT NULL AND NOT secrets_shredded AND purge_after <= %s",
            [now],
        )

    def _pairs(self, sql: str, params: list[Any]) -> list[tuple[UUID, UUID]]:
        with psycopg.connect(self._conninfo, autocommit=True) as conn:
            rows = conn.execute(sql, params).fetchall()
        return [(UUID(str(t)), UUID(str(i))) for t, i in rows]
