"""Sessions in the real PostgreSQL: refresh tokens stored hashed and rotated on every use, reuse
of a used token revokes the whole family, revocation seen by another process's list within its
poll interval, a revocation for reuse kept through a database crash, and the tables fenced by
Row-Level Security."""

from __future__ import annotations

import asyncio
import hashlib
import os
import secrets
import signal
from datetime import UTC, datetime, timedelta
from pathlib import Path
from types import SimpleNamespace
from uuid import UUID, uuid4

import psycopg
import pytest
from psycopg_pool import PoolClosed

from api.bootstrap import System
from domain.maci import MaciRole
from domain.sessions import RefreshRejected, RefreshReused, Session
from domain.tenancy import SYSTEM_TENANT_ID
from domain.tenant.sign_in_settings import SignInSettings
from infra.postgres.database import APP_ROLE, Database, role_conninfo
from infra.postgres.sessions import RevocationList, SessionStore
from tests.peers.http import wait_for
from tests.peers.postgres import throwaway_postgres

pytestmark = pytest.mark.postgres


async def _open(
    store: SessionStore, ttl: int = 3600, tenant_id: UUID | None = None
) -> tuple[Session, str]:
    return await store.open(
        tenant_id=tenant_id or uuid4(),
        sub="alice",
        auth_method="ldap",
        integration_id=uuid4(),
        user_dn="uid=alice,ou=people,dc=acme,dc=test",
        roles=(MaciRole.EXECUTIVE, MaciRole.AUDITOR),
        refresh_ttl_seconds=ttl,
    )


async def test_refresh_rotates_and_an_old_token_is_refused(database: Database) -> None:
    store = SessionStore(database)
    session, first = await _open(store)
    rotated = await store.rotate(first, access_keep_seconds=900)
    assert rotated.session == session
    assert rotated.refresh_token != first
    assert rotated.tenant_status is None  # no such tenant in the read model
    third = (await store.rotate(rotated.refresh_token, access_keep_seconds=900)).refresh_token
    assert third not in (first, rotated.refresh_token)


async def test_a_rotation_brings_the_tenants_sign_in_settings(database: Database) -> None:
    store = SessionStore(database)
    _, token = await _open(store, tenant_id=SYSTEM_TENANT_ID)
    rotated = await store.rotate(token, access_keep_seconds=900)
    assert rotated.tenant_status == "active"
    assert rotated.sign_in == SignInSettings(MaciRole.MONITOR, 900, 28_800)


async def test_reuse_revokes_the_whole_family(database: Database) -> None:
    store = SessionStore(database)
    session, first = await _open(store)
    second = (await store.rotate(first, access_keep_seconds=900)).refresh_token
    with pytest.raises(RefreshReused) as reused:
        await store.rotate(first, access_keep_seconds=900)  # a stolen copy
    assert reused.value.session.sid == session.sid
    with pytest.raises(RefreshRejected):  # the legitimate holder is out too
        await store.rotate(second, access_keep_seconds=900)
    assert await store.get(session.tenant_id, session.sid) is None


@pytest.mark.parametrize(
    "token",
    ["", "nodot", "zz.abc", f"{uuid4().hex}.not-a-real-token", "x" * 300],
    ids=["empty", "no-dot", "unknown-short", "unknown", "too-long"],  # the same in every process
)
async def test_unknown_or_malformed_tokens_are_rejected(database: Database, token: str) -> None:
    with pytest.raises(RefreshRejected):
        await SessionStore(database).rotate(token, access_keep_seconds=900)


async def test_an_expired_refresh_token_is_rejected(database: Database) -> None:
    now = [datetime.now(UTC)]
    store = SessionStore(database, now=lambda: now[0])
    _, token = await _open(store, ttl=60)
    now[0] += timedelta(seconds=61)
    with pytest.raises(RefreshRejected):
        await store.rotate(token, access_keep_seconds=900)


async def test_only_a_hash_of_the_token_is_stored(database: Database, system: System) -> None:
    store = SessionStore(database)
    session, token = await _open(store)
    async with database.tenant_session(session.tenant_id) as conn:
        rows = await (
            await conn.execute("SELECT token_hash FROM auth_refresh_tokens WHERE sid = %s",
                               [session.sid])
        ).fetchall()  # fmt: skip
    assert [bytes(r["token_hash"]) for r in rows] == [hashlib.sha256(token.encode()).digest()]
    async with database.tenant_session(uuid4()) as conn:  # another tenant sees nothing
        cur = await conn.execute("SELECT count(*) AS n FROM auth_sessions WHERE sid = %s",
                                 [session.sid])  # fmt: skip
        assert await cur.fetchone() == {"n": 0}


async def test_a_logout_in_one_process_is_seen_by_another_within_a_second(
    database: Database, system: System
) -> None:
    other_process = Database(system.app_conninfo, pool_size=1)
    await other_process.open()
    try:
        theirs = RevocationList(other_process)
        store = SessionStore(database)
        session, token = await _open(store)
        sid = session.sid
        assert await theirs.is_revoked(sid, "some-jti") is False
        assert await store.revoke(session.tenant_id, sid, "logout", access_keep_seconds=900)
        loop = asyncio.get_running_loop()
        started = loop.time()
        while not await theirs.is_revoked(sid, "some-jti"):
            assert loop.time() - started < 1.0, "revocation not seen within 1 s"
            await asyncio.sleep(0.02)
        with pytest.raises(RefreshRejected):
            await store.rotate(token, access_keep_seconds=900)
        assert (
            await store.revoke(session.tenant_id, sid, "logout", access_keep_seconds=900) is False
        )
    finally:
        await other_process.close()


async def test_a_busy_process_refreshes_the_revocation_list_off_the_request_path(
    database: Database,
) -> None:
    now = [0.0]
    theirs = RevocationList(database, clock=lambda: now[0])  # poll_seconds 0.25
    store = SessionStore(database)
    first, _ = await _open(store)
    second, _ = await _open(store)
    assert await theirs.is_revoked(first.sid, "j") is False  # the first answer waits for a poll
    assert await store.revoke(first.tenant_id, first.sid, "logout", access_keep_seconds=900)
    now[0] = 0.1  # younger than half the interval: memory only
    assert await theirs.is_revoked(first.sid, "j") is False
    now[0] = 0.2  # older than half: answered from memory at once, refreshed in the background
    assert await theirs.is_revoked(first.sid, "j") is False
    for _ in range(200):
        await asyncio.sleep(0.01)
        if await theirs.is_revoked(first.sid, "j"):
            break
    assert await theirs.is_revoked(first.sid, "j"), "the background refresh never landed"
    assert await store.revoke(second.tenant_id, second.sid, "logout", access_keep_seconds=900)
    now[0] = 10.0  # older than the interval: this request waits for the feed
    assert await theirs.is_revoked(second.sid, "j") is True


async def test_a_revocation_for_reuse_survives_a_database_crash(tmp_path: Path) -> None:
    """Rotations commit without waiting for their flush; the revocation a reuse causes must not
    be lost with them. The WAL writer is slowed to its maximum (10 s), so only the store's own
    flush can put the revocation on disk before the server is stopped the way a crash stops it
    (SIGQUIT: immediate shutdown, no checkpoint, WAL buffers dropped)."""
    with throwaway_postgres(tmp_path) as (server, admin_url):
        with psycopg.connect(admin_url, autocommit=True) as admin:
            admin.execute("ALTER SYSTEM SET wal_writer_delay = '10s'")
            admin.execute("SELECT pg_reload_conf()")
        database = Database(role_conninfo(admin_url, APP_ROLE), pool_size=2)
        await database.open()
        try:
            store = SessionStore(database)
            session, first = await _open(store)
            await store.rotate(first, access_keep_seconds=900)
            with pytest.raises(RefreshReused):
                await store.rotate(first, access_keep_seconds=900)
        finally:
            await database.close()
        pid = int((server.cluster_dir / "postmaster.pid").read_text().splitlines()[0])
        os.kill(pid, signal.SIGQUIT)
        wait_for(lambda: not (server.cluster_dir / "postmaster.pid").exists(), timeout=30)
        restarted = server.start()  # crash recovery replays what reached the disk
        with psycopg.connect(restarted, autocommit=True) as admin:
            row = admin.execute(
                "SELECT revoked_reason FROM auth_sessions WHERE sid = %s", [session.sid]
            ).fetchone()
        assert row == ("refresh_token_reused",)


async def test_a_live_session_is_read_back_and_a_revoked_one_is_gone(database: Database) -> None:
    store = SessionStore(database)
    session, _ = await _open(store)
    assert await store.get(session.tenant_id, session.sid) == session
    assert await store.get(uuid4(), session.sid) is None  # another tenant's: not visible
    assert await store.revoke(session.tenant_id, session.sid, "logout", access_keep_seconds=900)
    assert await store.get(session.tenant_id, session.sid) is None


async def test_a_clash_that_is_no_saml_replay_is_not_reported_as_one(
    database: Database, monkeypatch: pytest.MonkeyPatch
) -> None:
    store = SessionStore(database)
    tenant_id = uuid4()
    fixed = SimpleNamespace(token_hex=lambda _n: "same-sid", token_urlsafe=secrets.token_urlsafe)
    monkeypatch.setattr("infra.postgres.sessions.secrets", fixed)  # this module's session ids
    first, _ = await _open(store, tenant_id=tenant_id)
    with pytest.raises(psycopg.errors.UniqueViolation) as clash:
        await _open(store, tenant_id=tenant_id)  # the same session id again
    assert clash.value.diag.constraint_name != "auth_saml_assertions_pkey"
    async with database.tenant_session(tenant_id) as conn:
        cur = await conn.execute("SELECT count(*) AS n FROM auth_refresh_tokens WHERE sid = %s",
                                 [first.sid])  # fmt: skip
        assert await cur.fetchone() == {"n": 1}  # the failed open wrote nothing


async def test_revocations_past_their_keep_time_leave_the_list(database: Database) -> None:
    now = [0.0]
    revocations = RevocationList(database, clock=lambda: now[0])
    past = datetime.now(UTC) - timedelta(seconds=1)
    revocations.revoked_here("sid", "old-sid", past)
    revocations.revoked_here("sid", "new-sid", datetime.now(UTC) + timedelta(hours=1))
    assert await revocations.is_revoked("new-sid", "j") is True  # the first poll
    assert await revocations.is_revoked("old-sid", "j") is False  # kept no longer


async def test_an_early_poll_that_fails_leaves_the_answer_to_the_list(system: System) -> None:
    now = [0.0]
    database = Database(system.app_conninfo, pool_size=1)
    await database.open()
    revocations = RevocationList(database, clock=lambda: now[0])  # poll_seconds 0.25
    revocations.revoked_here("sid", "gone", datetime.now(UTC) + timedelta(hours=1))
    assert await revocations.is_revoked("gone", "j") is True
    await database.close()  # the database is away from now on
    now[0] = 0.2  # older than half the interval: a poll in the background, which fails
    assert await revocations.is_revoked("gone", "j") is True
    refresh = revocations._refresh
    assert refresh is not None
    await refresh  # its failure is kept off the request path
    assert revocations._refresh is None
    now[0] = 10.0  # older than the interval: this request polls itself and reports it
    with pytest.raises(PoolClosed):
        await revocations.is_revoked("gone", "j")
