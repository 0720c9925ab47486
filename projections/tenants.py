"""The `tenants` read model: one row per live tenant, maintained from Tenant events."""

from __future__ import annotations

import re
from typing import Any

from psycopg import AsyncConnection, Cursor
from psycopg.rows import DictRow

from domain.tenant.aggregate import Tenant
from domain.tenant.sign_in_settings import SignInSettings

_UPSERT = """
INSERT INTO tenants (tenant_id, tenant_name, tenant_slug, status, max_requests_per_minute,
    max_storage_gb, max_concurrent_connections, constitutional_hash, created_at, updated_at,
    admin_email, billing_plan, version, default_role, access_token_ttl_seconds,
    refresh_token_ttl_seconds)
VALUES (%(tenant_id)s, %(tenant_name)s, %(tenant_slug)s, 'active', %(max_requests_per_minute)s,
    %(max_storage_gb)s, %(max_concurrent_connections)s, %(constitutional_hash)s, %(at)s, %(at)s,
    %(admin_email)s, %(billing_plan)s, %(version)s, %(default_role)s,
    %(access_token_ttl_seconds)s, %(refresh_token_ttl_seconds)s)
ON CONFLICT (tenant_id) DO UPDATE SET tenant_name = EXCLUDED.tenant_name,
    tenant_slug = EXCLUDED.tenant_slug, status = EXCLUDED.status,
    max_requests_per_minute = EXCLUDED.max_requests_per_minute,
    max_storage_gb = EXCLUDED.max_storage_gb,
    max_concurrent_connections = EXCLUDED.max_concurrent_connections,
    constitutional_hash = EXCLUDED.constitutional_hash, created_at = EXCLUDED.created_at,
    updated_at = EXCLUDED.updated_at, admin_email = EXCLUDED.admin_email,
    billing_plan = EXCLUDED.billing_plan, version = EXCLUDED.version,
    deactivated_at = NULL, data_purge_scheduled = NULL, default_role = EXCLUDED.default_role,
    access_token_ttl_seconds = EXCLUDED.access_token_ttl_seconds,
    refresh_token_ttl_seconds = EXCLUDED.refresh_token_ttl_seconds
"""
_TOUCH = (
    "UPDATE tenants SET updated_at = %(at)s, version = %(version)s, "
    "constitutional_hash = %(constitutional_hash)s"
)
_WHERE = " WHERE tenant_id = %(tenant_id)s"
_PROFILE_COLUMNS = ("tenant_name", "admin_email", "billing_plan")
_QUOTA_COLUMNS = ("max_requests_per_minute", "max_storage_gb", "max_concurrent_connections")
_SIGN_IN_COLUMNS = SignInSettings.FIELDS


class TenantsProjection:
    name = "tenants"
    tables = ("tenants",)

    def apply(self, cur: Cursor[Any], event: Any) -> None:
        if not isinstance(event, Tenant.Event):
            return
        base = {
            "tenant_id": event.originator_id,
            "at": event.timestamp,
            "version": event.originator_version,
            "constitutional_hash": event.meta["constitutional_hash"],
        }
        if isinstance(event, Tenant.Created):
            cur.execute(
                _UPSERT,
                {
                    **base,
                    **event.quotas,
                    **SignInSettings().as_dict(),  # a new tenant's; changed by its own event
                    "tenant_name": event.tenant_name,
                    "tenant_slug": event.tenant_slug,
                    "admin_email": event.admin_email,
                    "billing_plan": event.billing_plan,
                },
            )
        elif isinstance(event, Tenant.ProfileUpdated):
            columns = [c for c in _PROFILE_COLUMNS if c in event.changes]
            sets = "".join(f", {c} = %({c})s" for c in columns)
            cur.execute(_TOUCH + sets + _WHERE, {**base, **event.changes})
        elif isinstance(event, Tenant.QuotasChanged):
            sets = "".join(f", {c} = %({c})s" for c in _QUOTA_COLUMNS)
            cur.execute(_TOUCH + sets + _WHERE, {**base, **event.quotas})
        elif isinstance(event, Tenant.SignInSettingsChanged):
            sets = "".join(f", {c} = %({c})s" for c in _SIGN_IN_COLUMNS)
            settings = {c: getattr(event, c) for c in _SIGN_IN_COLUMNS}
            cur.execute(_TOUCH + sets + _WHERE, {**base, **settings})
        elif isinstance(event, Tenant.Suspended):
            cur.execute(_TOUCH + ", status = 'suspended'" + _WHERE, base)
        elif isinstance(event, Tenant.Reactivated):
            cur.execute(
                _TOUCH + ", status = 'active', deactivated_at = NULL, "
                "data_purge_scheduled = NULL" + _WHERE,
                base,
            )
        elif isinstance(event, Tenant.Deactivated):
            cur.execute(
                _TOUCH + ", status = 'deactivated', deactivated_at = %(at)s, "
                "data_purge_scheduled = %(at)s + make_interval(days => %(days)s)" + _WHERE,
                {**base, "days": event.grace_period_days},
            )
        elif isinstance(event, Tenant.Purged):
            cur.execute("DELETE FROM tenants WHERE tenant_id = %(tenant_id)s", base)


# --- queries (run inside a tenant or platform session) --------------------------------------

TENANT_COLUMNS = (
    "tenant_id, tenant_name, tenant_slug, status, max_requests_per_minute, "
    "max_storage_gb, max_concurrent_connections, admin_email, billing_plan, "
    "created_at, updated_at, deactivated_at, data_purge_scheduled, "
    "constitutional_hash, version, default_role, access_token_ttl_seconds, "
    "refresh_token_ttl_seconds"
)


FIND_TENANT = f"SELECT {TENANT_COLUMNS} FROM tenants WHERE tenant_id = %s"  # noqa: S608 - fixed columns and WHERE fragments; values bound  # nosec B608


async def list_tenants(
    conn: AsyncConnection[DictRow],
    *,
    status: str | None,
    limit: int,
    offset: int,
    search: str | None = None,
) -> tuple[list[dict[str, Any]], int]:
    """A page of tenants, newest first, and the total that match. `search` keeps the tenants
    whose slug or name contains it (case-insensitive, taken literally)."""
    conditions: list[str] = []
    params: list[Any] = []
    if status:
        conditions.append("status = %s")
        params.append(status)
    if search:
        literal = "%" + re.sub(r"([\\%_])", r"\\\1", search) + "%"
        conditions.append("(tenant_slug ILIKE %s OR tenant_name ILIKE %s)")
        params += [literal, literal]
    where = f"WHERE {' AND '.join(conditions)}" if conditions else ""
    cur = await conn.execute(
        f"SELECT tenant_id, tenant_name, tenant_slug, status, created_at, "  # noqa: S608 - fixed columns and WHERE fragments; values bound  # nosec B608
        f"count(*) OVER () AS total FROM tenants {where} "
        f"ORDER BY created_at DESC, tenant_id LIMIT %s OFFSET %s",
        [*params, limit, offset],
    )
    rows = await cur.fetchall()
    if rows:
        total = int(rows[0].pop("total"))
        for row in rows[1:]:
            row.pop("total")
        return rows, total
    cur = await conn.execute(f"SELECT count(*) AS total FROM tenants {where}", params)  # noqa: S608 - fixed columns and WHERE fragments; values bound  # nosec B608
    counted = await cur.fetchone()
    return [], int(counted["total"]) if counted else 0


async def find_tenant_by_slug(conn: AsyncConnection[DictRow], slug: str) -> dict[str, Any] | None:
    cur = await conn.execute(
        f"SELECT {TENANT_COLUMNS} FROM tenants WHERE tenant_slug = %s",  # noqa: S608 - fixed columns and WHERE fragments; values bound  # nosec B608
        [slug],
    )
    return await cur.fetchone()
