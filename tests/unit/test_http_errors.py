"""The one mapping from error codes to HTTP statuses."""

from __future__ import annotations

import json

import psycopg
import pytest
from eventsourcing.persistence import OperationalError as StoredEventsOperationalError
from litestar.exceptions import (
    ClientException,
    MethodNotAllowedException,
    NotFoundException,
    ValidationException,
)
from psycopg_pool import PoolTimeout

from api.http import errors
from api.logging import JsonFormatter, redact
from domain import errors as domain_errors

DECIDED = {
    "VALIDATION_ERROR": 422,
    "INVALID_TENANT_SLUG": 422,
    "TENANT_SLUG_TAKEN": 409,
    "TENANT_NAME_TAKEN": 409,
    "NOT_FOUND": 404,
    "UNAUTHENTICATED": 401,
    "INVALID_TOKEN": 401,
    "FORBIDDEN": 403,
    "RATE_LIMITED": 429,
    "CONCURRENCY_LIMITED": 429,
    "STORAGE_QUOTA_EXCEEDED": 403,
    "INVALID_STATE_TRANSITION": 409,
    "CONCURRENT_MODIFICATION": 409,
    "CONSTITUTIONAL_HASH_REQUIRED": 400,
    "CONSTITUTIONAL_HASH_MISMATCH": 409,
}


def test_every_decided_code_has_its_status() -> None:
    assert {code: errors.status_of(code) for code in DECIDED} == DECIDED


def _subclasses(cls: type) -> list[type]:
    found = []
    for sub in cls.__subclasses__():
        found += [sub, *_subclasses(sub)]
    return found


def test_every_domain_error_type_is_mapped() -> None:
    for error_type in _subclasses(domain_errors.DomainError):
        assert error_type.code in errors.STATUS_BY_CODE, error_type


def test_framework_exceptions_translate_to_the_envelope_codes() -> None:
    assert errors.translate(NotFoundException(), "r")[0] == "NOT_FOUND"
    code, _, _, headers = errors.translate(MethodNotAllowedException(headers={"Allow": "GET"}), "r")
    assert (code, headers) == ("METHOD_NOT_ALLOWED", {"Allow": "GET"})
    assert errors.translate(ClientException("JSON is malformed"), "r")[0] == "VALIDATION_ERROR"
    validation = ValidationException(
        extra=[
            {
                "message": "Object contains unknown field `tenant_id`",
                "key": "data",
                "source": "body",
            },
            {"message": "Expected `int`, got `str`", "key": "max_storage_gb", "source": "body"},
        ]
    )
    _, _, details, _ = errors.translate(validation, "r")
    assert details["fields"] == [
        {"field": "tenant_id", "message": "is read-only", "source": "body"},
        {"field": "max_storage_gb", "message": "Expected `int`, got `str`", "source": "body"},
    ]


def test_unexpected_exceptions_reveal_only_a_correlation_id() -> None:
    code, message, details, _ = errors.translate(RuntimeError("SELECT secret"), "req-1")
    assert code == "INTERNAL_ERROR"
    assert details == {"correlation_id": "req-1"}
    assert "SELECT" not in message


def test_rate_limited_carries_retry_after() -> None:
    _, _, details, headers = errors.translate(errors.RateLimited(12, 100), "r")
    assert headers == {"Retry-After": "12"}
    assert details == {"limit": 100, "retry_after_seconds": 12}


@pytest.mark.parametrize(
    "secret",
    [
        "Authorization: Bearer abc.def.ghi",
        "eyJhbGciOiJSUzI1NiJ9.eyJzdWIiOiJ4In0.c2lnbmF0dXJl",
        "password=hunter2",
        '"password": "hunter2"',
        "postgresql://acgs2_app:hunter2@db/acgs",
        "-----BEGIN PRIVATE KEY-----\nMIIE\n-----END PRIVATE KEY-----",
    ],
)
def test_secrets_are_redacted_from_log_lines(secret: str) -> None:
    import logging  # noqa: PLC0415

    record = logging.makeLogRecord(
        {"msg": "connecting with %s", "args": (secret,), "levelname": "INFO", "name": "t"}
    )
    line = JsonFormatter().format(record)
    json.loads(line)
    for fragment in ("hunter2", "abc.def.ghi", "c2lnbmF0dXJl", "MIIE"):
        assert fragment not in line
    assert errors.log.name == "acgs.http"
    assert "***REDACTED***" in redact(secret)


def test_validation_sources_are_plain_words() -> None:
    from litestar.enums import ParamType  # noqa: PLC0415

    validation = ValidationException(
        extra=[{"message": "Expected `int`", "key": "limit", "source": ParamType.QUERY}]
    )
    _, _, details, _ = errors.translate(validation, "r")
    assert details["fields"] == [{"field": "limit", "message": "Expected `int`", "source": "query"}]


def test_unsupported_media_type_is_415() -> None:
    assert errors.status_of("UNSUPPORTED_MEDIA_TYPE") == 415
    assert errors.translate(ClientException(status_code=415), "r")[0] == "UNSUPPORTED_MEDIA_TYPE"


def _wrapped(driver_error: Exception) -> Exception:
    """The driver's error as the eventsourcing library re-raises it (its own type, the cause)."""
    try:
        try:
            raise driver_error
        except Exception as exc:
            raise StoredEventsOperationalError(str(exc)) from exc
    except StoredEventsOperationalError as wrapped:
        return wrapped


@pytest.mark.parametrize(
    "exc",
    [
        PoolTimeout("couldn't get a connection after 3.00 sec"),
        psycopg.OperationalError("connection failed: No such file or directory"),
        psycopg.InterfaceError("the connection is closed"),
        psycopg.errors.AdminShutdown("terminating connection due to administrator command"),
        psycopg.errors.CannotConnectNow("the database system is starting up"),
        _wrapped(psycopg.OperationalError("server closed the connection unexpectedly")),
    ],
    ids=["pool-timeout", "refused", "closed", "admin-shutdown", "starting-up", "wrapped"],
)
def test_an_unreachable_database_is_503_dependency_unavailable(exc: Exception) -> None:
    code, message, details, headers = errors.translate(exc, "req-1")
    assert (code, errors.status_of(code)) == ("DEPENDENCY_UNAVAILABLE", 503)
    assert details == {"dependency": "database"}
    assert headers == {"Retry-After": str(errors.DATABASE_RETRY_AFTER_SECONDS)}
    assert message == "the database is unavailable; retry later"  # none of the driver's text


@pytest.mark.parametrize(
    "exc",
    [
        psycopg.errors.UniqueViolation("duplicate key value"),
        psycopg.errors.QueryCanceled("canceling statement due to statement timeout"),
        psycopg.errors.SyntaxError("syntax error at or near"),
        _wrapped(psycopg.errors.DeadlockDetected("deadlock detected")),
    ],
    ids=["unique", "canceled", "syntax", "wrapped-deadlock"],
)
def test_a_statement_the_database_refused_stays_a_500(exc: Exception) -> None:
    code, _, details, _ = errors.translate(exc, "req-2")
    assert code == "INTERNAL_ERROR"
    assert details == {"correlation_id": "req-2"}
