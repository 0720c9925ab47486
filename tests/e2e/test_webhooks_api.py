"""Webhooks over real HTTP, on the real database, into an independent receiver on 127.0.0.1
that verifies every signature with the standard library: a tenant admin registers a webhook
(the secret shown once, never again, nowhere else), a test delivery and the tenant's policy
events arrive signed, failures are retried with backoff and then dead-lettered, repeated
failures disable the webhook (an audited event) until a PATCH re-enables it, and every SSRF
target is refused at registration and again at delivery. Loopback is allow-listed explicitly by
the tests that need the receiver."""

from __future__ import annotations

import logging
import os
import socket
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path
from typing import Any
from uuid import UUID

import httpx
import psycopg
import pytest

from api.bootstrap import WEBHOOKS, build
from api.settings import Settings
from domain.maci import MaciRole
from domain.sinks import follower_name
from domain.webhooks.targets import AllowList
from projections.sinks.runner import SinkSettings
from tests.e2e.policy_support import rego, submitted
from tests.e2e.webhook_receiver import Receiver, verify
from tests.peers.http import HASH, Api, free_port, wait_for

pytestmark = [pytest.mark.e2e, pytest.mark.postgres]
H = {"X-Constitutional-Hash": HASH}
DOC = Path(__file__).resolve().parents[2] / "docs" / "webhooks.md"
FAST = SinkSettings(max_count=100, max_wait=0.0, max_attempts=3, retry_initial=0.001)


class Tenant:
    def __init__(self, api: Api, platform: httpx.Client, slug: str) -> None:
        self.id = UUID(api.create_tenant(platform, slug)["tenant_id"])
        self.admin = api.client(api.token(MaciRole.EXECUTIVE, tenant_id=self.id))
        self.monitor = api.client(api.token(MaciRole.MONITOR, tenant_id=self.id))
        self.base = f"/v1/tenants/{self.id}/webhooks"

    def register(self, url: str, events: list[str] | None = None, **extra: Any) -> httpx.Response:
        body = {
            "webhook_url": url,
            "events": events or ["policy.updated"],
            "constitutional_hash": HASH,
            **extra,
        }
        return self.admin.post(self.base, json=body)

    def registered(self, url: str, **extra: Any) -> dict[str, Any]:
        response = self.register(url, **extra)
        assert response.status_code == 201, response.text
        created: dict[str, Any] = response.json()
        return created

    def close(self) -> None:
        self.admin.close()
        self.monitor.close()


@pytest.fixture
def tenant(api: Api, platform: httpx.Client, unique: str) -> Iterator[Tenant]:
    made = Tenant(api, platform, f"hook-{unique}")
    yield made
    made.close()


@pytest.fixture
def receiver() -> Iterator[Receiver]:
    started = Receiver().start()
    yield started
    started.stop()


@pytest.fixture
def loopback_allowed(api: Api, monkeypatch: pytest.MonkeyPatch) -> None:
    """The operator allow-lists 127.0.0.1 (only) for the receiver of these tests."""
    assert api.system.webhook_guard is not None
    monkeypatch.setattr(api.system.webhook_guard, "allow", AllowList.parse(["127.0.0.1/32"]))


def _field_errors(response: httpx.Response) -> dict[str, str]:
    assert response.status_code == 422, response.text
    error = response.json()["error"]
    assert error["code"] == "VALIDATION_ERROR"
    assert error["constitutional_hash"] == HASH
    return {f["field"]: f["message"] for f in error["details"]["fields"]}


SSRF_TARGETS = [
    "http://127.0.0.1:8080/hook",
    "http://[::1]/hook",
    "http://169.254.169.254/latest/meta-data/",
    "http://10.1.2.3/hook",
    "http://localhost/hook",  # a name that resolves to loopback
    "http://metadata.google.internal/computeMetadata/v1/",
    "http://[fd00:ec2::254]/latest/meta-data/",
    "http://100.64.0.1/hook",
    "http://192.168.1.10/hook",
    "http://172.16.0.1/hook",
    "http://[fc00::1]/hook",
    "http://[fe80::1]/hook",
    "http://0.0.0.0/hook",
    "http://224.0.0.1/hook",
    "http://[::ffff:127.0.0.1]/hook",
    "http://2130706433/hook",  # 127.0.0.1 as one number
]


def test_every_ssrf_target_is_refused_at_registration(api: Api, tenant: Tenant) -> None:
    for url in SSRF_TARGETS:
        errors = _field_errors(tenant.register(url))
        assert set(errors) == {"webhook_url"}, url
    api.wait_projected()
    assert tenant.admin.get(tenant.base).json()["total"] == 0


def test_every_bad_field_is_listed_at_once(tenant: Tenant) -> None:
    response = tenant.register("ftp://example.com/x", events=["nothing.happened"], secret="short")
    assert set(_field_errors(response)) == {"webhook_url", "events", "secret"}


@pytest.mark.usefixtures("loopback_allowed")
def test_a_registered_webhook_receives_signed_events_and_the_secret_shows_once(
    api: Api,
    tenant: Tenant,
    receiver: Receiver,
    unique: str,
    caplog: pytest.LogCaptureFixture,
) -> None:
    caplog.set_level(logging.DEBUG)
    created = tenant.registered(receiver.url)
    secret = created["secret"]
    assert secret.startswith("whsec_")
    assert len(secret) > 40
    receiver.secret = secret
    hook = created["webhook_id"]
    api.wait_projected()
    shown = tenant.monitor.get(f"{tenant.base}/{hook}")
    assert shown.status_code == 200, shown.text
    assert shown.json()["secret"] == "***REDACTED***"
    assert shown.json()["events"] == ["policy.updated"]

    tested = tenant.admin.post(f"{tenant.base}/{hook}/test", headers=H)
    assert tested.status_code == 200, tested.text
    assert tested.json()["delivered"] is True
    assert tested.json()["response_code"] == 200
    [test] = receiver.received
    assert test.verified
    assert test.json["event"] == "webhook.test"
    assert test.json["constitutional_hash"] == HASH
    assert test.headers["x-acgs-signature"].startswith("t=")
    assert not verify("another-secret-entirely", test.headers["x-acgs-signature"], test.body)

    submitted(tenant.admin, tenant.id, rego(f"hooked_{unique}", "EXECUTIVE"))
    runner = api.system.webhook_runner(tenant.id, UUID(hook), settings=FAST)
    try:
        runner.catch_up()
    finally:
        runner.close()
    deliveries = receiver.received[1:]
    assert deliveries
    assert all(d.verified for d in deliveries)
    bodies = [d.json for d in deliveries]
    assert {b["event"] for b in bodies} == {"policy.updated"}
    assert {b["event_type"] for b in bodies} <= {
        "tenant_policy.registered",
        "tenant_policy.version_added",
    }
    assert all(b["constitutional_hash"] == HASH for b in bodies)
    assert all(b["tenant_id"] == str(tenant.id) for b in bodies)
    assert all(b["data"]["constitutional_hash"] == HASH for b in bodies)
    assert len({b["event_id"] for b in bodies}) == len(bodies)

    log = tenant.monitor.get(f"{tenant.base}/{hook}/deliveries").json()
    assert log["total"] == len(bodies) + 1  # and the test delivery
    assert {d["status"] for d in log["deliveries"]} == {"delivered"}
    assert {d["attempts"] for d in log["deliveries"]} == {1}
    assert {d["response_code"] for d in log["deliveries"]} == {200}
    assert all(d["latency_ms"] > 0 for d in log["deliveries"])
    page = tenant.monitor.get(f"{tenant.base}/{hook}/deliveries", params={"limit": 1, "offset": 1})
    assert len(page.json()["deliveries"]) == 1
    assert page.json()["deliveries"][0]["event_id"] == log["deliveries"][1]["event_id"]

    # the secret is nowhere else: not in a later answer, the events, the audit log, the logs
    listed = tenant.admin.get(tenant.base)
    assert secret not in listed.text
    assert secret not in tested.text
    with psycopg.connect(api.system.admin_url) as conn:
        events = conn.execute(
            "SELECT count(*) FROM governance_events WHERE tenant_id = %s "
            "AND position(%s in convert_from(state, 'UTF8')) > 0",
            [tenant.id, secret],
        ).fetchone()
        audit = conn.execute(
            "SELECT count(*) FROM tenant_audit_log WHERE tenant_id = %s "
            "AND position(%s in details::text) > 0",
            [tenant.id, secret],
        ).fetchone()
    assert events == (0,)
    assert audit == (0,)
    assert secret not in caplog.text


@pytest.mark.usefixtures("loopback_allowed")
def test_a_refused_delivery_is_retried_then_dead_lettered(
    api: Api, tenant: Tenant, receiver: Receiver, unique: str
) -> None:
    created = tenant.registered(receiver.url, secret="a-tenant-chosen-secret-0001")
    receiver.secret = "a-tenant-chosen-secret-0001"
    hook = UUID(created["webhook_id"])
    receiver.fail_first = 1  # the first attempt fails, the retry succeeds
    submitted(tenant.admin, tenant.id, rego(f"first_{unique}", "EXECUTIVE"))
    runner = api.system.webhook_runner(tenant.id, hook, settings=FAST, disable_after=100)
    try:
        runner.catch_up()
        first = [b["event_id"] for b in receiver.bodies()]
        assert first.count(first[0]) == 2  # the refused event, again (after the others)
        assert len(first) == len(set(first)) + 1
        api.wait_projected()
        log = tenant.admin.get(f"{tenant.base}/{hook}/deliveries").json()["deliveries"]
        retried = next(d for d in log if d["event_id"] == first[0])
        assert (retried["status"], retried["attempts"], retried["response_code"]) == (
            "delivered",
            2,
            200,
        )

        receiver.status = 503
        receiver.received.clear()
        submitted(tenant.admin, tenant.id, rego(f"second_{unique}", "EXECUTIVE"))
        runner.catch_up()  # three attempts each, then dead letters; the position moves on
    finally:
        runner.close()
    attempts: dict[str, int] = {}
    for body in receiver.bodies():
        attempts[body["event_id"]] = attempts.get(body["event_id"], 0) + 1
    assert attempts
    assert set(attempts.values()) == {3}
    assert all(r.verified for r in receiver.received)
    log = tenant.admin.get(f"{tenant.base}/{hook}/deliveries").json()["deliveries"]
    dead = {d["event_id"]: d for d in log if d["status"] == "dead_lettered"}
    assert set(dead) == set(attempts)
    assert {(d["attempts"], d["response_code"]) for d in dead.values()} == {(3, 503)}
    with psycopg.connect(api.system.admin_url) as conn:
        letters = conn.execute(
            "SELECT event_id::text, attempts, error FROM sink_dead_letters "
            "WHERE integration_id = %s",
            [hook],
        ).fetchall()
    assert {row[0] for row in letters} == set(attempts)
    assert {(row[1], row[2]) for row in letters} == {(3, "answered 503")}


@pytest.mark.usefixtures("loopback_allowed")
def test_repeated_failures_disable_the_webhook_until_it_is_re_enabled(
    api: Api, tenant: Tenant, receiver: Receiver, unique: str
) -> None:
    hook = UUID(tenant.registered(receiver.url)["webhook_id"])
    receiver.status = 500
    submitted(tenant.admin, tenant.id, rego(f"broken_{unique}", "EXECUTIVE"))
    runner = api.system.webhook_runner(tenant.id, hook, settings=FAST, disable_after=2)
    try:
        runner.catch_up()
    finally:
        runner.close()
    assert len(receiver.received) == 2  # nothing is POSTed once the webhook is disabled
    api.wait_projected()
    shown = tenant.admin.get(f"{tenant.base}/{hook}").json()
    assert shown["enabled"] is False
    assert shown["disabled_reason"] == "2 consecutive failed deliveries: answered 500"
    with psycopg.connect(api.system.admin_url) as conn:
        audited = conn.execute(
            "SELECT actor_id, details->>'consecutive_failures' FROM tenant_audit_log "
            "WHERE tenant_id = %s AND event_type = 'webhook.disabled' AND target_id = %s",
            [tenant.id, str(hook)],
        ).fetchall()
    assert audited == [("system", "2")]

    enabled = tenant.admin.patch(f"{tenant.base}/{hook}", json={"enabled": True}, headers=H)
    assert enabled.status_code == 200, enabled.text
    assert enabled.json()["updated_fields"] == ["enabled"]
    api.wait_projected()
    shown = tenant.admin.get(f"{tenant.base}/{hook}").json()
    assert (shown["enabled"], shown["disabled_reason"]) == (True, None)


@pytest.mark.usefixtures("loopback_allowed")
def test_a_redirect_is_not_followed(api: Api, tenant: Tenant, receiver: Receiver) -> None:
    elsewhere = Receiver().start()
    try:
        hook = tenant.registered(receiver.url)["webhook_id"]
        for target in (elsewhere.url.replace("127.0.0.1", "localhost"), "http://169.254.169.254/"):
            receiver.redirect_to = target
            tested = tenant.admin.post(f"{tenant.base}/{hook}/test", headers=H)
            assert tested.status_code == 200, tested.text
            outcome = tested.json()
            assert (outcome["delivered"], outcome["response_code"]) == (False, 302)
            assert "redirects are not followed" in outcome["error"]
        assert elsewhere.received == []
    finally:
        elsewhere.stop()


def test_the_target_is_checked_again_at_delivery(
    api: Api, tenant: Tenant, receiver: Receiver, monkeypatch: pytest.MonkeyPatch
) -> None:
    guard = api.system.webhook_guard
    assert guard is not None
    monkeypatch.setattr(guard, "allow", AllowList.parse(["127.0.0.1"]))
    hook = tenant.registered(receiver.url)["webhook_id"]
    monkeypatch.setattr(guard, "allow", AllowList())  # the operator withdraws the exception
    tested = tenant.admin.post(f"{tenant.base}/{hook}/test", headers=H)
    assert tested.status_code == 200, tested.text
    assert tested.json()["delivered"] is False
    assert tested.json()["error"].startswith("target refused: webhook_url: must not resolve to")
    assert receiver.received == []
    changed = tenant.admin.patch(
        f"{tenant.base}/{hook}", json={"webhook_url": "http://[::1]:9/x"}, headers=H
    )
    assert set(_field_errors(changed)) == {"webhook_url"}


@pytest.mark.usefixtures("loopback_allowed")
def test_roles_tenants_paging_and_delete(
    api: Api, platform: httpx.Client, tenant: Tenant, receiver: Receiver, unique: str
) -> None:
    refused = tenant.monitor.post(
        tenant.base,
        json={
            "webhook_url": receiver.url,
            "events": ["policy.updated"],
            "constitutional_hash": HASH,
        },
    )
    assert refused.status_code == 403
    hooks = [tenant.registered(receiver.url)["webhook_id"] for _ in range(3)]
    api.wait_projected()
    page = tenant.monitor.get(tenant.base, params={"limit": 2, "offset": 1}).json()
    assert page["total"] == 3
    assert [w["webhook_id"] for w in page["webhooks"]] == hooks[1:]
    other = Tenant(api, platform, f"hook2-{unique}")
    try:
        for method in ("GET", "DELETE"):
            response = other.admin.request(method, f"{other.base}/{hooks[0]}", headers=H)
            assert response.status_code == 404, (method, response.text)
        foreign = other.admin.get(f"{tenant.base}/{hooks[0]}")
        assert foreign.status_code in (403, 404)
    finally:
        other.close()
    deleted = tenant.admin.delete(f"{tenant.base}/{hooks[0]}", headers=H)
    assert deleted.status_code == 204, deleted.text
    api.wait_projected()
    assert tenant.admin.get(f"{tenant.base}/{hooks[0]}").status_code == 404
    assert tenant.admin.get(tenant.base).json()["total"] == 2


@pytest.mark.usefixtures("loopback_allowed")
def test_the_documented_receiver_verifies_a_delivery(tenant: Tenant, tmp_path: Path) -> None:
    """docs/webhooks.md's receiver, run as written, verifies a test delivery and refuses one
    signed with another secret."""
    source = DOC.read_text().split('"""receiver.py:', 1)[1].split("```", 1)[0]
    script = tmp_path / "receiver.py"
    script.write_text('"""receiver.py:' + source)
    port = free_port()
    secret = "whsec_documented-receiver-secret"
    env = {**os.environ, "WEBHOOK_SECRET": secret}
    process = subprocess.Popen(
        [sys.executable, str(script), str(port)],
        env=env,
        stdout=subprocess.PIPE,
        text=True,
    )
    try:
        wait_for(lambda: _accepting(port), timeout=10)
        right = tenant.registered(f"http://127.0.0.1:{port}/acgs", secret=secret)["webhook_id"]
        tested = tenant.admin.post(f"{tenant.base}/{right}/test", headers=H).json()
        assert (tested["delivered"], tested["response_code"]) == (True, 204)
        assert process.stdout is not None
        line = process.stdout.readline().split()
        assert line == ["verified", "webhook.test", tested["event_id"], HASH]
        wrong = tenant.registered(f"http://127.0.0.1:{port}/acgs", secret="whsec_another-one-1")
        refused = tenant.admin.post(f"{tenant.base}/{wrong['webhook_id']}/test", headers=H)
        assert (refused.json()["delivered"], refused.json()["response_code"]) == (False, 401)
    finally:
        process.kill()
        process.wait(timeout=10)
        if process.stdout is not None:
            process.stdout.close()


def _accepting(port: int) -> bool:
    with socket.socket() as probe:
        return probe.connect_ex(("127.0.0.1", port)) == 0


@pytest.mark.usefixtures("loopback_allowed")
def test_the_webhooks_worker_delivers_live_and_stops_a_disabled_webhook(
    api: Api, tenant: Tenant, receiver: Receiver, unique: str
) -> None:
    settings = Settings.from_env(
        {
            "ACGS_DATABASE_URL": api.system.admin_url,
            "ACGS_DATA_DIR": str(api.system.settings.data_dir),
            "ACGS_WEBHOOK_ALLOWED_TARGETS": "127.0.0.1",
        }
    )
    worker = build(settings)
    try:
        assert worker.start_workers(only=[WEBHOOKS]) == [WEBHOOKS]
        created = tenant.registered(receiver.url)
        receiver.secret = created["secret"]
        api.wait_projected()
        name = follower_name(UUID(created["webhook_id"]))
        wait_for(lambda: name in [s.name for s in worker.worker_status()], timeout=15)
        submitted(tenant.admin, tenant.id, rego(f"live_{unique}", "EXECUTIVE"))
        wait_for(lambda: len(receiver.received) >= 2, timeout=15)
        assert all(r.verified for r in receiver.received)

        off = tenant.admin.patch(
            f"{tenant.base}/{created['webhook_id']}", json={"enabled": False}, headers=H
        )
        assert off.status_code == 200, off.text
        api.wait_projected()
        wait_for(lambda: name not in [s.name for s in worker.worker_status()], timeout=15)
        before = len(receiver.received)
        submitted(tenant.admin, tenant.id, rego(f"quiet_{unique}", "EXECUTIVE"))
        assert len(receiver.received) == before
    finally:
        worker.close()
