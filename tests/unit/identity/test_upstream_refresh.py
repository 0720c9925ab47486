"""`SignIn.refresh` of an OpenID Connect / OAuth session asks the provider's side
(`UpstreamSessions`) what the user's groups or scopes are now: changed values change the roles,
a provider that refuses ends the session, an unreachable one leaves the roles; logout revokes
at the provider. Sign-in's ports and the provider's side are fakes here (the real ones are
exercised against the real provider in tests/e2e/test_oidc_sign_in_api.py)."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from uuid import UUID

import pytest

from commands.sign_in import SignIn, TenantEntry
from domain.errors import DependencyUnavailable
from domain.maci import MaciRole
from domain.provider_identity import ProviderRefused
from domain.sessions import RefreshRejected, Session
from tests.unit.identity.test_federated_sign_in import (
    HASH,
    IDP,
    TENANT,
    Ports,
    RecordingApp,
    Signer,
)

SUB = "https://login.acme.test#u-1"


class SessionPorts(Ports):
    def __init__(self) -> None:
        super().__init__()
        expires = datetime.now(UTC) + timedelta(hours=8)
        self.session = Session("sid-9", TENANT, SUB, "oidc", IDP, None, (MaciRole.AUDITOR,),
                               expires)  # fmt: skip
        self.revoked: list[tuple[str, str]] = []

    async def rotate(self, refresh_token: str) -> tuple[Session, str, TenantEntry | None]:
        return self.session, "refresh-2", await self.tenant_by_id(self.session.tenant_id)

    async def set_roles(self, session: Session, roles: tuple[MaciRole, ...]) -> Session:
        self.session = Session(session.sid, session.tenant_id, session.sub, session.auth_method,
                               session.integration_id, None, roles, session.expires_at)  # fmt: skip
        return self.session

    async def revoke(self, tenant_id: UUID, sid: str, reason: str) -> bool:
        self.revoked.append((sid, reason))
        return True


class Upstream:
    def __init__(self, answer: frozenset[str] | Exception | None) -> None:
        self.answer = answer
        self.revoked: list[str] = []

    async def refreshed(self, session: Session) -> frozenset[str] | None:
        if isinstance(self.answer, Exception):
            raise self.answer
        return self.answer

    async def ended(self, tenant_id: UUID, sid: str) -> bool | None:
        self.revoked.append(sid)
        return True


def _sign_in(upstream: Upstream) -> tuple[SignIn, SessionPorts, RecordingApp]:
    ports, app = SessionPorts(), RecordingApp()
    ports.map("oidc_claim", "executives", MaciRole.EXECUTIVE, priority=10)
    ports.map("oidc_claim", "auditors", MaciRole.AUDITOR, priority=20)
    sign_in = SignIn(app, HASH, Signer(), ports, failure_floor_seconds=0)
    sign_in.upstream = upstream
    return sign_in, ports, app


async def test_groups_changed_at_the_provider_change_the_roles() -> None:
    sign_in, ports, app = _sign_in(Upstream(frozenset({"executives", "auditors"})))
    issued = await sign_in.refresh("refresh-1", ip="10.0.0.1", user_agent="pytest")
    assert issued.roles == (MaciRole.AUDITOR, MaciRole.EXECUTIVE)
    assert ports.session.roles == (MaciRole.AUDITOR, MaciRole.EXECUTIVE)
    assert [e.action for e in app.entries] == ["refresh_roles_changed"]


async def test_a_session_without_a_provider_token_keeps_its_roles() -> None:
    sign_in, _ports, app = _sign_in(Upstream(None))
    issued = await sign_in.refresh("refresh-1", ip="10.0.0.1", user_agent="pytest")
    assert issued.roles == (MaciRole.AUDITOR,)
    assert app.entries == []


async def test_a_provider_that_refuses_ends_the_session() -> None:
    sign_in, ports, app = _sign_in(Upstream(ProviderRefused("refresh_failed")))
    with pytest.raises(RefreshRejected):
        await sign_in.refresh("refresh-1", ip="10.0.0.1", user_agent="pytest")
    assert ports.revoked == [("sid-9", "access_removed")]
    [entry] = app.entries
    assert (entry.action, entry.result) == ("refresh_access_removed", "denied")
    assert entry.details["reason"] == "refresh_failed"


async def test_an_unreachable_provider_leaves_the_roles() -> None:
    sign_in, ports, app = _sign_in(Upstream(DependencyUnavailable("down")))
    issued = await sign_in.refresh("refresh-1", ip="10.0.0.1", user_agent="pytest")
    assert issued.roles == (MaciRole.AUDITOR,)
    assert ports.revoked == []
    assert [e.action for e in app.entries] == ["refresh_provider_unavailable"]


async def test_no_mapped_value_and_no_default_role_ends_the_session() -> None:
    sign_in, ports, _app = _sign_in(Upstream(frozenset({"contractors"})))
    ports.tenant = type(ports.tenant)(TENANT, active=True, default_role=None)
    with pytest.raises(RefreshRejected):
        await sign_in.refresh("refresh-1", ip="10.0.0.1", user_agent="pytest")
    assert ports.revoked == [("sid-9", "access_removed")]


async def test_logout_revokes_at_the_provider_and_says_so() -> None:
    upstream = Upstream(None)
    sign_in, _ports, app = _sign_in(upstream)
    assert await sign_in.logout(TENANT, "sid-9", SUB, ip="10.0.0.1", user_agent="pytest")
    assert upstream.revoked == ["sid-9"]
    [entry] = app.entries
    assert entry.details["provider_revoked"] is True
