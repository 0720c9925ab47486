"""The policy registry's read models: `policies` (one row per registered policy, its status and
active version), `policy_versions` (every immutable version) and `decision_log_settings`,
maintained from TenantPolicy and DecisionLogSettings events. A system-wide policy (one of the
system tenant) has tenant_id NULL, so row-level security shows it to every tenant.

Rows are upserts keyed by the aggregate, so a replay gives the same rows; `policies` also holds
rows that are not the registry's (the baseline's legacy rows), so a replay empties only
`policy_versions` and `decision_log_settings` and rewrites the registry's `policies` rows.
"""

from __future__ import annotations

from typing import Any

from psycopg import AsyncConnection, Cursor
from psycopg.rows import DictRow
from psycopg.types.json import Jsonb

from domain.registry.decision_log import DecisionLogSettings
from domain.registry.policy import PolicyStatus, TenantPolicy

_REGISTER = """
INSERT INTO policies (policy_id, tenant_id, name, policy_key, system_wide, status, rego,
    latest_version, created_at, updated_at, version, constitutional_hash)
VALUES (%(policy_id)s, %(tenant_id)s, %(name)s, %(policy_key)s, %(system_wide)s, 'draft', '',
    0, %(at)s, %(at)s, %(version)s, %(constitutional_hash)s)
ON CONFLICT (policy_id) DO UPDATE SET tenant_id = EXCLUDED.tenant_id, name = EXCLUDED.name,
    policy_key = EXCLUDED.policy_key, system_wide = EXCLUDED.system_wide, status = 'draft',
    rego = '', active_version = NULL, latest_version = 0, source_format = NULL, package = NULL,
    created_at = EXCLUDED.created_at, updated_at = EXCLUDED.updated_at,
    version = EXCLUDED.version, constitutional_hash = EXCLUDED.constitutional_hash
"""
_VERSION = """
INSERT INTO policy_versions (policy_id, version, tenant_id, system_wide, policy_key, source,
    source_format, rego, package, conversion_status, report, sha256, created_by, created_at,
    constitutional_hash)
SELECT %(policy_id)s, %(number)s, p.tenant_id, p.system_wide, p.policy_key, %(source)s,
    %(source_format)s, %(rego)s, %(package)s, %(conversion_status)s, %(report)s, %(sha256)s,
    %(created_by)s, %(at)s, %(constitutional_hash)s
FROM policies p WHERE p.policy_id = %(policy_id)s
ON CONFLICT (policy_id, version) DO NOTHING
"""
_TOUCH = (
    "UPDATE policies SET updated_at = %(at)s, version = %(version)s, "
    "constitutional_hash = %(constitutional_hash)s"
)
_WHERE = " WHERE policy_id = %(policy_id)s"
_ACTIVATE = (
    _TOUCH + ", status = 'active', active_version = %(number)s, "
    "rego = v.rego, source_format = v.source_format, package = v.package "
    "FROM policy_versions v WHERE v.policy_id = %(policy_id)s AND v.version = %(number)s "
    "AND policies.policy_id = %(policy_id)s"
)
_SETTINGS = """
INSERT INTO decision_log_settings (tenant_id, log_input, mask_fields, updated_at, version)
VALUES (%(tenant_id)s, %(log_input)s, %(mask_fields)s, %(at)s, %(version)s)
ON CONFLICT (tenant_id) DO UPDATE SET log_input = EXCLUDED.log_input,
    mask_fields = EXCLUDED.mask_fields, updated_at = EXCLUDED.updated_at,
    version = EXCLUDED.version
"""


class PoliciesProjection:
    name = "policies"
    tables = ("policy_versions", "decision_log_settings")

    def apply(self, cur: Cursor[Any], event: Any) -> None:
        if isinstance(event, TenantPolicy.Event):
            self._policy(cur, event)
        elif isinstance(event, DecisionLogSettings.Created | DecisionLogSettings.Changed):
            cur.execute(
                _SETTINGS,
                {
                    "tenant_id": event.meta["tenant_id"],
                    "log_input": event.log_input,
                    "mask_fields": Jsonb(list(event.mask_fields)),
                    "at": event.timestamp,
                    "version": event.originator_version,
                },
            )

    def _policy(self, cur: Cursor[Any], event: Any) -> None:
        base = {
            "policy_id": event.originator_id,
            "at": event.timestamp,
            "version": event.originator_version,
            "constitutional_hash": event.meta["constitutional_hash"],
        }
        if isinstance(event, TenantPolicy.Registered):
            cur.execute(
                _REGISTER,
                {
                    **base,
                    "tenant_id": None if event.system_wide else event.meta["tenant_id"],
                    "name": event.name[:255],
                    "policy_key": event.policy_key,
                    "system_wide": event.system_wide,
                },
            )
        elif isinstance(event, TenantPolicy.VersionAdded):
            cur.execute(
                _VERSION,
                {
                    **base,
                    "number": event.version,
                    "source": event.source,
                    "source_format": event.source_format,
                    "rego": event.rego,
                    "package": event.package,
                    "conversion_status": event.conversion_status,
                    "report": Jsonb(event.report),
                    "sha256": event.sha256,
                    "created_by": str(event.meta["actor"]["sub"])[:255],
                },
            )
            cur.execute(
                _TOUCH + ", latest_version = %(number)s" + _WHERE, {**base, "number": event.version}
            )
        elif isinstance(event, TenantPolicy.Activated | TenantPolicy.RolledBack):
            cur.execute(_ACTIVATE, {**base, "number": event.version})
        elif isinstance(event, TenantPolicy.Retired):
            cur.execute(_TOUCH + f", status = '{PolicyStatus.RETIRED.value}'" + _WHERE, base)


# --- queries (run inside a tenant session: RLS shows the tenant's own and system-wide rows) ----

POLICY_COLUMNS = (
    "policy_key AS policy_id, name, status, system_wide, active_version, latest_version, "
    "source_format, package, created_at, updated_at"
)


async def list_policies(
    conn: AsyncConnection[DictRow],
    *,
    status: str | None,
    system_wide: bool | None,
    limit: int,
    offset: int,
) -> tuple[list[dict[str, Any]], int]:
    """A page of the policies the session's tenant sees (its own and the system-wide ones),
    by policy id, and the total that match."""
    where = ["policy_key IS NOT NULL"]
    params: list[Any] = []
    if status is not None:
        where.append("status = %s")
        params.append(status)
    if system_wide is not None:
        where.append("system_wide = %s")
        params.append(system_wide)
    clause = " AND ".join(where)
    cur = await conn.execute(
        f"SELECT {POLICY_COLUMNS}, count(*) OVER () AS total FROM policies "  # noqa: S608 - fixed columns and WHERE fragments; values bound  # nosec B608
        f"WHERE {clause} ORDER BY system_wide, policy_key LIMIT %s OFFSET %s",
        [*params, limit, offset],
    )
    rows = await cur.fetchall()
    total = int(rows[0]["total"]) if rows else 0
    if not rows and offset:
        counted = await (
            await conn.execute(f"SELECT count(*) AS total FROM policies WHERE {clause}", params)  # noqa: S608 - fixed columns and WHERE fragments; values bound  # nosec B608
        ).fetchone()
        total = int(counted["total"]) if counted else 0
    for row in rows:
        row.pop("total")
    return rows, total


async def find_policy(conn: AsyncConnection[DictRow], policy_key: str) -> dict[str, Any] | None:
    """The tenant's own policy `policy_key`, else the system-wide one, with its versions."""
    cur = await conn.execute(
        f"SELECT policy_id AS aggregate_id, {POLICY_COLUMNS} FROM policies "  # noqa: S608 - fixed columns and WHERE fragments; values bound  # nosec B608
        "WHERE policy_key = %s ORDER BY system_wide LIMIT 1",
        [policy_key],
    )
    row = await cur.fetchone()
    if row is None:
        return None
    versions = await conn.execute(
        "SELECT version, source_format, conversion_status, sha256, created_by, created_at "
        "FROM policy_versions WHERE policy_id = %s ORDER BY version",
        [row["aggregate_id"]],
    )
    row["versions"] = await versions.fetchall()
    return row


async def find_version(
    conn: AsyncConnection[DictRow], policy_key: str, version: int
) -> dict[str, Any] | None:
    cur = await conn.execute(
        "SELECT v.policy_key AS policy_id, v.version, v.system_wide, v.source, v.source_format, "
        "v.rego, v.package, v.conversion_status, v.report, v.sha256, v.created_by, v.created_at "
        "FROM policy_versions v WHERE v.version = %s AND v.policy_id = (SELECT policy_id "
        "FROM policies WHERE policy_key = %s ORDER BY system_wide LIMIT 1)",
        [version, policy_key],
    )
    return await cur.fetchone()
