"""Typed domain errors. Each carries a stable `code`; the API maps codes to HTTP in one place."""

from __future__ import annotations

from typing import Any, ClassVar


class DomainError(Exception):
    """Base of every error a user may see. `message` is safe to show; `details` is JSON-able."""

    code: ClassVar[str] = "DOMAIN_ERROR"

    def __init__(self, message: str, details: dict[str, Any] | None = None) -> None:
        super().__init__(message)
        self.message = message
        self.details: dict[str, Any] = details or {}


class ValidationFailed(DomainError):
    """One or more fields are invalid; `details["fields"]` lists each as {field, message}."""

    code = "VALIDATION_ERROR"

    @classmethod
    def field(cls, field: str, message: str, **extra: Any) -> ValidationFailed:
        return cls(
            f"{field}: {message}", {"fields": [{"field": field, "message": message, **extra}]}
        )

    @classmethod
    def listing(cls, problems: list[dict[str, Any]]) -> ValidationFailed:
        """One error naming every problem (`{field, message}` each)."""
        summary = "; ".join(f"{p['field']}: {p['message']}" for p in problems)
        return cls(summary[:300], {"fields": problems})


class InvalidTenantSlug(ValidationFailed):
    code = "INVALID_TENANT_SLUG"


class NotFound(DomainError):
    code = "NOT_FOUND"


class InvalidStateTransition(DomainError):
    code = "INVALID_STATE_TRANSITION"


class ConcurrentModification(DomainError):
    code = "CONCURRENT_MODIFICATION"


class TenantSlugTaken(DomainError):
    code = "TENANT_SLUG_TAKEN"


class TenantNameTaken(DomainError):
    code = "TENANT_NAME_TAKEN"


class ConstitutionalHashRequired(DomainError):
    code = "CONSTITUTIONAL_HASH_REQUIRED"


class ConstitutionalHashMismatch(DomainError):
    code = "CONSTITUTIONAL_HASH_MISMATCH"


class Forbidden(DomainError):
    code = "FORBIDDEN"


class IntegrationNameTaken(DomainError):
    code = "INTEGRATION_NAME_TAKEN"


class IntegrationUnreachable(DomainError):
    """The integration's endpoint could not be reached (connect, TLS, timeout)."""

    code = "INTEGRATION_UNREACHABLE"


class IntegrationAuthFailed(DomainError):
    """The endpoint answered but refused the integration's own credentials (not the caller's)."""

    code = "INTEGRATION_AUTH_FAILED"


class DependencyUnavailable(DomainError):
    """The integration's circuit breaker is open: no call is attempted until it half-opens."""

    code = "DEPENDENCY_UNAVAILABLE"


class ExportNotReady(DomainError):
    """An audit export's file is asked for before the export completed."""

    code = "EXPORT_NOT_READY"


class ExportExpired(DomainError):
    """An audit export's file was deleted when it expired."""

    code = "EXPORT_EXPIRED"
