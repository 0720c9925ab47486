"""Every event message carries a `traceparent` header: the event's own when it was recorded with
one, else one derived from its event id (the same on every re-publication)."""

from __future__ import annotations

import re
from typing import Any
from uuid import UUID

from domain.constitution import DEFAULT_CONSTITUTIONAL_HASH
from infra.kafka.codec import event_headers

W3C = re.compile(r"^00-[0-9a-f]{32}-[0-9a-f]{16}-0[01]$")
RECORDED = "00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01"
EVENT_ID = "5f0c2f6e-9b1a-5d1e-8a43-2c0b6f1e7d90"


def record(trace_parent: str | None) -> dict[str, Any]:
    return {
        "event_type": "tenant.created",
        "event_id": EVENT_ID,
        "constitutional_hash": DEFAULT_CONSTITUTIONAL_HASH,
        "trace_parent": trace_parent,
    }


def test_the_recorded_trace_parent_is_sent() -> None:
    assert dict(event_headers(record(RECORDED)))["traceparent"] == RECORDED.encode()


def test_an_event_without_one_gets_a_valid_one_derived_from_its_id() -> None:
    sent = dict(event_headers(record(None)))["traceparent"].decode()
    assert W3C.match(sent)
    digits = UUID(EVENT_ID).hex
    assert sent == f"00-{digits}-{digits[16:]}-00"
    assert dict(event_headers(record(None)))["traceparent"].decode() == sent  # stable
