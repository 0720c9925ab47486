"""`SamlSignIn.consume` as a protocol of decisions, on ports in memory: which tenant and
integration a response is for, when it is refused before any signature is checked, and that
every refusal is audited where it belongs (the message's tenant, or the system tenant when no
tenant can be told) and answered with one `AssertionRejected`."""

from __future__ import annotations

from collections.abc import Mapping
from datetime import UTC, datetime, timedelta
from typing import Any
from uuid import UUID, uuid4

import pytest

from commands.saml_sign_in import Client, SamlSignIn, _digest, binding_cookie
from commands.sign_in import AssertionRejected, SignIn
from domain.errors import NotFound
from domain.saml import IdpLogout, SamlAssertion, SamlRejected, SamlSessionRef, Screened
from domain.sessions import PendingSignIn
from domain.tenancy import SYSTEM_TENANT_ID
from tests.unit.identity.test_federated_sign_in import HASH, Ports, RecordingApp, Signer

TENANT = uuid4()
IDP = uuid4()
WHO = Client("10.0.0.1", "pytest")


class Provider:
    integration_id = IDP
    allow_idp_initiated = False
    session_seconds = 8 * 3600
    attribute_map: dict[str, str] = {}  # noqa: RUF012 - a protocol attribute

    def __init__(self) -> None:
        self.validated: list[str | None] = []

    def metadata(self) -> str:
        return "<md/>"

    def login_url(self, request_id: str, relay_state: str) -> str:
        return f"https://idp.test/sso?id={request_id}"

    def redirect_allowed(self, url: str) -> bool:
        return url.startswith("https://app.test/")

    def validate(self, message: str, request_id: str | None) -> SamlAssertion:
        self.validated.append(request_id)
        if message == "forged":
            raise SamlRejected("signature_invalid")
        return SamlAssertion("https://idp.test", "p-alice", None, "s1", {"groups": ["x"]},
                             f"_a-{message}", datetime.now(UTC) + timedelta(minutes=5),
                             request_id)  # fmt: skip

    def logout_url(self, *args: Any) -> str | None:
        return None

    def logout_request(self, query: Mapping[str, str]) -> IdpLogout:
        raise SamlRejected("invalid_logout_request")

    def logout_response(self, query: Mapping[str, str], request_id: str) -> None:
        return None


class Requests:
    def __init__(self) -> None:
        self.pending: dict[str, PendingSignIn] = {}
        self.flushed_later: list[bool] = []

    async def create(self, tenant_id: UUID, integration_id: UUID, kind: str,
                     payload: Mapping[str, Any], *, ttl_seconds: int = 600) -> str:  # fmt: skip
        request_id = f"_{tenant_id.hex}{len(self.pending):040x}"
        expires = datetime.now(UTC) + timedelta(seconds=ttl_seconds)
        self.pending[request_id] = PendingSignIn(
            request_id, tenant_id, integration_id, kind, dict(payload), expires
        )
        return request_id

    async def consume(
        self, request_id: str, kind: str, *, flushed_later: bool = False
    ) -> PendingSignIn | None:
        self.flushed_later.append(flushed_later)
        found = self.pending.get(request_id)
        if found is None or found.kind != kind:
            return None
        return self.pending.pop(request_id)


class SamlPorts:
    def __init__(self) -> None:
        self.sp: Provider | None = Provider()
        self.audiences: dict[str, list[tuple[UUID, UUID]]] = {}
        self.refusal: SamlRejected | None = None
        self.sign_in = Ports()  # sign-in's: the session, its replay-cache entry, its index

    async def tenant_of(self, integration_id: UUID) -> UUID | None:
        return TENANT if integration_id == IDP else None

    def provider(self, tenant_id: UUID, integration_id: UUID, base_url: str) -> Provider | None:
        return self.sp if (tenant_id, integration_id) == (TENANT, IDP) else None

    async def unsolicited(self, audiences: tuple[str, ...]) -> list[tuple[UUID, UUID]]:
        return [hit for a in audiences for hit in self.audiences.get(a, [])]

    def screen(self, message: str) -> Screened:
        if message == "bomb":
            raise SamlRejected("dtd_forbidden")
        request_id, _, audience = message.partition("|")
        return Screened(b"", None, request_id or None, (audience,) if audience else (), None,
                        self.refusal)  # fmt: skip

    async def session_ref(self, tenant_id: UUID, sid: str) -> SamlSessionRef | None:
        return None

    async def live_sessions(self, *args: Any) -> list[str]:
        return []


@pytest.fixture
def world() -> tuple[SamlSignIn, SamlPorts, Requests, RecordingApp]:
    ports, requests, app = SamlPorts(), Requests(), RecordingApp()
    ports.sign_in = Ports()
    ports.sign_in.tenant = ports.sign_in.tenant.__class__(TENANT, active=True)
    sign_in = SignIn(app, HASH, Signer(), ports.sign_in, failure_floor_seconds=0)
    return SamlSignIn(sign_in, requests, ports), ports, requests, app


async def _pending(requests: Requests) -> tuple[str, dict[str, str]]:
    """A pending SP-initiated sign-in and the cookies of the browser that started it."""
    request_id = await requests.create(TENANT, IDP, "saml", {"binding": _digest("b")})
    return request_id, {binding_cookie(request_id): "b"}


def _outcomes(app: RecordingApp) -> list[tuple[UUID, str]]:
    return [(t, e.details["outcome"]) for t, e in zip(app.tenants, app.entries, strict=True)]


async def test_an_answer_to_our_request_signs_in_once(world: Any) -> None:
    saml, ports, requests, app = world
    url, name, value = await saml.login(IDP, "https://app.test/home", "https://acgs.test")
    request_id = url.split("id=")[1]
    assert name == binding_cookie(request_id)
    done = await saml.consume(request_id, None, "https://acgs.test", WHO, {name: value})
    assert done.return_to == "https://app.test/home"
    assert done.issued.session.sub == "p-alice"
    assert ports.sp.validated == [request_id]
    assert requests.flushed_later == [True]  # a synchronous commit follows before the answer
    [(sid, facts)] = ports.sign_in.saml_sessions
    assert sid == done.issued.session.sid
    assert (facts.assertion_id, facts.name_id, facts.session_index) == (
        f"_a-{request_id}",
        "p-alice",
        "s1",
    )
    with pytest.raises(AssertionRejected):  # the same answer again: the request was used
        await saml.consume(request_id, None, "https://acgs.test", WHO, {name: value})
    assert _outcomes(app)[-1] == (SYSTEM_TENANT_ID, "unknown_request")


async def test_a_return_url_off_the_allow_list_is_refused_before_the_idp(world: Any) -> None:
    saml, _, requests, _ = world
    with pytest.raises(Exception, match="return_to"):
        await saml.login(IDP, "https://evil.test/", "https://acgs.test")
    assert requests.pending == {}


@pytest.mark.parametrize(
    ("message", "tenant", "reason"),
    [
        ("bomb", SYSTEM_TENANT_ID, "dtd_forbidden"),
        ("|urn:nobody", SYSTEM_TENANT_ID, "unsolicited_unknown"),
        ("|urn:sp", TENANT, "unsolicited_not_allowed"),
    ],
)
async def test_refusals_before_validation_are_audited_where_they_belong(
    world: Any, message: str, tenant: UUID, reason: str
) -> None:
    saml, ports, _, app = world
    ports.audiences["urn:sp"] = [(TENANT, IDP)]
    with pytest.raises(AssertionRejected) as refused:
        await saml.consume(message, None, "https://acgs.test", WHO, {})
    assert refused.value.reason == reason
    assert _outcomes(app) == [(tenant, reason)]
    assert ports.sp.validated == []


async def test_an_ambiguous_audience_is_refused(world: Any) -> None:
    saml, ports, _, app = world
    ports.audiences["urn:sp"] = [(TENANT, IDP), (uuid4(), uuid4())]
    with pytest.raises(AssertionRejected):
        await saml.consume("|urn:sp", None, "https://acgs.test", WHO, {})
    assert _outcomes(app) == [(SYSTEM_TENANT_ID, "unsolicited_unknown")]


async def test_a_deferred_screening_refusal_is_raised_in_the_tenant(world: Any) -> None:
    saml, ports, requests, app = world
    request_id, cookies = await _pending(requests)
    ports.refusal = SamlRejected("comment_in_message")
    with pytest.raises(AssertionRejected):
        await saml.consume(request_id, None, "https://acgs.test", WHO, cookies)
    assert _outcomes(app) == [(TENANT, "comment_in_message")]
    assert ports.sp.validated == []


async def test_idp_initiated_when_allowed_returns_to_an_allowed_relay_state(world: Any) -> None:
    saml, ports, _, app = world
    ports.audiences["urn:sp"] = ports.audiences["urn:sp2"] = [(TENANT, IDP)]
    ports.sp.allow_idp_initiated = True
    done = await saml.consume("|urn:sp", "https://app.test/x", "https://acgs.test", WHO, {})
    assert done.return_to == "https://app.test/x"
    assert ports.sp.validated == [None]
    other = await saml.consume("|urn:sp2", "https://evil.test/", "https://acgs.test", WHO, {})
    assert other.return_to is None
    with pytest.raises(AssertionRejected):  # the same assertion id: a replay
        await saml.consume("|urn:sp", None, "https://acgs.test", WHO, {})
    assert _outcomes(app)[-1] == (TENANT, "replay")
    assert len(ports.sign_in.opened) == 2  # the replay opened no session


async def test_a_disabled_integration_and_a_forged_answer_are_refused(world: Any) -> None:
    saml, ports, requests, app = world
    forged, cookies = await _pending(requests)
    ports.sp.validate = lambda *_: Provider.validate(ports.sp, "forged", None)
    with pytest.raises(AssertionRejected):
        await saml.consume(forged, None, "https://acgs.test", WHO, cookies)
    request_id, cookies = await _pending(requests)
    ports.sp = None
    with pytest.raises(AssertionRejected):
        await saml.consume(request_id, None, "https://acgs.test", WHO, cookies)
    assert [o for _, o in _outcomes(app)] == ["signature_invalid", "integration_unavailable"]


@pytest.mark.parametrize("cookie", [None, "", "another-value"])
async def test_an_answer_posted_from_another_browser_is_refused(
    world: Any, cookie: str | None
) -> None:
    saml, ports, requests, app = world
    request_id, _ = await _pending(requests)
    cookies = {} if cookie is None else {binding_cookie(request_id): cookie}
    with pytest.raises(AssertionRejected):
        await saml.consume(request_id, None, "https://acgs.test", WHO, cookies)
    assert _outcomes(app) == [(TENANT, "browser_mismatch")]
    assert ports.sp.validated == []


async def test_logout_through_another_tenants_integration_is_not_found(world: Any) -> None:
    saml, ports, requests, app = world
    ports.sign_in.revoke = None  # revoking anything here would fail the test
    with pytest.raises(NotFound):
        await saml.logout(IDP, uuid4(), "sid-1", "p-alice", "https://acgs.test", WHO)
    assert app.entries == []  # nothing ended, nothing audited
    assert requests.pending == {}


async def test_logout_of_a_session_the_idp_never_indexed_ends_it_here_only(world: Any) -> None:
    saml, ports, requests, app = world
    revoked: list[tuple[str, str]] = []

    async def revoke(tenant_id: UUID, sid: str, reason: str) -> bool:
        revoked.append((sid, reason))
        return True

    ports.sign_in.revoke = revoke
    ended, url = await saml.logout(IDP, TENANT, "sid-1", "p-alice", "https://acgs.test", WHO)
    assert (ended, url) == (True, None)
    assert revoked == [("sid-1", "logout")]
    assert requests.pending == {}  # no LogoutRequest is prepared for the IdP
    [entry] = app.entries
    assert (entry.action, entry.details["sid"]) == ("logout", "sid-1")
