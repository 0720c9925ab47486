"""The `enterprise_integrations` read model: one row per integration of a live tenant, with its
configuration as stored in the events (secret fields sealed, never clear) and its health.

`last_health_check` moves with every check (the health ledger writes it directly: a check that
changes nothing is no event); `health_status` follows `integration.health_changed`. A replay
rebuilds everything but the time of checks that changed nothing. Archived integrations stay
(for audit) with `archived_at` set; purging a tenant deletes its rows.
"""

from __future__ import annotations

import json
from typing import Any

from psycopg import AsyncConnection, Cursor
from psycopg.rows import DictRow

from domain.integration.aggregate import Integration
from domain.tenant.aggregate import Tenant

_INSERT = """
INSERT INTO enterprise_integrations (integration_id, tenant_id, integration_type,
    integration_name, config_encrypted, config_encryption_key_id, enabled, health_status,
    constitutional_hash, created_at, updated_at, created_by, version)
VALUES (%(id)s, %(tenant_id)s, %(integration_type)s, %(integration_name)s, %(config)s,
    %(key_id)s, %(enabled)s, 'unknown', %(constitutional_hash)s, %(at)s, %(at)s, %(created_by)s,
    %(version)s)
ON CONFLICT (integration_id) DO NOTHING
"""
_TOUCH = (
    "UPDATE enterprise_integrations SET updated_at = %(at)s, version = %(version)s, "
    "constitutional_hash = %(constitutional_hash)s"
)
_WHERE = " WHERE integration_id = %(id)s"


def _config_text(config: dict[str, Any]) -> str:
    return json.dumps(config, sort_keys=True, separators=(",", ":"))


class IntegrationsProjection:
    name = "integrations"
    tables = ("enterprise_integrations",)

    def apply(self, cur: Cursor[Any], event: Any) -> None:
        if isinstance(event, Tenant.Purged):
            cur.execute(
                "DELETE FROM enterprise_integrations WHERE tenant_id = %s", [event.originator_id]
            )
            return
        if not isinstance(event, Integration.Event):
            return
        base = {
            "id": event.originator_id,
            "at": event.timestamp,
            "version": event.originator_version,
            "constitutional_hash": event.meta["constitutional_hash"],
        }
        if isinstance(event, Integration.Created):
            cur.execute(
                _INSERT,
                {
                    **base,
                    "tenant_id": event.meta["tenant_id"],
                    "integration_type": event.integration_type,
                    "integration_name": event.integration_name,
                    "config": _config_text(event.config),
                    "key_id": event.config_key_id,
                    "enabled": event.enabled,
                    "created_by": event.meta["actor"]["sub"],
                },
            )
        elif isinstance(event, Integration.Updated):
            cur.execute(
                _TOUCH + ", integration_name = %(name)s, enabled = %(enabled)s, "
                "config_encrypted = %(config)s" + _WHERE,
                {
                    **base,
                    "name": event.integration_name,
                    "enabled": event.enabled,
                    "config": _config_text(event.config),
                },
            )
        elif isinstance(event, Integration.HealthChanged):
            cur.execute(
                _TOUCH + ", health_status = %(status)s, last_health_check = "
                "greatest(last_health_check, %(at)s)" + _WHERE,
                {**base, "status": event.health_status},
            )
        elif isinstance(event, Integration.Archived):
            cur.execute(
                _TOUCH + ", archived_at = %(at)s, enabled = false, purge_after = %(at)s + "
                "make_interval(days => %(days)s)" + _WHERE,
                {**base, "days": event.retention_days},
            )
        elif isinstance(event, Integration.SecretsShredded):
            cur.execute(_TOUCH + ", secrets_shredded = true" + _WHERE, base)


# --- queries (run inside a tenant session) ----------------------------------------------------

SUMMARY_COLUMNS = (
    "integration_id, integration_type, integration_name, enabled, health_status, last_health_check"
)
DETAIL_COLUMNS = (
    f"{SUMMARY_COLUMNS}, tenant_id, config_encrypted, config_encryption_key_id, created_at, "
    "updated_at, created_by, constitutional_hash, version"
)


async def list_integrations(
    conn: AsyncConnection[DictRow], *, integration_type: str | None, enabled: bool | None
) -> list[dict[str, Any]]:
    """The tenant's live integrations, by type and name."""
    where: list[str] = ["archived_at IS NULL"]
    params: list[object] = []
    if integration_type is not None:
        where.append("integration_type = %s")
        params.append(integration_type)
    if enabled is not None:
        where.append("enabled = %s")
        params.append(enabled)
    cur = await conn.execute(
        f"SELECT {SUMMARY_COLUMNS} FROM enterprise_integrations "  # noqa: S608 - fixed columns and WHERE fragments; values bound  # nosec B608
        f"WHERE {' AND '.join(where)} ORDER BY integration_type, integration_name",
        params,
    )
    return await cur.fetchall()


async def find_integration(
    conn: AsyncConnection[DictRow], integration_id: Any
) -> dict[str, Any] | None:
    cur = await conn.execute(
        f"SELECT {DETAIL_COLUMNS} FROM enterprise_integrations "  # noqa: S608 - fixed columns and WHERE fragments; values bound  # nosec B608
        "WHERE integration_id = %s AND archived_at IS NULL",
        [integration_id],
    )
    return await cur.fetchone()
