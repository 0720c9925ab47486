"""One-time sign-in requests in PostgreSQL (`auth_sign_in_requests`, under Row-Level Security).

`create` stores what a browser flow sent to an identity provider and returns an opaque id
(`_<tenant id hex><40 random hex>`: a valid XML `ID`, URL-safe, naming its tenant so the answer
is read inside that tenant). Only the id's SHA-256 is stored. `consume` is one `DELETE ...
RETURNING`: it gives the request back at most once, and never after it expired. Expired rows of
the tenant are deleted whenever a new request is created.
"""

from __future__ import annotations

import hashlib
import secrets
from collections.abc import Callable, Mapping
from datetime import UTC, datetime, timedelta
from typing import Any
from uuid import UUID

from psycopg.types.json import Jsonb

from domain.sessions import SIGN_IN_REQUEST_TTL_SECONDS, PendingSignIn, tenant_of_request
from infra.postgres.database import NO_FLUSH, Database


def _hash(request_id: str) -> bytes:
    return hashlib.sha256(request_id.encode()).digest()


class SignInRequestStore:
    def __init__(
        self, database: Database, *, now: Callable[[], datetime] = lambda: datetime.now(UTC)
    ) -> None:
        self._db = database
        self._now = now

    async def create(
        self,
        tenant_id: UUID,
        integration_id: UUID,
        kind: str,
        payload: Mapping[str, Any],
        *,
        ttl_seconds: int = SIGN_IN_REQUEST_TTL_SECONDS,
    ) -> str:
        request_id = f"_{tenant_id.hex}{secrets.token_hex(20)}"
        now = self._now()
        async with self._db.tenant_session(tenant_id) as conn:
            await conn.execute("DELETE FROM auth_sign_in_requests WHERE expires_at <= %s", [now])
            await conn.execute(
                "INSERT INTO auth_sign_in_requests (request_hash, tenant_id, integration_id, "
                "kind, payload, created_at, expires_at) VALUES (%s, %s, %s, %s, %s, %s, %s)",
                [_hash(request_id), tenant_id, integration_id, kind, Jsonb(dict(payload)), now,
                 now + timedelta(seconds=ttl_seconds)],
            )  # fmt: skip
        return request_id

    async def consume(
        self, request_id: str, kind: str, *, flushed_later: bool = False
    ) -> PendingSignIn | None:
        """The request, removed; None when unknown, of another kind, used before or expired.

        `flushed_later`: the caller's next commit is synchronous and comes before it answers
        (the SAML assertion consumer always ends with a session or an audit entry), so this
        removal is committed with `synchronous_commit = off`: PostgreSQL writes the commit
        records in order and flushes everything up to that later commit, so the request is used
        for good before the browser hears anything; a commit fewer to wait for on the disk."""
        tenant_id = tenant_of_request(request_id)
        if tenant_id is None:
            return None
        lazy: list[tuple[str, list[Any]]] = [(NO_FLUSH, [])] if flushed_later else []
        *_, rows = await self._db.fetch_sets(  # one round trip, one transaction
            tenant_id,
            [
                *lazy,
                (
                    "DELETE FROM auth_sign_in_requests WHERE request_hash = %s AND kind = %s "
                    "RETURNING integration_id, payload, expires_at",
                    [_hash(request_id), kind],
                ),
            ],
        )
        row = rows[0] if rows else None
        if row is None or row["expires_at"] <= self._now():
            return None
        return PendingSignIn(
            request_id, tenant_id, row["integration_id"], kind, row["payload"], row["expires_at"]
        )
