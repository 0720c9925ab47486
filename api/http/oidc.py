"""OpenID Connect and OAuth 2.0 sign-in over HTTP: `GET /v1/auth/oidc/{integration_id}/login`
(redirects the browser to the provider) and `GET /v1/auth/oidc/callback` (the provider
redirects the browser back here; answers the service's tokens, or, for a sign-in started from
the web console with `return_to=/console/...`, puts them in the console's session cookie and
sends the browser to that console page).

Both take no bearer token (the edge lets them through) and no constitutional hash (a browser
follows redirects to them); every answer carries the hash all the same.
"""

from __future__ import annotations

from typing import Any
from uuid import UUID

from litestar import Controller, Request, Response, get
from litestar.datastructures import Cookie
from litestar.openapi import ResponseSpec
from litestar.params import Parameter
from litestar.response import Redirect

from api.console.landing import console_path, landing
from api.http import examples as ex
from api.http.identity import TokenResponse
from api.http.services import ApiServices
from commands.oidc_sign_in import Callback, browser_cookie
from domain.errors import ValidationFailed
from domain.sessions import SIGN_IN_REQUEST_TTL_SECONDS as SIGN_IN_SECONDS

CALLBACK_PATH = "/v1/auth/oidc/callback"
MAX_QUERY_VALUE = 2048


def _client(request: Request[Any, Any, Any]) -> tuple[str, str]:
    client = request.scope.get("client")
    ip = str(client[0]) if client else "unknown"
    return ip, request.headers.get("user-agent", "")[:500]


def _browser_cookie(
    request: Request[Any, Any, Any], state: str, value: str, max_age: int
) -> Cookie:
    return Cookie(
        key=browser_cookie(state),
        value=value,
        max_age=max_age,
        path=CALLBACK_PATH,
        httponly=True,
        secure=request.url.scheme == "https",
        samesite="lax",  # sent on the provider's top-level redirect back
    )


def _param(request: Request[Any, Any, Any], name: str) -> str | None:
    value = request.query_params.get(name)
    return None if value is None else str(value)[:MAX_QUERY_VALUE]


class OidcController(Controller):
    path = "/v1/auth/oidc"
    tags = ["authentication"]  # noqa: RUF012

    @get(
        "/{integration_id:uuid}/login",
        status_code=303,
        summary="Sign in with an OpenID Connect or OAuth 2.0 provider",
        description="Redirects the browser to the integration's provider (authorization code "
        "flow, PKCE S256, a state and a nonce bound to a one-time sign-in request that expires "
        "in 10 minutes, and to this browser by an HttpOnly cookie the callback checks). "
        "`return_to`, when given, must be a path of the web console (`/console/...`): the "
        "callback then signs the browser in to the console and sends it there. 404 "
        "NOT_FOUND when no enabled OIDC or OAuth integration has this id.",
        responses={
            303: ResponseSpec(None, description="To the provider's authorization endpoint"),
            **ex.refusals("NOT_FOUND", "INVALID_ASSERTION", "VALIDATION_ERROR"),
        },
    )
    async def login(
        self,
        request: Request[Any, Any, Any],
        integration_id: UUID,
        api: ApiServices,
        return_to: str | None = Parameter(query="return_to", default=None, max_length=2000),
    ) -> Redirect:
        local = console_path(return_to)
        if return_to is not None and local is None:
            raise ValidationFailed(
                "return_to: must be a path of the web console (/console/...)",
                {"fields": [{"field": "return_to", "message": "is not a console path"}]},
            )
        callback_url = str(request.base_url).rstrip("/") + CALLBACK_PATH
        started = await api.oidc.begin(
            integration_id, callback_url=callback_url, local_return=local
        )
        cookie = _browser_cookie(request, started.state, started.browser_key, SIGN_IN_SECONDS)
        return Redirect(path=started.url, status_code=303, cookies=[cookie])

    @get(
        "/callback",
        status_code=200,
        summary="The provider's answer to a sign-in",
        description="Query: state, code (or error), iss; the cookie the login set in this "
        "browser. The state is used once; the code is "
        "exchanged with the sign-in's PKCE verifier; the ID token is validated (issuer, "
        "audience, authorized party, expiry, not-before, issued-at, nonce, an allowed "
        "asymmetric algorithm). Any refusal is 401 INVALID_ASSERTION (the reason is audited); "
        "403 SIGN_IN_REFUSED when no role mapping matches and the tenant has no default role; "
        "503 DEPENDENCY_UNAVAILABLE when the provider cannot be reached. A sign-in started "
        "with a console `return_to`: 303 there, the tokens in the console's session cookie.",
        responses={
            200: ResponseSpec(TokenResponse, description="Signed in"),
            303: ResponseSpec(None, description="Signed in to the web console"),
            **ex.refusals("INVALID_ASSERTION", "SIGN_IN_REFUSED", "DEPENDENCY_UNAVAILABLE"),
        },
    )
    async def callback(self, request: Request[Any, Any, Any], api: ApiServices) -> Response[Any]:
        ip, agent = _client(request)
        state = _param(request, "state")
        signed_in = await api.oidc.complete(
            Callback(
                state=state,
                code=_param(request, "code"),
                error=_param(request, "error"),
                iss=_param(request, "iss"),
                ip=ip,
                user_agent=agent,
                browser_key=request.cookies.get(browser_cookie(state)) if state else None,
            )
        )
        spent = _browser_cookie(request, state or "", "", 0)  # the sign-in is over: forget it
        if signed_in.local_return is not None:  # started from the console: it holds the tokens
            return landing(request, signed_in.issued, signed_in.local_return, [spent])
        tokens = TokenResponse.of(signed_in.issued, api.constitutional_hash)
        return Response(tokens, cookies=[spent])
