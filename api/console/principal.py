"""Who is signed in to the console: the session cookie's access token, verified exactly as the
edge verifies a bearer token (signature, expiry, revocation, the tenant being active). An
expired access token of a directory sign-in is exchanged once through the refresh-token
rotation; the new tokens go back in the cookie.

A page often sends several requests at once (htmx fragments, the usage poll): when they all find
the access token expired they all carry the same refresh token, and presenting it twice is what
reuse detection takes for theft, ending the session. So the requests of one process that present
the same refresh token within REFRESH_GRACE_SECONDS share one rotation and its new tokens
(`SharedRefreshes`); a second process serving the same browser is not covered."""

from __future__ import annotations

import asyncio
import hashlib
import time
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from typing import Any

from litestar import Request

from api.console.session import COOKIE, ConsoleSession
from api.http.auth import authenticate
from api.http.services import ApiServices
from commands.context import Principal
from commands.sign_in import Issued
from domain.errors import DomainError

REFRESH_GRACE_SECONDS = 10.0


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


class SharedRefreshes:
    """One rotation per refresh token within the grace period: the first request runs it, the
    others that present the same token meanwhile (or up to REFRESH_GRACE_SECONDS after) get its
    outcome, tokens or refusal. Entries are keyed by the token's digest and dropped once old."""

    def __init__(self, grace_seconds: float = REFRESH_GRACE_SECONDS) -> None:
        self.grace_seconds = grace_seconds
        self._outcomes: dict[str, tuple[float, asyncio.Future[Issued]]] = {}

    async def refresh(self, refresh_token: str, rotate: Callable[[], Awaitable[Issued]]) -> Issued:
        now = time.monotonic()
        for key in [k for k, (until, _) in self._outcomes.items() if until < now]:
            del self._outcomes[key]
        key = hashlib.sha256(refresh_token.encode()).hexdigest()
        shared = self._outcomes.get(key)
        if shared is not None:
            return await asyncio.shield(shared[1])
        outcome: asyncio.Future[Issued] = asyncio.get_running_loop().create_future()
        self._outcomes[key] = (now + self.grace_seconds, outcome)
        try:
            issued = await rotate()
        except asyncio.CancelledError:
            del self._outcomes[key]  # not an outcome: the next request rotates
            outcome.cancel()
            raise
        except Exception as refused:
            outcome.set_exception(refused)
            outcome.exception()  # retrieved: nobody else may be waiting for it
            raise
        outcome.set_result(issued)
        return issued


_REFRESHES = SharedRefreshes()
_KNOWN = "console_signed_in"  # the request's answer, kept in its scope's state


def known_signed_in(request: Request[Any, Any, Any]) -> SignedIn | None:
    """Who `signed_in` found for this request, if it was asked (never verifies anything)."""
    found: SignedIn | None = request.scope.get("state", {}).get(_KNOWN)
    return found


async def signed_in(api: ApiServices, request: Request[Any, Any, Any]) -> SignedIn | None:
    """The request's principal, found once per request: a second call (the admission check,
    then the page) gets the same answer, so an expired token is refreshed only once."""
    state = request.scope.setdefault("state", {})
    if _KNOWN not in state:
        state[_KNOWN] = await _signed_in(api, request)
    found: SignedIn | None = state[_KNOWN]
    return found


async def _signed_in(api: ApiServices, request: Request[Any, Any, Any]) -> SignedIn | None:
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
        issued = await _REFRESHES.refresh(
            session.refresh_token,
            lambda: api.sign_in.refresh(session.refresh_token or "", ip=ip, user_agent=agent),
        )
    except DomainError:
        return None
    renewed = ConsoleSession(session.seed, issued.access_token, issued.refresh_token)
    principal = await verified(api, issued.access_token)
    return None if principal is None else SignedIn(principal, renewed, refreshed=True)
