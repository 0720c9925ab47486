"""One legacy decision, checked, with the constitutional hash and its digests.

A row's values come as text (CSV), as JSON values (JSON Lines) or as database values (a query):
each field accepts the forms it can meet. Every problem of a row is reported at once.

- `input_sha256`: the digest of the request as the decision log keeps it for a live decision,
  the canonical JSON of `{"principal", "action", "resource", "context"}`.
- `dedup_key`: the legacy `decision_id` when the row has one, else the request and its outcome
  (timestamp, principal, action, resource, decision); one key is one decision per tenant.
- `content_sha256`: everything the row says; the same key with the same content is a repeat,
  with another content a conflict.
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from dataclasses import dataclass
from datetime import UTC, datetime
from decimal import Decimal
from hashlib import sha256
from typing import Any
from uuid import NAMESPACE_URL, UUID, uuid5

import msgspec

from domain.registry.decision_log import canonical_input, digest_of

MAX_TEXT = {"decision_id": 255, "principal": 255, "action": 1024, "resource": 2048}
MAX_REASON = 4096
MAX_POLICY_ID = 255
MAX_CONTEXT_BYTES = 65_536
_decode_json = msgspec.json.decode
_IMPORTED_NAMESPACE = uuid5(NAMESPACE_URL, "urn:acgs:imported-decision")


class InvalidRow(Exception):
    """A row that cannot be imported; `problems` names each bad field."""

    def __init__(self, problems: list[str]) -> None:
        super().__init__("; ".join(problems))
        self.problems = problems


@dataclass(frozen=True, slots=True)
class ImportedDecision:
    legacy_id: str | None
    decided_at: datetime  # UTC
    principal: str
    action: str
    resource: str
    context: dict[str, Any]
    context_json: str  # canonical
    allow: bool
    reason: str | None
    policy_id: str | None
    latency_ms: float | None
    constitutional_hash: str
    input_sha256: str
    dedup_key: str
    content_sha256: str

    def decision_id(self, tenant_id: UUID) -> UUID:
        """The row's id in the decision log: stable per tenant and key, so two tenants importing
        the same legacy ids never meet on the log's primary key."""
        return uuid5(_IMPORTED_NAMESPACE, f"{tenant_id}:{self.dedup_key}")


def imported_decision(record: Mapping[str, Any], constitutional_hash: str) -> ImportedDecision:
    """The checked decision of one renamed record; `InvalidRow` naming every bad field."""
    problems: list[str] = []

    def take(field: str, parse: Any) -> Any:
        try:
            return parse(record.get(field))
        except ValueError as bad:
            problems.append(f"{field}: {bad}")
            return None

    legacy_id = take("decision_id", _optional_text("decision_id"))
    decided_at = take("timestamp", _timestamp)
    principal = take("principal", _required_text("principal"))
    action = take("action", _required_text("action"))
    resource = take("resource", _required_text("resource"))
    context = take("context", _context)
    allow = take("decision", _decision)
    reason = take("reason", _limited(MAX_REASON))
    policy_id = take("policy_id", _limited(MAX_POLICY_ID))
    latency_ms = take("latency_ms", _latency)
    if problems:
        raise InvalidRow(problems)
    time_text = decided_at.isoformat(timespec="microseconds")
    verdict = "allow" if allow else "deny"
    input_sha256 = digest_of(
        canonical_input(
            {"principal": principal, "action": action, "resource": resource, "context": context}
        )
    )
    if legacy_id is not None:
        dedup_key = sha256(b"decision_id\x00" + legacy_id.encode()).hexdigest()
    else:
        dedup_key = digest_of(canonical_input([time_text, principal, action, resource, verdict]))
    content = [legacy_id, time_text, input_sha256, verdict, reason, policy_id, latency_ms]
    return ImportedDecision(
        legacy_id=legacy_id,
        decided_at=decided_at,
        principal=principal,
        action=action,
        resource=resource,
        context=context,
        context_json=canonical_input(context).decode(),
        allow=allow,
        reason=reason,
        policy_id=policy_id,
        latency_ms=latency_ms,
        constitutional_hash=constitutional_hash,
        input_sha256=input_sha256,
        dedup_key=dedup_key,
        content_sha256=digest_of(canonical_input(content)),
    )


def _blank(value: object) -> bool:
    return value is None or (isinstance(value, str) and not value.strip())


def _text_of(value: object) -> str:
    if isinstance(value, str):
        return value.strip()
    if isinstance(value, int | float | Decimal | UUID) and not isinstance(value, bool):
        return str(value)
    raise ValueError("must be text")


def _checked_text(value: object, limit: int) -> str:
    text = _text_of(value)
    if len(text) > limit:
        raise ValueError(f"longer than {limit} characters")
    if "\x00" in text:
        raise ValueError("holds a NUL character")
    return text


def _required_text(field: str) -> Any:
    limit = MAX_TEXT[field]

    def parse(value: object) -> str:
        if _blank(value):
            raise ValueError("is required")
        return _checked_text(value, limit)

    return parse


def _optional_text(field: str) -> Any:
    return _limited(MAX_TEXT[field])


def _limited(limit: int) -> Any:
    def parse(value: object) -> str | None:
        return None if _blank(value) else _checked_text(value, limit)

    return parse


def _timestamp(value: object) -> datetime:
    if _blank(value):
        raise ValueError("is required")
    if isinstance(value, datetime):
        moment = value
    elif isinstance(value, str):
        try:
            moment = datetime.fromisoformat(value.strip())
        except ValueError:
            raise ValueError("not an ISO 8601 time (e.g. 2026-03-01T12:00:00Z)") from None
    else:
        raise ValueError("not an ISO 8601 time (e.g. 2026-03-01T12:00:00Z)")
    if moment.tzinfo is None:
        moment = moment.replace(tzinfo=UTC)  # a time without an offset is taken as UTC
    return moment.astimezone(UTC)


def _context(value: object) -> dict[str, Any]:
    if _blank(value):
        return {}
    if isinstance(value, str):
        if len(value) > MAX_CONTEXT_BYTES:
            raise ValueError(f"larger than {MAX_CONTEXT_BYTES} bytes")
        try:
            value = _decode_json(value)
        except msgspec.DecodeError:
            raise ValueError("not valid JSON") from None
    if not isinstance(value, dict):
        raise ValueError("must be a JSON object")
    text = canonical_input(value)
    if len(text) > MAX_CONTEXT_BYTES:
        raise ValueError(f"larger than {MAX_CONTEXT_BYTES} bytes")
    if b"\\u0000" in text:
        raise ValueError("holds a NUL character")  # PostgreSQL's JSON cannot keep one
    return value


def _decision(value: object) -> bool:
    if isinstance(value, bool):
        return value
    if isinstance(value, str):
        verdict = value.strip().lower()
        if verdict in {"allow", "deny"}:
            return verdict == "allow"
    raise ValueError("must be allow or deny")


def _latency(value: object) -> float | None:
    if _blank(value):
        return None
    if isinstance(value, bool):
        raise ValueError("must be a number of milliseconds")
    try:
        latency = float(value.strip() if isinstance(value, str) else value)  # type: ignore[arg-type]
    except (TypeError, ValueError):
        raise ValueError("must be a number of milliseconds") from None
    if not math.isfinite(latency) or latency < 0:
        raise ValueError("must be a finite number of milliseconds, at least 0")
    return latency
