"""`acgs sinks`: a SIEM sink's dead letters from the console.

    acgs sinks dlq list  --tenant acme --integration <id> [--limit 100] [--json]
    acgs sinks dlq retry --tenant acme --integration <id>

`list` prints the sink's position, lag and dead letters; `retry` sends every dead letter once
more and removes the ones the receiver acknowledged (exit status 1 when some remain). The console
operator acts as a platform EXECUTIVE; a retry is audited like one made over HTTP.
"""

from __future__ import annotations

import getpass
import json
from uuid import UUID

import click

from api.bootstrap import System, build
from api.cli.audit import _tenant
from api.settings import Settings
from api.tokens import operator_context
from commands.context import Principal
from commands.sinks import SinkCommands


@click.group()
def sinks() -> None:
    """SIEM sinks: dead letters."""


@sinks.group()
def dlq() -> None:
    """A sink's dead letters: list them, or send them again."""


def _commands(system: System) -> SinkCommands:
    assert system.sinks is not None
    return system.sinks


@dlq.command("list")
@click.option("--tenant", required=True, help="The tenant's slug or id")
@click.option("--integration", "integration_id", required=True, type=click.UUID)
@click.option("--limit", default=100, show_default=True, type=click.IntRange(1, 100_000))
@click.option("--json", "as_json", is_flag=True, help="One JSON object per dead letter")
def list_dead_letters(tenant: str, integration_id: UUID, limit: int, as_json: bool) -> None:
    """Print the sink's position, lag and dead letters (oldest first)."""
    system = build(Settings.from_env())
    try:
        tenant_id = _tenant(system, tenant)
        principal: Principal = operator_context(system, getpass.getuser()).principal
        found = _commands(system).deliveries(principal, tenant_id, integration_id, limit)
    finally:
        system.close()
    status = found.status
    click.echo(
        f"sink {integration_id}: position {status['position']}, "
        f"{status['events_behind']} event(s) behind, {found.dead_letter_count} dead letter(s)"
    )
    for letter in found.dead_letters:
        record = letter.record
        if as_json:
            click.echo(
                json.dumps(
                    {
                        "event_id": record.event_id,
                        "position": record.position,
                        "error": letter.error,
                        "attempts": letter.attempts,
                        "record": record.body,
                    },
                    sort_keys=True,
                )
            )
        else:
            click.echo(
                f"{record.position}\t{record.event_id}\t{record.event_type}\t"
                f"attempts={letter.attempts}\t{letter.error}"
            )


@dlq.command("retry")
@click.option("--tenant", required=True, help="The tenant's slug or id")
@click.option("--integration", "integration_id", required=True, type=click.UUID)
def retry_dead_letters(tenant: str, integration_id: UUID) -> None:
    """Send every dead letter once more; exit status 1 when some remain."""
    system = build(Settings.from_env())
    try:
        tenant_id = _tenant(system, tenant)
        ctx = operator_context(system, getpass.getuser())
        outcome = _commands(system).retry(ctx, tenant_id, integration_id)
    finally:
        system.close()
    click.echo(
        f"retried {outcome.retried}, delivered {outcome.delivered}, remaining {outcome.remaining}"
        + (f" ({outcome.error})" if outcome.error else "")
    )
    if outcome.remaining:
        raise SystemExit(1)
