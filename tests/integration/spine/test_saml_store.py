"""SAML's tables in the real PostgreSQL, written with the session in one transaction: the
per-tenant replay cache (an assertion id opens one session per tenant, forgotten after its
NotOnOrAfter; a replay leaves nothing behind) and the session index single logout reads."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from uuid import UUID, uuid4

import pytest

from api.bootstrap import System
from domain.maci import MaciRole
from domain.saml import SamlRejected, SamlSignInFacts
from infra.postgres.database import Database
from infra.postgres.saml import SamlSessionIndex
from infra.postgres.sessions import SessionStore

pytestmark = pytest.mark.postgres


def _facts(assertion_id: str, keep_until: datetime, index: str | None = "s1") -> SamlSignInFacts:
    return SamlSignInFacts(assertion_id, keep_until, "p-alice", None, index)


async def _open(
    sessions: SessionStore, tenant: UUID, integration: UUID, facts: SamlSignInFacts | None
) -> str:
    session, _ = await sessions.open(
        tenant_id=tenant, sub="p-alice", auth_method="saml", integration_id=integration,
        user_dn=None, roles=(MaciRole.MONITOR,), refresh_ttl_seconds=3600, saml=facts,
    )  # fmt: skip
    return session.sid


async def _count(database: Database, tenant: UUID, table: str) -> int:
    async with database.tenant_session(tenant) as conn:
        cur = await conn.execute(f"SELECT count(*) AS n FROM {table}")
        row = await cur.fetchone()
    assert row is not None
    return int(row["n"])


async def test_an_assertion_opens_one_session_per_tenant(database: Database) -> None:
    sessions = SessionStore(database)
    tenant, other, integration = uuid4(), uuid4(), uuid4()
    until = datetime.now(UTC) + timedelta(minutes=5)
    sid = await _open(sessions, tenant, integration, _facts("_a1", until))
    with pytest.raises(SamlRejected, match="replay"):
        await _open(sessions, tenant, integration, _facts("_a1", until, "s2"))
    # the replay's transaction left nothing behind: one session, one token, one index row
    for table in ("auth_sessions", "auth_refresh_tokens", "auth_saml_sessions"):
        assert await _count(database, tenant, table) == 1, table
    ref = await SamlSessionIndex(database).of_session(tenant, sid)
    assert ref is not None
    assert ref.session_index == "s1"
    await _open(sessions, other, integration, _facts("_a1", until))  # its own cache
    await _open(sessions, tenant, integration, None)  # a session without SAML facts


async def test_an_entry_is_kept_until_not_on_or_after(database: Database) -> None:
    now = [datetime.now(UTC)]
    sessions = SessionStore(database, now=lambda: now[0])
    tenant, integration = uuid4(), uuid4()
    await _open(sessions, tenant, integration, _facts("_a", now[0] + timedelta(minutes=5)))
    now[0] += timedelta(minutes=4)
    with pytest.raises(SamlRejected, match="replay"):
        await _open(sessions, tenant, integration, _facts("_a", now[0] + timedelta(minutes=1)))
    now[0] += timedelta(minutes=2)  # past NotOnOrAfter: the entry is gone
    await _open(sessions, tenant, integration, _facts("_b", now[0] + timedelta(minutes=5)))
    assert await _count(database, tenant, "auth_saml_assertions") == 1


async def test_the_session_index_finds_live_sessions_of_a_name_id(database: Database) -> None:
    sessions, index = SessionStore(database), SamlSessionIndex(database)
    tenant, integration = uuid4(), uuid4()
    sids = []
    for i, session_index in enumerate(("s1", "s2")):
        facts = _facts(f"_a{i}", datetime.now(UTC) + timedelta(minutes=5), session_index)
        sids.append(await _open(sessions, tenant, integration, facts))
    assert sorted(await index.live_sessions(tenant, integration, "p-alice", [])) == sorted(sids)
    assert await index.live_sessions(tenant, integration, "p-alice", ["s2"]) == [sids[1]]
    assert await index.live_sessions(tenant, uuid4(), "p-alice", []) == []
    await sessions.revoke(tenant, sids[0], "logout", access_keep_seconds=60)
    assert await index.live_sessions(tenant, integration, "p-alice", []) == [sids[1]]
    ref = await index.of_session(tenant, sids[1])
    assert ref is not None
    assert (ref.name_id, ref.session_index) == ("p-alice", "s2")
    assert await index.of_session(uuid4(), sids[1]) is None  # another tenant sees nothing


async def test_a_session_flushed_later_is_written_and_leaves_the_connection_as_it_was(
    system: System,
) -> None:
    db = Database(system.app_conninfo, pool_size=1)  # one connection: the one the open used
    await db.open()
    try:
        tenant, integration = uuid4(), uuid4()
        until = datetime.now(UTC) + timedelta(minutes=5)
        session, _ = await SessionStore(db).open(
            tenant_id=tenant, sub="p-alice", auth_method="saml", integration_id=integration,
            user_dn=None, roles=(MaciRole.MONITOR,), refresh_ttl_seconds=3600,
            saml=_facts("_f", until), flushed_later=True,
        )  # fmt: skip
        assert await SamlSessionIndex(db).of_session(tenant, session.sid) is not None
        [[row]] = await db.fetch_sets(None, [("SHOW synchronous_commit", [])])
        assert row == {"synchronous_commit": "on"}  # the setting ended with its transaction
    finally:
        await db.close()
