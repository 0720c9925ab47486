"""The refusals and fallbacks of `SignIn` around a session: no directory at sign-in, a tenant
no longer active at refresh, a directory down at refresh, a provider that says nothing at
logout, and the bounded memory of the refresh tokens issued here. The ports are the in-memory
stand-ins of test_refresh_overlap (the real peers: tests/e2e/test_ldap_sign_in_api.py)."""

from __future__ import annotations

import asyncio
from dataclasses import replace
from typing import Any
from uuid import UUID

import pytest

import commands.sign_in as sign_in_module
from commands.sign_in import Attempt
from domain.errors import DependencyUnavailable
from domain.identity import DirectoryUser, InvalidCredentials
from domain.maci import MaciRole
from domain.sessions import RefreshRejected
from tests.unit.identity.test_refresh_overlap import ENTRY, TENANT, Ports, _issued_here, _sign_in


class NoDirectoryPorts(Ports):
    def directory(self, tenant_id: UUID, integration_id: UUID | None) -> Any:
        return None

    async def open_session(self, *args: Any, **kw: Any) -> Any:
        raise AssertionError("no session may be opened")


def _actions(sign_in: Any) -> list[tuple[str, str]]:
    return [(e.action, e.result) for e in sign_in._app.saved]


def test_an_attempt_never_shows_its_password() -> None:
    attempt = Attempt("acme", "bob", "s3cret-pw", None, "10.0.0.1", "pytest")
    assert "s3cret-pw" not in repr(attempt)
    assert repr(attempt) == "Attempt('acme', 'bob', ip='10.0.0.1')"


def test_a_tenant_without_a_directory_refuses_the_password_as_invalid() -> None:
    ports = NoDirectoryPorts()
    sign_in = _sign_in(ports)
    sign_in._floor = 0
    attempt = Attempt("acme", "bob", "s3cret-pw", None, "10.0.0.1", "pytest")
    with pytest.raises(InvalidCredentials):
        asyncio.run(sign_in.login(attempt))
    [entry] = sign_in._app.saved  # type: ignore[attr-defined]
    assert (entry.action, entry.result) == ("ldap_login", "failure")
    assert entry.details["outcome"] == "invalid_credentials"
    assert "s3cret-pw" not in repr(entry.details)
    assert sign_in.account_throttle.retry_after("acme/bob") == 0  # one failure counted, not locked
    assert len(sign_in.account_throttle._failures["acme/bob"]) == 1


def test_a_tenant_no_longer_active_ends_the_session_at_refresh() -> None:
    ports = Ports()
    sign_in = _sign_in(ports)
    token = _issued_here(sign_in, ports)
    ports.entry = replace(ENTRY, active=False)
    with pytest.raises(RefreshRejected):
        asyncio.run(sign_in.refresh(token, ip="127.0.0.1", user_agent="t"))
    assert "revoke:tenant_inactive" in ports.log
    assert "set_roles" not in ports.log


def test_a_tenant_gone_ends_the_session_at_refresh() -> None:
    ports = Ports()
    ports.entry = None  # type: ignore[assignment]
    with pytest.raises(RefreshRejected):
        asyncio.run(
            _sign_in(ports).refresh(f"{TENANT.hex}.elsewhere", ip="127.0.0.1", user_agent="t")
        )
    assert ports.log[-1] == "revoke:tenant_inactive"
    assert "read" not in ports.log  # the directory is not asked for a tenant that is gone


def test_a_directory_down_at_refresh_keeps_the_roles_and_says_so() -> None:
    ports = Ports()

    def down(dn: str) -> DirectoryUser | None:
        raise DependencyUnavailable("the directory cannot be reached")

    ports.directory_.lookup = down  # type: ignore[method-assign]
    sign_in = _sign_in(ports)
    issued = asyncio.run(sign_in.refresh(f"{TENANT.hex}.elsewhere", ip="127.0.0.1", user_agent="t"))
    assert issued.roles == (MaciRole.AUDITOR,)
    assert not [e for e in ports.log if e.startswith("revoke") or e == "set_roles"]
    assert _actions(sign_in) == [("refresh_directory_unavailable", "success")]


def test_logout_without_a_provider_token_does_not_claim_a_provider_revocation() -> None:
    class Upstream:
        async def ended(self, tenant_id: UUID, sid: str) -> bool | None:
            return None  # the session held nothing of the provider's

    ports = Ports()
    sign_in = _sign_in(ports)
    sign_in.upstream = Upstream()  # type: ignore[assignment]
    assert asyncio.run(sign_in.logout(TENANT, "sid-1", "bob", ip="127.0.0.1", user_agent="t"))
    [entry] = sign_in._app.saved  # type: ignore[attr-defined]
    assert entry.action == "logout"
    assert "provider_revoked" not in entry.details
    assert ports.log == ["revoke:logout"]


def test_the_tokens_remembered_are_bounded_forgetting_the_oldest(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setattr(sign_in_module, "MAX_REMEMBERED_TOKENS", 2)
    ports = Ports()
    sign_in = _sign_in(ports)
    first, _second, third = (_issued_here(sign_in, ports) for _ in range(3))
    assert len(sign_in._holders) == 2
    ports.log.clear()
    asyncio.run(sign_in.refresh(first, ip="127.0.0.1", user_agent="t"))
    assert ports.log[:2] == ["rotate", "rotate-done"]  # forgotten: rotated first, read after
    ports.log.clear()
    asyncio.run(sign_in.refresh(third, ip="127.0.0.1", user_agent="t"))
    assert ports.log.index("read") < ports.log.index("rotate-done")  # still remembered
