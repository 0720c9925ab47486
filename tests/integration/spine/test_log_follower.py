"""The one follower of the notification log, in its two delivery modes."""

from __future__ import annotations

import threading
from collections.abc import Callable, Iterator
from typing import Any

import pytest

from api.bootstrap import System
from domain.tenant.aggregate import Tenant
from infra.postgres.follower import LogFollower

pytestmark = pytest.mark.postgres


def ignore(cur: Any, rows: list[Any]) -> None:
    del cur, rows


@pytest.fixture
def follower(system: System, admin_conn: Any, unique: str) -> Iterator[LogFollower]:
    made = LogFollower(system.projector_conninfo, f"follower_{unique}", batch_size=3)
    head = admin_conn.execute("SELECT coalesce(max(notification_id), 0) FROM governance_events")
    made.advance(int(head.fetchone()[0]))
    yield made
    made.close()
    admin_conn.execute("DELETE FROM projection_positions WHERE name = %s", [made.name])


def test_apply_mode_moves_the_position_with_the_batch_and_not_when_applying_fails(
    follower: LogFollower, create_tenant: Callable[..., Tenant]
) -> None:
    start = follower.position()
    for _ in range(4):
        create_tenant()  # one event each: four events after `start`

    def refuse(cur: Any, rows: list[Any]) -> None:
        cur.execute("SELECT 1")
        raise RuntimeError("the read model refused")

    with pytest.raises(RuntimeError):
        follower.apply_next(refuse)
    assert follower.position() == start  # rolled back with the batch

    seen: list[int] = []

    def record(cur: Any, rows: list[Any]) -> None:
        del cur
        seen.extend(r[0] for r in rows)

    first = follower.apply_next(record)
    assert len(first) == 3  # the batch size
    assert follower.position() == first[-1][0] == seen[-1]
    rest = follower.apply_next(record)
    assert follower.position() == rest[-1][0]
    assert follower.apply_next(ignore) == []
    assert seen == sorted(seen)
    assert len(seen) >= 4


def test_publish_mode_reads_without_moving_until_advanced(
    follower: LogFollower, create_tenant: Callable[..., Tenant]
) -> None:
    start = follower.position()
    tenant = create_tenant()
    rows = follower.read(start)
    assert [(r[1], r[2]) for r in rows] == [(tenant.id, 1)]
    assert follower.position() == start  # nothing moves until the receiver acknowledged
    follower.advance(rows[-1][0])
    assert follower.read(follower.position()) == []


def test_follow_wakes_on_new_events_and_stops(
    follower: LogFollower, create_tenant: Callable[..., Tenant]
) -> None:
    delivered = threading.Event()
    stop = threading.Event()

    def catch_up() -> int:
        rows = follower.apply_next(ignore)
        if rows:
            delivered.set()
        return len(rows)

    thread = threading.Thread(
        target=follower.follow, args=(stop, catch_up), kwargs={"poll_seconds": 10}, daemon=True
    )
    thread.start()
    try:
        create_tenant()
        assert delivered.wait(5)  # woken by NOTIFY: the 10 s poll would come too late
    finally:
        stop.set()
        thread.join(15)
    assert not thread.is_alive()
