"""`acgs keys rotate --tenant SLUG`: rotate a tenant's key-encryption key (local key file or
Vault/OpenBao transit) and rewrap its data keys; a running server keeps working without a
restart (it reads the new key version when it meets it)."""

from __future__ import annotations

import getpass

import click

from api.bootstrap import build
from api.cli.token import _resolve
from api.settings import Settings
from api.tokens import operator_context
from commands.tenant_keys import TenantKeyCommands
from domain.errors import DomainError


@click.group()
def keys() -> None:
    """Tenants' key-encryption keys (integration secrets)."""


@keys.command("rotate")
@click.option("--tenant", "tenant_slug", required=True, help="Slug of the tenant.")
def rotate(tenant_slug: str) -> None:
    """Rotate the tenant's key and rewrap every data key it protects (audited)."""
    system = build(Settings.from_env())
    try:
        assert system.sealer is not None
        tenant_id = _resolve(system, tenant_slug)
        commands = TenantKeyCommands(system.app, system.settings.constitutional_hash, system.sealer)
        rotated = commands.rotate(operator_context(system, getpass.getuser()), tenant_id)
    except DomainError as exc:
        raise click.ClickException(exc.message) from None
    finally:
        system.close()
    click.echo(
        f"rotated the key of tenant {tenant_slug} ({system.sealer.provider.name}): "
        f"version {rotated.kek_version}, {rotated.rewrapped} data key(s) rewrapped"
    )
