"""SAML 2.0 sign-in over HTTP, one service provider per SAML integration:

- `GET /v1/auth/saml/{integration_id}/metadata`: the SP metadata to give the IdP;
- `GET /v1/auth/saml/{integration_id}/login?return_to=`: 303 to the IdP with a signed
  AuthnRequest (HTTP-Redirect); `return_to` must be on the integration's allow-list, or a path
  of this service's web console (`/console/...`: the browser lands there signed in to the
  console, the tokens in its session cookie);
- `POST /v1/auth/saml/acs` (form: `SAMLResponse`, `RelayState`): the assertion consumer; the
  service's tokens as JSON, or, when the sign-in has a return URL, 303 to it with the tokens in
  the URL fragment (never sent to a server);
- `GET /v1/auth/saml/{integration_id}/slo`: the IdP's LogoutRequest (the sessions it names end;
  303 back to the IdP with our answer) or its answer to ours;
- `POST /v1/auth/saml/{integration_id}/slo` with the session's bearer token: SP-initiated
  logout; the session ends at once, `redirect_url` asks the IdP to end its own.

These routes take no bearer token (a browser or an IdP calls them), except POST .../slo, whose
token the edge checks like any other; no constitutional hash in the body; every answer
carries it.
"""

from __future__ import annotations

from typing import Any
from urllib.parse import urlencode
from uuid import UUID

import msgspec
from litestar import Controller, MediaType, Request, Response, get, post
from litestar.datastructures import Cookie
from litestar.openapi import ResponseSpec
from litestar.params import Parameter
from litestar.response import Redirect

from api.console.landing import console_path, landing
from api.http import examples as ex
from api.http.auth import principal_from_scope
from api.http.identity import TokenResponse, _client
from api.http.services import ApiServices
from api.saml import SAML_PREFIX
from commands.saml_sign_in import BINDING_COOKIE as BINDING
from commands.saml_sign_in import Client
from commands.sign_in import AssertionRejected
from domain.errors import ValidationFailed

MAX_FORM_FIELD = 300_000
MAX_RELAY_STATE = 2000


class SamlLogoutResponse(msgspec.Struct, kw_only=True):
    session_ended: bool
    redirect_url: str | None
    constitutional_hash: str


class SamlLoggedOut(msgspec.Struct, kw_only=True):
    logged_out: bool
    constitutional_hash: str


def _base_url(request: Request[Any, Any, Any]) -> str:
    """The service's URL as the browser and the IdP reach it (the ACS and SLO URLs follow)."""
    return str(request.base_url).rstrip("/")


def _binding(name: str, value: str, base_url: str, max_age: int) -> Cookie:
    """The cookie binding a sign-in to its browser: sent only to the ACS. Over HTTPS it goes
    with the IdP's cross-site form post (SameSite=None; Secure); over plain HTTP (a local
    setup) browsers refuse SameSite=None without Secure, so it is Lax there."""
    secure = base_url.startswith("https://")
    return Cookie(
        key=name,
        value=value,
        path=f"{SAML_PREFIX}/acs",
        max_age=max_age,
        httponly=True,
        secure=secure,
        samesite="none" if secure else "lax",
    )


def _who(request: Request[Any, Any, Any]) -> Client:
    ip, agent = _client(request)
    return Client(ip, agent)


class SamlController(Controller):
    path = "/v1/auth/saml"
    tags = ["authentication"]  # noqa: RUF012

    @get(
        "/{integration_id:uuid}/metadata",
        summary="The SAML service provider's metadata",
        description="The SP metadata of this SAML integration (entity id, ACS and SLO URLs, the "
        "SP certificate when configured), signed when an SP key is configured. 404 when the "
        "integration is not an enabled SAML integration.",
        media_type="application/samlmetadata+xml",
        responses=ex.refusals("NOT_FOUND"),
    )
    async def metadata(
        self, request: Request[Any, Any, Any], integration_id: UUID, api: ApiServices
    ) -> Response[str]:
        xml = await api.saml.metadata(integration_id, _base_url(request))
        return Response(xml, media_type="application/samlmetadata+xml")

    @get(
        "/{integration_id:uuid}/login",
        summary="Start a SAML sign-in (SP-initiated)",
        description="303 to the IdP with a signed AuthnRequest (HTTP-Redirect binding). "
        "`return_to`, when given, must be one of the integration's allowed_redirect_urls (or "
        "start with one ending in /), or a path of the web console (`/console/...`), where "
        "the browser then lands signed in to the console. The request is remembered for 10 "
        "minutes and answered once.",
        status_code=303,
        responses=ex.refusals("VALIDATION_ERROR", "NOT_FOUND"),
    )
    async def login(
        self,
        request: Request[Any, Any, Any],
        integration_id: UUID,
        api: ApiServices,
        return_to: str | None = Parameter(query="return_to", default=None, max_length=2000),
    ) -> Redirect:
        base = _base_url(request)
        local = None
        if return_to is not None and return_to.startswith("/"):
            local = console_path(return_to)
            if local is None:
                raise ValidationFailed(
                    "return_to: is not an allowed return URL of this integration",
                    {"fields": [{"field": "return_to", "message": "is not a console path"}]},
                )
            return_to = None
        url, name, value = await api.saml.login(integration_id, return_to, base, local_return=local)
        return Redirect(url, status_code=303, cookies=[_binding(name, value, base, 600)])

    @post(
        "/acs",
        summary="The SAML assertion consumer",
        description="Form post (application/x-www-form-urlencoded) of the IdP's SAMLResponse "
        "(and RelayState). Any refused or missing response is 401 INVALID_ASSERTION (the "
        "reason is in the audit log); 403 SIGN_IN_REFUSED when "
        "no role is mapped and the tenant has no default role. Signed in: the service's tokens "
        "as JSON, or 303 to the sign-in's return URL with them in the fragment.",
        status_code=200,
        responses={
            200: ResponseSpec(TokenResponse, description="Signed in"),
            **ex.refusals("VALIDATION_ERROR", "INVALID_ASSERTION", "SIGN_IN_REFUSED"),
        },
    )
    async def acs(self, request: Request[Any, Any, Any], api: ApiServices) -> Any:
        form = await request.form()
        message = form.get("SAMLResponse")
        relay = form.get("RelayState")
        if not isinstance(message, str) or not message:
            raise AssertionRejected("no_message")  # nothing from an IdP to accept
        if relay is not None and (not isinstance(relay, str) or len(relay) > MAX_RELAY_STATE):
            raise ValidationFailed(
                f"RelayState: must be at most {MAX_RELAY_STATE} characters",
                {"fields": [{"field": "RelayState", "message": "too long"}]},
            )
        base = _base_url(request)
        signed_in = await api.saml.consume(
            message, relay if isinstance(relay, str) else None, base, _who(request),
            request.cookies,
        )  # fmt: skip
        tokens = TokenResponse.of(signed_in.issued, api.constitutional_hash)
        used = [_binding(name, "", base, 0) for name in request.cookies if name.startswith(BINDING)]
        if signed_in.local_return is not None:  # started from the console: it holds the tokens
            return landing(request, signed_in.issued, signed_in.local_return, used)
        if signed_in.return_to is None:
            return Response(tokens, cookies=used)
        fragment = urlencode(
            {
                "access_token": tokens.access_token,
                "refresh_token": tokens.refresh_token,
                "token_type": tokens.token_type,
                "expires_in": tokens.expires_in,
            }
        )
        return Redirect(f"{signed_in.return_to}#{fragment}", status_code=303, cookies=used)

    @get(
        "/{integration_id:uuid}/slo",
        summary="SAML single logout from the IdP",
        description="HTTP-Redirect binding. A LogoutRequest from the IdP ends the sessions of "
        "its NameID (and SessionIndex) and is answered with a 303 to the IdP; a LogoutResponse "
        "answers our LogoutRequest (query: SAMLRequest or SAMLResponse, RelayState, SigAlg, "
        "Signature). 401 INVALID_ASSERTION when refused or when there is no message.",
        responses={
            200: ResponseSpec(SamlLoggedOut, description="The IdP confirmed our logout"),
            **ex.refusals("INVALID_ASSERTION", "NOT_FOUND", "VALIDATION_ERROR"),
        },
    )
    async def idp_slo(
        self,
        request: Request[Any, Any, Any],
        integration_id: UUID,
        api: ApiServices,
        saml_request: str | None = Parameter(query="SAMLRequest", default=None),
        saml_response: str | None = Parameter(query="SAMLResponse", default=None),
        relay_state: str | None = Parameter(query="RelayState", default=None),
        sig_alg: str | None = Parameter(query="SigAlg", default=None),
        signature: str | None = Parameter(query="Signature", default=None),
    ) -> Any:
        given = {
            "SAMLRequest": saml_request,
            "SAMLResponse": saml_response,
            "RelayState": relay_state,
            "SigAlg": sig_alg,
            "Signature": signature,
        }
        query = {k: v for k, v in given.items() if v is not None}
        if any(len(v) > MAX_FORM_FIELD for v in query.values()):
            raise AssertionRejected("oversized")
        base, who = _base_url(request), _who(request)
        if "SAMLRequest" in query:
            url = await api.saml.idp_logout(integration_id, query, base, who)
            return Redirect(url, status_code=303)
        if "SAMLResponse" in query:
            await api.saml.logout_done(integration_id, query, base, who)
            return SamlLoggedOut(logged_out=True, constitutional_hash=api.constitutional_hash)
        raise AssertionRejected("no_message")  # nothing from an IdP to accept

    @post(
        "/{integration_id:uuid}/slo",
        summary="SAML single logout, started here",
        description="With the session's bearer token: the session ends at once (refresh "
        "tokens now, access tokens within a second everywhere); `redirect_url` is the IdP's "
        "logout URL with a signed LogoutRequest (null when the IdP has no SLO endpoint).",
        status_code=200,
        responses={
            200: ResponseSpec(SamlLogoutResponse, description="Logged out here"),
            **ex.refusals("NOT_FOUND"),
        },
        media_type=MediaType.JSON,
        security=[{"BearerToken": []}],
    )
    async def sp_slo(
        self, request: Request[Any, Any, Any], integration_id: UUID, api: ApiServices
    ) -> SamlLogoutResponse:
        principal = principal_from_scope(request.scope)  # the edge checked the bearer token
        ended, url = await api.saml.logout(
            integration_id,
            principal.tenant_id,
            principal.sid,
            principal.sub,
            _base_url(request),
            _who(request),
        )
        return SamlLogoutResponse(
            session_ended=ended, redirect_url=url, constitutional_hash=api.constitutional_hash
        )
