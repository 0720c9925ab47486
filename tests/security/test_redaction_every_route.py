"""Credentials sent to any operation of the served OpenAPI document (the bearer token, and a
password, secret or refresh token in every body field named so) appear in no log record, no
response, no stored event and no audit row."""

from __future__ import annotations

import logging
import uuid
from typing import Any

import httpx
import psycopg
import pytest

from domain.maci import MaciRole
from tests.peers.http import HASH, Api, ManualClock
from tests.security.operations import body_fields, fill, operations

pytestmark = [pytest.mark.security, pytest.mark.e2e, pytest.mark.postgres, pytest.mark.slow]

SECRET_NAMES = ("password", "secret", "token", "api_key", "private_key", "credentials")


def _secret_fields(fields: list[str]) -> list[str]:
    return [f for f in fields if any(s in f for s in SECRET_NAMES) and not f.endswith("_seconds")]


def _record_text(record: logging.LogRecord) -> str:
    return record.getMessage() + " " + " ".join(str(v) for v in vars(record).values())


def test_credentials_sent_to_every_route_are_never_logged_stored_or_returned(
    api: Api,
    platform: httpx.Client,
    unique: str,
    caplog: pytest.LogCaptureFixture,
    limiter_clock: ManualClock,  # its own rate budget: the shared one is not used up
) -> None:
    tenant = api.create_tenant(platform, f"redact-{unique}")
    ids = {"tenant_id": tenant["tenant_id"], "version": "1"}
    canary = f"Canary-{uuid.uuid4().hex}-Pw"
    every = operations(api)
    with_secrets: set[str] = set()
    seen: list[str] = []
    with caplog.at_level(logging.DEBUG):
        for method, path, operation, components in every:
            token = api.token(MaciRole.EXECUTIVE, tenant_id=uuid.UUID(tenant["tenant_id"]))
            signature = token.rsplit(".", 1)[1]
            fields = _secret_fields(body_fields(operation, components))
            body: dict[str, Any] | None = None
            if fields:
                with_secrets.add(path)
                body = {"constitutional_hash": HASH, **dict.fromkeys(fields, canary)}
            headers = {"Authorization": f"Bearer {token}", "X-Constitutional-Hash": HASH}
            with httpx.Client(base_url=api.url, headers=headers, timeout=30) as client:
                response = client.request(method, fill(path, ids), json=body)
            what = f"{method} {path}"
            assert response.status_code < 500, (what, response.text[:300])
            shown = response.text + " ".join(f"{k}: {v}" for k, v in response.headers.items())
            assert canary not in shown, what
            assert signature not in shown, what
            seen.append(signature)
    assert len(every) >= 40
    # the credential fields of the schema were found and sent
    assert {"/v1/auth/ldap/login", "/v1/auth/token/refresh"} <= with_secrets
    client_side = ("httpx", "httpcore")  # the test's own client
    logged = [_record_text(r) for r in caplog.records if not r.name.startswith(client_side)]
    assert logged  # the requests were logged (access log), just without credentials
    for text in logged:
        assert canary not in text
        for signature in seen:
            assert signature not in text
    with psycopg.connect(api.system.admin_url) as conn:
        stored = conn.execute(
            "SELECT (SELECT count(*) FROM governance_events"
            "         WHERE position(convert_to(%(c)s, 'UTF8') IN state) > 0),"
            "       (SELECT count(*) FROM tenant_audit_log a"
            "         WHERE position(%(c)s IN a::text) > 0)",
            {"c": canary},
        ).fetchone()
    assert stored == (0, 0)
