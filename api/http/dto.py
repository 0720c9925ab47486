"""Request and response bodies of the tenant API, as msgspec Structs.

Request bodies refuse unknown fields (422 `VALIDATION_ERROR`, read-only fields named as such).
Values are validated by the domain (`domain.tenant.values`), so the rules live in one place;
the types here are what the JSON must be, and what OpenAPI documents.
"""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Annotated, Any, Literal
from uuid import UUID

import msgspec
from msgspec import UNSET, UnsetType

from domain.constitution import CONSTITUTIONAL_HASH_PATTERN
from domain.tenant.aggregate import Tenant
from domain.tenant.sign_in_settings import (
    ACCESS_TTL_BOUNDS,
    DEFAULT_ROLE_CHOICES,
    REFRESH_TTL_BOUNDS,
)
from domain.tenant.values import (
    MAX_EMAIL,
    MAX_NAME,
    MAX_SLUG,
    MIN_NAME,
    MIN_SLUG,
    BillingPlan,
    Quotas,
)

WritableStatus = Literal["active", "suspended", "deactivated"]


def documented(**schema: Any) -> msgspec.Meta:
    """Constraints stated in the OpenAPI document only: the domain enforces them, with its own
    codes and messages (tests/unit/test_documented_constraints.py keeps the two equal)."""
    return msgspec.Meta(extra_json_schema={"extra": schema})


# A name: no control character, no leading or trailing whitespace (the domain strips it).
NAME_PATTERN = r"^[^\s\x00-\x1f\x7f](?:[^\x00-\x1f\x7f]*[^\s\x00-\x1f\x7f])?$"
SLUG_PATTERN = r"^[a-z0-9]+(?:-[a-z0-9]+)*$"
EMAIL_PATTERN = (
    r"^[A-Za-z0-9.!#$%&'*+/=?^_`{|}~-]{1,64}@[A-Za-z0-9](?:[A-Za-z0-9-]{0,61}[A-Za-z0-9])?"
    r"(?:\.[A-Za-z0-9](?:[A-Za-z0-9-]{0,61}[A-Za-z0-9])?)+$"
)
HASH_PATTERN = CONSTITUTIONAL_HASH_PATTERN.pattern

TenantName = Annotated[
    str, documented(min_length=MIN_NAME, max_length=MAX_NAME, pattern=NAME_PATTERN)
]
TenantSlug = Annotated[
    str, documented(min_length=MIN_SLUG, max_length=MAX_SLUG, pattern=SLUG_PATTERN)
]
AdminEmail = Annotated[str, documented(max_length=MAX_EMAIL, pattern=EMAIL_PATTERN)]
Plan = Annotated[str, documented(enum=[p.value for p in BillingPlan])]
HashValue = Annotated[str, documented(pattern=HASH_PATTERN)]
RequestsPerMinute = Annotated[
    int, documented(minimum=1, maximum=Quotas.BOUNDS["max_requests_per_minute"][1])
]
StorageGb = Annotated[int, documented(minimum=1, maximum=Quotas.BOUNDS["max_storage_gb"][1])]
Connections = Annotated[
    int, documented(minimum=1, maximum=Quotas.BOUNDS["max_concurrent_connections"][1])
]
DefaultRole = Annotated[str, documented(enum=list(DEFAULT_ROLE_CHOICES))]
AccessTtl = Annotated[int, documented(minimum=ACCESS_TTL_BOUNDS[0], maximum=ACCESS_TTL_BOUNDS[1])]
RefreshTtl = Annotated[
    int, documented(minimum=REFRESH_TTL_BOUNDS[0], maximum=REFRESH_TTL_BOUNDS[1])
]


class CreateTenantRequest(msgspec.Struct, forbid_unknown_fields=True, kw_only=True):
    tenant_name: TenantName
    tenant_slug: TenantSlug
    admin_email: AdminEmail
    billing_plan: Plan | UnsetType = UNSET
    max_requests_per_minute: RequestsPerMinute | UnsetType = UNSET
    max_storage_gb: StorageGb | UnsetType = UNSET
    max_concurrent_connections: Connections | UnsetType = UNSET
    constitutional_hash: HashValue | UnsetType = UNSET

    def quotas(self) -> dict[str, object]:
        values = {
            "max_requests_per_minute": self.max_requests_per_minute,
            "max_storage_gb": self.max_storage_gb,
            "max_concurrent_connections": self.max_concurrent_connections,
        }
        return {k: v for k, v in values.items() if v is not UNSET}


class UpdateTenantRequest(msgspec.Struct, forbid_unknown_fields=True, kw_only=True):
    tenant_name: TenantName | UnsetType = UNSET
    admin_email: AdminEmail | UnsetType = UNSET
    billing_plan: Plan | UnsetType = UNSET
    status: WritableStatus | UnsetType = UNSET
    max_requests_per_minute: RequestsPerMinute | UnsetType = UNSET
    max_storage_gb: StorageGb | UnsetType = UNSET
    max_concurrent_connections: Connections | UnsetType = UNSET
    default_role: DefaultRole | UnsetType = UNSET
    access_token_ttl_seconds: AccessTtl | UnsetType = UNSET
    refresh_token_ttl_seconds: RefreshTtl | UnsetType = UNSET
    constitutional_hash: HashValue | UnsetType = UNSET

    def changes(self) -> dict[str, Any]:
        return {
            f: getattr(self, f)
            for f in self.__struct_fields__
            if f != "constitutional_hash" and getattr(self, f) is not UNSET
        }


UPDATABLE_FIELDS = tuple(
    f for f in UpdateTenantRequest.__struct_fields__ if f != "constitutional_hash"
)


class ConstitutionalHashBody(msgspec.Struct, forbid_unknown_fields=True, kw_only=True):
    """An optional body of the reactivate route: the hash may come here or in the header."""

    constitutional_hash: HashValue | UnsetType = UNSET


class TenantCreated(msgspec.Struct, kw_only=True):
    tenant_id: UUID
    tenant_name: str
    tenant_slug: str
    status: str
    admin_email: str
    billing_plan: str
    max_requests_per_minute: int
    max_storage_gb: int
    max_concurrent_connections: int
    created_at: datetime
    constitutional_hash: str
    api_endpoint: str

    @classmethod
    def of(cls, tenant: Tenant, constitutional_hash: str, api_endpoint: str) -> TenantCreated:
        return cls(
            tenant_id=tenant.id,
            tenant_name=tenant.tenant_name,
            tenant_slug=tenant.tenant_slug,
            status=tenant.status.value,
            admin_email=tenant.admin_email,
            billing_plan=tenant.billing_plan,
            **tenant.quotas.as_dict(),
            created_at=_utc(tenant.created_on),
            constitutional_hash=constitutional_hash,
            api_endpoint=api_endpoint,
        )


class TenantSummary(msgspec.Struct, kw_only=True):
    tenant_id: UUID
    tenant_name: str
    tenant_slug: str
    status: str
    created_at: datetime


class TenantList(msgspec.Struct, kw_only=True):
    tenants: list[TenantSummary]
    total: int
    limit: int
    offset: int
    constitutional_hash: str


class UsageStats(msgspec.Struct, kw_only=True):
    current_requests_per_minute: int
    current_storage_gb: float
    current_connections: int


class TenantDetail(msgspec.Struct, kw_only=True):
    tenant_id: UUID
    tenant_name: str
    tenant_slug: str
    status: str
    max_requests_per_minute: int
    max_storage_gb: int
    max_concurrent_connections: int
    admin_email: str
    billing_plan: str
    created_at: datetime
    updated_at: datetime
    deactivated_at: datetime | None
    data_purge_scheduled: datetime | None
    default_role: str  # a MACI role, or "none": a user no mapping matches is refused
    access_token_ttl_seconds: int
    refresh_token_ttl_seconds: int
    constitutional_hash: str
    usage_stats: UsageStats

    @classmethod
    def of(cls, row: dict[str, Any], usage: UsageStats) -> TenantDetail:
        return cls(
            tenant_id=row["tenant_id"],
            tenant_name=row["tenant_name"],
            tenant_slug=row["tenant_slug"],
            status=row["status"],
            max_requests_per_minute=row["max_requests_per_minute"],
            max_storage_gb=row["max_storage_gb"],
            max_concurrent_connections=row["max_concurrent_connections"],
            admin_email=row["admin_email"],
            billing_plan=row["billing_plan"],
            created_at=_utc(row["created_at"]),
            updated_at=_utc(row["updated_at"]),
            deactivated_at=_utc_or_none(row["deactivated_at"]),
            data_purge_scheduled=_utc_or_none(row["data_purge_scheduled"]),
            default_role=row["default_role"],
            access_token_ttl_seconds=row["access_token_ttl_seconds"],
            refresh_token_ttl_seconds=row["refresh_token_ttl_seconds"],
            constitutional_hash=row["constitutional_hash"],
            usage_stats=usage,
        )


class TenantUpdated(msgspec.Struct, kw_only=True):
    tenant_id: UUID
    updated_fields: list[str]
    updated_at: datetime
    constitutional_hash: str


class TenantDeactivated(msgspec.Struct, kw_only=True):
    tenant_id: UUID
    status: str
    deactivated_at: datetime | None
    data_purge_scheduled: datetime | None
    purged_at: datetime | None
    constitutional_hash: str

    @classmethod
    def of(cls, tenant: Tenant, constitutional_hash: str) -> TenantDeactivated:
        purged = tenant.status.value == "purged"
        return cls(
            tenant_id=tenant.id,
            status=tenant.status.value,
            deactivated_at=_utc_or_none(tenant.deactivated_at),
            data_purge_scheduled=None if purged else _utc_or_none(tenant.data_purge_scheduled),
            purged_at=_utc(tenant.modified_on) if purged else None,
            constitutional_hash=constitutional_hash,
        )


class TenantReactivated(msgspec.Struct, kw_only=True):
    tenant_id: UUID
    status: str
    reactivated_at: datetime
    constitutional_hash: str


def _utc(value: datetime) -> datetime:
    return value.astimezone(UTC)


def _utc_or_none(value: datetime | None) -> datetime | None:
    return None if value is None else value.astimezone(UTC)
