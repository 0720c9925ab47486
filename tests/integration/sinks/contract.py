"""The contract every sink adapter passes (one abstract suite, subclassed per adapter against its
receiver: a strict double of the vendor's wire API, or the real receiver where one runs here).

A subclass provides `receiver` (started fresh for each test), `open(config_overrides)` (the
adapter), `received()` (the event ids the receiver holds, deduplicated), and where the receiver
can be told to, `refuse_next(status, retry_after)` and `wrong_credentials()`.
"""

from __future__ import annotations

from collections.abc import Sequence
from datetime import UTC, datetime, timedelta
from typing import Any
from uuid import uuid4

import pytest

from domain.sinks import DeliveryFailed, EventFacts, Sink, SinkRecord, enrich

TENANT = "3f1c2b9e-0000-4000-8000-000000000001"


def records(count: int, *, start: int = 1, result: str = "success") -> list[SinkRecord]:
    at = datetime(2026, 12, 1, 12, 0, tzinfo=UTC)
    out = []
    for n in range(start, start + count):
        audit = {
            "tenant_id": TENANT,
            "event_type": "tenant.profile_updated",
            "event_category": "admin",
            "action": "update_tenant",
            "actor_id": "alice",
            "actor_type": "user",
            "target_resource": f"tenant/{TENANT}",
            "result": result,
            "constitutional_validation_passed": True,
            "timestamp": at + timedelta(seconds=n),
            "details": {"n": n, "note": "pipes | back\\slash = equals\nnewline"},
        }
        facts = EventFacts(
            event_id=str(uuid4()),
            position=n,
            tenant_id=TENANT,
            tenant_slug="acme",
            actor_roles=("EXECUTIVE",),
            constitutional_hash="cdd01ef066bc6cf2",
            event_type="tenant.profile_updated",
        )
        out.append(enrich(audit, facts))
    return out


class SinkContract:
    """What every sink does; `RemoteSinkContract` adds what a receiver over the network does."""

    def open(self, **overrides: Any) -> Sink:
        raise NotImplementedError

    def received(self) -> list[str]:
        raise NotImplementedError

    def received_bodies(self) -> list[dict[str, Any]]:
        raise NotImplementedError

    # --- the contract ----------------------------------------------------------------------

    def deliver(self, sink: Sink, batch: Sequence[SinkRecord]) -> None:
        delivery = sink.deliver(batch)
        assert dict(delivery.failed) == {}

    def test_a_batch_arrives_whole_and_in_order(self) -> None:
        batch = records(25)
        sink = self.open()
        try:
            self.deliver(sink, batch)
        finally:
            sink.close()
        assert self.received() == [r.event_id for r in batch]

    def test_each_record_arrives_enriched(self) -> None:
        batch = records(2)
        sink = self.open()
        try:
            self.deliver(sink, batch)
        finally:
            sink.close()
        body = self.received_bodies()[0]
        assert body["event_id"] == batch[0].event_id
        assert body["tenant_id"] == TENANT
        assert body["tenant_slug"] == "acme"
        assert body["constitutional_hash"] == "cdd01ef066bc6cf2"
        assert body["actor_roles"] == ["EXECUTIVE"]

    def test_a_batch_sent_twice_is_kept_once_by_event_id(self) -> None:
        batch = records(5)
        sink = self.open()
        try:
            self.deliver(sink, batch)
            self.deliver(sink, batch[2:])  # a crash before the position moved sends again
        finally:
            sink.close()
        assert self.received() == [r.event_id for r in batch]


class RemoteSinkContract(SinkContract):
    """A receiver over the network refuses, throttles and checks credentials."""

    def refuse_next(self, status: int, retry_after: float | None = None) -> None:
        raise NotImplementedError

    def wrong_credentials(self) -> dict[str, Any]:
        raise NotImplementedError

    def test_throttling_is_a_batch_failure_with_the_receivers_retry_after(self) -> None:
        self.refuse_next(429, retry_after=7)
        sink = self.open()
        try:
            with pytest.raises(DeliveryFailed) as failed:
                sink.deliver(records(3))
            assert failed.value.retry_after == 7
            assert not failed.value.credentials_refused
            self.deliver(sink, records(3, start=10))
        finally:
            sink.close()
        assert len(self.received()) == 3

    def test_a_server_error_is_a_batch_failure(self) -> None:
        self.refuse_next(503)
        sink = self.open()
        try:
            with pytest.raises(DeliveryFailed):
                sink.deliver(records(3))
        finally:
            sink.close()
        assert self.received() == []

    def test_refused_credentials_are_reported_as_such_without_the_secret(self) -> None:
        overrides = self.wrong_credentials()
        sink = self.open(**overrides)
        try:
            with pytest.raises(DeliveryFailed) as failed:
                sink.deliver(records(1))
        finally:
            sink.close()
        assert failed.value.credentials_refused
        for secret in overrides.values():
            assert str(secret) not in str(failed.value)
        assert self.received() == []
