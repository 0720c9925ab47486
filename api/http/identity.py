"""Sign-in and sessions over HTTP: `POST /v1/auth/ldap/login`, `POST /v1/auth/token/refresh`,
`POST /v1/auth/logout`, `GET /v1/auth/me`.

Login and refresh take no bearer token (the edge lets exactly these two through) and no
constitutional hash in the body (an identity provider or a browser posts to them); every answer
carries the hash all the same. Logout and "me" need the session's access token.
"""

from __future__ import annotations

from typing import Annotated, Any
from uuid import UUID

import msgspec
from litestar import Controller, Request, get, post
from litestar.openapi import ResponseSpec
from msgspec import UNSET, UnsetType

from api.http import examples as ex
from api.http.dto import documented
from api.http.services import ApiServices
from commands.context import Principal
from commands.sign_in import Attempt, Issued
from domain.errors import ValidationFailed

MAX_FIELD = 256
MAX_PASSWORD = 1024


# (that no string holds a NUL is stated for every body by api/http/openapi.py)
Field = Annotated[str, documented(maxLength=MAX_FIELD)]


class LoginRequest(msgspec.Struct, forbid_unknown_fields=True, kw_only=True):
    tenant_slug: Field
    username: Field  # a user name or an email address
    password: Annotated[str, documented(maxLength=MAX_PASSWORD)]
    integration_id: UUID | UnsetType = UNSET
    constitutional_hash: str | UnsetType = UNSET  # accepted, not required

    def __repr__(self) -> str:  # never the password
        return f"LoginRequest({self.tenant_slug!r}, {self.username!r})"


class RefreshRequest(msgspec.Struct, forbid_unknown_fields=True, kw_only=True):
    refresh_token: str
    constitutional_hash: str | UnsetType = UNSET


class TokenResponse(msgspec.Struct, kw_only=True):
    access_token: str
    refresh_token: str
    token_type: str
    expires_in: int
    maci_roles: list[str]
    maci_role: str
    constitutional_hash: str

    @classmethod
    def of(cls, issued: Issued, constitutional_hash: str) -> TokenResponse:
        return cls(
            access_token=issued.access_token,
            refresh_token=issued.refresh_token,
            token_type="Bearer",  # noqa: S106 - the token type, not a secret
            expires_in=issued.expires_in,
            maci_roles=[r.value for r in issued.roles],
            maci_role=issued.roles[0].value,
            constitutional_hash=constitutional_hash,
        )


class LogoutResponse(msgspec.Struct, kw_only=True):
    session_ended: bool
    constitutional_hash: str


class Me(msgspec.Struct, kw_only=True):
    sub: str
    tenant_id: UUID
    maci_roles: list[str]
    maci_role: str | None
    auth_method: str
    sid: str
    is_platform: bool
    constitutional_hash: str


def _client(request: Request[Any, Any, Any]) -> tuple[str, str]:
    client = request.scope.get("client")
    ip = str(client[0]) if client else "unknown"
    return ip, request.headers.get("user-agent", "")[:500]


def _check_lengths(data: LoginRequest) -> None:
    problems = [
        {"field": name, "message": f"must be at most {limit} characters"}
        for name, value, limit in (
            ("tenant_slug", data.tenant_slug, MAX_FIELD),
            ("username", data.username, MAX_FIELD),
            ("password", data.password, MAX_PASSWORD),
        )
        if len(value) > limit
    ]
    if problems:
        summary = "; ".join(f"{p['field']}: {p['message']}" for p in problems)
        raise ValidationFailed(summary, {"fields": problems})


class PublicAuthController(Controller):
    """The two routes that take no bearer token (served outside the secured /v1 router)."""

    path = "/v1/auth"
    tags = ["authentication"]  # noqa: RUF012

    @post(
        "/ldap/login",
        status_code=200,
        summary="Sign in with a directory password",
        description="tenant_slug, username (or email), password, and integration_id when the "
        "tenant has several LDAP integrations (default: the first enabled one by name). Any "
        'failure is 401 INVALID_CREDENTIALS with one message; 403 FORBIDDEN ("no role is '
        'mapped for this user") after a right password when no role mapping matches and the '
        "tenant's default_role is none; 503 DEPENDENCY_UNAVAILABLE when the directory cannot be "
        "reached; 429 RATE_LIMITED with Retry-After after 5 failures per account (50 per "
        "address) within a minute.",
        responses={
            200: ResponseSpec(TokenResponse, description="Signed in"),
            **ex.refusals(
                "VALIDATION_ERROR", "INVALID_CREDENTIALS", "FORBIDDEN", "DEPENDENCY_UNAVAILABLE"
            ),
        },
    )
    async def ldap_login(
        self, request: Request[Any, Any, Any], data: LoginRequest, api: ApiServices
    ) -> TokenResponse:
        _check_lengths(data)
        ip, agent = _client(request)
        attempt = Attempt(
            tenant_slug=data.tenant_slug,
            username=data.username,
            password=data.password,
            integration_id=None if data.integration_id is UNSET else data.integration_id,
            ip=ip,
            user_agent=agent,
        )
        issued = await api.sign_in.login(attempt)
        return TokenResponse.of(issued, api.constitutional_hash)

    @post(
        "/token/refresh",
        status_code=200,
        summary="Exchange a refresh token for new tokens",
        description="The refresh token is used once and replaced (rotation); presenting a used "
        "one ends the whole session. Groups are read again from the directory and roles "
        "resolved again.",
        responses={
            200: ResponseSpec(TokenResponse, description="Refreshed"),
            **ex.refusals("VALIDATION_ERROR"),
        },
    )
    async def refresh(
        self, request: Request[Any, Any, Any], data: RefreshRequest, api: ApiServices
    ) -> TokenResponse:
        ip, agent = _client(request)
        issued = await api.sign_in.refresh(data.refresh_token, ip=ip, user_agent=agent)
        return TokenResponse.of(issued, api.constitutional_hash)


class AuthController(Controller):
    path = "/auth"
    tags = ["authentication"]  # noqa: RUF012

    @post(
        "/logout",
        status_code=200,
        summary="End the session",
        description="Ends the session of the access token: its refresh tokens stop working at "
        "once, its access tokens within a second in every API process.",
        responses=ex.refusals(),
    )
    async def logout(
        self, request: Request[Any, Any, Any], principal: Principal, api: ApiServices
    ) -> LogoutResponse:
        ip, agent = _client(request)
        ended = await api.sign_in.logout(
            principal.tenant_id, principal.sid, principal.sub, ip=ip, user_agent=agent,
            auth_method=principal.auth_method,
        )  # fmt: skip
        return LogoutResponse(session_ended=ended, constitutional_hash=api.constitutional_hash)

    @get("/me", summary="The caller as the service sees it", responses=ex.refusals())
    async def me(self, principal: Principal, api: ApiServices) -> Me:
        primary = principal.roles[0] if principal.roles else None
        return Me(
            sub=principal.sub,
            tenant_id=principal.tenant_id,
            maci_roles=[r.value for r in principal.roles],
            maci_role=primary.value if primary else None,
            auth_method=principal.auth_method,
            sid=principal.sid,
            is_platform=principal.is_platform,
            constitutional_hash=api.constitutional_hash,
        )
