"""Sign-in through an OpenID Connect or OAuth 2.0 provider (the browser's authorization code
flow), and the provider's side of the sessions it starts.

`begin`: the integration's relying party, a one-time server-side sign-in request (expires in
10 minutes) holding the nonce, the PKCE verifier, the redirect URI and the digest of a browser
key (the browser keeps the key in a cookie); the request's id is the `state` sent to the
provider. `complete` (the callback): the state is consumed (used once; missing, unknown,
expired or replayed is refused), the browser must bring the key (a callback URL carried to
another browser is refused), a provider error is refused, the code is exchanged
with the stored verifier, the ID token validated against the stored nonce (the adapter's
work), then `SignIn.federated` makes the session, the service's tokens and the audit record.
Every refusal is audited (category `authentication`) with its reason; the caller gets one
`INVALID_ASSERTION` answer whatever the reason (`DEPENDENCY_UNAVAILABLE` when the provider
cannot be reached).

The provider's refresh token, when it gives one, is kept sealed with the session
(`UpstreamTokens`): `refreshed` exchanges it when the service's own refresh token is used
(the user's groups or scopes read again; a provider that refuses ends the session), `ended`
revokes it at the provider on logout.
"""

from __future__ import annotations

import hashlib
import hmac
import secrets
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any, Protocol
from uuid import UUID

from commands.sign_in import (
    AssertionRejected,
    FederatedIdentity,
    Issued,
    SignIn,
    SignInRequests,
)
from domain.errors import DependencyUnavailable, NotFound
from domain.provider_identity import ProviderIdentity, ProviderRefused
from domain.sessions import Session, tenant_of_request
from domain.tenancy import SYSTEM_TENANT_ID

REQUEST_KIND = "oidc"
NO_INTEGRATION = UUID(int=0)
MAX_PARAM = 2048


class OidcRelyingParty(Protocol):
    @property
    def integration_id(self) -> UUID: ...

    @property
    def kind(self) -> str:
        """ "oidc" or "oauth"."""
        ...

    @property
    def redirect_uri(self) -> str | None:
        """The configured callback URL (None: the service's own, from the request)."""
        ...

    async def authorization_url(
        self, *, redirect_uri: str, state: str, nonce: str, code_verifier: str
    ) -> str: ...

    async def identify(
        self, *, code: str, redirect_uri: str, code_verifier: str, nonce: str, iss: str | None
    ) -> ProviderIdentity:
        """Exchange the code, check what comes back; `iss` is the issuer the provider named
        in its redirect (RFC 9207), when it named one."""
        ...

    async def refresh(self, refresh_token: str) -> ProviderIdentity: ...

    async def revoke(self, refresh_token: str) -> bool: ...


class RelyingParties(Protocol):
    async def find(self, integration_id: UUID) -> tuple[UUID, OidcRelyingParty] | None:
        """The tenant and relying party of an enabled OIDC or OAuth integration."""
        ...

    async def of_tenant(self, tenant_id: UUID, integration_id: UUID) -> OidcRelyingParty | None: ...


class UpstreamTokens(Protocol):
    """The provider's refresh token of each session, sealed at rest."""

    async def save(
        self, tenant_id: UUID, sid: str, integration_id: UUID, refresh_token: str
    ) -> None: ...

    async def load(self, tenant_id: UUID, sid: str) -> tuple[UUID, str] | None: ...

    async def delete(self, tenant_id: UUID, sid: str) -> tuple[UUID, str] | None: ...


@dataclass(frozen=True)
class Callback:
    """The query of the provider's redirect back to the service, and the browser key the
    browser brought (the cookie the login set for this state)."""

    state: str | None
    code: str | None
    error: str | None = None
    iss: str | None = None
    ip: str = "unknown"
    user_agent: str = ""
    browser_key: str | None = field(default=None, repr=False)


@dataclass(frozen=True)
class OidcSignedIn:
    issued: Issued
    local_return: str | None = None  # a path of this service the caller vouched for


@dataclass(frozen=True)
class Started:
    """A sign-in sent to the provider: where the browser goes, the state, and the key the
    browser keeps (a cookie) so that only the browser that started the sign-in can finish it."""

    url: str
    state: str
    browser_key: str = field(repr=False)


def browser_cookie(state: str) -> str:
    """The name of the cookie holding a sign-in's browser key (one per sign-in in flight)."""
    return "acgs_oidc_" + hashlib.sha256(state.encode()).hexdigest()[:16]


def _digest(browser_key: str) -> str:
    return hashlib.sha256(browser_key.encode()).hexdigest()


def _same_browser(given: str | None, stored: object) -> bool:
    """The OAuth 2.0 security BCP's binding of the state to the user agent: a callback URL
    carried to another browser (login CSRF) does not sign that browser in."""
    if not given or not isinstance(stored, str):
        return False
    return hmac.compare_digest(_digest(given[:MAX_PARAM]).encode(), stored.encode())


class OidcSignIn:
    def __init__(
        self,
        sign_in: SignIn,
        requests: SignInRequests,
        parties: RelyingParties,
        upstream: UpstreamTokens,
    ) -> None:
        self._sign_in = sign_in
        self._requests = requests
        self._parties = parties
        self._upstream = upstream

    async def begin(
        self, integration_id: UUID, *, callback_url: str, local_return: str | None = None
    ) -> Started:
        """A new sign-in: the provider's authorization URL, and the browser key the browser
        must bring back (NotFound: no such enabled OIDC or OAuth integration). `local_return`:
        a path of this service itself (the caller checked it is one) where the signed-in
        browser lands, kept with the request."""
        found = await self._parties.find(integration_id)
        if found is None:
            raise NotFound("no enabled OIDC or OAuth integration with this id")
        tenant_id, party = found
        redirect_uri = party.redirect_uri or callback_url
        nonce, verifier = secrets.token_urlsafe(32), secrets.token_urlsafe(48)
        browser_key = secrets.token_urlsafe(32)
        state = await self._requests.create(
            tenant_id,
            integration_id,
            REQUEST_KIND,
            {"nonce": nonce, "code_verifier": verifier, "redirect_uri": redirect_uri,
             "browser": _digest(browser_key), "local": local_return},
        )  # fmt: skip
        try:
            url = await party.authorization_url(
                redirect_uri=redirect_uri, state=state, nonce=nonce, code_verifier=verifier
            )
        except ProviderRefused as refused:
            await self._refuse(tenant_id, integration_id, party.kind, refused, None)
            raise AssertionRejected(refused.reason) from None
        return Started(url, state, browser_key)

    async def complete(self, callback: Callback) -> OidcSignedIn:
        state = callback.state
        if not state:
            await self._refuse(None, NO_INTEGRATION, "oidc", ProviderRefused("state_missing"),
                               callback)  # fmt: skip
            raise AssertionRejected("state_missing")
        pending = await self._requests.consume(state[:MAX_PARAM], REQUEST_KIND)
        if pending is None:
            # audited in the system tenant: the tenant a state names is the sender's claim
            claimed = tenant_of_request(state[:MAX_PARAM])
            refused = ProviderRefused(
                "state_unknown_expired_or_used",
                {"claimed_tenant": str(claimed) if claimed else None},
            )
            await self._refuse(None, NO_INTEGRATION, "oidc", refused, callback)
            raise AssertionRejected(refused.reason)
        tenant_id, integration_id = pending.tenant_id, pending.integration_id
        party = await self._parties.of_tenant(tenant_id, integration_id)
        kind = party.kind if party is not None else "oidc"
        try:
            if not _same_browser(callback.browser_key, pending.payload.get("browser")):
                raise ProviderRefused("browser_mismatch")
            if party is None:
                raise ProviderRefused("integration_unavailable")
            identity = await self._identify(party, pending.payload, callback)
        except ProviderRefused as refused:
            await self._refuse(tenant_id, integration_id, kind, refused, callback)
            raise AssertionRejected(refused.reason) from None
        except DependencyUnavailable:
            unreachable = ProviderRefused("provider_unavailable")
            await self._refuse(tenant_id, integration_id, kind, unreachable, callback)
            raise
        issued = await self._sign_in.federated(
            self._federated(tenant_id, integration_id, kind, identity, callback)
        )
        if identity.refresh_token:
            await self._upstream.save(
                tenant_id, issued.session.sid, integration_id, identity.refresh_token
            )
        local_return = pending.payload.get("local")
        return OidcSignedIn(issued, local_return if isinstance(local_return, str) else None)

    async def _identify(
        self, party: OidcRelyingParty, payload: Mapping[str, object], callback: Callback
    ) -> ProviderIdentity:
        if callback.error:
            raise ProviderRefused("provider_error", {"provider_error": callback.error[:100]})
        if not callback.code or len(callback.code) > MAX_PARAM:
            raise ProviderRefused("code_missing")
        return await party.identify(
            code=callback.code,
            redirect_uri=str(payload["redirect_uri"]),
            code_verifier=str(payload["code_verifier"]),
            nonce=str(payload["nonce"]),
            iss=callback.iss,
        )

    # --- the provider's side of a session -----------------------------------------------------

    async def refreshed(self, session: Session) -> frozenset[str] | None:
        """The user's role values as the provider gives them now (its refresh token exchanged
        and replaced); None when the session has no provider token (its roles stay); raises
        ProviderRefused when the provider no longer accepts the token (the session must end)."""
        stored = await self._upstream.load(session.tenant_id, session.sid)
        if stored is None:
            return None
        integration_id, refresh_token = stored
        party = await self._parties.of_tenant(session.tenant_id, integration_id)
        if party is None:
            raise ProviderRefused("integration_unavailable")
        identity = await party.refresh(refresh_token)
        if identity.user_key != session.sub:
            raise ProviderRefused("subject_changed")
        if identity.refresh_token and identity.refresh_token != refresh_token:
            await self._upstream.save(
                session.tenant_id, session.sid, integration_id, identity.refresh_token
            )
        return identity.values

    async def ended(self, tenant_id: UUID, sid: str) -> bool | None:
        """Revoke the session's provider token at the provider: True when it confirmed, None
        when the session held none."""
        stored = await self._upstream.delete(tenant_id, sid)
        if stored is None:
            return None
        integration_id, refresh_token = stored
        party = await self._parties.of_tenant(tenant_id, integration_id)
        if party is None:
            return False
        try:
            return await party.revoke(refresh_token)
        except ProviderRefused:
            return False

    # --- audit ----------------------------------------------------------------------------------

    def _federated(
        self,
        tenant_id: UUID,
        integration_id: UUID,
        kind: str,
        identity: ProviderIdentity,
        callback: Callback,
    ) -> FederatedIdentity:
        details: dict[str, Any] = {"issuer": identity.issuer, "provider_subject": identity.subject}
        if kind == "oauth":
            details["scopes"] = list(identity.scopes)
        return FederatedIdentity(
            tenant_id=tenant_id,
            integration_id=integration_id,
            auth_method=kind,
            subject=identity.user_key,
            username=identity.username,
            email=identity.email,
            name=identity.name,
            values=identity.values,
            ip=callback.ip,
            user_agent=callback.user_agent,
            details=details,
        )

    async def _refuse(
        self,
        tenant_id: UUID | None,
        integration_id: UUID,
        kind: str,
        refused: ProviderRefused,
        callback: Callback | None,
    ) -> None:
        identity = FederatedIdentity(
            tenant_id=tenant_id or SYSTEM_TENANT_ID,
            integration_id=integration_id,
            auth_method=kind,
            subject="",
            username="",
            ip=callback.ip if callback else "unknown",
            user_agent=callback.user_agent if callback else "",
            details=refused.details,
        )
        await self._sign_in.federated_refused(identity, refused.reason)
