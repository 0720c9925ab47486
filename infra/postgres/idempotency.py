"""The idempotency-key table: claim a key, complete it with the response, or release it.

Every statement runs in a tenant session of the caller's tenant (RLS scopes the rows).
"""

from __future__ import annotations

from dataclasses import dataclass

from psycopg import AsyncConnection
from psycopg.rows import DictRow


@dataclass(frozen=True)
class StoredResponse:
    request_hash: str
    status_code: int | None  # None: the first request with this key is still in flight
    body: bytes | None


async def claim(
    conn: AsyncConnection[DictRow], sub: str, key: str, request_hash: str
) -> StoredResponse | None:
    """Claim `key` for this request; None if claimed now, else what the first request left."""
    await conn.execute(
        "DELETE FROM idempotency_keys WHERE principal_sub = %s AND idempotency_key = %s "
        "AND created_at < now() - interval '24 hours'",
        [sub, key],
    )
    cur = await conn.execute(
        "INSERT INTO idempotency_keys (principal_sub, idempotency_key, request_hash) "
        "VALUES (%s, %s, %s) ON CONFLICT DO NOTHING RETURNING 1 AS claimed",
        [sub, key, request_hash],
    )
    if await cur.fetchone():
        return None
    cur = await conn.execute(
        "SELECT request_hash, status_code, response_body FROM idempotency_keys "
        "WHERE principal_sub = %s AND idempotency_key = %s",
        [sub, key],
    )
    row = await cur.fetchone()
    if row is None:  # expired and removed by a concurrent request: treat as in flight
        return StoredResponse(request_hash, None, None)
    body = row["response_body"]
    return StoredResponse(
        row["request_hash"], row["status_code"], bytes(body) if body is not None else None
    )


async def complete(
    conn: AsyncConnection[DictRow], sub: str, key: str, status_code: int, body: bytes
) -> None:
    await conn.execute(
        "UPDATE idempotency_keys SET status_code = %s, response_body = %s "
        "WHERE principal_sub = %s AND idempotency_key = %s",
        [status_code, body, sub, key],
    )


async def release(conn: AsyncConnection[DictRow], sub: str, key: str) -> None:
    await conn.execute(
        "DELETE FROM idempotency_keys WHERE principal_sub = %s AND idempotency_key = %s",
        [sub, key],
    )
