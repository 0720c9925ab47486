"""The OpenID Connect / OAuth 2.0 relying party of one integration (authlib's client over httpx,
joserfc for the ID token): it builds the authorization request, exchanges the code, validates
the ID token, reads userinfo, refreshes and revokes the provider's tokens.

The provider's metadata comes from discovery (its `issuer` must equal the configured issuer)
or, for a plain OAuth 2.0 provider, from the configured endpoints. Every request to the provider
has the integration's timeout and follows no redirect. Authorization requests always carry PKCE
(S256 only) and, for OpenID Connect, a nonce.

What the provider says is turned into a `ProviderIdentity`: OpenID Connect users are named by
(`iss`, `sub`) (the ID token's; userinfo must name the same `sub`), plain OAuth users by the
userinfo `sub` (or `id`) under the integration's issuer or authorization endpoint. An email is
a profile fact, never an identity. Role values: the groups claim (OpenID Connect) or the
granted scopes (OAuth).
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any, Self
from uuid import UUID

import httpx
import httpx2
from authlib.common.errors import AuthlibBaseError
from authlib.integrations.httpx_client import AsyncOAuth2Client

from domain.errors import DependencyUnavailable
from domain.provider_identity import ProviderIdentity, ProviderRefused
from infra.oidc.discovery import discovery_url
from infra.oidc.id_token import IdTokenRejected, IdTokenRules, validate_id_token
from infra.oidc.jwks import JwksCache
from infra.oidc.tls import provider_tls

METADATA_SECONDS = 3600.0
# authlib's client runs on httpx2, our own requests on httpx: the errors of both
TRANSPORT_ERRORS = (httpx.TransportError, httpx2.TransportError)
HTTP_ERRORS = (httpx.HTTPError, httpx2.HTTPError)


MAX_RESPONSE_BYTES = 256 * 1024


@dataclass(frozen=True)
class RelyingPartySettings:
    integration_id: UUID
    kind: str  # "oidc" or "oauth"
    client_id: str
    client_secret: str | None
    scopes: tuple[str, ...]
    claim_map: dict[str, str]
    algorithms: tuple[str, ...]
    timeout: float
    issuer: str | None = None
    discovery: str | None = None
    authorization_url: str | None = None
    token_url: str | None = None
    userinfo_url: str | None = None
    redirect_uri: str | None = None

    @classmethod
    def from_config(cls, integration_id: UUID, kind: str, config: dict[str, Any]) -> Self:
        scopes = tuple(config.get("scopes") or ())
        if kind == "oidc" and "openid" not in scopes:
            scopes = ("openid", *scopes)
        return cls(
            integration_id=integration_id,
            kind=kind,
            client_id=str(config["client_id"]),
            client_secret=config.get("client_secret") or None,
            scopes=scopes,
            claim_map=dict(config.get("claim_map") or {}),
            algorithms=tuple(config.get("allowed_id_token_algorithms") or ("RS256",)),
            timeout=float(config.get("timeout_seconds", 5)),
            issuer=(str(config["issuer"]).rstrip("/") or None) if config.get("issuer") else None,
            discovery=discovery_url(config),
            authorization_url=config.get("authorization_url"),
            token_url=config.get("token_url"),
            userinfo_url=config.get("userinfo_url"),
            redirect_uri=config.get("redirect_uri"),
        )


@dataclass(frozen=True)
class ProviderMetadata:
    issuer: str
    authorization_endpoint: str
    token_endpoint: str
    userinfo_endpoint: str | None
    jwks_uri: str | None
    revocation_endpoint: str | None


@dataclass
class RelyingParty:
    settings: RelyingPartySettings
    clock: Callable[[], float] = time.time
    _metadata: tuple[float, ProviderMetadata] | None = field(default=None, init=False)
    _jwks: JwksCache | None = field(default=None, init=False)
    _lock: asyncio.Lock = field(default_factory=asyncio.Lock, init=False)

    @property
    def integration_id(self) -> UUID:
        return self.settings.integration_id

    @property
    def kind(self) -> str:
        return self.settings.kind

    @property
    def redirect_uri(self) -> str | None:
        return self.settings.redirect_uri

    # --- the provider's metadata ------------------------------------------------------------

    async def metadata(self) -> ProviderMetadata:
        cached = self._metadata
        if cached is not None and time.monotonic() - cached[0] < METADATA_SECONDS:
            return cached[1]
        async with self._lock:
            cached = self._metadata
            if cached is not None and time.monotonic() - cached[0] < METADATA_SECONDS:
                return cached[1]
            found = await self._discover()
            self._metadata = (time.monotonic(), found)
            if found.jwks_uri is not None and (
                self._jwks is None or self._jwks.jwks_uri != found.jwks_uri
            ):
                self._jwks = JwksCache(found.jwks_uri, timeout=self.settings.timeout)
            return found

    async def _discover(self) -> ProviderMetadata:
        s = self.settings
        if s.discovery is None:  # plain OAuth with configured endpoints
            if not (s.authorization_url and s.token_url):
                raise ProviderRefused("provider_unconfigured")
            origin = httpx.URL(s.authorization_url)
            return ProviderMetadata(
                s.issuer or f"{origin.scheme}://{origin.host}",
                s.authorization_url, s.token_url, s.userinfo_url, None, None,
            )  # fmt: skip
        document = await self._get_json(s.discovery, "discovery_failed")
        issuer = str(document.get("issuer", "")).rstrip("/")
        if s.issuer is not None and issuer != s.issuer:
            raise ProviderRefused("discovery_issuer_mismatch")
        try:
            return ProviderMetadata(
                issuer=str(document["issuer"]),
                authorization_endpoint=str(document["authorization_endpoint"]),
                token_endpoint=str(document["token_endpoint"]),
                userinfo_endpoint=s.userinfo_url or document.get("userinfo_endpoint"),
                jwks_uri=document.get("jwks_uri"),
                revocation_endpoint=document.get("revocation_endpoint"),
            )
        except KeyError:
            raise ProviderRefused("discovery_incomplete") from None

    # --- the flow -----------------------------------------------------------------------------

    async def authorization_url(
        self, *, redirect_uri: str, state: str, nonce: str, code_verifier: str
    ) -> str:
        meta = await self.metadata()
        extra = {"nonce": nonce} if self.kind == "oidc" else {}
        async with self._client(redirect_uri) as client:
            url, _ = client.create_authorization_url(
                meta.authorization_endpoint, state=state, code_verifier=code_verifier, **extra
            )
        return str(url)

    async def identify(
        self, *, code: str, redirect_uri: str, code_verifier: str, nonce: str, iss: str | None
    ) -> ProviderIdentity:
        meta = await self.metadata()
        if iss is not None and iss != meta.issuer:  # a mix-up: another provider answered
            raise ProviderRefused("issuer_mismatch")
        async with self._client(redirect_uri) as client:
            try:
                tokens = await client.fetch_token(
                    meta.token_endpoint,
                    grant_type="authorization_code",
                    code=code,
                    code_verifier=code_verifier,
                )
            except TRANSPORT_ERRORS:
                raise _unreachable() from None
            except (AuthlibBaseError, *HTTP_ERRORS, ValueError) as exc:
                raise ProviderRefused("code_exchange_failed", _error_of(exc)) from None
        return await self._identity(meta, dict(tokens), nonce)

    async def refresh(self, refresh_token: str) -> ProviderIdentity:
        """Exchange the provider's refresh token; the user's claims as the provider gives them
        now (ProviderRefused when the provider no longer accepts the token)."""
        meta = await self.metadata()
        async with self._client(None) as client:
            try:
                tokens = await client.refresh_token(
                    meta.token_endpoint, refresh_token=refresh_token
                )
            except TRANSPORT_ERRORS:
                raise _unreachable() from None
            except (AuthlibBaseError, *HTTP_ERRORS, ValueError) as exc:
                raise ProviderRefused("refresh_failed", _error_of(exc)) from None
        tokens = dict(tokens)
        tokens.setdefault("refresh_token", refresh_token)
        return await self._identity(meta, tokens, None)

    async def revoke(self, refresh_token: str) -> bool:
        """Revoke the provider's refresh token (RFC 7009); False when it has no revocation
        endpoint or did not answer 200."""
        meta = await self.metadata()
        if meta.revocation_endpoint is None:
            return False
        async with self._client(None) as client:
            try:
                response = await client.revoke_token(
                    meta.revocation_endpoint,
                    token=refresh_token,
                    token_type_hint="refresh_token",  # noqa: S106
                )
            except HTTP_ERRORS:
                return False
        return bool(response.status_code == 200)

    # --- what the provider says ---------------------------------------------------------------

    async def _identity(
        self, meta: ProviderMetadata, tokens: dict[str, Any], nonce: str | None
    ) -> ProviderIdentity:
        s = self.settings
        claims: dict[str, Any] = {}
        if s.kind == "oidc" and nonce is not None:  # a sign-in (a refresh trusts userinfo)
            id_token = tokens.get("id_token")
            if not isinstance(id_token, str) or self._jwks is None:
                raise ProviderRefused("id_token_missing")
            claims = await self._validated(meta, id_token, nonce)
        access_token = tokens.get("access_token")
        if meta.userinfo_endpoint and isinstance(access_token, str):
            info = await self._get_json(meta.userinfo_endpoint, "userinfo_failed", access_token)
            if claims and info.get("sub") != claims["sub"]:
                raise ProviderRefused("userinfo_subject_mismatch")
            claims = {**info, **claims}
        subject = claims.get("sub", claims.get("id"))
        if subject is None or str(subject) == "":
            raise ProviderRefused("subject_missing")
        scopes = str(tokens.get("scope") or " ".join(s.scopes)).split()
        values = frozenset(scopes) if s.kind == "oauth" else _strings(claims, s.claim_map, "groups")
        username = _first(claims, s.claim_map.get("username"), "preferred_username", "login")
        return ProviderIdentity(
            issuer=str(claims.get("iss", meta.issuer)),
            subject=str(subject),
            username=username or str(subject),
            email=_first(claims, s.claim_map.get("email"), "email"),
            name=_first(claims, s.claim_map.get("name"), "name"),
            values=values,
            refresh_token=tokens.get("refresh_token"),
            scopes=tuple(scopes),
        )

    async def _validated(self, meta: ProviderMetadata, id_token: str, nonce: str) -> dict[str, Any]:
        assert self._jwks is not None
        rules = IdTokenRules(meta.issuer, self.settings.client_id, self.settings.algorithms)
        jwks = self._jwks
        try:
            return await asyncio.to_thread(validate_id_token, id_token, rules, jwks, nonce=nonce)
        except IdTokenRejected as rejected:
            raise ProviderRefused(f"id_token_{rejected.reason}") from None

    def _client(self, redirect_uri: str | None) -> AsyncOAuth2Client:
        s = self.settings
        return AsyncOAuth2Client(
            client_id=s.client_id,
            client_secret=s.client_secret,
            token_endpoint_auth_method="client_secret_basic" if s.client_secret else "none",
            revocation_endpoint_auth_method="client_secret_basic" if s.client_secret else "none",
            scope=" ".join(s.scopes),
            redirect_uri=redirect_uri,
            code_challenge_method="S256",
            verify=provider_tls(),
            timeout=s.timeout,
            follow_redirects=False,
        )

    async def _get_json(self, url: str, reason: str, bearer: str | None = None) -> dict[str, Any]:
        headers = {"Authorization": f"Bearer {bearer}"} if bearer else {}
        try:
            async with httpx.AsyncClient(
                timeout=self.settings.timeout, verify=provider_tls()
            ) as client:
                response = await client.get(url, headers=headers)
            if response.status_code != 200 or len(response.content) > MAX_RESPONSE_BYTES:
                raise ProviderRefused(reason, {"status": response.status_code})
            value = response.json()
        except TRANSPORT_ERRORS:
            raise _unreachable() from None
        except (httpx.HTTPError, ValueError):
            raise ProviderRefused(reason) from None
        if not isinstance(value, dict):
            raise ProviderRefused(reason)
        return value


def _unreachable() -> DependencyUnavailable:
    return DependencyUnavailable("the identity provider cannot be reached")


def _error_of(exc: Exception) -> dict[str, Any]:
    error = getattr(exc, "error", None)
    return {"provider_error": str(error)[:100]} if error else {"error_type": type(exc).__name__}


def _first(claims: dict[str, Any], *names: str | None) -> str | None:
    for name in names:
        if name and isinstance(claims.get(name), str) and claims[name]:
            return str(claims[name])
    return None


def _strings(claims: dict[str, Any], claim_map: dict[str, str], prop: str) -> frozenset[str]:
    value = claims.get(claim_map.get(prop, prop))
    if isinstance(value, str):
        return frozenset({value})
    if isinstance(value, list):
        return frozenset(v for v in value if isinstance(v, str) and v)
    return frozenset()
