"""The revocation feed while the database is away: requests that queued behind a poll that
failed fail with it, instead of each waiting the pool's timeout again in turn."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from typing import Any

import pytest
from psycopg_pool import PoolTimeout

from infra.postgres.sessions import RevocationList


class AwayPool:
    """A pool whose every connection attempt waits, then times out (the database is down)."""

    def __init__(self) -> None:
        self.attempts = 0

    @asynccontextmanager
    async def connection(self) -> AsyncIterator[Any]:
        self.attempts += 1
        await asyncio.sleep(0.05)
        raise PoolTimeout("couldn't get a connection after 3.00 sec")
        yield  # pragma: no cover - never reached


class AwayDatabase:
    def __init__(self) -> None:
        self.pool = AwayPool()


async def test_requests_queued_behind_a_failed_poll_fail_with_it() -> None:
    database = AwayDatabase()
    revocations = RevocationList(database, poll_seconds=0.25)  # type: ignore[arg-type]
    outcomes = await asyncio.gather(
        *(revocations.is_revoked("sid", f"jti-{n}") for n in range(8)), return_exceptions=True
    )
    assert all(isinstance(outcome, PoolTimeout) for outcome in outcomes), outcomes
    assert database.pool.attempts == 1  # one wait for the pool, not eight in a row


async def test_a_later_request_tries_the_database_again() -> None:
    database = AwayDatabase()
    revocations = RevocationList(database, poll_seconds=0.25)  # type: ignore[arg-type]
    for _ in range(2):
        with pytest.raises(PoolTimeout):
            await revocations.is_revoked("sid", "jti")
    assert database.pool.attempts == 2
