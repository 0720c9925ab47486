"""What SAML sign-in keeps in PostgreSQL (tenant-scoped, under Row-Level Security).

`SamlAssertionCache.first_use` is the replay cache: an assertion id (its SHA-256) is recorded
once per tenant and kept until the assertion's NotOnOrAfter; a second use is refused. Expired
entries of the tenant are deleted as new ones come in.
`SamlSessionIndex` remembers the IdP's NameID and SessionIndex of each SAML session, so that a
LogoutRequest can be built for it, and an IdP's LogoutRequest finds the sessions it ends.
"""

from __future__ import annotations

import hashlib
from collections.abc import Callable
from datetime import UTC, datetime
from uuid import UUID

from domain.saml import SamlSessionRef
from infra.postgres.database import Database


class SamlAssertionCache:
    def __init__(
        self, database: Database, *, now: Callable[[], datetime] = lambda: datetime.now(UTC)
    ) -> None:
        self._db = database
        self._now = now

    async def first_use(
        self, tenant_id: UUID, integration_id: UUID, assertion_id: str, keep_until: datetime
    ) -> bool:
        """True the first time this tenant sees `assertion_id`; False for a replay."""
        digest = hashlib.sha256(assertion_id.encode()).digest()
        _, inserted = await self._db.fetch_sets(  # one round trip, one transaction
            tenant_id,
            [
                (
                    "DELETE FROM auth_saml_assertions WHERE keep_until < %s RETURNING 1",
                    [self._now()],
                ),
                (
                    "INSERT INTO auth_saml_assertions (tenant_id, assertion_hash, "
                    "integration_id, keep_until) VALUES (%s, %s, %s, %s) "
                    "ON CONFLICT DO NOTHING RETURNING 1",
                    [tenant_id, digest, integration_id, keep_until],
                ),
            ],
        )
        return len(inserted) == 1


class SamlSessionIndex:
    def __init__(self, database: Database) -> None:
        self._db = database

    async def record(
        self,
        tenant_id: UUID,
        integration_id: UUID,
        sid: str,
        name_id: str,
        name_id_format: str | None,
        session_index: str | None,
    ) -> None:
        await self._db.fetch_one_as_tenant(  # one round trip
            tenant_id,
            "INSERT INTO auth_saml_sessions (sid, tenant_id, integration_id, name_id, "
            "name_id_format, session_index) VALUES (%s, %s, %s, %s, %s, %s) RETURNING sid",
            [sid, tenant_id, integration_id, name_id, name_id_format, session_index],
        )

    async def of_session(self, tenant_id: UUID, sid: str) -> SamlSessionRef | None:
        async with self._db.tenant_session(tenant_id) as conn:
            cur = await conn.execute(
                "SELECT sid, name_id, name_id_format, session_index FROM auth_saml_sessions "
                "WHERE sid = %s",
                [sid],
            )
            row = await cur.fetchone()
        return None if row is None else SamlSessionRef(**row)

    async def live_sessions(
        self, tenant_id: UUID, integration_id: UUID, name_id: str, session_indexes: list[str]
    ) -> list[str]:
        """The live sessions of `name_id` at this IdP (only those of `session_indexes` when
        the IdP names any)."""
        async with self._db.tenant_session(tenant_id) as conn:
            cur = await conn.execute(
                "SELECT s.sid, s.session_index FROM auth_saml_sessions s "
                "JOIN auth_sessions a ON a.sid = s.sid "
                "WHERE s.integration_id = %s AND s.name_id = %s AND a.revoked_at IS NULL",
                [integration_id, name_id],
            )
            rows = await cur.fetchall()
        return [
            r["sid"] for r in rows if not session_indexes or r["session_index"] in session_indexes
        ]
