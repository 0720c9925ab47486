"""The API's tenant-row cache against the real read model: a busy tenant's row is read again in
the background before it expires (no request waits for it), a stale one is read before the
answer, and a change made by another process shows within the TTL."""

from __future__ import annotations

import asyncio
from typing import Any

import pytest

from api.bootstrap import System
from api.http.directory import TenantDirectory
from commands.tenants import CreateTenant
from infra.postgres.database import Database
from tests.integration.spine.support import PLATFORM, catch_up

pytestmark = pytest.mark.postgres


async def test_a_busy_tenants_row_is_read_again_in_the_background(
    system: System, database: Database
) -> None:
    tenant = system.tenants.create(PLATFORM, CreateTenant("Cached", "cached", "c@example.com"))
    catch_up(system)
    now = [0.0]
    directory = TenantDirectory(database, ttl_seconds=2.0, clock=lambda: now[0])
    first = await directory.limits(tenant.id)
    assert first is not None
    before = first.max_requests_per_minute
    system.tenants.update(PLATFORM, tenant.id, {"max_requests_per_minute": before + 7})
    catch_up(system)  # another process's change: this directory was not told

    now[0] = 0.5  # younger than half the TTL: from memory, nothing read
    assert (await directory.limits(tenant.id)).max_requests_per_minute == before  # type: ignore[union-attr]
    now[0] = 1.5  # older than half: the old row at once, the new one read in the background
    assert (await directory.limits(tenant.id)).max_requests_per_minute == before  # type: ignore[union-attr]
    for _ in range(200):
        await asyncio.sleep(0.01)
        current = await directory.limits(tenant.id)
        if current is not None and current.max_requests_per_minute == before + 7:
            break
    assert current is not None
    assert current.max_requests_per_minute == before + 7

    system.tenants.update(PLATFORM, tenant.id, {"max_requests_per_minute": before + 9})
    catch_up(system)
    now[0] = 10.0  # past the TTL: this request waits for the read model
    stale = await directory.limits(tenant.id)
    assert stale is not None
    assert stale.max_requests_per_minute == before + 9


async def test_many_waiting_requests_share_one_read(
    system: System, database: Database, monkeypatch: pytest.MonkeyPatch
) -> None:
    tenant = system.tenants.create(PLATFORM, CreateTenant("Shared", "shared", "s@example.com"))
    catch_up(system)
    reads = []
    read = database.fetch_one_as_tenant

    async def counted(*args: Any) -> Any:
        reads.append(args)
        return await read(*args)

    monkeypatch.setattr(database, "fetch_one_as_tenant", counted)
    directory = TenantDirectory(database)
    rows = await asyncio.gather(*(directory.row(tenant.id) for _ in range(20)))
    assert [row["tenant_slug"] for row in rows if row is not None] == ["shared"] * 20
    assert len(reads) == 1


async def test_a_change_made_here_holds_until_the_read_model_shows_it(
    system: System, database: Database
) -> None:
    """However long the projection lags, a tenant this process deactivated stays deactivated
    for it (its tokens must not work again when the cache's own window passes); once the read
    model shows the change, the read model answers again."""
    tenant = system.tenants.create(PLATFORM, CreateTenant("Lagging", "lagging", "l@example.com"))
    catch_up(system)
    now = [0.0]
    directory = TenantDirectory(database, ttl_seconds=2.0, clock=lambda: now[0])
    assert (await directory.limits(tenant.id)).active  # type: ignore[union-attr]
    deactivated = system.tenants.deactivate(PLATFORM, tenant.id)
    directory.remember(deactivated)  # as the tenant routes do; the projection has not run

    for moment in (0.5, 10.0, 100.0):  # inside the window, and long past it
        now[0] = moment
        lagging = await directory.limits(tenant.id)
        assert lagging is not None
        assert lagging.status == "deactivated"

    catch_up(system)
    system.tenants.reactivate(PLATFORM, tenant.id)  # by another process: not remembered here
    catch_up(system)
    now[0] = 200.0
    assert (await directory.limits(tenant.id)).active  # type: ignore[union-attr]
