"""`acgs db`: database administration."""

from __future__ import annotations

import click

from api.bootstrap import open_database
from api.settings import Settings
from infra.postgres.migrate import MigrationError, migrate


@click.group()
def db() -> None:
    """Database administration."""


@db.command("migrate")
def migrate_command() -> None:
    """Apply pending migrations (ACGS_DATABASE_URL, or the embedded server)."""
    settings = Settings.from_env()
    url, embedded = open_database(settings)
    try:
        applied = migrate(url)
    except MigrationError as exc:
        raise click.ClickException(str(exc)) from None
    finally:
        if embedded is not None:
            embedded.stop()
    if applied:
        for m in applied:
            click.echo(f"applied {m.version}_{m.name}")
    else:
        click.echo("database is up to date")
