"""The webhook aggregate (every bad field reported at once, the secret sealed before any event,
disable and re-enable), the signature a receiver recomputes with the standard library, and the
delivery body."""

from __future__ import annotations

import hashlib
import hmac
import json
from typing import Any
from uuid import uuid4

import pytest

from domain.constitution import DEFAULT_CONSTITUTIONAL_HASH
from domain.errors import InvalidStateTransition, ValidationFailed
from domain.events import SYSTEM_ACTOR, Actor, EventMeta
from domain.maci import MaciRole
from domain.sinks import record_of_body
from domain.webhooks.aggregate import (
    SUBSCRIPTIONS,
    Webhook,
    public_event,
    subscribed_types,
)
from domain.webhooks.delivery import payload
from domain.webhooks.signature import new_secret, signature
from domain.webhooks.targets import parse_target

TENANT = uuid4()
META = EventMeta(TENANT, Actor("alice", (MaciRole.EXECUTIVE,)), DEFAULT_CONSTITUTIONAL_HASH)


class ReversingSealer:
    def __init__(self) -> None:
        self.shredded: list[str] = []

    def new_key(self, tenant_id: object) -> str:
        return "key-1"

    def seal(self, tenant_id: object, key_id: str, path: str, plaintext: str) -> str:
        return f"acgs:v1:{path}:" + plaintext[::-1]

    def open(self, tenant_id: object, key_id: str, path: str, sealed: str) -> str:
        return sealed.removeprefix(f"acgs:v1:{path}:")[::-1]

    def shred(self, tenant_id: object, key_id: str) -> None:
        self.shredded.append(key_id)


def _register(**overrides: Any) -> tuple[Webhook, str]:
    args: dict[str, Any] = {
        "webhook_id": uuid4(),
        "tenant_id": TENANT,
        "target": parse_target("https://hooks.acme.test/acgs"),
        "events": ["policy.updated", "policy.updated", "integration.health_changed"],
        "secret": None,
        "enabled": True,
        "sealer": ReversingSealer(),
        "meta": META,
        "problems": [],
    }
    return Webhook.register(**{**args, **overrides})


def test_registration_seals_a_generated_secret_and_dedupes_events() -> None:
    webhook, secret = _register()
    assert secret.startswith("whsec_")
    assert len(secret) >= 40
    assert webhook.secret != secret
    assert secret not in json.dumps(vars(webhook.pending_events[0]), default=str)
    assert webhook.clear_secret(ReversingSealer()) == secret
    assert webhook.events == ["integration.health_changed", "policy.updated"]
    assert new_secret() != new_secret()


def test_every_bad_field_is_reported_at_once() -> None:
    problems = [{"field": "webhook_url", "message": "must be an http:// or https:// URL"}]
    with pytest.raises(ValidationFailed) as refused:
        _register(target=None, events=["nope"], secret="short", enabled="yes", problems=problems)
    fields = [f["field"] for f in refused.value.details["fields"]]
    assert fields == ["webhook_url", "events", "secret", "enabled"]


def test_a_given_secret_is_kept() -> None:
    webhook, secret = _register(secret="a-tenant-chosen-secret")
    assert secret == "a-tenant-chosen-secret"
    assert webhook.clear_secret(ReversingSealer()) == secret


def test_change_disable_re_enable_and_delete() -> None:
    webhook, _ = _register()
    assert webhook.change({"enabled": True}, None, META, []) == []
    assert webhook.disable_after_failures(10, "answered 503", EventMeta(TENANT, SYSTEM_ACTOR, "x"))
    assert not webhook.enabled
    assert webhook.disabled_reason == "10 consecutive failed deliveries: answered 503"
    assert not webhook.disable_after_failures(11, "again", META)  # once
    target = parse_target("https://other.acme.test/")
    changed = webhook.change({"enabled": True}, target, META, [])
    assert changed == ["webhook_url", "enabled"]
    assert (webhook.enabled, webhook.disabled_reason) == (True, None)
    with pytest.raises(ValidationFailed) as refused:
        webhook.change({"secret": "x" * 20, "events": []}, None, META, [])
    assert {f["field"] for f in refused.value.details["fields"]} == {"secret", "events"}
    webhook.delete(META)
    with pytest.raises(InvalidStateTransition):
        webhook.change({"enabled": False}, None, META, [])
    kinds = [type(e).__name__ for e in webhook.collect_events()]
    assert kinds == ["Registered", "Disabled", "Updated", "Deleted"]


def test_subscriptions_map_onto_event_types_of_the_log() -> None:
    assert subscribed_types(["integration.health_changed"]) == {"integration.health_changed"}
    assert "tenant_policy.activated" in SUBSCRIPTIONS["policy.updated"]
    events = ["integration.health_changed", "policy.updated"]
    assert public_event("tenant_policy.activated", events) == "policy.updated"


def test_the_signature_is_hmac_sha256_of_timestamp_dot_body() -> None:
    body = b'{"event":"policy.updated"}'
    header = signature("s3cret-s3cret-s3cret", 1_700_000_000, body)
    expected = hmac.new(b"s3cret-s3cret-s3cret", b"1700000000." + body, hashlib.sha256).hexdigest()
    assert header == f"t=1700000000,v1={expected}"


def test_the_body_carries_the_hash_and_the_audit_record() -> None:
    record = record_of_body(
        {
            "event_type": "governance.tenant_policy.activated",
            "source_event_type": "tenant_policy.activated",
            "timestamp": "2026-12-02T10:00:00+00:00",
            "tenant_id": str(TENANT),
            "details": {"version": 2},
        },
        position=7,
        event_id="0f0e0d0c-0b0a-4909-8807-060504030201",
    )
    hook = uuid4()
    body = json.loads(payload(hook, "policy.updated", record, DEFAULT_CONSTITUTIONAL_HASH))
    assert body == {
        "webhook_id": str(hook),
        "event": "policy.updated",
        "event_id": "0f0e0d0c-0b0a-4909-8807-060504030201",
        "event_type": "tenant_policy.activated",
        "tenant_id": str(TENANT),
        "occurred_at": "2026-12-02T10:00:00+00:00",
        "constitutional_hash": DEFAULT_CONSTITUTIONAL_HASH,
        "data": record.body,
    }
