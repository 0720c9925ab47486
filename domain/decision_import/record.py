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
from collections.abc import Callable, Mapping
from datetime import UTC, datetime
from decimal import Decimal
from hashlib import sha256
from typing import Any, NamedTuple
from uuid import UUID

import msgspec

from domain.registry.decision_log import canonical_input

MAX_TEXT = {"decision_id": 255, "principal": 255, "action": 1024, "resource": 2048}
MAX_REASON = 4096
MAX_POLICY_ID = 255
MAX_CONTEXT_BYTES = 65_536
_decode_json = msgspec.json.decode
_encode = msgspec.json.encode


class InvalidRow(Exception):
    """A row that cannot be imported; `problems` names each bad field."""

    def __init__(self, problems: list[str]) -> None:
        super().__init__("; ".join(problems))
        self.problems = problems


class ImportedDecision(NamedTuple):
    """A checked legacy decision (a tuple: one is made per imported row)."""

    legacy_id: str | None
    decided_at: datetime  # UTC
    decided_text: str  # `decided_at` in ISO 8601, as the digests read it
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
        return UUID(decision_id_hex(self.dedup_key, tenant_id.int))


def decision_id_hex(dedup_key: str, tenant: int) -> str:
    """A row's id in the decision log (32 hex digits): its key mixed with its tenant, so two
    tenants importing the same legacy ids never meet on the log's primary key."""
    return format(int(dedup_key[:32], 16) ^ tenant, "032x")


def imported_decision(record: Mapping[str, Any], constitutional_hash: str) -> ImportedDecision:
    """The checked decision of one renamed record; `InvalidRow` naming every bad field."""
    get = record.get
    timestamp = get("timestamp")
    try:  # a good row pays for no bookkeeping: a bad one is checked again, field by field
        legacy_id = _optional_id(get("decision_id"))
        decided_at = _timestamp(timestamp)
        principal = _principal(get("principal"))
        action = _action(get("action"))
        resource = _resource(get("resource"))
        context, context_json = _context(get("context"))
        allow = _decision(get("decision"))
        reason = _reason(get("reason"))
        policy_id = _policy_id(get("policy_id"))
        latency_ms = _latency(get("latency_ms"))
    except ValueError:
        raise InvalidRow(_problems(record)) from None
    time_text = _utc_text(timestamp, decided_at)
    verdict = "allow" if allow else "deny"
    # The canonical JSON of {"principal", "action", "resource", "context"} (keys sorted).
    request = b"".join(
        (
            b'{"action":',
            _encode(action),
            b',"context":',
            context_json,
            b',"principal":',
            _encode(principal),
            b',"resource":',
            _encode(resource),
            b"}",
        )
    )
    input_sha256 = sha256(request).hexdigest()
    if legacy_id is not None:
        dedup_key = sha256(b"decision_id\x00" + legacy_id.encode()).hexdigest()
    else:
        dedup_key = sha256(_encode([time_text, principal, action, resource, verdict])).hexdigest()
    content = [legacy_id, time_text, input_sha256, verdict, reason, policy_id, latency_ms]
    return ImportedDecision(
        legacy_id,
        decided_at,
        time_text,
        principal,
        action,
        resource,
        context,
        context_json.decode(),
        allow,
        reason,
        policy_id,
        latency_ms,
        constitutional_hash,
        input_sha256,
        dedup_key,
        sha256(_encode(content)).hexdigest(),
    )


def _utc_text(value: object, moment: datetime) -> str:
    """`moment.isoformat()`, read off the text it was parsed from when that is already
    `YYYY-MM-DDTHH:MM:SSZ` (formatting a time costs more than checking every other field)."""
    if (
        isinstance(value, str)
        and len(value) == 20
        and value[19] == "Z"
        and value[10] == "T"
        and value[4] == value[7] == "-"
        and value[13] == value[16] == ":"
    ):
        return f"{value[:19]}+00:00"
    return moment.isoformat()


def _problems(record: Mapping[str, Any]) -> list[str]:
    problems: list[str] = []
    for field, parse in _PARSERS:
        try:
            parse(record.get(field))
        except ValueError as bad:
            problems.append(f"{field}: {bad}")
    return problems


def _blank(value: object) -> bool:
    return value is None or (isinstance(value, str) and not value.strip())


def _unpadded(value: object) -> bool:
    """Text that neither begins nor ends with a space (a non-blank value, told quickly)."""
    if not isinstance(value, str) or not value:
        return False
    return not (value[0].isspace() or value[-1].isspace())


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


def _required(value: object, limit: int) -> str:
    if value.__class__ is str:
        text = value.strip()
        if text and len(text) <= limit and "\x00" not in text:
            return text
    if _blank(value):
        raise ValueError("is required")
    return _checked_text(value, limit)


def _optional(value: object, limit: int) -> str | None:
    if value.__class__ is str:
        text = value.strip()
        if not text:
            return None
        if len(text) <= limit and "\x00" not in text:
            return text
    return None if _blank(value) else _checked_text(value, limit)


def _optional_id(value: object) -> str | None:
    return _optional(value, MAX_TEXT["decision_id"])


def _principal(value: object) -> str:
    return _required(value, MAX_TEXT["principal"])


def _action(value: object) -> str:
    return _required(value, MAX_TEXT["action"])


def _resource(value: object) -> str:
    return _required(value, MAX_TEXT["resource"])


def _reason(value: object) -> str | None:
    return _optional(value, MAX_REASON)


def _policy_id(value: object) -> str | None:
    return _optional(value, MAX_POLICY_ID)


def _timestamp(value: object) -> datetime:
    if value.__class__ is str:
        try:
            moment = datetime.fromisoformat(value)
        except ValueError:
            pass
        else:
            if moment.tzinfo is UTC:
                return moment
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


def _context(value: object) -> tuple[dict[str, Any], bytes]:
    """The context and its canonical JSON."""
    if not _unpadded(value) and _blank(value):  # text not padded with spaces is not blank
        return {}, b"{}"
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
    return value, text


def _decision(value: object) -> bool:
    if value == "allow":
        return True
    if value == "deny":
        return False
    if isinstance(value, bool):
        return value
    if isinstance(value, str):
        verdict = value.strip().lower()
        if verdict in {"allow", "deny"}:
            return verdict == "allow"
    raise ValueError("must be allow or deny")


def _latency(value: object) -> float | None:
    if value.__class__ is str and value:
        try:
            latency = float(value)  # `float` ignores the spaces around a number itself
        except ValueError:
            pass
        else:
            if math.isfinite(latency) and latency >= 0:
                return latency
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


_PARSERS: tuple[tuple[str, Callable[[object], object]], ...] = (
    ("decision_id", _optional_id),
    ("timestamp", _timestamp),
    ("principal", _principal),
    ("action", _action),
    ("resource", _resource),
    ("context", _context),
    ("decision", _decision),
    ("reason", _reason),
    ("policy_id", _policy_id),
    ("latency_ms", _latency),
)
