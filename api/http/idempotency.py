"""`Idempotency-Key` on POST.

The first request with a key claims it (a row in `idempotency_keys`, in the caller's tenant) and
runs; a successful response is stored with a hash of the request (method, path and the body as
canonical JSON). Within 24 h the same key with the same request gets the stored response again
(`Idempotent-Replayed: true`); with another request, 409 `IDEMPOTENCY_KEY_REUSED`; while the
first is still running, 409 `IDEMPOTENCY_KEY_IN_USE`. A failed request releases its key, so the
client can retry it.
"""

from __future__ import annotations

import hashlib
import re
from collections.abc import Awaitable, Callable
from typing import Any

import msgspec
from litestar import Request, Response

from api.http.errors import IdempotencyKeyInUse, IdempotencyKeyReused
from commands.context import Principal
from domain.errors import ValidationFailed
from infra.postgres import idempotency as table
from infra.postgres.database import Database

HEADER = "Idempotency-Key"
KEY_PATTERN = r"^[\x21-\x7e]{1,255}$"
_KEY = re.compile(KEY_PATTERN)


class Idempotency:
    def __init__(self, database: Database) -> None:
        self._database = database

    async def run(
        self,
        request: Request[Any, Any, Any],
        principal: Principal,
        key: str | None,
        action: Callable[[], Awaitable[Response[Any]]],
    ) -> Response[Any]:
        if key is None:
            return await action()
        if not _KEY.fullmatch(key):
            raise ValidationFailed.field(HEADER, "must be 1 to 255 visible ASCII characters")
        fingerprint = await _fingerprint(request)
        async with self._database.tenant_session(principal.tenant_id) as conn:
            stored = await table.claim(conn, principal.sub, key, fingerprint)
        if stored is not None:
            return _replay(stored, fingerprint)
        try:
            response = await action()
        except BaseException:
            await self._release(principal, key)
            raise
        status = response.status_code or 200
        if 200 <= status < 300:
            body = msgspec.json.encode(response.content)
            async with self._database.tenant_session(principal.tenant_id) as conn:
                await table.complete(conn, principal.sub, key, status, body)
        else:
            await self._release(principal, key)
        return response

    async def _release(self, principal: Principal, key: str) -> None:
        async with self._database.tenant_session(principal.tenant_id) as conn:
            await table.release(conn, principal.sub, key)


def _replay(stored: table.StoredResponse, fingerprint: str) -> Response[Any]:
    if stored.request_hash != fingerprint:
        raise IdempotencyKeyReused(
            "this Idempotency-Key was used with a different request", {"header": HEADER}
        )
    if stored.status_code is None or stored.body is None:
        raise IdempotencyKeyInUse(
            "a request with this Idempotency-Key is still in progress", {"header": HEADER}
        )
    return Response(
        msgspec.Raw(stored.body),
        status_code=stored.status_code,
        headers={"Idempotent-Replayed": "true"},
    )


async def _fingerprint(request: Request[Any, Any, Any]) -> str:
    body = await request.body()
    try:
        canonical = msgspec.json.encode(msgspec.json.decode(body), order="sorted") if body else b""
    except msgspec.DecodeError:
        canonical = body
    digest = hashlib.sha256()
    for part in (request.method.encode(), request.url.path.encode(), canonical):
        digest.update(len(part).to_bytes(8, "big"))
        digest.update(part)
    return digest.hexdigest()
