"""`SignIn.federated`: an identity a SAML IdP or an OpenID provider vouched for becomes a
session and the service's tokens; roles come from the integration's mappings of the method's
source type (default role when none match, refusal when that is none); every outcome audited."""

from __future__ import annotations

from collections.abc import Mapping
from datetime import UTC, datetime, timedelta
from typing import Any
from uuid import UUID, uuid4

import pytest

from commands.application import GovernanceApplication
from commands.sign_in import (
    SAML_SESSION_SECONDS,
    AssertionRejected,
    Directory,
    FederatedIdentity,
    SignIn,
    SignInRefused,
    TenantEntry,
)
from domain.audit import AuditEntry
from domain.identity import GroupMapping
from domain.maci import MaciRole
from domain.saml import SamlRejected, SamlSignInFacts
from domain.sessions import Session

HASH = "cdd01ef066bc6cf2"
MEMORY = {"PERSISTENCE_MODULE": "infra.memory.event_store:InMemoryFactory"}
TENANT = uuid4()
IDP = uuid4()


class Ports:
    """Sign-in's ports in memory: one tenant, its role mappings by (integration, source type)."""

    def __init__(self, default_role: MaciRole | None = MaciRole.MONITOR) -> None:
        self.tenant = TenantEntry(TENANT, active=True, default_role=default_role)
        self.table: dict[tuple[UUID, str], list[GroupMapping]] = {}
        self.opened: list[tuple[TenantEntry, str, UUID | None, str | None, str]] = []
        self.assertions: set[str] = set()  # the replay cache of SAML sign-ins
        self.saml_sessions: list[tuple[str, SamlSignInFacts]] = []

    def map(self, source_type: str, value: str, role: MaciRole, priority: int = 100) -> None:
        self.table.setdefault((IDP, source_type), []).append(
            GroupMapping(uuid4(), IDP, value, role, priority)
        )

    async def tenant_by_slug(self, slug: str) -> TenantEntry | None:
        return None

    async def tenant_by_id(self, tenant_id: UUID) -> TenantEntry | None:
        return self.tenant if tenant_id == self.tenant.tenant_id else None

    def directory(self, tenant_id: UUID, integration_id: UUID | None) -> Directory | None:
        return None

    async def mappings(
        self, tenant_id: UUID, integration_id: UUID, source_type: str = "ldap_group"
    ) -> list[GroupMapping]:
        return list(self.table.get((integration_id, source_type), []))

    async def open_session(
        self, entry: TenantEntry, sub: str, integration_id: UUID | None, dn: str | None,
        roles: tuple[MaciRole, ...], auth_method: str = "ldap",
        *, saml: SamlSignInFacts | None = None,
    ) -> tuple[Session, str]:  # fmt: skip
        if saml is not None and saml.assertion_id in self.assertions:
            raise SamlRejected("replay", "this assertion was used before")
        self.opened.append((entry, sub, integration_id, dn, auth_method))
        sid = f"sid-{len(self.opened)}"
        expires = datetime.now(UTC) + timedelta(seconds=entry.refresh_ttl_seconds)
        session = Session(sid, entry.tenant_id, sub, auth_method, integration_id, dn, roles,
                          expires)  # fmt: skip
        if saml is not None:
            self.assertions.add(saml.assertion_id)
            self.saml_sessions.append((sid, saml))
        return session, "refresh-1"

    async def rotate(self, refresh_token: str) -> tuple[Session, str, TenantEntry | None]:
        raise AssertionError("not used")

    async def set_roles(self, session: Session, roles: tuple[MaciRole, ...]) -> Session:
        raise AssertionError("not used")

    async def revoke(self, tenant_id: UUID, sid: str, reason: str) -> bool:
        raise AssertionError("not used")


class Signer:
    def __init__(self) -> None:
        self.claims: list[dict[str, Any]] = []

    def sign(self, claims: Mapping[str, Any]) -> tuple[str, str]:
        self.claims.append(dict(claims))
        return f"token-{len(self.claims)}", "kid-1"


class RecordingApp(GovernanceApplication):
    def __init__(self) -> None:
        super().__init__(env=MEMORY)
        self.entries: list[AuditEntry] = []
        self.tenants: list[UUID] = []  # the tenant each entry was saved for

    def save_for(self, tenant_id: UUID, *aggregates: Any, **kwargs: Any) -> None:
        for aggregate in aggregates:
            if isinstance(aggregate, AuditEntry):
                self.entries.append(aggregate)
                self.tenants.append(tenant_id)
        super().save_for(tenant_id, *aggregates, **kwargs)


def _identity(**overrides: Any) -> FederatedIdentity:
    values: dict[str, Any] = {
        "tenant_id": TENANT,
        "integration_id": IDP,
        "auth_method": "saml",
        "subject": "persistent-7f3a",
        "username": "alice",
        "email": "alice@acme.test",
        "name": "Alice Liddell",
        "values": frozenset({"engineers", "department=Finance"}),
        "session_seconds": SAML_SESSION_SECONDS,
        "ip": "10.0.0.9",
        "user_agent": "pytest",
    }
    values.update(overrides)
    return FederatedIdentity(**values)


def _sign_in(ports: Ports) -> tuple[SignIn, RecordingApp, Signer]:
    app, signer = RecordingApp(), Signer()
    return SignIn(app, HASH, signer, ports, failure_floor_seconds=0), app, signer


async def test_mapped_values_give_roles_a_session_of_eight_hours_and_saml_tokens() -> None:
    ports = Ports()
    ports.map("saml_attribute", "engineers", MaciRole.IMPLEMENTER)
    ports.map("saml_attribute", "department=Finance", MaciRole.AUDITOR, priority=200)
    ports.map("ldap_group", "engineers", MaciRole.EXECUTIVE)  # another source type: ignored
    sign_in, app, signer = _sign_in(ports)

    issued = await sign_in.federated(_identity())

    assert issued.roles == (MaciRole.AUDITOR, MaciRole.IMPLEMENTER)
    entry, sub, integration, dn, method = ports.opened[0]
    assert (sub, integration, dn, method) == ("persistent-7f3a", IDP, None, "saml")
    assert entry.refresh_ttl_seconds == 8 * 3600
    claims = signer.claims[0]
    assert claims["sub"] == "persistent-7f3a"
    assert claims["auth_method"] == "saml"
    assert claims["maci_roles"] == ["AUDITOR", "IMPLEMENTER"]
    assert claims["sid"] == "sid-1"
    [audit] = app.entries
    assert (audit.category, audit.action, audit.result) == ("authentication", "saml_login",
                                                            "success")  # fmt: skip
    assert audit.details["outcome"] == "signed_in"
    assert audit.details["subject"] == "persistent-7f3a"
    assert audit.details["maci_roles"] == ["AUDITOR", "IMPLEMENTER"]


async def test_oidc_uses_claim_mappings_and_the_tenant_session_lifetime_by_default() -> None:
    ports = Ports()
    ports.map("oidc_claim", "admins", MaciRole.EXECUTIVE)
    ports.map("saml_attribute", "admins", MaciRole.AUDITOR)
    sign_in, _, signer = _sign_in(ports)

    issued = await sign_in.federated(
        _identity(auth_method="oidc", values=frozenset({"admins"}), session_seconds=None)
    )

    assert issued.roles == (MaciRole.EXECUTIVE,)
    assert ports.opened[0][0].refresh_ttl_seconds == ports.tenant.refresh_ttl_seconds
    assert signer.claims[0]["auth_method"] == "oidc"


async def test_no_match_gives_the_default_role() -> None:
    ports = Ports(default_role=MaciRole.MONITOR)
    ports.map("saml_attribute", "admins", MaciRole.EXECUTIVE)
    sign_in, _, _ = _sign_in(ports)
    issued = await sign_in.federated(_identity(values=frozenset({"visitors"})))
    assert issued.roles == (MaciRole.MONITOR,)


async def test_no_match_and_no_default_role_is_refused_and_audited() -> None:
    ports = Ports(default_role=None)
    ports.map("saml_attribute", "admins", MaciRole.EXECUTIVE)
    sign_in, app, signer = _sign_in(ports)
    with pytest.raises(SignInRefused) as refused:
        await sign_in.federated(_identity(values=frozenset({"visitors"})))
    assert refused.value.reason == "no_role"
    assert ports.opened == []
    assert signer.claims == []
    [audit] = app.entries
    assert (audit.action, audit.result, audit.details["outcome"]) == ("saml_login", "denied",
                                                                       "no_role")  # fmt: skip


async def test_an_inactive_or_unknown_tenant_is_refused() -> None:
    ports = Ports()
    ports.tenant = TenantEntry(TENANT, active=False)
    sign_in, app, _ = _sign_in(ports)
    with pytest.raises(SignInRefused):
        await sign_in.federated(_identity())
    with pytest.raises(SignInRefused):
        await sign_in.federated(_identity(tenant_id=uuid4()))
    assert [e.details["outcome"] for e in app.entries] == ["tenant_inactive"] * 2
    assert ports.opened == []


@pytest.mark.parametrize("subject", ["", "x" * 256])
async def test_an_empty_or_oversized_subject_is_rejected(subject: str) -> None:
    ports = Ports()
    sign_in, app, _ = _sign_in(ports)
    with pytest.raises(AssertionRejected):
        await sign_in.federated(_identity(subject=subject))
    assert app.entries[0].details["outcome"] == "subject_invalid"
    assert ports.opened == []


async def test_an_unknown_method_is_a_programming_error() -> None:
    sign_in, _, _ = _sign_in(Ports())
    with pytest.raises(ValueError, match="unknown federated auth method"):
        await sign_in.federated(_identity(auth_method="kerberos"))


async def test_refusals_reported_by_an_adapter_are_audited_with_their_reason() -> None:
    sign_in, app, _ = _sign_in(Ports())
    await sign_in.federated_refused(_identity(), "signature_invalid", {"issuer": "https://idp"})
    [audit] = app.entries
    assert audit.result == "denied"
    assert audit.details["outcome"] == "signature_invalid"
    assert audit.details["issuer"] == "https://idp"
