"""Sessions and refresh tokens in PostgreSQL (tenant-scoped, under Row-Level Security), and the
revocation feed every API process polls.

`SessionStore.rotate` is one statement (one round trip, one transaction): the presented token's
row is locked; a token used before revokes its session (reuse detection), otherwise it is marked
used and a new one issued, and the tenant's status and sign-in settings come back with it.
A rotation commits without waiting for its flush to disk (`synchronous_commit = off` for that
one transaction): the flush was most of a refresh's time. What that gives up, only if the
database server itself crashes within a fraction of a second of a rotation (at most three
`wal_writer_delay`, 0.6 s by default): the rotation is lost, so the new refresh token is refused
(the user signs in again) and the one it replaced is accepted once more. A reuse is different:
the revocation it causes is flushed before `rotate` raises `RefreshReused` (one more round trip,
on that rare path only), so a session revoked for reuse stays revoked after any crash.
`RevocationList` answers "is this sid or jti revoked?" from memory, never older than
`poll_seconds` (0.25 s), so a logout in one process holds in every other one within a second. A
busy process refreshes the list in the background once it is half that old, so requests do not
wait for the feed; only a request that finds it older than `poll_seconds` (a quiet process, or the
database away) waits for the refresh. Revocations expire from the feed once no access token they
could refuse is valid.
"""

from __future__ import annotations

import asyncio
import hashlib
import logging
import secrets
import time
from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any
from uuid import UUID

from psycopg import AsyncConnection
from psycopg.errors import UniqueViolation
from psycopg.rows import DictRow

from domain.maci import MaciRole
from domain.saml import SamlRejected, SamlSignInFacts
from domain.sessions import RefreshRejected, RefreshReused, Session
from domain.tenant.sign_in_settings import SignInSettings
from infra.postgres.database import NO_FLUSH, Database
from infra.postgres.saml import REPLAY_CONSTRAINT, index_statement, replay_statements

log = logging.getLogger(__name__)
POLL_SECONDS = 0.25
_ROTATE = "SELECT * FROM acgs_rotate_refresh_token(%s, %s, %s, %s, %s)"
_SESSION = (
    "SELECT sid, tenant_id, sub, auth_method, integration_id, user_dn, maci_roles, expires_at, "
    "revoked_at FROM auth_sessions WHERE sid = %s"
)

_INSERT_REFRESH = (
    "INSERT INTO auth_refresh_tokens (token_hash, tenant_id, sid, issued_at, expires_at) "
    "VALUES (%s, %s, %s, %s, %s)"
)


@dataclass(frozen=True)
class Rotation:
    """A refresh token exchanged: its session, the new token, and the tenant as it is now
    (`tenant_status` None when the tenant's row is gone)."""

    session: Session
    refresh_token: str
    tenant_status: str | None
    sign_in: SignInSettings


def _hash(token: str) -> bytes:
    return hashlib.sha256(token.encode()).digest()


def _new_refresh_token(tenant_id: UUID) -> str:
    return f"{tenant_id.hex}.{secrets.token_urlsafe(32)}"


def _tenant_of(token: str) -> UUID:
    head, dot, rest = token.partition(".")
    if not dot or not rest or len(token) > 200:
        raise RefreshRejected
    try:
        return UUID(hex=head)
    except ValueError:
        raise RefreshRejected from None


def _session(row: dict[str, Any]) -> Session:
    return Session(
        sid=row["sid"],
        tenant_id=row["tenant_id"],
        sub=row["sub"],
        auth_method=row["auth_method"],
        integration_id=row["integration_id"],
        user_dn=row["user_dn"],
        roles=tuple(MaciRole(r) for r in row["maci_roles"]),
        expires_at=row["expires_at"],
    )


class SessionStore:
    def __init__(
        self, database: Database, *, now: Callable[[], datetime] = lambda: datetime.now(UTC)
    ) -> None:
        self._db = database
        self._now = now

    async def open(
        self,
        *,
        tenant_id: UUID,
        sub: str,
        auth_method: str,
        integration_id: UUID | None,
        user_dn: str | None,
        roles: tuple[MaciRole, ...],
        refresh_ttl_seconds: int,
        saml: SamlSignInFacts | None = None,
        flushed_later: bool = False,
    ) -> tuple[Session, str]:
        """A new session and its first refresh token, in one round trip and one transaction;
        with a SAML sign-in's `saml` facts, its replay-cache entry and session index too
        (`SamlRejected("replay")`, and no session, when the assertion was used before).
        `flushed_later`: the caller commits synchronously (its audit entry) before it answers,
        which makes this commit durable too; it then does not wait for its own flush."""
        sid = secrets.token_hex(16)
        now = self._now()
        expires = now + timedelta(seconds=refresh_ttl_seconds)
        token = _new_refresh_token(tenant_id)
        statements: list[tuple[str, list[Any]]] = [(NO_FLUSH, [])] if flushed_later else []
        if saml is not None:
            statements += replay_statements(tenant_id, integration_id, saml, now)
        statements += [
            (
                "INSERT INTO auth_sessions (sid, tenant_id, sub, auth_method, integration_id, "
                "user_dn, maci_roles, created_at, expires_at) "
                "VALUES (%s, %s, %s, %s, %s, %s, %s, %s, %s) RETURNING sid",
                [sid, tenant_id, sub, auth_method, integration_id, user_dn,
                 [r.value for r in roles], now, expires],
            ),
            (_INSERT_REFRESH + " RETURNING sid", [_hash(token), tenant_id, sid, now, expires]),
        ]  # fmt: skip
        if saml is not None:
            statements.append(index_statement(tenant_id, integration_id, sid, saml))
        try:
            await self._db.fetch_sets(tenant_id, statements)  # one round trip, one transaction
        except UniqueViolation as exc:
            if exc.diag.constraint_name == REPLAY_CONSTRAINT:
                raise SamlRejected("replay", "this assertion was used before") from None
            raise
        session = Session(sid, tenant_id, sub, auth_method, integration_id, user_dn, roles, expires)
        return session, token

    async def rotate(self, token: str, *, access_keep_seconds: int) -> Rotation:
        """The session of `token`, the token replacing it and the tenant's sign-in settings, in
        one round trip (`acgs_rotate_refresh_token`, migration 0012). `RefreshReused` (after
        revoking the session) when `token` was used before; `RefreshRejected` when unknown,
        expired or its session is revoked."""
        tenant_id = _tenant_of(token)
        new_token = _new_refresh_token(tenant_id)
        params = [str(tenant_id), _hash(token), _hash(new_token), self._now(), access_keep_seconds]
        [_, rows] = await self._db.fetch_sets(tenant_id, [(NO_FLUSH, []), (_ROTATE, params)])
        row = rows[0] if rows else None
        if row is None or row["outcome"] == "rejected":
            raise RefreshRejected
        session = _session({k.removeprefix("r_"): v for k, v in row.items()})
        if row["outcome"] == "reused":
            await self._flush(session)  # the revocation survives a crash
            raise RefreshReused(session)
        settings = SignInSettings()
        if row["r_tenant_status"] is not None:
            settings = SignInSettings.from_dict({k: row[f"r_{k}"] for k in SignInSettings.FIELDS})
        return Rotation(session, new_token, row["r_tenant_status"], settings)

    async def _flush(self, session: Session) -> None:
        """Wait until the session's revocation is on disk: a write committed synchronously
        flushes the write-ahead log up to its commit record, and so every commit before it
        (PostgreSQL writes them in order), the revocation's too."""
        async with self._db.tenant_session(session.tenant_id) as conn:
            await conn.execute(
                "UPDATE auth_sessions SET revoked_at = revoked_at WHERE sid = %s", [session.sid]
            )

    async def set_roles(self, session: Session, roles: tuple[MaciRole, ...]) -> Session:
        async with self._db.tenant_session(session.tenant_id) as conn:
            await conn.execute(
                "UPDATE auth_sessions SET maci_roles = %s WHERE sid = %s",
                [[r.value for r in roles], session.sid],
            )
        return Session(
            session.sid,
            session.tenant_id,
            session.sub,
            session.auth_method,
            session.integration_id,
            session.user_dn,
            roles,
            session.expires_at,
        )

    async def revoke(
        self, tenant_id: UUID, sid: str, reason: str, *, access_keep_seconds: int
    ) -> bool:
        """End the session: its refresh tokens stop working, and its access tokens too (through
        the feed). False when there was no such live session."""
        async with self._db.tenant_session(tenant_id) as conn:
            return await self._revoke(conn, sid, reason, access_keep_seconds)

    async def get(self, tenant_id: UUID, sid: str) -> Session | None:
        async with self._db.tenant_session(tenant_id) as conn:
            row = await (await conn.execute(_SESSION, [sid])).fetchone()
        if row is None or row["revoked_at"] is not None:
            return None
        return _session(row)

    async def _revoke(
        self, conn: AsyncConnection[DictRow], sid: str, reason: str, access_keep_seconds: int
    ) -> bool:
        now = self._now()
        cur = await conn.execute(
            "UPDATE auth_sessions SET revoked_at = %s, revoked_reason = %s "
            "WHERE sid = %s AND revoked_at IS NULL",
            [now, reason, sid],
        )
        if cur.rowcount == 0:
            return False
        await conn.execute(
            "INSERT INTO auth_revocations (kind, value, revoked_at, keep_until) "
            "VALUES ('sid', %s, %s, %s)",
            [sid, now, now + timedelta(seconds=access_keep_seconds)],
        )
        return True


class RevocationList:
    """Revoked session ids and token ids, as every process sees them within `poll_seconds`."""

    def __init__(
        self,
        database: Database,
        *,
        poll_seconds: float = POLL_SECONDS,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self._db = database
        self._poll_seconds = poll_seconds
        self._clock = clock
        self._last_poll = float("-inf")
        self._seq = 0
        self._revoked: dict[tuple[str, str], datetime] = {}
        self._lock = asyncio.Lock()
        self._refresh: asyncio.Task[None] | None = None
        self._attempts = 0  # polls tried, whatever their outcome
        self._failed: Exception | None = None  # the last poll's failure, None after a success

    def revoked_here(self, kind: str, value: str, keep_until: datetime) -> None:
        """A revocation made by this process: effective here at once (others poll the feed)."""
        self._revoked[(kind, value)] = keep_until

    async def is_revoked(self, sid: str, jti: str) -> bool:
        age = self._clock() - self._last_poll
        if age >= self._poll_seconds:
            await self._poll(self._poll_seconds)
        elif age >= self._poll_seconds / 2 and self._refresh is None:
            self._refresh = asyncio.get_running_loop().create_task(self._refresh_early())
        return ("sid", sid) in self._revoked or ("jti", jti) in self._revoked

    async def _refresh_early(self) -> None:
        """A poll off the request path; a failure is left to the next request past
        `poll_seconds`, which polls itself and reports it."""
        try:
            await self._poll(self._poll_seconds / 2)
        except Exception:
            log.debug("early poll of the revocation feed failed", exc_info=True)
        finally:
            self._refresh = None

    async def _poll(self, max_age: float) -> None:
        """Read the feed, unless a poll finished while this one waited for the lock and left
        the list younger than `max_age`."""
        attempts = self._attempts
        async with self._lock:
            if self._clock() - self._last_poll < max_age:
                return
            if self._attempts != attempts and self._failed is not None:
                # The poll this one waited for failed (the database is away): fail with it
                # rather than wait the pool's timeout again, one waiter after another.
                raise self._failed
            try:
                await self._read_feed()
            except Exception as exc:
                self._failed = exc
                raise
            else:
                self._failed = None
            finally:
                self._attempts += 1

    async def _read_feed(self) -> None:
        async with self._db.pool.connection() as conn:
            cur = await conn.execute(
                "SELECT seq, kind, value, keep_until FROM auth_revocations "
                "WHERE seq > %s AND keep_until > now() ORDER BY seq",
                [self._seq],
            )
            rows = await cur.fetchall()
            now = (await (await conn.execute("SELECT now() AS now")).fetchone() or {})["now"]
        for row in rows:
            self._seq = max(self._seq, row["seq"])
            self._revoked[(row["kind"], row["value"])] = row["keep_until"]
        for key in [k for k, until in self._revoked.items() if until <= now]:
            del self._revoked[key]
        self._last_poll = self._clock()
