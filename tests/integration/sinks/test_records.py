"""The sink records of real stored events: read straight from the stored JSON (the fast path)
they are exactly what the application's mapper gives (the slow path), for every kind of event
the log holds."""

from __future__ import annotations

import httpx
import pytest

from api.bootstrap import System
from infra.postgres.follower import LogFollower
from projections.sinks.records import RecordMaker
from tests.peers.http import Api

pytestmark = [pytest.mark.postgres, pytest.mark.e2e]


def test_the_fast_path_gives_the_mappers_records(
    api: Api, platform: httpx.Client, unique: str
) -> None:
    api.create_tenant(platform, f"rec-{unique}")  # a few events of several kinds at least
    system: System = api.system
    follower = LogFollower(system.projector_conninfo, "records_probe", track_position=False)
    try:
        rows = follower.read(max(0, follower.head() - 2000), 2000)
    finally:
        follower.close()
    fast = RecordMaker(system.app.mapper, lambda _: "slug")
    slow = RecordMaker(system.app.mapper, lambda _: "slug")
    slow.plain_parts = lambda *_: None  # type: ignore[method-assign]
    took_fast_path = 0
    for row in rows:
        took_fast_path += fast.plain_parts(row[3], bytes(row[4])) is not None
        assert fast.record(row).body == slow.record(row).body, row[3]
    assert took_fast_path > len(rows) / 2


def test_a_new_tenants_creation_carries_its_slug_before_the_read_model_has_it(
    api: Api, platform: httpx.Client, unique: str
) -> None:
    slug = f"new-{unique}"
    created = api.create_tenant(platform, slug)
    system: System = api.system
    follower = LogFollower(system.projector_conninfo, "records_probe", track_position=False)
    try:
        rows = follower.read(max(0, follower.head() - 200), 200)
    finally:
        follower.close()
    unknown = RecordMaker(system.app.mapper, lambda _: None)  # the read model not there yet
    mine = [unknown.record(r) for r in rows if str(r[5]) == created["tenant_id"]]
    creation = [r for r in mine if r.body["source_event_type"] == "tenant.created"]
    assert [r.body["tenant_slug"] for r in creation] == [slug]
