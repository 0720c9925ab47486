"""What a webhook delivery sends and what one attempt came to.

The body is JSON: the subscription it is delivered under (`event`), the event's stable id and
type in the log, its tenant, its time and the constitutional hash, and the event's audit record
(`data`, as the SIEM sinks receive it). Receivers deduplicate on `event_id` (delivery is at
least once)."""

from __future__ import annotations

from dataclasses import dataclass
from uuid import UUID

import msgspec

from domain.sinks import SinkRecord

_encode = msgspec.json.Encoder().encode


@dataclass(frozen=True)
class Attempt:
    """One POST: delivered (a 2xx), the status the receiver answered (None when none was
    reached), the round trip in milliseconds, and why it failed."""

    delivered: bool
    response_code: int | None
    latency_ms: float
    error: str | None = None

    @classmethod
    def ok(cls, response_code: int, latency_ms: float) -> Attempt:
        return cls(delivered=True, response_code=response_code, latency_ms=latency_ms)

    @classmethod
    def failed(
        cls, error: str, response_code: int | None = None, latency_ms: float = 0.0
    ) -> Attempt:
        return cls(delivered=False, response_code=response_code, latency_ms=latency_ms, error=error)


def payload(webhook_id: UUID, event: str, record: SinkRecord, constitutional_hash: str) -> bytes:
    """The JSON body of one delivery (the record's JSON spliced in, not encoded again)."""
    head = _encode(
        {
            "webhook_id": str(webhook_id),
            "event": event,
            "event_id": record.event_id,
            "event_type": str(record.body.get("source_event_type", record.event_type)),
            "tenant_id": record.tenant_id,
            "occurred_at": record.timestamp,
            "constitutional_hash": constitutional_hash,
        }
    )
    return head[:-1] + b',"data":' + record.json_text.encode() + b"}"
