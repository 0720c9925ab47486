"""The identity provider's refresh token of each OpenID Connect / OAuth session
(`auth_upstream_tokens`, under Row-Level Security), sealed with the integration's data key:
the database holds only the sealed text, and crypto-shredding the integration's key makes it
unreadable. The sealed value's associated data names the session, so a value copied to another
session's row does not open.
"""

from __future__ import annotations

import asyncio
from collections.abc import Callable
from uuid import UUID

from domain.secrets import SecretSealer, SecretUnreadable
from infra.postgres.database import Database


def _path(sid: str) -> str:
    return f"session.{sid}.refresh_token"


class UpstreamTokenStore:
    def __init__(
        self,
        database: Database,
        sealer: SecretSealer,
        key_of: Callable[[UUID, UUID], str | None],
    ) -> None:
        """`key_of(tenant_id, integration_id)`: the integration's data key id (None: gone)."""
        self._db = database
        self._sealer = sealer
        self._key_of = key_of

    async def save(
        self, tenant_id: UUID, sid: str, integration_id: UUID, refresh_token: str
    ) -> None:
        key_id = await asyncio.to_thread(self._key_of, tenant_id, integration_id)
        if key_id is None:
            return
        sealed = self._sealer.seal(tenant_id, key_id, _path(sid), refresh_token)
        async with self._db.tenant_session(tenant_id) as conn:
            await conn.execute(
                "INSERT INTO auth_upstream_tokens (sid, integration_id, key_id, refresh_token) "
                "VALUES (%s, %s, %s, %s) ON CONFLICT (sid) DO UPDATE SET "
                "refresh_token = EXCLUDED.refresh_token, key_id = EXCLUDED.key_id, "
                "updated_at = NOW()",
                [sid, integration_id, key_id, sealed],
            )

    async def load(self, tenant_id: UUID, sid: str) -> tuple[UUID, str] | None:
        async with self._db.tenant_session(tenant_id) as conn:
            cur = await conn.execute(
                "SELECT integration_id, key_id, refresh_token FROM auth_upstream_tokens "
                "WHERE sid = %s",
                [sid],
            )
            row = await cur.fetchone()
        return None if row is None else self._open(tenant_id, sid, row)

    async def delete(self, tenant_id: UUID, sid: str) -> tuple[UUID, str] | None:
        async with self._db.tenant_session(tenant_id) as conn:
            cur = await conn.execute(
                "DELETE FROM auth_upstream_tokens WHERE sid = %s "
                "RETURNING integration_id, key_id, refresh_token",
                [sid],
            )
            row = await cur.fetchone()
        return None if row is None else self._open(tenant_id, sid, row)

    def _open(self, tenant_id: UUID, sid: str, row: dict[str, object]) -> tuple[UUID, str] | None:
        try:
            token = self._sealer.open(
                tenant_id, str(row["key_id"]), _path(sid), str(row["refresh_token"])
            )
        except SecretUnreadable:
            return None
        integration_id = row["integration_id"]
        assert isinstance(integration_id, UUID)
        return integration_id, token
