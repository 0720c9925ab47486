"""SAML 2.0 sign-in and single logout, one service provider per SAML integration.

SP-initiated login (`login`): a one-time sign-in request is stored (10 minutes) and its id is
the AuthnRequest's ID; the browser goes to the IdP with a signed AuthnRequest. The return URL,
checked against the integration's allow-list, stays on the server.

The assertion consumer (`consume`): the response is screened (size, no DTD, no comments, no
SHA-1, AES-256 only), then bound to what was asked: its `InResponseTo` must name a pending
request of this service (used once, not after expiry), which gives the tenant and the
integration, and the browser must present that request's cookie (set by `login`: login CSRF,
an attacker's genuine response posted from a victim's browser, is refused); a response that
answers nothing is accepted only by an integration that opts in to IdP-initiated sign-in,
found by the audience. The integration's SP validates it (signature
against the configured IdP certificates only ...), the assertion id goes into the tenant's
replay cache until its NotOnOrAfter, and `SignIn.federated` completes the sign-in with the
attributes matched against the `saml_attribute` role mappings. Every refusal is audited with
its reason and answered with one `AssertionRejected`.

Single logout: `logout` (SP-initiated: the session ends here at once, and the IdP is asked to end
its own with a signed LogoutRequest), `idp_logout` (the IdP's LogoutRequest ends the sessions of
that NameID/SessionIndex here and is answered), `logout_done` (the IdP's answer to ours).
"""

from __future__ import annotations

import asyncio
import hashlib
import hmac
import secrets
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Protocol
from uuid import UUID

from commands.sign_in import (
    AssertionRejected,
    FederatedIdentity,
    Issued,
    SignIn,
    SignInRequests,
)
from domain.errors import NotFound, ValidationFailed
from domain.saml import (
    IdpLogout,
    SamlAssertion,
    SamlRejected,
    SamlSessionRef,
    SamlSignInFacts,
    Screened,
    profile_of,
)
from domain.tenancy import SYSTEM_TENANT_ID

LOGIN = "saml"
LOGOUT = "saml_logout"
UNKNOWN_INTEGRATION = UUID(int=0)
BINDING_COOKIE = "acgs_saml_"


def binding_cookie(request_id: str) -> str:
    """The name of the cookie that binds the sign-in request `request_id` to its browser."""
    return BINDING_COOKIE + request_id[-16:]


def _digest(secret: str) -> str:
    return hashlib.sha256(secret.encode()).hexdigest()


class SamlProvider(Protocol):
    """One integration's service provider (infra.saml.service_provider.ServiceProvider)."""

    integration_id: UUID
    allow_idp_initiated: bool
    session_seconds: int
    attribute_map: dict[str, str]

    def metadata(self) -> str: ...

    def login_url(self, request_id: str, relay_state: str) -> str: ...

    def redirect_allowed(self, url: str) -> bool: ...

    def validate(self, message: str, request_id: str | None) -> SamlAssertion:
        """The assertion of a response that passed `SamlPorts.screen`, or SamlRejected."""
        ...

    def logout_url(
        self,
        request_id: str,
        name_id: str,
        name_id_format: str | None,
        session_index: str | None,
        relay_state: str,
    ) -> str | None: ...

    def logout_request(self, query: Mapping[str, str]) -> IdpLogout: ...

    def logout_response(self, query: Mapping[str, str], request_id: str) -> None: ...


class SamlPorts(Protocol):
    async def tenant_of(self, integration_id: UUID) -> UUID | None:
        """The tenant of a live SAML integration."""
        ...

    def provider(self, tenant_id: UUID, integration_id: UUID, base_url: str) -> SamlProvider | None:
        """The enabled SAML integration's SP, its URLs under `base_url` (may fetch metadata)."""
        ...

    async def unsolicited(self, audiences: tuple[str, ...]) -> list[tuple[UUID, UUID]]:
        """(tenant, integration) of the enabled SAML integrations whose SP entity id is one
        of `audiences`."""
        ...

    def screen(self, message: str) -> Screened: ...

    async def session_ref(self, tenant_id: UUID, sid: str) -> SamlSessionRef | None: ...

    async def live_sessions(
        self, tenant_id: UUID, integration_id: UUID, name_id: str, session_indexes: list[str]
    ) -> list[str]: ...


@dataclass(frozen=True)
class Client:
    ip: str
    user_agent: str


@dataclass(frozen=True)
class SamlSignedIn:
    issued: Issued
    return_to: str | None
    local_return: str | None = None  # a path of this service the caller vouched for


class SamlSignIn:
    def __init__(self, sign_in: SignIn, requests: SignInRequests, ports: SamlPorts) -> None:
        self._sign_in = sign_in
        self._requests = requests
        self._ports = ports

    async def _provider(self, integration_id: UUID, base_url: str) -> tuple[UUID, SamlProvider]:
        tenant_id = await self._ports.tenant_of(integration_id)
        provider = None
        if tenant_id is not None:
            provider = await asyncio.to_thread(
                self._ports.provider, tenant_id, integration_id, base_url
            )
        if tenant_id is None or provider is None:
            raise NotFound("no enabled SAML integration", {"integration_id": str(integration_id)})
        return tenant_id, provider

    async def metadata(self, integration_id: UUID, base_url: str) -> str:
        _, provider = await self._provider(integration_id, base_url)
        return provider.metadata()

    async def login(
        self,
        integration_id: UUID,
        return_to: str | None,
        base_url: str,
        *,
        local_return: str | None = None,
    ) -> tuple[str, str, str]:
        """The IdP URL (a signed AuthnRequest) to send the browser to, and the cookie (name,
        value) that binds the sign-in to this browser: the answer is accepted only from it.
        `local_return`: a path of this service itself (the caller checked it is one) where the
        signed-in browser lands instead of an allow-listed `return_to`."""
        tenant_id, provider = await self._provider(integration_id, base_url)
        if return_to is not None and not provider.redirect_allowed(return_to):
            raise ValidationFailed(
                "return_to: is not an allowed return URL of this integration",
                {"fields": [{"field": "return_to", "message": "is not an allowed return URL"}]},
            )
        binding = secrets.token_urlsafe(24)
        request_id = await self._requests.create(
            tenant_id,
            integration_id,
            LOGIN,
            {"return_to": return_to, "local": local_return, "binding": _digest(binding)},
        )
        return provider.login_url(request_id, request_id), binding_cookie(request_id), binding

    # --- the assertion consumer ---------------------------------------------------------------

    async def consume(
        self,
        message: str,
        relay_state: str | None,
        base_url: str,
        client: Client,
        cookies: Mapping[str, str],
    ) -> SamlSignedIn:
        """`cookies`: the browser's, one of which binds an SP-initiated sign-in to it."""
        tenant_id, integration_id = SYSTEM_TENANT_ID, UNKNOWN_INTEGRATION
        local_return = None
        try:
            screened = await asyncio.to_thread(self._ports.screen, message)
            request_id = screened.in_response_to
            if request_id is not None:
                # every way on ends in a synchronous commit (the session, or the audit entry
                # of the refusal) before the browser is answered
                pending = await self._requests.consume(request_id, LOGIN, flushed_later=True)
                if pending is None:
                    raise SamlRejected("unknown_request", "no pending sign-in request answered")
                tenant_id, integration_id = pending.tenant_id, pending.integration_id
                return_to = pending.payload.get("return_to")
                local_return = pending.payload.get("local")
                presented = cookies.get(binding_cookie(request_id), "")
                if not hmac.compare_digest(_digest(presented), str(pending.payload.get("binding"))):
                    raise SamlRejected("browser_mismatch", "not the browser that started it")
            else:
                found = await self._ports.unsolicited(screened.audiences)
                if len(found) != 1:
                    raise SamlRejected("unsolicited_unknown", f"{len(found)} integrations match")
                tenant_id, integration_id = found[0]
                return_to = None
            provider, assertion = await asyncio.to_thread(  # one hop off the event loop
                self._validated, screened, message, tenant_id, integration_id, base_url
            )
            if request_id is None and relay_state and provider.redirect_allowed(relay_state):
                return_to = relay_state
        except SamlRejected as rejected:
            await self._refused(tenant_id, integration_id, rejected, client)
            raise AssertionRejected(rejected.reason) from None
        issued = await self._sign_in.federated(  # a replayed assertion is refused there
            self._identity(tenant_id, integration_id, provider, assertion, client)
        )
        return SamlSignedIn(
            issued,
            return_to if isinstance(return_to, str) else None,
            local_return if isinstance(local_return, str) else None,
        )

    def _validated(
        self,
        screened: Screened,
        message: str,
        tenant_id: UUID,
        integration_id: UUID,
        base_url: str,
    ) -> tuple[SamlProvider, SamlAssertion]:
        """The integration's SP and the assertion it validated (SamlRejected otherwise)."""
        provider = self._ports.provider(tenant_id, integration_id, base_url)
        if provider is None:
            raise SamlRejected("integration_unavailable")
        if screened.refusal is not None:
            raise screened.refusal
        if screened.in_response_to is None and not provider.allow_idp_initiated:
            raise SamlRejected("unsolicited_not_allowed")
        return provider, provider.validate(message, screened.in_response_to)

    def _identity(
        self,
        tenant_id: UUID,
        integration_id: UUID,
        provider: SamlProvider,
        assertion: SamlAssertion,
        client: Client,
    ) -> FederatedIdentity:
        profile = profile_of(assertion, provider.attribute_map)
        return FederatedIdentity(
            tenant_id=tenant_id,
            integration_id=integration_id,
            auth_method="saml",
            subject=assertion.name_id,
            username=profile.username,
            email=profile.email,
            name=profile.name,
            values=profile.values,
            session_seconds=provider.session_seconds,
            ip=client.ip,
            user_agent=client.user_agent,
            details={"issuer": assertion.issuer, "assertion_id": assertion.assertion_id},
            saml=SamlSignInFacts(
                assertion.assertion_id,
                assertion.not_on_or_after,
                assertion.name_id,
                assertion.name_id_format,
                assertion.session_index,
            ),
        )

    async def _refused(
        self, tenant_id: UUID, integration_id: UUID, rejected: SamlRejected, client: Client
    ) -> None:
        identity = FederatedIdentity(
            tenant_id=tenant_id,
            integration_id=integration_id,
            auth_method="saml",
            subject="",
            username="",
            ip=client.ip,
            user_agent=client.user_agent,
        )
        await self._sign_in.federated_refused(
            identity, rejected.reason, {"detail": rejected.detail[:300]}
        )

    # --- single logout -------------------------------------------------------------------------

    async def logout(
        self,
        integration_id: UUID,
        tenant_id: UUID,
        sid: str,
        sub: str,
        base_url: str,
        client: Client,
    ) -> tuple[bool, str | None]:
        """End the caller's session here; the IdP URL that ends it there (None without one)."""
        owner, provider = await self._provider(integration_id, base_url)
        if owner != tenant_id:
            raise NotFound("no enabled SAML integration", {"integration_id": str(integration_id)})
        ref = await self._ports.session_ref(tenant_id, sid)
        ended = await self._sign_in.logout(
            tenant_id, sid, sub, ip=client.ip, user_agent=client.user_agent, auth_method="saml"
        )
        if ref is None:
            return ended, None
        request_id = await self._requests.create(tenant_id, integration_id, LOGOUT, {"sid": sid})
        url = provider.logout_url(
            request_id, ref.name_id, ref.name_id_format, ref.session_index, request_id
        )
        return ended, url

    async def idp_logout(
        self, integration_id: UUID, query: Mapping[str, str], base_url: str, client: Client
    ) -> str:
        """An IdP's LogoutRequest: the sessions it names end; the URL of our answer."""
        tenant_id, provider = await self._provider(integration_id, base_url)
        try:
            logout = await asyncio.to_thread(provider.logout_request, query)
        except SamlRejected as rejected:
            await self._refused(tenant_id, integration_id, rejected, client)
            raise AssertionRejected(rejected.reason) from None
        sids = await self._ports.live_sessions(
            tenant_id, integration_id, logout.name_id, logout.session_indexes
        )
        for sid in sids:
            await self._sign_in.logout(
                tenant_id, sid, logout.name_id, ip=client.ip, user_agent=client.user_agent,
                auth_method="saml",
            )  # fmt: skip
        return logout.redirect_url

    async def logout_done(
        self, integration_id: UUID, query: Mapping[str, str], base_url: str, client: Client
    ) -> None:
        """The IdP's answer to our LogoutRequest (its RelayState is our request id)."""
        tenant_id, provider = await self._provider(integration_id, base_url)
        try:
            relay = query.get("RelayState", "")
            pending = await self._requests.consume(relay, LOGOUT)
            if pending is None or pending.integration_id != integration_id:
                raise SamlRejected("unknown_request", "no pending logout request answered")
            await asyncio.to_thread(provider.logout_response, query, relay)
        except SamlRejected as rejected:
            await self._refused(tenant_id, integration_id, rejected, client)
            raise AssertionRejected(rejected.reason) from None
