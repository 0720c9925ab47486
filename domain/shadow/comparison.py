"""One legacy decision compared with the Rego decision on the same request (pure).

The request a legacy decision was about becomes the input document of the converted policies
(`{"user", "action", "resource", "context"}`): a principal or resource given as a plain string
becomes `{"id": ...}`. The routing key is the decision id when the legacy engine gave one, else
a canonical hash of the request, so the same request always lands on the same side.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from enum import StrEnum
from hashlib import sha256
from typing import Any
from uuid import UUID

from domain.policy.json_values import canonical_text

ROUTING_BUCKETS = 10_000  # [0, 100) in steps of 0.01 %


class Agreement(StrEnum):
    AGREE = "agree"
    MISSED_VIOLATION = "legacy_allow_rego_deny"  # critical: the legacy engine let it through
    EXTRA_ALLOW = "legacy_deny_rego_allow"
    REGO_ERROR = "rego_error"

    @property
    def critical(self) -> bool:
        """Counts towards the rollback rule (with errors)."""
        return self in (Agreement.MISSED_VIOLATION, Agreement.REGO_ERROR)


@dataclass(frozen=True, slots=True)
class LegacyDecision:
    principal: str | dict[str, Any]
    action: str
    resource: str | dict[str, Any]
    context: dict[str, Any]
    allow: bool  # the legacy engine's decision
    latency_ms: float  # the legacy engine's latency
    decision_id: str | None = None

    def document(self) -> dict[str, Any]:
        """The Rego input of this request."""
        return {
            "user": _entity(self.principal),
            "action": self.action,
            "resource": _entity(self.resource),
            "context": self.context,
        }

    def routing_key(self) -> str:
        if self.decision_id:
            return self.decision_id
        request = {**self.document(), "allow": self.allow}
        return sha256(canonical_text(request).encode()).hexdigest()


@dataclass(frozen=True)
class ImportedDecision:
    """A legacy decision imported into the decision log (the legacy outcome in `allow`)."""

    decision_id: UUID
    decided_at: datetime
    principal: str
    action: str
    resource: str
    context: dict[str, Any]
    allow: bool
    latency_ms: float

    def legacy(self) -> LegacyDecision:
        return LegacyDecision(
            principal=self.principal,
            action=self.action,
            resource=self.resource,
            context=self.context,
            allow=self.allow,
            latency_ms=self.latency_ms,
            decision_id=str(self.decision_id),
        )


def _entity(value: str | dict[str, Any]) -> dict[str, Any]:
    return value if isinstance(value, dict) else {"id": value}


def routing_bucket(key: str) -> float:
    """A stable place of `key` in [0, 100): the same in every process and release."""
    digest = sha256(key.encode()).digest()
    return (int.from_bytes(digest[:8]) % ROUTING_BUCKETS) * 100 / ROUTING_BUCKETS


def routed_to_rego(key: str, percentage: int) -> bool:
    return routing_bucket(key) < percentage


def compare(legacy_allow: bool, rego_allow: bool | None) -> Agreement:
    """The kind of (dis)agreement; `rego_allow` None means Rego could not decide."""
    if rego_allow is None:
        return Agreement.REGO_ERROR
    if legacy_allow == rego_allow:
        return Agreement.AGREE
    return Agreement.MISSED_VIOLATION if legacy_allow else Agreement.EXTRA_ALLOW
