"""Wiring of the token pieces, shared by the HTTP app and the CLI (`acgs token`, `acgs serve`)."""

from __future__ import annotations

from uuid import UUID

from api.bootstrap import System
from api.settings import Settings
from commands.context import CommandContext, Principal
from commands.tokens import AUDIENCE, ISSUER, IssuedToken, IssueToken, TokenCommands
from domain.maci import MaciRole
from domain.tenancy import SYSTEM_TENANT_ID
from infra.tokens import KeyRing, TokenIssuer, TokenVerifier
from infra.tokens.verifier import VERIFIED_CACHE_SIZE

BOOTSTRAP_TTL_SECONDS = 12 * 3600


def key_ring(settings: Settings) -> KeyRing:
    return KeyRing(settings.data_dir / "keys")


def token_verifier(
    settings: Settings, keys: KeyRing, *, remember: int = VERIFIED_CACHE_SIZE
) -> TokenVerifier:
    return TokenVerifier(
        keys, settings.constitutional_hash, issuer=ISSUER, audience=AUDIENCE, remember=remember
    )


def token_commands(system: System, keys: KeyRing) -> TokenCommands:
    keys.ensure()
    return TokenCommands(system.app, system.settings.constitutional_hash, TokenIssuer(keys))


def operator_context(system: System, operator: str) -> CommandContext:
    """The principal of someone at the service's console (who can read its key files anyway)."""
    principal = Principal(
        sub=f"cli:{operator}",
        tenant_id=SYSTEM_TENANT_ID,
        roles=(MaciRole.EXECUTIVE,),
        auth_method="cli",
    )
    return CommandContext(principal, system.settings.constitutional_hash)


def issue_as_operator(
    system: System,
    operator: str,
    *,
    tenant_id: UUID,
    roles: tuple[MaciRole, ...],
    sub: str,
    ttl_seconds: int,
) -> IssuedToken:
    commands = token_commands(system, key_ring(system.settings))
    command = IssueToken(sub=sub, tenant_id=tenant_id, roles=roles, ttl_seconds=ttl_seconds)
    return commands.issue(operator_context(system, operator), command)
