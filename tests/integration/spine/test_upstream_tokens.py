"""The provider's refresh token of an OpenID Connect session in the real PostgreSQL, sealed with
the system's sealer: kept only while the integration has a data key, unreadable once that key
is shredded or when the sealed value is moved to another session's row."""

from __future__ import annotations

from uuid import UUID, uuid4

import pytest

from api.bootstrap import System
from domain.maci import MaciRole
from infra.postgres.database import Database
from infra.postgres.sessions import SessionStore
from infra.postgres.upstream_tokens import UpstreamTokenStore

pytestmark = pytest.mark.postgres

IDP = uuid4()


async def _sid(database: Database, tenant_id: UUID) -> str:
    session, _ = await SessionStore(database).open(
        tenant_id=tenant_id, sub="https://login.acme.test#u-1", auth_method="oidc",
        integration_id=IDP, user_dn=None, roles=(MaciRole.AUDITOR,), refresh_ttl_seconds=3600,
    )  # fmt: skip
    return session.sid


async def _rows(database: Database, tenant_id: UUID) -> list[dict[str, object]]:
    async with database.tenant_session(tenant_id) as conn:
        cur = await conn.execute("SELECT sid, refresh_token FROM auth_upstream_tokens")
        return list(await cur.fetchall())


async def test_an_integration_without_a_data_key_keeps_no_provider_token(
    database: Database, system: System
) -> None:
    tenant_id = uuid4()
    sid = await _sid(database, tenant_id)
    store = UpstreamTokenStore(database, system.sealer, lambda _tenant, _integration: None)
    await store.save(tenant_id, sid, IDP, "provider-refresh-token")
    assert await _rows(database, tenant_id) == []
    assert await store.load(tenant_id, sid) is None


async def test_a_shredded_key_or_a_moved_value_makes_the_token_unreadable(
    database: Database, system: System
) -> None:
    tenant_id = uuid4()
    key_id = system.sealer.new_key(tenant_id)
    store = UpstreamTokenStore(database, system.sealer, lambda _tenant, _integration: key_id)
    first, second = await _sid(database, tenant_id), await _sid(database, tenant_id)
    await store.save(tenant_id, first, IDP, "provider-refresh-token")
    assert await store.load(tenant_id, first) == (IDP, "provider-refresh-token")
    [row] = await _rows(database, tenant_id)
    assert "provider-refresh-token" not in str(row["refresh_token"])  # sealed at rest
    async with database.tenant_session(tenant_id) as conn:  # copied to another session's row
        await conn.execute(
            "INSERT INTO auth_upstream_tokens (sid, integration_id, key_id, refresh_token) "
            "VALUES (%s, %s, %s, %s)",
            [second, IDP, key_id, row["refresh_token"]],
        )
    assert await store.load(tenant_id, second) is None
    system.sealer.shred(tenant_id, key_id)
    assert await store.load(tenant_id, first) is None
    assert await store.delete(tenant_id, first) is None  # the row goes all the same
    assert [r["sid"] for r in await _rows(database, tenant_id)] == [second]
