"""What SAML sign-in keeps in PostgreSQL (tenant-scoped, under Row-Level Security).

The replay cache (`auth_saml_assertions`): an assertion id (its SHA-256) is recorded once per
tenant and kept until the assertion's NotOnOrAfter; a second use is refused. Expired entries of
the tenant are deleted as new ones come in. The session index (`auth_saml_sessions`) remembers
the IdP's NameID and SessionIndex of each SAML session, so that a LogoutRequest can be built for
it, and an IdP's LogoutRequest finds the sessions it ends. Both are written in the transaction
that opens the session (`SessionStore.open` with the sign-in's `SamlSignInFacts`): one round
trip, one commit; a replay opens nothing. `SamlSessionIndex` reads the index.
"""

from __future__ import annotations

import hashlib
from datetime import datetime
from typing import Any
from uuid import UUID

from domain.saml import SamlSessionRef, SamlSignInFacts
from infra.postgres.database import Database

REPLAY_CONSTRAINT = "auth_saml_assertions_pkey"  # (tenant_id, assertion_hash)


def replay_statements(
    tenant_id: UUID, integration_id: UUID | None, facts: SamlSignInFacts, now: datetime
) -> list[tuple[str, list[Any]]]:
    """The replay cache's part of a SAML sign-in's session transaction (before the session is
    inserted): the tenant's expired entries deleted, the assertion id (its SHA-256) inserted.
    A second use violates `REPLAY_CONSTRAINT`, which aborts the whole transaction."""
    digest = hashlib.sha256(facts.assertion_id.encode()).digest()
    return [
        ("DELETE FROM auth_saml_assertions WHERE keep_until < %s RETURNING 1", [now]),
        (
            "INSERT INTO auth_saml_assertions (tenant_id, assertion_hash, integration_id, "
            "keep_until) VALUES (%s, %s, %s, %s) RETURNING 1",
            [tenant_id, digest, integration_id, facts.keep_until],
        ),
    ]


def index_statement(
    tenant_id: UUID, integration_id: UUID | None, sid: str, facts: SamlSignInFacts
) -> tuple[str, list[Any]]:
    """The session index's part of a SAML sign-in's session transaction (after the session)."""
    return (
        "INSERT INTO auth_saml_sessions (sid, tenant_id, integration_id, name_id, "
        "name_id_format, session_index) VALUES (%s, %s, %s, %s, %s, %s) RETURNING sid",
        [sid, tenant_id, integration_id, facts.name_id, facts.name_id_format,
         facts.session_index],
    )  # fmt: skip


class SamlSessionIndex:
    def __init__(self, database: Database) -> None:
        self._db = database

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
