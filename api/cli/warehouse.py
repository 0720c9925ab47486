"""`acgs warehouse`: a data-warehouse integration's sync from the console.

    acgs warehouse sync   --tenant acme --integration <id> [--chunk 20000]
    acgs warehouse status --tenant acme --integration <id> [--json]

`sync` loads every event after the warehouse's watermark now, with a progress bar (exit status
1 on failure, the error named); `status` prints the watermark, the lag behind the log, the last
run and the last error. The console operator acts as a platform EXECUTIVE.
"""

from __future__ import annotations

import getpass
import json
from dataclasses import asdict
from uuid import UUID

import click
from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn

from api.bootstrap import build
from api.cli.audit import _tenant
from api.settings import Settings
from api.tokens import operator_context
from api.warehouses import warehouse_commands
from projections.sinks.warehouse import CHUNK


@click.group()
def warehouse() -> None:
    """Data-warehouse integrations: sync now, status."""


@warehouse.command("sync")
@click.option("--tenant", required=True, help="The tenant's slug or id")
@click.option("--integration", "integration_id", required=True, type=click.UUID)
@click.option("--chunk", default=CHUNK, show_default=True, type=click.IntRange(1, 1_000_000))
def sync(tenant: str, integration_id: UUID, chunk: int) -> None:
    """Load every event after the watermark now."""
    system = build(Settings.from_env())
    commands = warehouse_commands(system)
    try:
        tenant_id = _tenant(system, tenant)
        ctx = operator_context(system, getpass.getuser())
        columns = (
            TextColumn("loading"),
            BarColumn(),
            MofNCompleteColumn(),
            TimeElapsedColumn(),
        )
        with Progress(*columns, transient=True) as bar:
            task = bar.add_task("sync", total=None)

            def progress(done: int, total: int) -> None:
                bar.update(task, completed=done, total=total)

            outcome = commands.sync(ctx, tenant_id, integration_id, progress, chunk=chunk)
    except Exception as exc:  # noqa: BLE001 - named, exit status 1
        raise click.ClickException(f"{type(exc).__name__}: {exc}") from None
    finally:
        commands.close()
        system.close()
    rate = outcome.rows_loaded / outcome.seconds if outcome.seconds else 0.0
    click.echo(
        f"warehouse {integration_id}: loaded {outcome.rows_loaded} event(s), watermark "
        f"{outcome.watermark}, {outcome.seconds:.2f} s ({rate:,.0f} rows/s)"
    )


@warehouse.command("status")
@click.option("--tenant", required=True, help="The tenant's slug or id")
@click.option("--integration", "integration_id", required=True, type=click.UUID)
@click.option("--json", "as_json", is_flag=True, help="One JSON object")
def status(tenant: str, integration_id: UUID, as_json: bool) -> None:
    """Print the watermark, the lag, the last run and the last error."""
    system = build(Settings.from_env())
    commands = warehouse_commands(system)
    try:
        tenant_id = _tenant(system, tenant)
        principal = operator_context(system, getpass.getuser()).principal
        found = commands.status(principal, tenant_id, integration_id)
    finally:
        commands.close()
        system.close()
    if as_json:
        click.echo(json.dumps(asdict(found), default=str, sort_keys=True))
        return
    click.echo(
        f"warehouse {integration_id} ({found.provider}, {found.schedule}): watermark "
        f"{found.watermark}, {found.lag} position(s) behind the log (head {found.head})\n"
        f"runs {found.runs}, rows loaded {found.rows_loaded}, last run {found.last_run_at}, "
        f"last success {found.last_success_at}\n"
        f"last error: {found.last_error or '-'}"
    )
