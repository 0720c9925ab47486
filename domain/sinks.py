"""The sink port: what a SIEM (or any receiver of the audit stream) implements to be fed by a
follower of the event log, and the records it is fed.

A sink takes a batch of `SinkRecord`s and delivers it. It answers with a `Delivery`: every record
not named in `failed` was accepted by the receiver (and acknowledged, where the receiver
acknowledges); `failed` names the records the receiver refused one by one (e.g. an Elasticsearch
`_bulk` item), which alone are tried again. A failure of the whole batch (unreachable, 5xx, 429,
refused credentials) is raised as `DeliveryFailed`, with the receiver's `Retry-After` when it
sent one. Delivery is at least once: a receiver deduplicates on `event_id`, which is stable (the
same event always has the same id, across replays and crashes).

Every record is the audit record of one event, enriched with what a SIEM needs to file it
without calling back: the tenant's id and slug, the constitutional hash, the actor's roles, the
stable event id and the event's position in the log. `classify` picks out the events that are
real-time alerts (policy violations, repeated failed sign-ins); each SIEM maps `Severity` to
its own field.
"""

from __future__ import annotations

import random
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from datetime import datetime
from enum import IntEnum
from typing import Any, Protocol
from uuid import UUID, uuid4

import msgspec

from domain.tenancy import SYSTEM_TENANT_ID

# JSON as receivers want it: times in RFC 3339, UUIDs as text, anything unusual as its str().
_encode_json = msgspec.json.Encoder(enc_hook=str).encode
_decode_json = msgspec.json.Decoder().decode
TEST_EVENT_TYPE = "sink.test"
SINK_PREFIX = "sink_"  # of the names of sinks' followers of the log
MAX_RETRY_SECONDS = 30.0


class Severity(IntEnum):
    """How urgent a record is; each SIEM maps it to its own scale (`CEF_SEVERITY`, ...)."""

    INFO = 1
    LOW = 2
    MEDIUM = 3
    HIGH = 4
    CRITICAL = 5


# Each SIEM's field for a severity.
CEF_SEVERITY = {
    Severity.INFO: 1,
    Severity.LOW: 3,
    Severity.MEDIUM: 5,
    Severity.HIGH: 8,
    Severity.CRITICAL: 10,
}
SYSLOG_SEVERITY = {  # RFC 5424: 6 informational, 5 notice, 4 warning, 3 error, 2 critical
    Severity.INFO: 6,
    Severity.LOW: 5,
    Severity.MEDIUM: 4,
    Severity.HIGH: 3,
    Severity.CRITICAL: 2,
}
NAMED_SEVERITY = {  # Splunk `severity`, Sentinel `Severity`, Elasticsearch `event.severity_name`
    Severity.INFO: "informational",
    Severity.LOW: "low",
    Severity.MEDIUM: "medium",
    Severity.HIGH: "high",
    Severity.CRITICAL: "critical",
}
DATADOG_STATUS = {
    Severity.INFO: "info",
    Severity.LOW: "notice",
    Severity.MEDIUM: "warn",
    Severity.HIGH: "error",
    Severity.CRITICAL: "critical",
}


@dataclass(frozen=True, slots=True)
class SinkRecord:
    """One enriched audit record, ready for any sink. `body` is JSON-ready."""

    event_id: str
    position: int  # the event's notification id in the log
    tenant_id: str  # the event's tenant
    event_type: str
    timestamp: str  # ISO 8601, UTC
    severity: Severity
    alert: str | None
    body: dict[str, Any]
    json_text: str = field(default="", compare=False)

    def __post_init__(self) -> None:
        if not self.json_text:
            text = _encode_json(self.body).decode()
            object.__setattr__(self, "json_text", text)

    @property
    def size(self) -> int:
        return len(self.json_text)


@dataclass(frozen=True)
class Delivery:
    """A sink's answer for a batch: the event ids the receiver refused one by one (with why)."""

    failed: Mapping[str, str] = field(default_factory=dict)


DELIVERED = Delivery()


class DeliveryFailed(Exception):
    """The whole batch was not delivered; `retry_after` seconds is the receiver's wish;
    `credentials_refused` when the receiver refused the sink's credentials."""

    def __init__(
        self,
        message: str,
        *,
        retry_after: float | None = None,
        credentials_refused: bool = False,
    ) -> None:
        super().__init__(message)
        self.retry_after = retry_after
        self.credentials_refused = credentials_refused


def follower_name(integration_id: UUID) -> str:
    """The name of a sink's follower of the log (its row in `projection_positions`)."""
    return f"{SINK_PREFIX}{integration_id.hex}"


def sink_scope(owner: UUID) -> UUID | None:
    """Whose events a sink owned by `owner` sees: its tenant's; the system tenant's sink (a
    platform sink) sees every tenant's (None)."""
    return None if owner == SYSTEM_TENANT_ID else owner


@dataclass(frozen=True)
class DeadLetter:
    """A record a sink could not deliver after its attempts, and why."""

    record: SinkRecord
    error: str
    attempts: int
    first_failed_at: datetime
    last_failed_at: datetime


class Sink(Protocol):
    """Delivers batches of records to one receiver (see the module docstring)."""

    def deliver(self, records: Sequence[SinkRecord]) -> Delivery: ...

    def close(self) -> None: ...


# --- enrichment --------------------------------------------------------------------------------


@dataclass(frozen=True)
class EventFacts:
    """What enrichment needs besides the audit record."""

    event_id: str
    position: int
    tenant_id: str
    tenant_slug: str | None
    actor_roles: Sequence[str]
    constitutional_hash: str
    event_type: str  # the domain event's type (the audit record may name an action instead)


def enrich(audit: Mapping[str, Any], facts: EventFacts, *, plain: bool = False) -> SinkRecord:
    """The sink record of an event from its audit record and the facts around it; its body as
    JSON has it (times in RFC 3339, UUIDs as text), encoded once. `plain`: every value of the
    audit record but its `timestamp` is a plain JSON value already (read from stored JSON), so
    the body need not be decoded back from its text."""
    body = dict(audit)
    severity, alert = classify(body)
    body.update(
        event_id=facts.event_id,
        position=facts.position,
        tenant_id=facts.tenant_id,
        tenant_slug=facts.tenant_slug,
        actor_roles=list(facts.actor_roles),
        constitutional_hash=facts.constitutional_hash,
        source_event_type=facts.event_type,
        severity=NAMED_SEVERITY[severity],
        alert=alert,
    )
    body.pop("audit_id", None)
    text = _encode_json(body)
    if plain:
        body["timestamp"] = _encode_json(body["timestamp"])[1:-1].decode()  # as in `text`
    else:
        body = _decode_json(text)
    return SinkRecord(
        event_id=facts.event_id,
        position=facts.position,
        tenant_id=facts.tenant_id,
        event_type=str(body.get("event_type", facts.event_type)),
        timestamp=str(body.get("timestamp", "")),
        severity=severity,
        alert=alert,
        body=body,
        json_text=text.decode(),
    )


def record_of_body(body: Mapping[str, Any], *, position: int, event_id: str) -> SinkRecord:
    """The record again from its body (as a dead letter keeps it)."""
    severity = {v: k for k, v in NAMED_SEVERITY.items()}.get(
        str(body.get("severity")), Severity.INFO
    )
    return SinkRecord(
        event_id=event_id,
        position=position,
        tenant_id=str(body.get("tenant_id", "")),
        event_type=str(body.get("event_type", "")),
        timestamp=str(body.get("timestamp", "")),
        severity=severity,
        alert=body.get("alert") if isinstance(body.get("alert"), str) else None,
        body=dict(body),
    )


def test_record(integration_id: UUID, constitutional_hash: str, at: datetime) -> SinkRecord:
    """The one record a sink's test sends: `sink.test`, with a fresh event id."""
    event = str(uuid4())
    body = {
        "event_type": TEST_EVENT_TYPE,
        "event_category": "integration",
        "action": "test_sink",
        "result": "success",
        "actor_id": "system",
        "actor_type": "system",
        "target_resource": f"integration/{integration_id}",
        "details": {"message": "ACGS sink test event"},
        "timestamp": at.isoformat(),
        "event_id": event,
        "position": 0,
        "tenant_id": "",
        "tenant_slug": None,
        "actor_roles": [],
        "constitutional_hash": constitutional_hash,
        "constitutional_validation_passed": True,
        "source_event_type": TEST_EVENT_TYPE,
        "severity": NAMED_SEVERITY[Severity.INFO],
        "alert": None,
    }
    return record_of_body(body, position=0, event_id=event)


# --- real-time alerts ---------------------------------------------------------------------------


def classify(record: Mapping[str, Any]) -> tuple[Severity, str | None]:  # noqa: PLR0911
    """The severity of an audit record and the alert it raises (None for an ordinary record):
    a denied policy decision, a critical shadow disagreement or policy gap, a refused
    constitutional hash; a failed sign-in is low, any other refusal medium."""
    event_type = str(record.get("event_type", ""))
    result = record.get("result")
    details = record.get("details")
    critical = isinstance(details, Mapping) and str(details.get("severity", "")) == "critical"
    if "decision" in event_type and result == "denied":
        return Severity.HIGH, "policy_decision_denied"
    if "shadow" in event_type and critical:
        return Severity.CRITICAL, "shadow_disagreement_critical"
    if "gap" in event_type and critical:
        return Severity.CRITICAL, "policy_gap_critical"
    if record.get("constitutional_validation_passed") is False:
        return Severity.CRITICAL, "constitutional_hash_refused"
    if record.get("event_category") == "authentication" and result in ("failure", "denied"):
        return Severity.LOW, None
    if result in ("failure", "denied"):
        return Severity.MEDIUM, None
    return Severity.INFO, None


FAILED_SIGN_INS = 5  # failed sign-ins of one user within the window that raise an alert
FAILED_SIGN_IN_WINDOW_SECONDS = 300.0


class FailedSignIns:
    """Raises `repeated_failed_sign_ins` (high) on the failed sign-in that makes `threshold`
    failures of one user of one tenant within `window_seconds` (by the events' own times), and
    on each further one inside the window. Kept per sink runner, in memory: a restart starts
    counting afresh."""

    def __init__(
        self,
        threshold: int = FAILED_SIGN_INS,
        window_seconds: float = FAILED_SIGN_IN_WINDOW_SECONDS,
    ) -> None:
        self.threshold = threshold
        self.window_seconds = window_seconds
        self._seen: dict[tuple[str, str], list[float]] = {}

    def observe(self, record: SinkRecord) -> SinkRecord:
        body = record.body
        if body.get("event_category") != "authentication" or body.get("result") != "failure":
            return record
        details = body.get("details")
        if not isinstance(details, Mapping):
            return record
        user = details.get("username")
        try:
            at = datetime.fromisoformat(record.timestamp).timestamp()
        except ValueError:
            return record
        if not user:
            return record
        key = (record.tenant_id, str(user).casefold())
        recent = [t for t in self._seen.get(key, []) if at - t < self.window_seconds] + [at]
        self._seen[key] = recent[-self.threshold :]
        if len(recent) < self.threshold:
            return record
        alert = "repeated_failed_sign_ins"
        new_body = {**body, "alert": alert, "severity": NAMED_SEVERITY[Severity.HIGH]}
        new_body["details"] = {**details, "failures_in_window": len(recent)}
        return record_of_body(new_body, position=record.position, event_id=record.event_id)


# --- retries ------------------------------------------------------------------------------------


def retry_delay(
    attempt: int,
    initial_seconds: float,
    *,
    retry_after: float | None = None,
    rng: random.Random | None = None,
) -> float:
    """How long to wait before attempt `attempt + 1` (attempt counts from 1): exponential from
    `initial_seconds` up to `MAX_RETRY_SECONDS`, with full jitter over its upper half; never
    sooner than the receiver's `Retry-After`."""
    ceiling = min(MAX_RETRY_SECONDS, initial_seconds * 2.0 ** (attempt - 1))
    jitter: float = (rng or random).uniform(0.5, 1.0)
    delay = ceiling * jitter
    if retry_after is not None:
        delay = max(delay, min(retry_after, MAX_RETRY_SECONDS * 10))
    return delay


def batches(
    records: Sequence[SinkRecord], *, max_count: int, max_bytes: int
) -> list[list[SinkRecord]]:
    """`records` cut into batches of at most `max_count` records and `max_bytes` bytes of JSON
    (a record larger than `max_bytes` goes alone)."""
    out: list[list[SinkRecord]] = []
    current: list[SinkRecord] = []
    size = 0
    for record in records:
        if current and (len(current) >= max_count or size + record.size > max_bytes):
            out.append(current)
            current, size = [], 0
        current.append(record)
        size += record.size + 1
    if current:
        out.append(current)
    return out
