"""Validated values of a tenant. Each constructor refuses bad input with a typed error."""

from __future__ import annotations

import re
from dataclasses import dataclass
from enum import StrEnum
from typing import Any

from domain.errors import InvalidTenantSlug, ValidationFailed

SLUG_PATTERN = "^[a-z0-9-]+$"
_SLUG_RE = re.compile(SLUG_PATTERN)
_EMAIL_RE = re.compile(
    r"^[A-Za-z0-9.!#$%&'*+/=?^_`{|}~-]+@[A-Za-z0-9](?:[A-Za-z0-9-]{0,61}"
    r"[A-Za-z0-9])?(?:\.[A-Za-z0-9](?:[A-Za-z0-9-]{0,61}[A-Za-z0-9])?)+$"
)
_CONTROL_RE = re.compile(r"[\x00-\x1f\x7f]")

MIN_NAME, MAX_NAME = 3, 255
MIN_SLUG, MAX_SLUG = 3, 63
MAX_EMAIL = 255
GRACE_PERIOD_DAYS = 30


class BillingPlan(StrEnum):
    FREE = "free"
    STANDARD = "standard"
    PROFESSIONAL = "professional"
    ENTERPRISE = "enterprise"

    @classmethod
    def parse(cls, value: object) -> BillingPlan:
        try:
            return cls(str(value))
        except ValueError:
            allowed = ", ".join(p.value for p in cls)
            raise ValidationFailed.field("billing_plan", f"must be one of {allowed}") from None


class TenantStatus(StrEnum):
    ACTIVE = "active"
    SUSPENDED = "suspended"
    DEACTIVATED = "deactivated"
    PURGED = "purged"


def tenant_name(value: object) -> str:
    if not isinstance(value, str):
        raise ValidationFailed.field("tenant_name", "must be a string")
    name = value.strip()
    if len(name) < MIN_NAME:
        raise ValidationFailed.field("tenant_name", f"must be at least {MIN_NAME} characters")
    if len(name) > MAX_NAME:
        raise ValidationFailed.field("tenant_name", f"must be at most {MAX_NAME} characters")
    if _CONTROL_RE.search(name):
        raise ValidationFailed.field("tenant_name", "must not contain control characters")
    return name


def tenant_slug(value: object) -> str:
    """3 to 63 characters of `[a-z0-9-]`, no leading, trailing or doubled hyphen."""
    shown = value if isinstance(value, str) else repr(value)
    details = {"field": "tenant_slug", "value": shown[:100], "constraint": SLUG_PATTERN}
    if not isinstance(value, str) or not _SLUG_RE.fullmatch(value):
        msg = "Tenant slug must contain only lowercase letters, numbers, and hyphens"
        raise InvalidTenantSlug(msg, details)
    if not MIN_SLUG <= len(value) <= MAX_SLUG:
        msg = f"Tenant slug must be {MIN_SLUG} to {MAX_SLUG} characters long"
        raise InvalidTenantSlug(msg, details)
    if value.startswith("-") or value.endswith("-") or "--" in value:
        msg = "Tenant slug must not start or end with a hyphen or contain two hyphens in a row"
        raise InvalidTenantSlug(msg, details)
    return value


def admin_email(value: object) -> str:
    if not isinstance(value, str) or len(value) > MAX_EMAIL or not _EMAIL_RE.fullmatch(value):
        raise ValidationFailed.field("admin_email", "must be a valid email address")
    local, _, domain = value.rpartition("@")
    if len(local) > 64:
        raise ValidationFailed.field("admin_email", "local part must be at most 64 characters")
    return f"{local}@{domain.lower()}"


@dataclass(frozen=True)
class Quotas:
    """Per-tenant limits: requests per minute, storage in GB, concurrent connections."""

    max_requests_per_minute: int = 1000
    max_storage_gb: int = 10
    max_concurrent_connections: int = 100

    BOUNDS = {  # noqa: RUF012 - a constant table, not a dataclass field
        "max_requests_per_minute": (1, 1_000_000),
        "max_storage_gb": (1, 100_000),
        "max_concurrent_connections": (1, 100_000),
    }

    def __post_init__(self) -> None:
        problems = []
        for name, (low, high) in self.BOUNDS.items():
            value = getattr(self, name)
            if isinstance(value, bool) or not isinstance(value, int):
                problems.append({"field": name, "message": "must be an integer"})
            elif not low <= value <= high:
                problems.append({"field": name, "message": f"must be between {low} and {high}"})
        if problems:
            raise ValidationFailed.listing(problems)

    def changed(self, **changes: Any) -> Quotas:
        values = self.as_dict()
        values.update(changes)
        return Quotas(**values)

    def as_dict(self) -> dict[str, int]:
        return {
            "max_requests_per_minute": self.max_requests_per_minute,
            "max_storage_gb": self.max_storage_gb,
            "max_concurrent_connections": self.max_concurrent_connections,
        }
