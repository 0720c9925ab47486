"""Who is signed in to the console: the session cookie's access token, verified exactly as the
edge verifies a bearer token (signature, expiry, revocation, the tenant being active). An
expired access token of a directory sign-in is exchanged once through the refresh-token
rotation; the new tokens go back in the cookie."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from litestar import Request

from api.console.session import COOKIE, ConsoleSession
from api.http.auth import authenticate
from api.http.services import ApiServices
from commands.context import Principal
from domain.errors import DomainError


@dataclass(frozen=True)
class SignedIn:
    principal: Principal
    session: ConsoleSession
    refreshed: bool  # the cookie must be written again


def client_of(request: Request[Any, Any, Any]) -> tuple[str, str]:
    client = request.scope.get("client")
    ip = str(client[0]) if client else "unknown"
    return ip, request.headers.get("user-agent", "")[:500]


def session_of(request: Request[Any, Any, Any]) -> ConsoleSession | None:
    return ConsoleSession.decode(request.cookies.get(COOKIE))


async def verified(api: ApiServices, token: str) -> Principal | None:
    try:
        principal = authenticate(api.verifier, b"Bearer " + token.encode())
    except DomainError:
        return None
    if await api.revocations.is_revoked(principal.sid, principal.jti):
        return None
    limits = await api.directory.limits(principal.tenant_id)
    if limits is None or not limits.active:
        return None
    return principal


async def signed_in(api: ApiServices, request: Request[Any, Any, Any]) -> SignedIn | None:
    session = session_of(request)
    if session is None or session.access_token is None:
        return None
    principal = await verified(api, session.access_token)
    if principal is not None:
        return SignedIn(principal, session, refreshed=False)
    if session.refresh_token is None:
        return None
    ip, agent = client_of(request)
    try:
        issued = await api.sign_in.refresh(session.refresh_token, ip=ip, user_agent=agent)
    except DomainError:
        return None
    renewed = ConsoleSession(session.seed, issued.access_token, issued.refresh_token)
    principal = await verified(api, issued.access_token)
    return None if principal is None else SignedIn(principal, renewed, refreshed=True)
