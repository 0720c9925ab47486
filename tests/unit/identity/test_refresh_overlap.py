"""A refresh of a token this process issued starts the directory read together with the rotation
(the two round trips overlap) and signs the access token meanwhile, handing it out only when its
claims are the outcome's; a token issued elsewhere is rotated first and read after; a refused
rotation leaves no read behind and its answer is never used. The ports are in-memory
stand-ins that record the order of calls (the real peers: tests/e2e/test_ldap_sign_in_api.py)."""

from __future__ import annotations

import asyncio
from dataclasses import replace
from datetime import UTC, datetime, timedelta
from typing import Any
from uuid import UUID, uuid4

import pytest

from commands.sign_in import SignIn, TenantEntry
from domain.identity import DirectoryUser, GroupMapping
from domain.maci import MaciRole
from domain.sessions import RefreshRejected, RefreshReused, Session

TENANT = uuid4()
INTEGRATION = uuid4()
DN = "uid=bob,ou=people,dc=acme,dc=test"
AUDITORS = "cn=auditors,ou=groups,dc=acme,dc=test"
EXECUTIVES = "cn=executives,ou=groups,dc=acme,dc=test"
ENTRY = TenantEntry(TENANT, active=True)


class Signer:
    def __init__(self, log: list[str] | None = None) -> None:
        self.log = log if log is not None else []
        self.claims: dict[str, dict[str, Any]] = {}  # token -> the claims it was signed with

    def sign(self, claims: Any) -> tuple[str, str]:
        self.log.append("sign")
        token = f"access-{claims['jti']}"
        self.claims[token] = dict(claims)
        return token, "kid"


class Directory:
    integration_id = INTEGRATION

    def __init__(self, log: list[str]) -> None:
        self.log = log

    def authenticate(self, username: str, password: str) -> DirectoryUser:
        raise AssertionError("not used here")

    groups = frozenset({AUDITORS})

    def lookup(self, dn: str) -> DirectoryUser | None:
        self.log.append("read")  # before "rotate-done" when it overlaps (50 ms round trip)
        self.log.append("read-done")
        return DirectoryUser(dn, "bob", None, None, None, self.groups)


class Ports:
    def __init__(self) -> None:
        self.log: list[str] = []
        self.directory_ = Directory(self.log)
        self.session = Session(
            "sid-1", TENANT, "bob", "ldap", INTEGRATION, DN, (MaciRole.AUDITOR,),
            datetime.now(UTC) + timedelta(hours=8),
        )  # fmt: skip
        self.reuse = False
        self.tokens = 0
        self.entry = ENTRY

    async def tenant_by_slug(self, slug: str) -> TenantEntry | None:
        return ENTRY

    def directory(self, tenant_id: UUID, integration_id: UUID | None) -> Directory:
        return self.directory_

    async def mappings(self, tenant_id: UUID, integration_id: UUID) -> list[GroupMapping]:
        return [
            GroupMapping(uuid4(), INTEGRATION, AUDITORS, MaciRole.AUDITOR, 10),
            GroupMapping(uuid4(), INTEGRATION, EXECUTIVES, MaciRole.EXECUTIVE, 20),
        ]

    async def open_session(self, *args: Any, **kw: Any) -> tuple[Session, str]:
        return self.session, self._token()

    async def rotate(self, refresh_token: str) -> tuple[Session, str, TenantEntry | None]:
        self.log.append("rotate")
        await asyncio.sleep(0.05)  # the database round trip
        self.log.append("rotate-done")
        if self.reuse:
            raise RefreshReused(self.session)
        return self.session, self._token(), self.entry

    async def set_roles(self, session: Session, roles: tuple[MaciRole, ...]) -> Session:
        self.log.append("set_roles")
        self.session = replace(session, roles=roles)
        return self.session

    async def revoke(self, tenant_id: UUID, sid: str, reason: str) -> bool:
        self.log.append(f"revoke:{reason}")
        return True

    def _token(self) -> str:
        self.tokens += 1
        return f"{TENANT.hex}.token-{self.tokens}"


class App:
    def __init__(self) -> None:
        self.saved: list[Any] = []

    def save_for(self, tenant_id: UUID, entry: Any) -> None:
        self.saved.append(entry)


def _sign_in(ports: Ports, signer: Signer | None = None, clock: Any = None) -> SignIn:
    more = {} if clock is None else {"clock": clock}
    return SignIn(App(), "hash", signer or Signer(), ports, **more)  # type: ignore[arg-type]


def _issued_here(sign_in: SignIn, ports: Ports) -> str:
    session, token = asyncio.run(ports.open_session())
    return sign_in._issue(ENTRY, session, token).refresh_token


def test_a_token_issued_here_is_read_while_it_is_rotated() -> None:
    ports = Ports()
    sign_in = _sign_in(ports)
    token = _issued_here(sign_in, ports)
    issued = asyncio.run(sign_in.refresh(token, ip="127.0.0.1", user_agent="t"))
    assert issued.roles == (MaciRole.AUDITOR,)
    assert ports.log.index("read") < ports.log.index("rotate-done")
    # and the next token is remembered too: its refresh overlaps again
    ports.log.clear()
    asyncio.run(sign_in.refresh(issued.refresh_token, ip="127.0.0.1", user_agent="t"))
    assert ports.log.index("read") < ports.log.index("rotate-done")


def test_a_token_issued_elsewhere_is_rotated_first_then_read() -> None:
    ports = Ports()
    issued = asyncio.run(
        _sign_in(ports).refresh(f"{TENANT.hex}.from-elsewhere", ip="127.0.0.1", user_agent="t")
    )
    assert issued.roles == (MaciRole.AUDITOR,)
    assert ports.log == ["rotate", "rotate-done", "read", "read-done"]


def test_a_refused_rotation_uses_no_early_read() -> None:
    ports = Ports()
    sign_in = _sign_in(ports)
    token = _issued_here(sign_in, ports)
    ports.reuse = True
    with pytest.raises(RefreshRejected):
        asyncio.run(sign_in.refresh(token, ip="127.0.0.1", user_agent="t"))
    assert "rotate-done" in ports.log
    assert [e.action for e in sign_in._app.saved] == ["refresh_token_reused"]  # type: ignore[attr-defined]
    # a second use of the same token is not remembered any more: no early read
    ports.log.clear()
    with pytest.raises(RefreshRejected):
        asyncio.run(sign_in.refresh(token, ip="127.0.0.1", user_agent="t"))
    assert ports.log == ["rotate", "rotate-done"]


def test_the_access_token_is_signed_while_the_rotation_is_under_way() -> None:
    ports = Ports()
    signer = Signer(ports.log)
    sign_in = _sign_in(ports, signer, clock=lambda: 1000.25)  # all within one second
    token = _issued_here(sign_in, ports)
    ports.log.clear()
    issued = asyncio.run(sign_in.refresh(token, ip="127.0.0.1", user_agent="t"))
    assert ports.log.count("sign") == 1  # nothing changed: the token signed ahead is used
    assert ports.log.index("sign") < ports.log.index("rotate-done")
    claims = signer.claims[issued.access_token]
    assert (claims["sub"], claims["sid"], claims["tenant_id"]) == ("bob", "sid-1", str(TENANT))
    assert (claims["maci_roles"], claims["maci_role"]) == (["AUDITOR"], "AUDITOR")
    assert claims["exp"] - claims["iat"] == ENTRY.access_ttl_seconds


def test_a_token_signed_ahead_with_roles_the_directory_no_longer_gives_is_not_handed_out() -> None:
    ports = Ports()
    signer = Signer(ports.log)
    sign_in = _sign_in(ports, signer)
    token = _issued_here(sign_in, ports)
    ports.directory_.groups = frozenset({AUDITORS, EXECUTIVES})  # promoted in the directory
    ports.log.clear()
    issued = asyncio.run(sign_in.refresh(token, ip="127.0.0.1", user_agent="t"))
    assert ports.log.count("sign") == 2  # the one signed ahead is dropped
    assert ports.log.index("set_roles") < len(ports.log) - 1 - ports.log[::-1].index("sign")
    claims = signer.claims[issued.access_token]
    assert claims["maci_roles"] == ["EXECUTIVE", "AUDITOR"]
    assert claims["maci_role"] == "EXECUTIVE"
    assert issued.roles == (MaciRole.EXECUTIVE, MaciRole.AUDITOR)


def test_a_token_signed_ahead_with_an_old_lifetime_is_not_handed_out() -> None:
    ports = Ports()
    signer = Signer(ports.log)
    sign_in = _sign_in(ports, signer)
    token = _issued_here(sign_in, ports)
    ports.entry = replace(ENTRY, access_ttl_seconds=60)  # the tenant changed its setting
    ports.log.clear()
    issued = asyncio.run(sign_in.refresh(token, ip="127.0.0.1", user_agent="t"))
    assert ports.log.count("sign") == 2
    claims = signer.claims[issued.access_token]
    assert claims["exp"] - claims["iat"] == 60
    assert issued.expires_in == 60


def test_a_user_the_directory_removed_is_refused_though_a_token_was_signed_ahead() -> None:
    ports = Ports()
    signer = Signer(ports.log)
    sign_in = _sign_in(ports, signer)
    token = _issued_here(sign_in, ports)
    ports.directory_.groups = frozenset()  # out of every mapped group; default role none
    ports.entry = replace(ENTRY, default_role=None)
    with pytest.raises(RefreshRejected):
        asyncio.run(sign_in.refresh(token, ip="127.0.0.1", user_agent="t"))
    assert "revoke:access_removed" in ports.log


def test_a_token_signed_ahead_in_an_earlier_second_is_not_handed_out() -> None:
    ports = Ports()
    signer = Signer(ports.log)
    times = iter([1000.0, 1000.0, 1003.0])  # issue, signed ahead, then a slow round trip
    sign_in = _sign_in(ports, signer, clock=lambda: next(times, 1003.0))
    token = _issued_here(sign_in, ports)
    ports.log.clear()
    issued = asyncio.run(sign_in.refresh(token, ip="127.0.0.1", user_agent="t"))
    assert ports.log.count("sign") == 2
    claims = signer.claims[issued.access_token]
    assert claims["iat"] == claims["nbf"] == 1003
    assert claims["exp"] == 1003 + ENTRY.access_ttl_seconds
