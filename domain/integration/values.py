"""Validated values of an enterprise integration: its type, name and health."""

from __future__ import annotations

import re
from enum import StrEnum

from domain.errors import ValidationFailed

REDACTED = "***REDACTED***"  # what a response shows in place of a secret
MAX_NAME = 255
_CONTROL_RE = re.compile(r"[\x00-\x1f\x7f]")


class IntegrationType(StrEnum):
    LDAP = "ldap"
    SAML = "saml"
    OAUTH = "oauth"
    OIDC = "oidc"
    KAFKA = "kafka"
    SIEM = "siem"
    DATA_WAREHOUSE = "data_warehouse"

    @classmethod
    def parse(cls, value: object) -> IntegrationType:
        try:
            return cls(str(value))
        except ValueError:
            allowed = ", ".join(t.value for t in cls)
            raise ValidationFailed.field("integration_type", f"must be one of {allowed}") from None


class HealthStatus(StrEnum):
    """healthy: every step of the check passed; degraded: reachable, but a later step (the
    service bind, the test query, a certificate close to expiry) failed; unhealthy: not
    reachable (or its circuit breaker is open); unknown: not checked yet, or disabled."""

    HEALTHY = "healthy"
    DEGRADED = "degraded"
    UNHEALTHY = "unhealthy"
    UNKNOWN = "unknown"


def integration_name(value: object) -> str:
    if not isinstance(value, str):
        raise ValidationFailed.field("integration_name", "must be a string")
    name = value.strip()
    if not name:
        raise ValidationFailed.field("integration_name", "must not be empty")
    if len(name) > MAX_NAME:
        raise ValidationFailed.field("integration_name", f"must be at most {MAX_NAME} characters")
    if _CONTROL_RE.search(name):
        raise ValidationFailed.field("integration_name", "must not contain control characters")
    return name
