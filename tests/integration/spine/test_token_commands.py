"""Issuing access tokens through the real command and event store: the claims, the success audit
entry, the audited refusals (platform EXECUTIVE only), and the validation of roles, subject and
lifetime. Expected values are written out by hand."""

from __future__ import annotations

import json
from collections.abc import Callable
from datetime import UTC, datetime
from pathlib import Path
from typing import Any
from uuid import UUID

import pytest
from click.testing import CliRunner

from api.bootstrap import System
from api.cli.main import cli
from commands.context import CommandContext, Principal
from commands.tokens import AUDIENCE, ISSUER, IssueToken, TokenCommands
from domain.errors import (
    ConstitutionalHashMismatch,
    ConstitutionalHashRequired,
    Forbidden,
    NotFound,
    ValidationFailed,
)
from domain.maci import MaciRole
from domain.tenancy import SYSTEM_TENANT_ID
from domain.tenant.aggregate import Tenant
from infra.tokens import KeyRing, TokenIssuer, TokenVerifier
from tests.integration.spine.support import HASH, catch_up

pytestmark = pytest.mark.postgres

NOW = 1_900_000_000  # the issuing clock, fixed: iat/exp are exact


@pytest.fixture
def keys(tmp_path: Path) -> KeyRing:
    ring = KeyRing(tmp_path / "keys")
    ring.ensure()
    return ring


@pytest.fixture
def tokens(system: System, keys: KeyRing) -> TokenCommands:
    return TokenCommands(system.app, HASH, TokenIssuer(keys), clock=lambda: float(NOW))


@pytest.fixture
def verify(keys: KeyRing) -> Callable[[str], Any]:
    verifier = TokenVerifier(keys, HASH, issuer=ISSUER, audience=AUDIENCE, clock=lambda: NOW + 0.5)
    return verifier.verify


def _ctx(sub: str, tenant_id: UUID, *roles: MaciRole, hash_: str | None = HASH) -> CommandContext:
    return CommandContext(Principal(sub, tenant_id, roles), hash_)


def _count_events(admin_conn: Any) -> int:
    return int(admin_conn.execute("SELECT count(*) FROM governance_events").fetchone()[0])


def _audit(system: System, admin_conn: Any, actor: str) -> list[tuple[Any, ...]]:
    catch_up(system)
    rows = admin_conn.execute(
        "SELECT tenant_id, event_category, action, result, target_resource, details "
        "FROM tenant_audit_log WHERE actor_id = %s ORDER BY timestamp",
        [actor],
    ).fetchall()
    return [tuple(r) for r in rows]


@pytest.fixture
def tenant(create_tenant: Callable[..., Tenant]) -> Tenant:
    return create_tenant()


def test_a_platform_executive_issues_a_token_with_exact_claims_and_an_audit_entry(
    system: System,
    tokens: TokenCommands,
    verify: Callable[[str], Any],
    keys: KeyRing,
    tenant: Tenant,
    admin_conn: Any,
    unique: str,
) -> None:
    operator = f"op-{unique}"
    before = _count_events(admin_conn)
    issued = tokens.issue(
        _ctx(operator, SYSTEM_TENANT_ID, MaciRole.EXECUTIVE),
        IssueToken(
            sub="alice@acme",
            tenant_id=tenant.id,
            roles=(MaciRole.MONITOR, MaciRole.JUDICIAL, MaciRole.MONITOR),
            ttl_seconds=600,
        ),
    )
    assert _count_events(admin_conn) == before + 1  # the audit entry, nothing else
    claims = verify(issued.token)
    assert claims.sub == "alice@acme"
    assert claims.tenant_id == tenant.id
    assert claims.roles == (MaciRole.JUDICIAL, MaciRole.MONITOR)  # by rank, duplicates gone
    assert claims.primary_role is MaciRole.JUDICIAL
    assert claims.auth_method == "cli"
    assert (claims.issued_at, claims.expires_at) == (NOW, NOW + 600)
    assert claims.jti == issued.jti
    assert issued.kid == keys.signing_key()[0]
    assert issued.expires_at == datetime.fromtimestamp(NOW + 600, UTC)
    header = json.loads(_b64decode(issued.token.split(".")[0]))
    assert header == {"alg": "RS256", "kid": issued.kid, "typ": "JWT"}

    [(tenant_id, category, action, result, target, details)] = _audit(system, admin_conn, operator)
    assert (tenant_id, category, action, result, target) == (
        tenant.id,  # audited in the token's tenant
        "authentication",
        "issue_token",
        "success",
        f"tenant/{tenant.id}",
    )
    assert details == {
        "sub": "alice@acme",
        "maci_roles": ["JUDICIAL", "MONITOR"],
        "auth_method": "cli",
        "jti": issued.jti,
        "kid": issued.kid,
        "expires_at": "2030-03-17T17:56:40+00:00",
        "issued_by": operator,
    }
    assert issued.token not in json.dumps(details)  # the token itself is never recorded


def _b64decode(part: str) -> bytes:
    import base64  # noqa: PLC0415

    return base64.urlsafe_b64decode(part + "=" * (-len(part) % 4))


@pytest.mark.parametrize(
    ("where", "roles", "error"),
    [
        ("own", (MaciRole.EXECUTIVE,), Forbidden),  # a tenant's admin: platform only
        ("platform", (MaciRole.AUDITOR,), Forbidden),  # a platform principal without EXECUTIVE
        ("platform", (MaciRole.JUDICIAL, MaciRole.LEGISLATIVE), Forbidden),
        ("other", (MaciRole.EXECUTIVE,), NotFound),  # another tenant's: as if it did not exist
    ],
)
def test_refusals_are_audited_in_the_callers_tenant_and_issue_nothing(
    system: System,
    tokens: TokenCommands,
    tenant: Tenant,
    create_tenant: Callable[..., Tenant],
    admin_conn: Any,
    unique: str,
    where: str,
    roles: tuple[MaciRole, ...],
    error: type[Exception],
) -> None:
    home = {"own": tenant.id, "platform": SYSTEM_TENANT_ID, "other": create_tenant().id}[where]
    actor = f"refused-{unique}"
    before = _count_events(admin_conn)
    with pytest.raises(error):
        tokens.issue(
            _ctx(actor, home, *roles),
            IssueToken(sub="mallory", tenant_id=tenant.id, roles=(MaciRole.EXECUTIVE,)),
        )
    assert _count_events(admin_conn) == before + 1  # only the refusal's audit entry
    [(tenant_id, category, action, result, target, details)] = _audit(system, admin_conn, actor)
    assert (tenant_id, category, action, result, target) == (
        home,
        "authentication",
        "issue_token",
        "denied",
        f"tenant/{tenant.id}",
    )
    assert details["code"] == {Forbidden: "FORBIDDEN", NotFound: "NOT_FOUND"}[error]


@pytest.mark.parametrize(
    ("supplied", "error"),
    [(None, ConstitutionalHashRequired), ("0000000000000000", ConstitutionalHashMismatch)],
)
def test_a_missing_or_wrong_hash_is_refused_and_audited(
    system: System,
    tokens: TokenCommands,
    tenant: Tenant,
    admin_conn: Any,
    unique: str,
    supplied: str | None,
    error: type[Exception],
) -> None:
    actor = f"hashless-{unique}"
    with pytest.raises(error):
        tokens.issue(
            _ctx(actor, SYSTEM_TENANT_ID, MaciRole.EXECUTIVE, hash_=supplied),
            IssueToken(sub="bob", tenant_id=tenant.id, roles=(MaciRole.MONITOR,)),
        )
    [(tenant_id, _, action, result, _, details)] = _audit(system, admin_conn, actor)
    assert (tenant_id, action, result) == (SYSTEM_TENANT_ID, "issue_token", "denied")
    assert details["constitutional_validation_passed"] is False


@pytest.mark.parametrize(
    ("command", "field"),
    [
        ({"roles": ()}, "maci_roles"),
        ({"sub": ""}, "sub"),
        ({"sub": "x" * 256}, "sub"),
        ({"ttl_seconds": 0}, "ttl"),
        ({"ttl_seconds": -5}, "ttl"),
        ({"ttl_seconds": 7 * 24 * 3600 + 1}, "ttl"),
    ],
)
def test_invalid_roles_subject_or_lifetime_are_refused_and_write_nothing(
    tokens: TokenCommands, tenant: Tenant, admin_conn: Any, command: dict[str, Any], field: str
) -> None:
    values: dict[str, Any] = {
        "sub": "carol",
        "tenant_id": tenant.id,
        "roles": (MaciRole.MONITOR,),
        "ttl_seconds": 60,
        **command,
    }
    before = _count_events(admin_conn)
    with pytest.raises(ValidationFailed) as refused:
        tokens.issue(_ctx("operator", SYSTEM_TENANT_ID, MaciRole.EXECUTIVE), IssueToken(**values))
    assert [f["field"] for f in refused.value.details["fields"]] == [field]
    assert _count_events(admin_conn) == before


@pytest.mark.parametrize(("sub", "ttl"), [("x", 1), ("y" * 255, 7 * 24 * 3600)])
def test_the_bounds_of_subject_and_lifetime_are_accepted(
    tokens: TokenCommands, verify: Callable[[str], Any], tenant: Tenant, sub: str, ttl: int
) -> None:
    issued = tokens.issue(
        _ctx("operator", SYSTEM_TENANT_ID, MaciRole.EXECUTIVE),
        IssueToken(sub=sub, tenant_id=tenant.id, roles=(MaciRole.MONITOR,), ttl_seconds=ttl),
    )
    claims = verify(issued.token)
    assert (claims.sub, claims.expires_at - claims.issued_at) == (sub, ttl)


def test_acgs_token_issue_says_why_the_command_refused_and_prints_no_token(
    settings: Any,
) -> None:
    env = {"ACGS_DATABASE_URL": str(settings.database_url), "ACGS_DATA_DIR": str(settings.data_dir)}
    refused = CliRunner().invoke(
        cli, ["token", "issue", "--platform", "--role", "MONITOR", "--sub", "x" * 256], env=env
    )
    assert refused.exit_code == 1
    assert refused.stdout == ""
    assert refused.stderr == "Error: sub: must be 1 to 255 characters\n"
