"""Console requests that present the same refresh token at once share one rotation."""

from __future__ import annotations

import asyncio
from typing import Any

import pytest

from api.console.principal import SharedRefreshes
from domain.sessions import RefreshRejected


class Rotations:
    def __init__(self, fail: bool = False) -> None:
        self.calls = 0
        self.fail = fail

    async def rotate(self) -> Any:
        self.calls += 1
        await asyncio.sleep(0.01)
        if self.fail:
            raise RefreshRejected
        return f"issued-{self.calls}"


async def test_concurrent_requests_with_one_token_share_one_rotation() -> None:
    shared, rotations = SharedRefreshes(), Rotations()
    results = await asyncio.gather(*(shared.refresh("r1", rotations.rotate) for _ in range(5)))
    assert rotations.calls == 1
    assert results == ["issued-1"] * 5
    # within the grace period a late request gets the same tokens, never a second rotation
    assert await shared.refresh("r1", rotations.rotate) == "issued-1"
    assert rotations.calls == 1
    # another token is another rotation
    assert await shared.refresh("r2", rotations.rotate) == "issued-2"


async def test_a_refusal_is_every_waiters_refusal() -> None:
    shared, rotations = SharedRefreshes(), Rotations(fail=True)
    results = await asyncio.gather(
        *(shared.refresh("r1", rotations.rotate) for _ in range(3)), return_exceptions=True
    )
    assert rotations.calls == 1
    assert all(isinstance(r, RefreshRejected) for r in results)


async def test_after_the_grace_period_the_token_is_presented_again() -> None:
    shared, rotations = SharedRefreshes(grace_seconds=0.0), Rotations()
    assert await shared.refresh("r1", rotations.rotate) == "issued-1"
    await asyncio.sleep(0.001)
    assert await shared.refresh("r1", rotations.rotate) == "issued-2"


async def test_a_cancelled_rotation_leaves_no_outcome() -> None:
    shared, rotations = SharedRefreshes(), Rotations()
    task = asyncio.ensure_future(shared.refresh("r1", rotations.rotate))
    await asyncio.sleep(0)
    task.cancel()
    with pytest.raises(asyncio.CancelledError):
        await task
    assert await shared.refresh("r1", rotations.rotate) == "issued-2"
