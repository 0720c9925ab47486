"""Storage usage of a tenant: the bytes of its rows in the tables that count
toward the storage quota. Runs in a tenant session, so RLS limits it to that tenant's rows;
system-wide policies (tenant_id NULL) belong to no tenant and are not counted.

`pg_column_size(row)` is the stored size of each row (after TOAST compression), without index
and page overhead: an honest lower bound that is cheap to compute with the tenant indexes.
A policy's versions count with it. Imported decisions will be added here when their table exists.
"""

from __future__ import annotations

from psycopg import AsyncConnection
from psycopg.rows import DictRow

_STORAGE_BYTES = """
SELECT (SELECT coalesce(sum(pg_column_size(a.*)), 0) FROM tenant_audit_log a)
     + (SELECT coalesce(sum(pg_column_size(p.*)), 0) FROM policies p
        WHERE p.tenant_id IS NOT NULL)
     + (SELECT coalesce(sum(pg_column_size(v.*)), 0) FROM policy_versions v
        WHERE v.tenant_id IS NOT NULL) AS bytes
"""


async def storage_bytes(conn: AsyncConnection[DictRow]) -> int:
    cur = await conn.execute(_STORAGE_BYTES)
    row = await cur.fetchone()
    return int(row["bytes"]) if row else 0
