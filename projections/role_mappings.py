"""The `tenant_role_mappings` read model: one row per live role mapping (a deleted mapping's row
is removed; its events stay in the log), and the queries the API runs on it. Every change is
announced on the `acgs_role_mappings` channel with the tenant id, so sign-in's role caches (in
every API process) drop that tenant's entries once the change is visible."""

from __future__ import annotations

from typing import Any
from uuid import UUID

from psycopg import AsyncConnection, Cursor
from psycopg.rows import DictRow

from domain.role_mapping import RoleMapping
from domain.tenant.aggregate import Tenant

ROLE_MAPPINGS_CHANGED = "acgs_role_mappings"  # NOTIFY channel: the payload is the tenant id
COLUMNS = (
    "mapping_id, tenant_id, integration_id, source_type, source_value, maci_role, priority, "
    "created_at, updated_at, constitutional_hash"
)


class RoleMappingsProjection:
    name = "role_mappings"
    tables = ("tenant_role_mappings",)

    def apply(self, cur: Cursor[Any], event: Any) -> None:
        if isinstance(event, Tenant.Purged):
            cur.execute(
                "DELETE FROM tenant_role_mappings WHERE tenant_id = %s", [event.originator_id]
            )
            return
        if not isinstance(event, RoleMapping.Event):
            return
        # Delivered when this transaction commits: caches reload what is then visible.
        cur.execute("SELECT pg_notify(%s, %s)", [ROLE_MAPPINGS_CHANGED, event.meta["tenant_id"]])
        if isinstance(event, RoleMapping.Created):
            cur.execute(
                "INSERT INTO tenant_role_mappings (mapping_id, tenant_id, integration_id, "
                "source_type, source_value, maci_role, priority, constitutional_hash, "
                "created_at, updated_at) VALUES (%s, %s, %s, %s, %s, %s, %s, %s, %s, %s) "
                "ON CONFLICT (mapping_id) DO NOTHING",
                [
                    event.originator_id,
                    event.meta["tenant_id"],
                    event.integration_id,
                    event.source_type,
                    event.source_value,
                    event.maci_role,
                    event.priority,
                    event.meta["constitutional_hash"],
                    event.timestamp,
                    event.timestamp,
                ],
            )
        elif isinstance(event, RoleMapping.Updated):
            cur.execute(
                "UPDATE tenant_role_mappings SET source_value = %s, maci_role = %s, "
                "priority = %s, updated_at = %s WHERE mapping_id = %s",
                [
                    event.source_value,
                    event.maci_role,
                    event.priority,
                    event.timestamp,
                    event.originator_id,
                ],
            )
        elif isinstance(event, RoleMapping.Deleted):
            cur.execute(
                "DELETE FROM tenant_role_mappings WHERE mapping_id = %s", [event.originator_id]
            )


# --- queries (run inside a tenant session) ----------------------------------------------------


async def list_role_mappings(
    conn: AsyncConnection[DictRow], integration_id: UUID | None = None
) -> list[dict[str, Any]]:
    """The tenant's mappings, highest priority first."""
    where, params = ("WHERE integration_id = %s", [integration_id]) if integration_id else ("", [])
    cur = await conn.execute(
        f"SELECT {COLUMNS} FROM tenant_role_mappings {where} "  # noqa: S608 - fixed columns and WHERE fragments; values bound  # nosec B608
        "ORDER BY priority DESC, created_at, mapping_id",
        params,
    )
    return await cur.fetchall()


async def find_role_mapping(
    conn: AsyncConnection[DictRow], mapping_id: UUID
) -> dict[str, Any] | None:
    cur = await conn.execute(
        f"SELECT {COLUMNS} FROM tenant_role_mappings WHERE mapping_id = %s",  # noqa: S608 - fixed columns and WHERE fragments; values bound  # nosec B608
        [mapping_id],
    )
    return await cur.fetchone()
