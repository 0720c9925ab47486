"""`acgs token`: the bootstrap credential and the signing keys.

    acgs token issue --role EXECUTIVE --platform            a platform operator's token
    acgs token issue --role AUDITOR --tenant acme-corp      a token of a tenant's principal
    acgs token keys add | list | retire KID                 key rotation, live in a running server

The token goes to stdout alone (so `$(acgs token issue ...)` works); everything else to stderr.
Each issuance is audited. Against the data directory of a running `acgs serve`, the CLI connects
to its embedded PostgreSQL instead of starting another.
"""

from __future__ import annotations

import asyncio
import getpass
from uuid import UUID

import click

from api.bootstrap import System, build
from api.settings import Settings
from api.tokens import issue_as_operator, key_ring
from commands.tokens import DEFAULT_TTL_SECONDS, MAX_TTL_SECONDS
from domain.errors import DomainError
from domain.maci import MaciRole
from domain.tenancy import SYSTEM_TENANT_ID
from projections.tenants import find_tenant_by_slug


@click.group()
def token() -> None:
    """Issue access tokens and manage their signing keys."""


@token.command("issue")
@click.option(
    "--role",
    "roles",
    multiple=True,
    required=True,
    type=click.Choice([r.value for r in MaciRole], case_sensitive=False),
    help="MACI role (repeat for several; the highest ranked is the primary role).",
)
@click.option("--tenant", "tenant_slug", default=None, help="Slug of the token's tenant.")
@click.option("--platform", is_flag=True, help="A platform principal (the system tenant).")
@click.option("--sub", default=None, help="Subject (default: the operator's login name).")
@click.option(
    "--ttl",
    default=DEFAULT_TTL_SECONDS,
    show_default=True,
    type=click.IntRange(1, MAX_TTL_SECONDS),
    help="Lifetime in seconds.",
)
def issue(
    roles: tuple[str, ...], tenant_slug: str | None, platform: bool, sub: str | None, ttl: int
) -> None:
    """Print one signed access token on stdout (audited)."""
    if platform == (tenant_slug is not None):
        raise click.UsageError("give exactly one of --platform or --tenant SLUG")
    operator = getpass.getuser()
    system = build(Settings.from_env())
    try:
        tenant_id = SYSTEM_TENANT_ID if platform else _resolve(system, str(tenant_slug))
        issued = issue_as_operator(
            system,
            operator,
            tenant_id=tenant_id,
            roles=tuple(MaciRole(r.upper()) for r in roles),
            sub=sub or operator,
            ttl_seconds=ttl,
        )
    except DomainError as exc:
        raise click.ClickException(exc.message) from None
    finally:
        system.close()
    click.echo(issued.token)
    click.echo(
        f"acgs: token {issued.jti} for tenant {tenant_id}, key {issued.kid}, "
        f"expires {issued.expires_at.isoformat()}",
        err=True,
    )


def _resolve(system: System, slug: str) -> UUID:
    """The id of the tenant with `slug`, from the read model (brought up to date first)."""
    system.runner("tenants").catch_up()

    async def lookup() -> UUID | None:
        await system.database.open()
        try:
            async with system.database.platform_session() as conn:
                row = await find_tenant_by_slug(conn, slug)
        finally:
            await system.database.close()
        if row is None or row["status"] != "active":
            return None
        tenant_id: UUID = row["tenant_id"]
        return tenant_id

    tenant_id = asyncio.run(lookup())
    if tenant_id is None:
        msg = f"no active tenant with slug {slug!r}"
        raise click.ClickException(msg)
    return tenant_id


@token.group()
def keys() -> None:
    """Signing keys: add one (it signs from now on), list them, retire an old one."""


@keys.command("add")
def keys_add() -> None:
    """Create a key; it signs new tokens, older keys keep verifying until retired."""
    click.echo(key_ring(Settings.from_env()).add())


@keys.command("list")
def keys_list() -> None:
    """Every key with its status; the signing key is marked."""
    for info in key_ring(Settings.from_env()).describe():
        mark = "  (signing)" if info.signing else ""
        click.echo(f"{info.kid}  {info.status:<8} created {info.created_at.isoformat()}{mark}")


@keys.command("retire")
@click.argument("kid")
def keys_retire(kid: str) -> None:
    """Stop accepting tokens signed with KID (a running server notices within a second)."""
    from infra.tokens import KeyRingError  # noqa: PLC0415

    try:
        key_ring(Settings.from_env()).retire(kid)
    except KeyRingError as exc:
        raise click.ClickException(str(exc)) from None
    click.echo(f"retired {kid}")
