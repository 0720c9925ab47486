"""Issuing access tokens: the bootstrap credential of platform operators, and later
the tokens a login exchanges for. Every issuance is audited in the token's tenant; the token
itself is never recorded, only its id, subject, roles, key id and expiry."""

from __future__ import annotations

import secrets
import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any, Protocol
from uuid import UUID, uuid4

from commands.application import GovernanceApplication
from commands.authorization import Permission
from commands.context import CommandContext
from commands.preamble import CommandPreamble
from domain.audit import AuditEntry
from domain.errors import (
    ValidationFailed,
)
from domain.maci import MaciRole

DEFAULT_TTL_SECONDS = 15 * 60
MAX_TTL_SECONDS = 7 * 24 * 3600
ISSUER = "acgs"
AUDIENCE = "acgs-api"


class TokenSigner(Protocol):
    """Signs a claim set; returns the compact token and the id of the signing key."""

    def sign(self, claims: Mapping[str, Any]) -> tuple[str, str]: ...


@dataclass(frozen=True)
class IssueToken:
    sub: str
    tenant_id: UUID
    roles: tuple[MaciRole, ...]
    ttl_seconds: int = DEFAULT_TTL_SECONDS
    auth_method: str = "cli"


@dataclass(frozen=True)
class IssuedToken:
    token: str
    jti: str
    kid: str
    expires_at: datetime


class TokenCommands:
    def __init__(
        self,
        app: GovernanceApplication,
        constitutional_hash: str,
        signer: TokenSigner,
        *,
        clock: Callable[[], float] = time.time,
    ) -> None:
        self._app = app
        self._hash = constitutional_hash
        self._preamble = CommandPreamble(app, constitutional_hash)
        self._signer = signer
        self._clock = clock

    def issue(self, ctx: CommandContext, command: IssueToken) -> IssuedToken:
        meta = self._preamble.begin(
            ctx,
            Permission.TOKEN_ISSUE,
            command.tenant_id,
            "issue_token",
            command.tenant_id,
            refusal_category="authentication",
        )
        _validate(command)
        now = int(self._clock())
        jti = str(uuid4())
        ordered = sorted(set(command.roles), key=lambda r: -r.rank)
        claims: dict[str, Any] = {
            "iss": ISSUER,
            "aud": AUDIENCE,
            "sub": command.sub,
            "tenant_id": str(command.tenant_id),
            "maci_roles": [r.value for r in ordered],
            "maci_role": ordered[0].value,
            "constitutional_hash": self._hash,
            "auth_method": command.auth_method,
            "sid": secrets.token_hex(16),
            "iat": now,
            "nbf": now,
            "exp": now + command.ttl_seconds,
            "jti": jti,
        }
        token, kid = self._signer.sign(claims)
        expires_at = datetime.fromtimestamp(claims["exp"], UTC)
        entry = AuditEntry.record(
            entry_id=uuid4(),
            category="authentication",
            action="issue_token",
            result="success",
            target_resource=f"tenant/{command.tenant_id}",
            details={
                "sub": command.sub,
                "maci_roles": claims["maci_roles"],
                "auth_method": command.auth_method,
                "jti": jti,
                "kid": kid,
                "expires_at": expires_at.isoformat(),
                "issued_by": ctx.principal.sub,
            },
            meta=meta,
        )
        self._app.save_for(command.tenant_id, entry)
        return IssuedToken(token=token, jti=jti, kid=kid, expires_at=expires_at)


def _validate(command: IssueToken) -> None:
    if not command.roles:
        raise ValidationFailed.field("maci_roles", "at least one role is required")
    if not command.sub or len(command.sub) > 255:
        raise ValidationFailed.field("sub", "must be 1 to 255 characters")
    if not 1 <= command.ttl_seconds <= MAX_TTL_SECONDS:
        raise ValidationFailed.field("ttl", f"must be between 1 and {MAX_TTL_SECONDS} seconds")
