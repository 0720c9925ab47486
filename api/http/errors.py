"""The one error envelope and the one mapping from error codes to HTTP statuses.

    {"error": {"code", "message", "details", "constitutional_hash"}}

Domain and command errors carry their `code`; the API's own refusals (authentication, quotas,
idempotency) are typed here; Litestar's exceptions (404, 405, validation, body too large) and any
unexpected exception are translated, the last to a 500 that carries only a correlation id: the
request id, which the log line of the failure also carries. Nothing else of an unexpected
exception (type, text, SQL, stack) reaches the response. The one exception to that: a database
that cannot be reached (down, restarting, no pooled connection in time) is a 503
DEPENDENCY_UNAVAILABLE naming the database, with Retry-After, since the client should retry.
"""

from __future__ import annotations

import logging
import re
from typing import Any

import msgspec
from litestar import Request, Response
from litestar.exceptions import (
    HTTPException,
    MethodNotAllowedException,
    NotFoundException,
    ValidationException,
)

from domain.errors import DependencyUnavailable, DomainError
from infra import tracing
from infra.postgres.outage import database_unreachable

log = logging.getLogger("acgs.http")

STATUS_BY_CODE: dict[str, int] = {
    "VALIDATION_ERROR": 422,
    "INVALID_TENANT_SLUG": 422,
    "TENANT_SLUG_TAKEN": 409,
    "TENANT_NAME_TAKEN": 409,
    "NOT_FOUND": 404,
    "METHOD_NOT_ALLOWED": 405,
    "PAYLOAD_TOO_LARGE": 413,
    "UNSUPPORTED_MEDIA_TYPE": 415,
    "UNAUTHENTICATED": 401,
    "INVALID_TOKEN": 401,
    "FORBIDDEN": 403,
    "RATE_LIMITED": 429,
    "CONCURRENCY_LIMITED": 429,
    "STORAGE_QUOTA_EXCEEDED": 403,
    "INVALID_STATE_TRANSITION": 409,
    "CONCURRENT_MODIFICATION": 409,
    "IDEMPOTENCY_KEY_REUSED": 409,
    "IDEMPOTENCY_KEY_IN_USE": 409,
    "CONSTITUTIONAL_HASH_REQUIRED": 400,
    "CONSTITUTIONAL_HASH_MISMATCH": 409,
    "INTERNAL_ERROR": 500,
    "INTEGRATION_NAME_TAKEN": 409,
    "INTEGRATION_UNREACHABLE": 503,
    "INTEGRATION_AUTH_FAILED": 422,  # the integration's credentials, not the caller's
    "DEPENDENCY_UNAVAILABLE": 503,  # an open circuit breaker, or the database unreachable
    # Policy conversion (domain.policy, commands.policy_conversion): the submitted input is wrong.
    "POLICY_SYNTAX_ERROR": 422,
    "POLICY_MODEL_ERROR": 422,
    "POLICY_LIMIT_EXCEEDED": 422,
    "POLICY_TOO_LARGE": 413,
    "REGO_COMPILE_ERROR": 422,
    "REGO_EVALUATION_ERROR": 422,
    "CONVERSION_TIME_BUDGET_EXCEEDED": 422,
    "SOURCE_NOT_FOUND": 422,
    "SOURCE_UNREADABLE": 422,
    # The policy registry and decisions.
    "POLICY_CONVERSION_FAILED": 422,
    "DECISION_EVALUATION_FAILED": 500,
    # Audit-log exports (api/http/audit.py).
    "EXPORT_NOT_READY": 409,
    "EXPORT_EXPIRED": 410,
    # Sign-in and role mappings (api/http/identity.py, api/http/role_mappings.py).
    "INVALID_CREDENTIALS": 401,
    "ROLE_MAPPING_EXISTS": 409,
    # Federated sign-in (SAML, OIDC): the IdP's answer refused, or no access for a vouched user.
    "INVALID_ASSERTION": 401,
    "SIGN_IN_REFUSED": 403,
}

DATABASE_RETRY_AFTER_SECONDS = 2

HASH_FAILURES = frozenset({"CONSTITUTIONAL_HASH_REQUIRED", "CONSTITUTIONAL_HASH_MISMATCH"})

# Fields a client may read but never write; named as such when a body carries them.
READ_ONLY_FIELDS = frozenset(
    {
        "tenant_id",
        "tenant_slug",
        "created_at",
        "updated_at",
        "deactivated_at",
        "data_purge_scheduled",
        "usage_stats",
        "api_endpoint",
        "version",
    }
)
_FRAMEWORK_REFUSALS = {
    413: ("PAYLOAD_TOO_LARGE", "the request body is too large"),
    415: ("UNSUPPORTED_MEDIA_TYPE", "the request body must be JSON"),
}
_BACKTICKED = re.compile(r"`([^`]{1,100})`")
# the rejected value, quoted by msgspec ("...") or by Python's repr ('...'): never echoed back
QUOTED_INPUT = re.compile(r"""\s*(?:"(?:[^"\\]|\\.)*"|'(?:[^'\\]|\\.)*')""")


class Unauthenticated(DomainError):
    code = "UNAUTHENTICATED"


class InvalidToken(DomainError):
    code = "INVALID_TOKEN"


class RateLimited(DomainError):
    code = "RATE_LIMITED"

    def __init__(self, retry_after: int, limit: int) -> None:
        super().__init__(
            f"the tenant's limit of {limit} requests per minute is reached",
            {"limit": limit, "retry_after_seconds": retry_after},
        )
        self.retry_after = retry_after


class ConcurrencyLimited(DomainError):
    code = "CONCURRENCY_LIMITED"


class StorageQuotaExceeded(DomainError):
    code = "STORAGE_QUOTA_EXCEEDED"


class UnsupportedMediaType(DomainError):
    code = "UNSUPPORTED_MEDIA_TYPE"


class IdempotencyKeyReused(DomainError):
    code = "IDEMPOTENCY_KEY_REUSED"


class IdempotencyKeyInUse(DomainError):
    code = "IDEMPOTENCY_KEY_IN_USE"


class DatabaseUnavailable(DependencyUnavailable):
    """The database cannot be reached now (down, restarting, no pooled connection in time)."""

    retry_after = DATABASE_RETRY_AFTER_SECONDS

    def __init__(self) -> None:
        super().__init__("the database is unavailable; retry later", {"dependency": "database"})


class ErrorBody(msgspec.Struct):
    code: str
    message: str
    details: dict[str, Any]
    constitutional_hash: str


class ErrorEnvelope(msgspec.Struct):
    error: ErrorBody


def status_of(code: str) -> int:
    return STATUS_BY_CODE.get(code, 500)


def envelope_bytes(
    code: str, message: str, details: dict[str, Any], constitutional_hash: str
) -> bytes:
    return msgspec.json.encode(
        ErrorEnvelope(ErrorBody(code, message, details, constitutional_hash))
    )


def refusal_headers(error: DomainError) -> dict[str, str]:
    if isinstance(error, RateLimited | DatabaseUnavailable):
        return {"Retry-After": str(error.retry_after)}
    retry_after = getattr(error, "retry_after", None)  # e.g. throttled sign-in attempts
    if error.code == "RATE_LIMITED" and isinstance(retry_after, int):
        return {"Retry-After": str(retry_after)}
    return {}


def translate(exc: Exception, request_id: str) -> tuple[str, str, dict[str, Any], dict[str, str]]:
    """(code, message, details, headers) of any exception; unexpected ones become a bare 500."""
    if isinstance(exc, DomainError):
        return exc.code, exc.message, exc.details, refusal_headers(exc)
    if isinstance(exc, HTTPException):
        return _framework(exc)
    if database_unreachable(exc):
        refusal = DatabaseUnavailable()
        return refusal.code, refusal.message, refusal.details, refusal_headers(refusal)
    return (
        "INTERNAL_ERROR",
        "an unexpected error occurred; quote the correlation id when reporting it",
        {"correlation_id": request_id},
        {},
    )


def _framework(exc: HTTPException) -> tuple[str, str, dict[str, Any], dict[str, str]]:
    if isinstance(exc, ValidationException):
        fields = [_field_error(item) for item in (exc.extra or []) if isinstance(item, dict)]
        return "VALIDATION_ERROR", "the request is invalid", {"fields": fields}, {}
    if isinstance(exc, NotFoundException):
        return "NOT_FOUND", "no such resource", {}, {}
    if isinstance(exc, MethodNotAllowedException):
        headers = {k: v for k, v in (exc.headers or {}).items() if k.lower() == "allow"}
        return "METHOD_NOT_ALLOWED", "method not allowed on this resource", {}, headers
    if exc.status_code in _FRAMEWORK_REFUSALS:
        code, message = _FRAMEWORK_REFUSALS[exc.status_code]
        return code, message, {}, {}
    if 400 <= exc.status_code < 500:
        # Malformed JSON and other client errors the framework raises before a handler runs.
        detail = exc.detail if exc.status_code == 400 else "the request is invalid"
        return "VALIDATION_ERROR", _safe(detail), {"fields": [{"field": "body"}]}, {}
    return "INTERNAL_ERROR", "the server could not handle the request", {}, {}


def handle_exception(request: Request[Any, Any, Any], exc: Exception) -> Response[bytes]:
    """Litestar's exception handler for every exception type."""
    request_id = str(request.scope.get("state", {}).get("request_id", "-"))
    code, message, details, headers = translate(exc, request_id)
    if code in HASH_FAILURES:  # a critical path: traced whatever the request's sampling
        tracing.record_critical(
            "constitutional_hash.failure",
            {"acgs.error.code": code, "http.route": str(request.scope.get("path_template"))},
        )
    if code == "DEPENDENCY_UNAVAILABLE" and not isinstance(exc, DomainError):  # the database
        log.warning(
            "database unavailable",
            extra={
                "request_id": request_id,
                "fields": {"path": request.url.path, "error": type(exc).__name__},
            },
        )
    if code == "INTERNAL_ERROR":
        log.error(
            "unhandled exception",
            exc_info=exc,
            extra={
                "request_id": request_id,
                "fields": {"path": request.url.path, "method": request.method},
            },
        )
    hash_ = request.app.state["constitutional_hash"]
    return Response(
        envelope_bytes(code, message, details, hash_),
        status_code=status_of(code),
        media_type="application/json",
        headers=headers,
    )


def _field_error(item: dict[str, Any]) -> dict[str, str]:
    message = str(item.get("message", "invalid value"))
    key = str(item.get("key", "body"))
    named = _BACKTICKED.search(message)
    if key == "data" and named:  # msgspec names the offending object key in backticks
        key = named.group(1)
        if "unknown field" in message:
            message = "is read-only" if key in READ_ONLY_FIELDS else "unknown field"
        elif "missing required field" in message:
            message = "is required"
    elif key == "data":
        key = "body"
    source = item.get("source", "")
    message = QUOTED_INPUT.sub("", message) or "invalid value"
    # Litestar names query, path and header sources by an enum: show its value ("query")
    return {
        "field": key[:100],
        "message": _safe(message),
        "source": str(getattr(source, "value", source)),
    }


def _safe(text: str) -> str:
    return text[:300]
