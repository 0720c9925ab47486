"""SIEM sinks over real HTTP, on the real database, into the strict Splunk HEC double: a tenant
admin configures a sink, `/test` sends one test event, the tenant's events (and no other
tenant's) arrive enriched, a broken receiver fills the dead-letter list (seen over HTTP and with
`acgs sinks dlq list`), and a retry drains it once the receiver is back, with nothing lost. The
sinks worker starts a sink's own worker when it is created and stops it when it is disabled."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path
from typing import Any
from uuid import UUID

import httpx
import psycopg
import pytest

from api.bootstrap import SINKS, build
from api.settings import Settings
from domain.events import event_id
from domain.maci import MaciRole
from domain.sinks import follower_name
from domain.tenancy import SYSTEM_TENANT_ID
from tests.peers.http import HASH, Api, wait_for
from tests.peers.splunk_hec import HecDouble

pytestmark = [pytest.mark.e2e, pytest.mark.postgres]
ACGS = str(Path(sys.executable).with_name("acgs"))
H = {"X-Constitutional-Hash": HASH}


class Tenant:
    def __init__(self, api: Api, platform: httpx.Client, slug: str) -> None:
        self.id = UUID(api.create_tenant(platform, slug)["tenant_id"])
        self.slug = slug
        self.admin = api.client(api.token(MaciRole.EXECUTIVE, tenant_id=self.id))
        self.monitor = api.client(api.token(MaciRole.MONITOR, tenant_id=self.id))

    @property
    def base(self) -> str:
        return f"/v1/tenants/{self.id}/integrations"

    def create_sink(self, name: str, config: dict[str, Any]) -> UUID:
        response = self.admin.post(
            self.base,
            json={
                "integration_type": "siem",
                "integration_name": name,
                "config": config,
                "constitutional_hash": HASH,
            },
        )
        assert response.status_code == 201, response.text
        return UUID(response.json()["integration_id"])

    def touch(self, n: int) -> None:
        """`n` more events of this tenant (profile changes)."""
        for i in range(n):
            response = self.admin.patch(
                f"/v1/tenants/{self.id}", json={"tenant_name": f"Tenant {self.slug} {i}"}, headers=H
            )
            assert response.status_code == 200, response.text


@pytest.fixture
def tenants(api: Api, platform: httpx.Client, unique: str) -> Iterator[tuple[Tenant, Tenant]]:
    made = (Tenant(api, platform, f"sink-{unique}"), Tenant(api, platform, f"other-{unique}"))
    yield made
    for tenant in made:
        tenant.admin.close()
        tenant.monitor.close()


def _sink_config(hec: HecDouble, **extra: Any) -> dict[str, Any]:
    return {
        "kind": "splunk_hec",
        "url": hec.url,
        "token": hec.token,
        "max_attempts": 2,
        "retry_initial_ms": 1,
        "batch_max_wait_ms": 0,
        "timeout_seconds": 2,
        **extra,
    }


def _tenant_event_ids(admin_url: str, tenant_id: UUID) -> set[str]:
    with psycopg.connect(admin_url, autocommit=True) as conn:
        rows = conn.execute(
            "SELECT originator_id, originator_version FROM governance_events WHERE tenant_id = %s",
            [tenant_id],
        ).fetchall()
    return {str(event_id(o, v)) for o, v in rows}


def _cli(api: Api, *args: str) -> subprocess.CompletedProcess[str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("ACGS_")}
    env.update(
        ACGS_DATABASE_URL=api.system.admin_url,
        ACGS_DATA_DIR=str(api.system.settings.data_dir),
        ACGS_LOG_LEVEL="WARNING",
    )
    return subprocess.run(
        [ACGS, "sinks", "dlq", *args],
        env=env,
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )


def test_a_tenant_admin_configures_a_splunk_sink_and_nothing_is_lost(
    api: Api, tenants: tuple[Tenant, Tenant], hec: HecDouble
) -> None:
    tenant, other = tenants
    sink_id = tenant.create_sink("Splunk", _sink_config(hec))
    api.wait_projected()
    shown = tenant.admin.get(f"{tenant.base}/{sink_id}").json()
    assert shown["config"]["token"] == "***REDACTED***"

    tested = tenant.admin.post(f"{tenant.base}/{sink_id}/test", headers=H)
    assert tested.status_code == 200, tested.text
    assert tested.json()["test_result"] == "success"
    [test_event] = hec.events.values()
    assert test_event["event"]["event_type"] == "sink.test"
    hec.events.clear()
    hec.order.clear()

    tenant.touch(3)
    other.touch(2)
    runner = api.system.sink_runner(tenant.id, sink_id)
    try:
        runner.catch_up()
        arrived = set(hec.received_ids())
        assert arrived == _tenant_event_ids(api.system.admin_url, tenant.id)
        bodies = [hec.events[i]["event"] for i in hec.order]
        assert {b["tenant_id"] for b in bodies} == {str(tenant.id)}
        assert {b["tenant_slug"] for b in bodies} == {tenant.slug}
        assert {b["constitutional_hash"] for b in bodies} == {HASH}
        renamed = [b for b in bodies if b["source_event_type"] == "tenant.profile_updated"]
        assert len(renamed) == 3
        assert renamed[0]["actor_roles"] == ["EXECUTIVE"]
        assert hec.token not in json.dumps(bodies)

        # The receiver breaks: the next events are dead-lettered after their attempts.
        hec.down = True
        tenant.touch(3)
        runner.catch_up()
    finally:
        runner.close()
    before_retry = _tenant_event_ids(api.system.admin_url, tenant.id)
    seen = tenant.monitor.get(f"{tenant.base}/{sink_id}/deliveries")
    assert seen.status_code == 200, seen.text
    deliveries = seen.json()
    assert deliveries["dead_letter_count"] == 3
    assert deliveries["delivery"]["events_behind"] == 0
    assert deliveries["delivery"]["follower"] == follower_name(sink_id)
    assert {d["attempts"] for d in deliveries["dead_letters"]} == {2}
    assert all("503" in d["error"] for d in deliveries["dead_letters"])
    assert deliveries["counters"]["dead_lettered"] >= 3

    listed = _cli(api, "list", "--tenant", tenant.slug, "--integration", str(sink_id))
    assert listed.returncode == 0, listed.stderr
    assert "3 dead letter(s)" in listed.stdout
    for letter in deliveries["dead_letters"]:
        assert letter["event_id"] in listed.stdout

    # Only the tenant's EXECUTIVE re-drives; another tenant does not even see the sink.
    assert (
        tenant.monitor.post(f"{tenant.base}/{sink_id}/dead-letters/retry", headers=H).status_code
        == 403
    )
    foreign = other.admin.get(f"/v1/tenants/{tenant.id}/integrations/{sink_id}/deliveries")
    assert foreign.status_code in (403, 404)
    still_down = tenant.admin.post(f"{tenant.base}/{sink_id}/dead-letters/retry", headers=H)
    assert still_down.json()["remaining"] == 3
    from_console = _cli(api, "retry", "--tenant", tenant.slug, "--integration", str(sink_id))
    assert from_console.returncode == 1, from_console.stderr
    assert "retried 3, delivered 0, remaining 3 (Splunk HEC answered 503)" in from_console.stdout

    hec.down = False
    drained = tenant.admin.post(f"{tenant.base}/{sink_id}/dead-letters/retry", headers=H)
    assert drained.status_code == 200, drained.text
    assert drained.json()["error"] is None
    assert (drained.json()["delivered"], drained.json()["remaining"]) == (3, 0)
    assert tenant.admin.get(f"{tenant.base}/{sink_id}/deliveries").json()["dead_letter_count"] == 0
    # Nothing lost: every event of the tenant recorded before the re-drives has arrived.
    assert before_retry <= set(hec.received_ids())


def test_the_sinks_worker_starts_a_sink_when_created_and_stops_it_when_disabled(
    api: Api, tenants: tuple[Tenant, Tenant], hec: HecDouble, tmp_path: Path
) -> None:
    tenant, _ = tenants
    settings = Settings.from_env(
        {
            "ACGS_DATABASE_URL": api.system.admin_url,
            "ACGS_DATA_DIR": str(api.system.settings.data_dir),
        }
    )
    worker = build(settings)
    try:
        assert worker.start_workers(only=[SINKS]) == [SINKS]
        sink_id = tenant.create_sink("Live", _sink_config(hec))
        api.wait_projected()
        name = follower_name(sink_id)
        wait_for(lambda: name in [s.name for s in worker.worker_status()], timeout=15)
        tenant.touch(2)
        expected = _tenant_event_ids(api.system.admin_url, tenant.id)
        wait_for(lambda: expected <= set(hec.received_ids()), timeout=15)
        metrics = httpx.get(f"{api.url}/metrics").text
        delivered = [
            line
            for line in metrics.splitlines()
            if line.startswith(f'acgs_sink_delivered_total{{sink="{name}"}}')
        ]
        assert delivered
        assert float(delivered[0].split()[-1]) >= len(expected)

        response = tenant.admin.patch(
            f"{tenant.base}/{sink_id}", json={"enabled": False}, headers=H
        )
        assert response.status_code == 200, response.text
        api.wait_projected()
        wait_for(lambda: name not in [s.name for s in worker.worker_status()], timeout=15)
        before = len(hec.received_ids())
        tenant.touch(1)
        assert len(hec.received_ids()) == before
    finally:
        worker.close()


class _KilledAfter:
    """Wraps a sink: delivers for real, then dies (as a killed process would) once `after`
    batches were acknowledged, before the runner could confirm its position."""

    def __init__(self, sink: Any, after: int) -> None:
        self.sink = sink
        self.left = after

    def deliver(self, records: Any) -> Any:
        delivered = self.sink.deliver(records)
        self.left -= 1
        if self.left == 0:
            raise KeyboardInterrupt
        return delivered

    def close(self) -> None:
        self.sink.close()


def test_a_sink_killed_mid_batch_resumes_from_its_last_confirmed_position(
    api: Api, tenants: tuple[Tenant, Tenant], hec: HecDouble
) -> None:
    tenant, _ = tenants
    sink_id = tenant.create_sink("Crash", _sink_config(hec, batch_size=2))
    api.wait_projected()
    tenant.touch(5)
    expected = _tenant_event_ids(api.system.admin_url, tenant.id)
    first = api.system.sink_runner(tenant.id, sink_id)
    first.sink = _KilledAfter(first.sink, after=2)
    try:
        with pytest.raises(KeyboardInterrupt):
            first.catch_up()
        confirmed = first.source.position()
    finally:
        first.close()
    assert 0 < len(hec.received_ids()) < len(expected)
    with psycopg.connect(api.system.admin_url, autocommit=True) as conn:
        first_of_tenant = conn.execute(
            "SELECT min(notification_id) FROM governance_events WHERE tenant_id = %s", [tenant.id]
        ).fetchone()
    assert first_of_tenant is not None
    assert confirmed < first_of_tenant[0]  # the killed round was not confirmed
    second = api.system.sink_runner(tenant.id, sink_id)
    try:
        second.catch_up()
    finally:
        second.close()
    assert set(hec.received_ids()) == expected  # nothing lost
    assert hec.duplicates == 4  # the two batches acknowledged before the kill came again


def test_a_platform_sink_sees_every_tenants_events(
    api: Api, platform: httpx.Client, tenants: tuple[Tenant, Tenant], hec: HecDouble
) -> None:
    tenant, other = tenants
    response = platform.post(
        f"/v1/tenants/{SYSTEM_TENANT_ID}/integrations",
        json={
            "integration_type": "siem",
            "integration_name": f"Platform {tenant.slug}",
            "config": _sink_config(hec),
            "constitutional_hash": HASH,
        },
    )
    assert response.status_code == 201, response.text
    sink_id = UUID(response.json()["integration_id"])
    api.wait_projected()
    tenant.touch(1)
    other.touch(1)
    runner = api.system.sink_runner(SYSTEM_TENANT_ID, sink_id)
    try:
        runner.catch_up()
    finally:
        runner.close()
    arrived = set(hec.received_ids())
    for each in (tenant, other):
        assert _tenant_event_ids(api.system.admin_url, each.id) <= arrived
    slugs = {hec.events[i]["event"]["tenant_slug"] for i in hec.order}
    assert {tenant.slug, other.slug} <= slugs
    # The tenant's own admin does not see the platform's sink.
    assert tenant.admin.get(
        f"/v1/tenants/{SYSTEM_TENANT_ID}/integrations/{sink_id}/deliveries"
    ).status_code in (403, 404)
