"""Request and response bodies of the integration API, as msgspec Structs.

The `config` object is checked by the domain against the integration type's schema (every bad
key reported at once); secrets come back as `***REDACTED***`, never in clear.
"""

from __future__ import annotations

import json
from datetime import UTC, datetime
from typing import Any, Literal
from uuid import UUID

import msgspec
from msgspec import UNSET, UnsetType

from api.http.dto import HashValue
from domain.integration.aggregate import Integration, redact_config

IntegrationTypeName = Literal["ldap", "saml", "oauth", "oidc", "kafka", "siem", "data_warehouse"]
HealthName = Literal["healthy", "degraded", "unhealthy", "unknown"]


class CreateIntegrationRequest(msgspec.Struct, forbid_unknown_fields=True, kw_only=True):
    integration_type: IntegrationTypeName
    integration_name: str
    config: dict[str, Any]
    enabled: bool | UnsetType = UNSET
    constitutional_hash: HashValue | UnsetType = UNSET


class UpdateIntegrationRequest(msgspec.Struct, forbid_unknown_fields=True, kw_only=True):
    integration_name: str | UnsetType = UNSET
    enabled: bool | UnsetType = UNSET
    config: dict[str, Any] | UnsetType = UNSET
    constitutional_hash: HashValue | UnsetType = UNSET

    def changes(self) -> dict[str, Any]:
        return {
            f: getattr(self, f)
            for f in ("integration_name", "enabled", "config")
            if getattr(self, f) is not UNSET
        }


INTEGRATION_UPDATABLE = ("integration_name", "enabled", "config")


class IntegrationCreated(msgspec.Struct, kw_only=True):
    integration_id: UUID
    tenant_id: UUID
    integration_type: str
    integration_name: str
    enabled: bool
    health_status: str
    created_at: datetime
    constitutional_hash: str

    @classmethod
    def of(cls, integration: Integration, constitutional_hash: str) -> IntegrationCreated:
        return cls(
            integration_id=integration.id,
            tenant_id=integration.tenant_id,
            integration_type=integration.integration_type.value,
            integration_name=integration.integration_name,
            enabled=integration.enabled,
            health_status=integration.health_status.value,
            created_at=integration.created_on.astimezone(UTC),
            constitutional_hash=constitutional_hash,
        )


class IntegrationSummary(msgspec.Struct, kw_only=True):
    integration_id: UUID
    integration_type: str
    integration_name: str
    enabled: bool
    health_status: str
    last_health_check: datetime | None

    @classmethod
    def of(cls, row: dict[str, Any]) -> IntegrationSummary:
        return cls(
            integration_id=row["integration_id"],
            integration_type=row["integration_type"],
            integration_name=row["integration_name"],
            enabled=row["enabled"],
            health_status=row["health_status"],
            last_health_check=_utc(row["last_health_check"]),
        )


class IntegrationList(msgspec.Struct, kw_only=True):
    integrations: list[IntegrationSummary]
    total: int
    constitutional_hash: str


class IntegrationDetail(msgspec.Struct, kw_only=True):
    integration_id: UUID
    tenant_id: UUID
    integration_type: str
    integration_name: str
    enabled: bool
    health_status: str
    last_health_check: datetime | None
    config: dict[str, Any]
    config_encryption_key_id: str
    created_at: datetime
    updated_at: datetime
    created_by: str | None
    constitutional_hash: str

    @classmethod
    def of(cls, row: dict[str, Any]) -> IntegrationDetail:
        config = json.loads(row["config_encrypted"])
        return cls(
            integration_id=row["integration_id"],
            tenant_id=row["tenant_id"],
            integration_type=row["integration_type"],
            integration_name=row["integration_name"],
            enabled=row["enabled"],
            health_status=row["health_status"],
            last_health_check=_utc(row["last_health_check"]),
            config=redact_config(row["integration_type"], config),
            config_encryption_key_id=row["config_encryption_key_id"],
            created_at=row["created_at"].astimezone(UTC),
            updated_at=row["updated_at"].astimezone(UTC),
            created_by=row["created_by"],
            constitutional_hash=row["constitutional_hash"],
        )


class IntegrationUpdated(msgspec.Struct, kw_only=True):
    integration_id: UUID
    updated_fields: list[str]
    updated_at: datetime
    constitutional_hash: str


class TestDetails(msgspec.Struct, kw_only=True):
    connection_established: bool
    authentication_successful: bool
    test_query_executed: bool
    latency_ms: int


class IntegrationTestResult(msgspec.Struct, kw_only=True):
    integration_id: UUID
    test_result: Literal["success", "failure"]
    test_details: TestDetails
    message: str
    health_status: str
    tested_at: datetime
    constitutional_hash: str


class IntegrationHealth(msgspec.Struct, kw_only=True):
    integration_id: UUID
    integration_type: str
    integration_name: str
    enabled: bool
    health_status: str
    last_health_check: datetime | None
    circuit_breaker: Literal["closed", "open", "half_open"]


class HealthSummary(msgspec.Struct, kw_only=True):
    tenant_id: UUID
    overall_status: HealthName
    counts: dict[str, int]
    integrations: list[IntegrationHealth]
    constitutional_hash: str


def _utc(value: datetime | None) -> datetime | None:
    return None if value is None else value.astimezone(UTC)
