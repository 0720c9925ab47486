"""`OidcSignIn` as a protocol of decisions, on ports in memory: the refusals of `begin` and
`complete` (each audited in the tenant, answered with one `AssertionRejected`, no session
opened), and the provider's side of a session at refresh and logout (a provider token that is
missing, an integration gone, a subject that changed, a provider that refuses to revoke). The
real provider: tests/e2e/test_oidc_sign_in_api.py."""

from __future__ import annotations

from typing import Any
from uuid import UUID

import pytest

from commands.oidc_sign_in import Callback, OidcSignIn, browser_cookie
from commands.sign_in import AssertionRejected, SignIn
from domain.maci import MaciRole
from domain.provider_identity import ProviderIdentity, ProviderRefused
from domain.sessions import Session
from tests.unit.identity.test_federated_sign_in import (
    HASH,
    IDP,
    TENANT,
    Ports,
    RecordingApp,
    Signer,
)
from tests.unit.identity.test_saml_sign_in import Requests

ISSUER = "https://login.acme.test"


def _identity(sub: str = "u-1", refresh_token: str | None = None) -> ProviderIdentity:
    return ProviderIdentity(ISSUER, sub, "alice", None, None, frozenset({"auditors"}),
                            refresh_token)  # fmt: skip


class Party:
    integration_id = IDP
    kind = "oidc"
    redirect_uri: str | None = None

    def __init__(self) -> None:
        self.refusal: ProviderRefused | None = None
        self.answer = _identity()
        self.identified: list[str] = []
        self.revoked: list[str] = []

    async def authorization_url(self, **kw: str) -> str:
        if self.refusal is not None:
            raise self.refusal
        return f"{ISSUER}/authorize?state={kw['state']}"

    async def identify(self, **kw: Any) -> ProviderIdentity:
        self.identified.append(kw["code"])
        return self.answer

    async def refresh(self, refresh_token: str) -> ProviderIdentity:
        return self.answer

    async def revoke(self, refresh_token: str) -> bool:
        self.revoked.append(refresh_token)
        if self.refusal is not None:
            raise self.refusal
        return True


class Parties:
    def __init__(self) -> None:
        self.party: Party | None = Party()

    async def find(self, integration_id: UUID) -> tuple[UUID, Party] | None:
        return None if self.party is None else (TENANT, self.party)

    async def of_tenant(self, tenant_id: UUID, integration_id: UUID) -> Party | None:
        return self.party if tenant_id == TENANT else None


class Upstream:
    def __init__(self) -> None:
        self.tokens: dict[str, tuple[UUID, str]] = {}
        self.saves = 0

    async def save(self, tenant_id: UUID, sid: str, integration_id: UUID, token: str) -> None:
        self.saves += 1
        self.tokens[sid] = (integration_id, token)

    async def load(self, tenant_id: UUID, sid: str) -> tuple[UUID, str] | None:
        return self.tokens.get(sid)

    async def delete(self, tenant_id: UUID, sid: str) -> tuple[UUID, str] | None:
        return self.tokens.pop(sid, None)


class World:
    def __init__(self) -> None:
        self.ports, self.app, self.requests = Ports(), RecordingApp(), Requests()
        self.parties, self.upstream = Parties(), Upstream()
        sign_in = SignIn(self.app, HASH, Signer(), self.ports, failure_floor_seconds=0)
        self.oidc = OidcSignIn(sign_in, self.requests, self.parties, self.upstream)  # type: ignore[arg-type]

    @property
    def party(self) -> Party:
        assert self.parties.party is not None
        return self.parties.party

    def outcomes(self) -> list[tuple[UUID, str, str]]:
        return [(t, e.result, e.details["outcome"]) for t, e in
                zip(self.app.tenants, self.app.entries, strict=True)]  # fmt: skip

    async def callback(self, code: str | None = "code-1") -> Callback:
        started = await self.oidc.begin(IDP, callback_url="https://acgs.test/cb")
        assert browser_cookie(started.state).startswith("acgs_oidc_")
        return Callback(started.state, code, browser_key=started.browser_key)


def _session(sub: str = f"{ISSUER}#u-1") -> Session:
    return Session("sid-1", TENANT, sub, "oidc", IDP, None, (MaciRole.AUDITOR,), None)  # type: ignore[arg-type]


async def test_a_provider_refusing_to_start_is_audited_in_the_tenant() -> None:
    world = World()
    world.party.refusal = ProviderRefused("discovery_failed")
    with pytest.raises(AssertionRejected) as rejected:
        await world.oidc.begin(IDP, callback_url="https://acgs.test/cb")
    assert rejected.value.reason == "discovery_failed"
    assert world.outcomes() == [(TENANT, "denied", "discovery_failed")]
    assert world.ports.opened == []


async def test_an_integration_disabled_during_the_sign_in_is_refused() -> None:
    world = World()
    callback = await world.callback()
    world.parties.party = None
    with pytest.raises(AssertionRejected) as rejected:
        await world.oidc.complete(callback)
    assert rejected.value.reason == "integration_unavailable"
    assert world.outcomes() == [(TENANT, "denied", "integration_unavailable")]
    assert (world.ports.opened, world.upstream.tokens) == ([], {})


@pytest.mark.parametrize("code", [None, "", "c" * 2049])
async def test_a_callback_without_a_usable_code_is_refused(code: str | None) -> None:
    world = World()
    with pytest.raises(AssertionRejected) as rejected:
        await world.oidc.complete(await world.callback(code))
    assert rejected.value.reason == "code_missing"
    assert world.party.identified == []  # nothing is sent to the token endpoint
    assert world.ports.opened == []


async def test_a_sign_in_without_a_provider_refresh_token_keeps_none() -> None:
    world = World()
    signed_in = await world.oidc.complete(await world.callback())
    assert signed_in.issued.session.sub == f"{ISSUER}#u-1"
    assert world.upstream.saves == 0
    assert await world.oidc.refreshed(signed_in.issued.session) is None  # roles stay
    assert await world.oidc.ended(TENANT, signed_in.issued.session.sid) is None


async def test_a_refresh_through_an_integration_gone_is_refused() -> None:
    world = World()
    world.upstream.tokens["sid-1"] = (IDP, "rt-1")
    world.parties.party = None
    with pytest.raises(ProviderRefused, match="integration_unavailable"):
        await world.oidc.refreshed(_session())


async def test_a_refresh_naming_another_subject_is_refused_and_its_token_not_kept() -> None:
    world = World()
    world.upstream.tokens["sid-1"] = (IDP, "rt-1")
    world.party.answer = _identity(sub="u-2", refresh_token="rt-2")
    with pytest.raises(ProviderRefused, match="subject_changed"):
        await world.oidc.refreshed(_session())
    assert world.upstream.tokens == {"sid-1": (IDP, "rt-1")}


async def test_a_refresh_that_keeps_the_same_provider_token_does_not_write_it_again() -> None:
    world = World()
    world.upstream.tokens["sid-1"] = (IDP, "rt-1")
    world.party.answer = _identity(refresh_token="rt-1")
    assert await world.oidc.refreshed(_session()) == frozenset({"auditors"})
    assert world.upstream.saves == 0


async def test_logout_cannot_revoke_through_an_integration_gone() -> None:
    world = World()
    world.upstream.tokens["sid-1"] = (IDP, "rt-1")
    world.parties.party = None
    assert await world.oidc.ended(TENANT, "sid-1") is False
    assert world.upstream.tokens == {}  # the sealed token is deleted all the same


async def test_logout_with_a_provider_refusing_the_revocation_says_so() -> None:
    world = World()
    world.upstream.tokens["sid-1"] = (IDP, "rt-1")
    world.party.refusal = ProviderRefused("revocation_failed")
    assert await world.oidc.ended(TENANT, "sid-1") is False
    assert world.party.revoked == ["rt-1"]
    assert world.upstream.tokens == {}
