"""OpenAPI examples: one per success body and one per refusal a route can answer with."""

from __future__ import annotations

from typing import Any

from litestar.openapi import ResponseSpec
from litestar.openapi.spec import Example

from api.http.errors import ErrorEnvelope, status_of
from domain.constitution import DEFAULT_CONSTITUTIONAL_HASH

HASH = DEFAULT_CONSTITUTIONAL_HASH
TENANT_ID = "7f9c24e5-0b1a-4c8e-9d3f-2a6b8c1d4e5f"

_ERRORS: dict[str, tuple[str, dict[str, Any]]] = {
    "VALIDATION_ERROR": (
        "tenant_slug: is required; admin_email: is required",
        {
            "fields": [
                {"field": "tenant_slug", "message": "is required", "source": "body"},
                {"field": "admin_email", "message": "is required", "source": "body"},
            ]
        },
    ),
    "INVALID_TENANT_SLUG": (
        "Tenant slug must contain only lowercase letters, numbers, and hyphens",
        {"field": "tenant_slug", "value": "Invalid_Slug", "constraint": "^[a-z0-9-]+$"},
    ),
    "TENANT_SLUG_TAKEN": ("tenant slug is already taken", {}),
    "TENANT_NAME_TAKEN": ("tenant name is already taken", {}),
    "NOT_FOUND": ("tenant not found", {"tenant_id": TENANT_ID}),
    "UNAUTHENTICATED": ("a bearer token is required", {"header": "Authorization"}),
    "INVALID_TOKEN": ("the access token is not valid", {"reason": "token expired"}),
    "FORBIDDEN": (
        "Create a tenant: requires one of EXECUTIVE",
        {"permission": "tenant:create", "required_roles": ["EXECUTIVE"]},
    ),
    "RATE_LIMITED": (
        "the tenant's limit of 1000 requests per minute is reached",
        {"limit": 1000, "retry_after_seconds": 12},
    ),
    "CONCURRENCY_LIMITED": ("the tenant's limit of concurrent requests is reached", {"limit": 100}),
    "STORAGE_QUOTA_EXCEEDED": ("the tenant's storage quota is used up", {"max_storage_gb": 10}),
    "INVALID_STATE_TRANSITION": (
        "cannot reactivate a tenant that is active",
        {"status": "active", "allowed_from": ["suspended", "deactivated"]},
    ),
    "CONCURRENT_MODIFICATION": (
        "the resource was changed by another request; reload and retry",
        {},
    ),
    "IDEMPOTENCY_KEY_REUSED": (
        "this Idempotency-Key was used with a different request",
        {"header": "Idempotency-Key"},
    ),
    "CONSTITUTIONAL_HASH_REQUIRED": (
        "the constitutional hash is required on state-changing requests: the body field "
        "constitutional_hash or the header X-Constitutional-Hash",
        {"body_field": "constitutional_hash", "header": "X-Constitutional-Hash"},
    ),
    "PAYLOAD_TOO_LARGE": ("the request body is too large", {}),
    "UNSUPPORTED_MEDIA_TYPE": (
        "the request body must be JSON (Content-Type: application/json)",
        {"supported": ["application/json"]},
    ),
    "INTERNAL_ERROR": (
        "an unexpected error occurred; quote the correlation id when reporting it",
        {"correlation_id": "5f0c4b1e9a7d4e2f8b3c6a1d0e9f8a7b"},
    ),
    "CONSTITUTIONAL_HASH_MISMATCH": (
        "constitutional_hash does not match this deployment's constitution",
        {"supplied": "0000000000000000"},
    ),
    "INTEGRATION_NAME_TAKEN": ("integration name is already taken", {}),
    "INTEGRATION_UNREACHABLE": (
        "cannot reach the directory at ldap.acme.com:636 (connection refused)",
        {
            "integration_id": TENANT_ID,
            "test_details": {
                "connection_established": False,
                "authentication_successful": False,
                "test_query_executed": False,
                "latency_ms": 12,
            },
        },
    ),
    "INTEGRATION_AUTH_FAILED": (
        "the directory refused the service account's credentials (invalid credentials)",
        {
            "integration_id": TENANT_ID,
            "test_details": {
                "connection_established": True,
                "authentication_successful": False,
                "test_query_executed": False,
                "latency_ms": 45,
            },
        },
    ),
    "DEPENDENCY_UNAVAILABLE": (
        "the integration's circuit breaker is open after repeated connection failures",
        {"integration_id": TENANT_ID, "retry_after_seconds": 27.5},
    ),
    "POLICY_CONVERSION_FAILED": (
        "the source does not convert (finance-api): unexpected token",
        {
            "line": 3,
            "column": 7,
            "errors": [{"policy_id": "finance-api", "code": "POLICY_SYNTAX_ERROR", "line": 3}],
        },
    ),
    "DECISION_EVALUATION_FAILED": (
        "policy finance-api version 2 could not be evaluated on the input; no decision was made",
        {"policy_id": "finance-api", "policy_version": 2, "reason": "type error"},
    ),
    "EXPORT_NOT_READY": (
        "the export has not completed",
        {"export_id": "exp_5f0c4b1e9a7d4e2f8b3c6a1d", "status": "processing", "progress": 40},
    ),
    "EXPORT_EXPIRED": (
        "the export's file has expired; start a new export",
        {"export_id": "exp_5f0c4b1e9a7d4e2f8b3c6a1d", "expired_at": "2026-01-02T00:00:00+00:00"},
    ),
    "INVALID_CREDENTIALS": ("the user name or password is not valid", {}),
    "ROLE_MAPPING_EXISTS": ("role mapping is already taken", {}),
    "INVALID_ASSERTION": ("the identity provider's answer was not accepted", {}),
    "SIGN_IN_REFUSED": ("this account has no access to the tenant", {"reason": "no_role"}),
}
_ALWAYS = ("UNAUTHENTICATED", "INVALID_TOKEN", "RATE_LIMITED", "CONCURRENCY_LIMITED")
WRITE = ("CONSTITUTIONAL_HASH_REQUIRED", "CONSTITUTIONAL_HASH_MISMATCH", "STORAGE_QUOTA_EXCEEDED")


def error_example(code: str) -> dict[str, Any]:
    message, details = _ERRORS[code]
    return {
        "error": {
            "code": code,
            "message": message,
            "details": details,
            "constitutional_hash": HASH,
        }
    }


def refusals(*codes: str) -> dict[int, ResponseSpec]:
    """The error responses of a route, grouped by status, each code an example."""
    by_status: dict[int, list[str]] = {}
    for code in (*codes, *_ALWAYS):
        by_status.setdefault(status_of(code), []).append(code)
    return {
        status: ResponseSpec(
            data_container=ErrorEnvelope,
            description=" or ".join(group),
            examples=[Example(summary=code, value=error_example(code)) for code in group],
        )
        for status, group in sorted(by_status.items())
    }


def example(summary: str, value: dict[str, Any]) -> list[Example]:
    return [Example(summary=summary, value=value)]


CREATE_REQUEST = {
    "tenant_name": "Acme Corporation",
    "tenant_slug": "acme-corp",
    "admin_email": "admin@acme.com",
    "billing_plan": "enterprise",
    "max_requests_per_minute": 5000,
    "max_storage_gb": 100,
    "max_concurrent_connections": 500,
    "constitutional_hash": HASH,
}
CREATED = {
    "tenant_id": TENANT_ID,
    "tenant_name": "Acme Corporation",
    "tenant_slug": "acme-corp",
    "status": "active",
    "admin_email": "admin@acme.com",
    "billing_plan": "enterprise",
    "max_requests_per_minute": 5000,
    "max_storage_gb": 100,
    "max_concurrent_connections": 500,
    "created_at": "2026-01-07T12:00:00Z",
    "constitutional_hash": HASH,
    "api_endpoint": "https://acme-corp.api.acgs2.com",
}
LIST = {
    "tenants": [
        {
            "tenant_id": TENANT_ID,
            "tenant_name": "Acme Corporation",
            "tenant_slug": "acme-corp",
            "status": "active",
            "created_at": "2026-01-07T12:00:00Z",
        }
    ],
    "total": 1,
    "limit": 50,
    "offset": 0,
    "constitutional_hash": HASH,
}
DETAIL = {
    **{k: v for k, v in CREATED.items() if k != "api_endpoint"},
    "updated_at": "2026-01-07T12:00:00Z",
    "deactivated_at": None,
    "data_purge_scheduled": None,
    "usage_stats": {
        "current_requests_per_minute": 387,
        "current_storage_gb": 15.3,
        "current_connections": 42,
    },
}
UPDATE_REQUEST = {"status": "suspended", "max_requests_per_minute": 10000}
UPDATED = {
    "tenant_id": TENANT_ID,
    "updated_fields": ["max_requests_per_minute", "status"],
    "updated_at": "2026-01-07T13:00:00Z",
    "constitutional_hash": HASH,
}
DEACTIVATED = {
    "tenant_id": TENANT_ID,
    "status": "deactivated",
    "deactivated_at": "2026-01-07T12:00:00Z",
    "data_purge_scheduled": "2026-02-06T12:00:00Z",
    "purged_at": None,
    "constitutional_hash": HASH,
}
PURGED = {
    **DEACTIVATED,
    "status": "purged",
    "data_purge_scheduled": None,
    "purged_at": "2026-01-07T12:00:00Z",
}
REACTIVATED = {
    "tenant_id": TENANT_ID,
    "status": "active",
    "reactivated_at": "2026-01-08T09:00:00Z",
    "constitutional_hash": HASH,
}
