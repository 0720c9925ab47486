"""Sign-in sessions: what a session is, and the refusals of a refresh.

A session is the family of refresh tokens one sign-in starts. Each refresh token is used once:
using it returns a new one (rotation). Presenting a token that was already used means someone
holds a copy, so the whole family is revoked (`RefreshReused`). Refresh tokens are opaque to the
client; `<tenant id hex>.<random>` so the service finds the tenant, stored only as a hash.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from uuid import UUID

from domain.errors import DomainError
from domain.maci import MaciRole

ACCESS_TTL_SECONDS = 15 * 60
REFRESH_TTL_SECONDS = 8 * 3600


@dataclass(frozen=True)
class Session:
    sid: str
    tenant_id: UUID
    sub: str
    auth_method: str
    integration_id: UUID | None
    user_dn: str | None
    roles: tuple[MaciRole, ...]
    expires_at: datetime


class RefreshRejected(DomainError):
    """Unknown, expired, or revoked refresh token (one message for all)."""

    code = "INVALID_TOKEN"

    def __init__(self) -> None:
        super().__init__("the refresh token is not valid")


class RefreshReused(RefreshRejected):
    """A refresh token used a second time: its whole session was revoked."""

    def __init__(self, session: Session) -> None:
        super().__init__()
        self.session = session


SIGN_IN_REQUEST_TTL_SECONDS = 600


@dataclass(frozen=True)
class PendingSignIn:
    """A browser sign-in waiting for the identity provider's answer (a SAML AuthnRequest, an
    OIDC authorization request): where it started, and what was sent (`payload`)."""

    request_id: str
    tenant_id: UUID
    integration_id: UUID
    kind: str
    payload: dict[str, object]
    expires_at: datetime


def tenant_of_request(request_id: str) -> UUID | None:
    """The tenant a sign-in request id names (`_<tenant id hex><40 hex>`), None if malformed.
    The id is a valid XML `ID` and URL-safe, so it can be a SAML request id or an OIDC state."""
    if len(request_id) != 73 or request_id[0] != "_":
        return None
    try:
        int(request_id[1:], 16)
        return UUID(hex=request_id[1:33])
    except ValueError:
        return None
