"""One-time sign-in requests in the real PostgreSQL: given back once, only with its kind, never
after expiry, even to concurrent consumers; only the id's hash stored; fenced by RLS."""

from __future__ import annotations

import asyncio
import hashlib
from collections.abc import AsyncIterator
from datetime import UTC, datetime, timedelta
from uuid import uuid4

import pytest

from api.bootstrap import System
from domain.sessions import tenant_of_request
from infra.postgres.database import Database
from infra.postgres.sign_in_requests import SignInRequestStore

pytestmark = pytest.mark.postgres


@pytest.fixture
async def database(system: System) -> AsyncIterator[Database]:
    db = Database(system.app_conninfo, pool_size=4)
    await db.open()
    try:
        yield db
    finally:
        await db.close()


async def test_a_request_is_given_back_once_with_its_payload(database: Database) -> None:
    store = SignInRequestStore(database)
    tenant, integration = uuid4(), uuid4()
    request_id = await store.create(tenant, integration, "saml", {"relay_state": "/home"})
    assert tenant_of_request(request_id) == tenant
    pending = await store.consume(request_id, "saml")
    assert pending is not None
    assert (pending.tenant_id, pending.integration_id, pending.kind) == (tenant, integration,
                                                                          "saml")  # fmt: skip
    assert pending.payload == {"relay_state": "/home"}
    assert await store.consume(request_id, "saml") is None


async def test_another_kind_does_not_consume_it(database: Database) -> None:
    store = SignInRequestStore(database)
    request_id = await store.create(uuid4(), uuid4(), "oidc", {"nonce": "n"})
    assert await store.consume(request_id, "saml") is None
    assert await store.consume(request_id, "oidc") is not None


async def test_an_expired_request_is_refused(database: Database) -> None:
    now = [datetime.now(UTC)]
    store = SignInRequestStore(database, now=lambda: now[0])
    request_id = await store.create(uuid4(), uuid4(), "saml", {}, ttl_seconds=600)
    now[0] += timedelta(seconds=601)
    assert await store.consume(request_id, "saml") is None


async def test_concurrent_consumers_get_it_once(database: Database) -> None:
    store = SignInRequestStore(database)
    request_id = await store.create(uuid4(), uuid4(), "saml", {"n": 1})
    results = await asyncio.gather(*(store.consume(request_id, "saml") for _ in range(4)))
    assert sum(r is not None for r in results) == 1


@pytest.mark.parametrize(
    "request_id",
    ["", "_", "x" * 73, "_" + "g" * 72, f"_{uuid4().hex}{'0' * 40}", f"{uuid4().hex}.abc"],
    ids=["empty", "bare-prefix", "too-long", "not-hex", "unknown", "unknown-dotted"],  # stable ids
)
async def test_unknown_or_malformed_ids_are_refused(database: Database, request_id: str) -> None:
    assert await SignInRequestStore(database).consume(request_id, "saml") is None


async def test_only_a_hash_is_stored_and_other_tenants_see_nothing(database: Database) -> None:
    store = SignInRequestStore(database)
    tenant = uuid4()
    request_id = await store.create(tenant, uuid4(), "saml", {})
    async with database.tenant_session(tenant) as conn:
        cur = await conn.execute("SELECT request_hash FROM auth_sign_in_requests")
        rows = await cur.fetchall()
    assert [bytes(r["request_hash"]) for r in rows] == [
        hashlib.sha256(request_id.encode()).digest()
    ]
    async with database.tenant_session(uuid4()) as conn:
        cur = await conn.execute("SELECT count(*) AS n FROM auth_sign_in_requests")
        assert await cur.fetchone() == {"n": 0}


async def test_creating_a_request_removes_the_tenants_expired_ones(database: Database) -> None:
    now = [datetime.now(UTC)]
    store = SignInRequestStore(database, now=lambda: now[0])
    tenant = uuid4()
    await store.create(tenant, uuid4(), "saml", {}, ttl_seconds=60)
    now[0] += timedelta(seconds=61)
    await store.create(tenant, uuid4(), "saml", {}, ttl_seconds=60)
    async with database.tenant_session(tenant) as conn:
        cur = await conn.execute("SELECT count(*) AS n FROM auth_sign_in_requests")
        assert await cur.fetchone() == {"n": 1}


async def test_a_consume_flushed_later_is_once_and_leaves_the_connection_as_it_was(
    system: System,
) -> None:
    db = Database(system.app_conninfo, pool_size=1)  # one connection: the one the consume used
    await db.open()
    try:
        store = SignInRequestStore(db)
        request_id = await store.create(uuid4(), uuid4(), "saml", {})
        assert await store.consume(request_id, "saml", flushed_later=True) is not None
        assert await store.consume(request_id, "saml", flushed_later=True) is None
        [[row]] = await db.fetch_sets(None, [("SHOW synchronous_commit", [])])
        assert row == {"synchronous_commit": "on"}  # the setting ended with its transaction
    finally:
        await db.close()
