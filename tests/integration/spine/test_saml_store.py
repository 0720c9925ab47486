"""SAML's tables in the real PostgreSQL: the per-tenant replay cache (an assertion id once per
tenant, forgotten after its NotOnOrAfter) and the session index single logout reads."""

from __future__ import annotations

from collections.abc import AsyncIterator
from datetime import UTC, datetime, timedelta
from uuid import uuid4

import pytest

from api.bootstrap import System
from domain.maci import MaciRole
from infra.postgres.database import Database
from infra.postgres.saml import SamlAssertionCache, SamlSessionIndex
from infra.postgres.sessions import SessionStore

pytestmark = pytest.mark.postgres


@pytest.fixture
async def database(system: System) -> AsyncIterator[Database]:
    db = Database(system.app_conninfo, pool_size=2)
    await db.open()
    try:
        yield db
    finally:
        await db.close()


async def test_an_assertion_is_accepted_once_per_tenant(database: Database) -> None:
    cache = SamlAssertionCache(database)
    tenant, other, integration = uuid4(), uuid4(), uuid4()
    until = datetime.now(UTC) + timedelta(minutes=5)
    assert await cache.first_use(tenant, integration, "_a1", until) is True
    assert await cache.first_use(tenant, integration, "_a1", until) is False
    assert await cache.first_use(other, integration, "_a1", until) is True  # its own cache


async def test_an_entry_is_kept_until_not_on_or_after(database: Database) -> None:
    now = [datetime.now(UTC)]
    cache = SamlAssertionCache(database, now=lambda: now[0])
    tenant, integration = uuid4(), uuid4()
    assert await cache.first_use(tenant, integration, "_a", now[0] + timedelta(minutes=5))
    now[0] += timedelta(minutes=4)
    assert not await cache.first_use(tenant, integration, "_a", now[0] + timedelta(minutes=1))
    now[0] += timedelta(minutes=2)  # past NotOnOrAfter: the entry is gone
    assert await cache.first_use(tenant, integration, "_b", now[0] + timedelta(minutes=5))
    async with database.tenant_session(tenant) as conn:
        cur = await conn.execute("SELECT count(*) AS n FROM auth_saml_assertions")
        assert await cur.fetchone() == {"n": 1}


async def test_the_session_index_finds_live_sessions_of_a_name_id(database: Database) -> None:
    sessions, index = SessionStore(database), SamlSessionIndex(database)
    tenant, integration = uuid4(), uuid4()
    sids = []
    for session_index in ("s1", "s2"):
        session, _ = await sessions.open(
            tenant_id=tenant, sub="p-alice", auth_method="saml", integration_id=integration,
            user_dn=None, roles=(MaciRole.MONITOR,), refresh_ttl_seconds=3600,
        )  # fmt: skip
        await index.record(tenant, integration, session.sid, "p-alice", None, session_index)
        sids.append(session.sid)
    assert sorted(await index.live_sessions(tenant, integration, "p-alice", [])) == sorted(sids)
    assert await index.live_sessions(tenant, integration, "p-alice", ["s2"]) == [sids[1]]
    assert await index.live_sessions(tenant, uuid4(), "p-alice", []) == []
    await sessions.revoke(tenant, sids[0], "logout", access_keep_seconds=60)
    assert await index.live_sessions(tenant, integration, "p-alice", []) == [sids[1]]
    ref = await index.of_session(tenant, sids[1])
    assert ref is not None
    assert (ref.name_id, ref.session_index) == ("p-alice", "s2")
    assert await index.of_session(uuid4(), sids[1]) is None  # another tenant sees nothing
