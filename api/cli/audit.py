"""`acgs audit`: query, export, verify and replay a tenant's audit log from the console.

    acgs audit query  --tenant acme --from 2026-01-01 --to 2026-02-01 [--category ...]
    acgs audit export --tenant acme --from ... --to ... --format csv --output audit.csv
    acgs audit verify --tenant acme          (or --all; exit status 1 when a chain is broken)
    acgs audit replay --tenant acme --to kafka [--from 1 | --from 2026-01-01T00:00:00Z]

The console operator acts as a platform EXECUTIVE (as for `acgs token issue`); an export is
audited like one made over HTTP. Long work (export, verify, replay) shows its progress.
"""

from __future__ import annotations

import getpass
import json
import sys
import threading
import time
from datetime import UTC, datetime, timedelta
from itertools import islice
from pathlib import Path
from typing import Any
from uuid import UUID

import click
import psycopg

from api.bootstrap import System, build
from api.http.audit import parse_filters
from api.settings import Settings
from api.tokens import operator_context
from projections.audit_export import new_export_id
from projections.audit_formats import FORMATS, plain_row
from projections.audit_queries import (
    AuditFilters,
    export_rows,
    replay_rows,
    verify_tenant_chain,
)
from projections.audit_retention import RetentionRunner

SINKS = ("kafka",)


@click.group()
def audit() -> None:
    """Query, export, verify and replay the audit log."""


def _system() -> System:
    return build(Settings.from_env())


def _tenant(system: System, tenant: str) -> UUID:
    """A tenant id from a slug or an id (the read model brought up to date first)."""
    system.runner("tenants").catch_up()
    with psycopg.connect(system.projector_conninfo, autocommit=True) as conn:
        row = conn.execute(
            "SELECT tenant_id FROM tenants WHERE tenant_slug = %s OR tenant_id::text = %s",
            [tenant, tenant],
        ).fetchone()
    if row is None:
        msg = f"no tenant with slug or id {tenant!r}"
        raise click.ClickException(msg)
    tenant_id: UUID = row[0]
    return tenant_id


def _filters(system: System, **options: str | None) -> AuditFilters:
    query = {k: v for k, v in options.items() if v is not None}
    filters, errors = parse_filters(query, system.settings.audit_query_max_days)
    if errors:
        lines = "; ".join(f"--{e['field'].replace('_', '-')}: {e['message']}" for e in errors)
        raise click.UsageError(lines)
    return filters


def _time_options(command: Any) -> Any:
    today = datetime.now(UTC).date()
    for option in reversed(
        [
            click.option("--tenant", required=True, help="The tenant's slug or id."),
            click.option(
                "--from",
                "start_time",
                default=(today - timedelta(days=30)).isoformat(),
                show_default="30 days ago",
                help="Start (ISO 8601, inclusive).",
            ),
            click.option(
                "--to",
                "end_time",
                default=(today + timedelta(days=1)).isoformat(),
                show_default="tomorrow",
                help="End (ISO 8601, exclusive).",
            ),
            click.option("--category", "event_category", default=None),
            click.option("--actor", "actor_id", default=None),
            click.option("--result", default=None),
            click.option("--event-type", default=None),
            click.option("--target", "target_resource", default=None),
        ]
    ):
        command = option(command)
    return command


@audit.command("query")
@_time_options
@click.option("--limit", default=100, show_default=True, type=click.IntRange(1, 100_000))
@click.option("--json", "as_json", is_flag=True, help="One JSON object per line.")
def query(tenant: str, limit: int, as_json: bool, **options: str | None) -> None:
    """Print a tenant's audit rows, oldest first."""
    system = _system()
    try:
        tenant_id = _tenant(system, tenant)
        filters = _filters(system, **options)
        with psycopg.connect(system.projector_conninfo) as conn:
            for stored in islice(export_rows(conn, tenant_id, filters), limit):
                details = stored["details"]
                row = {**stored, "details": json.loads(details) if details else None}
                if as_json:
                    click.echo(json.dumps(plain_row(row), ensure_ascii=False))
                else:
                    click.echo(
                        f"{row['timestamp'].isoformat():<33} {row['chain_seq']!s:>7} "
                        f"{row['event_category']:<14} {row['event_type']:<32} "
                        f"{row['actor_id'] or '-':<20} {row['result']:<8} "
                        f"{row['target_resource'] or '-'}"
                    )
    finally:
        system.close()


@audit.command("export")
@_time_options
@click.option("--format", "export_format", type=click.Choice(FORMATS), default="json")
@click.option(
    "--output", type=click.Path(dir_okay=False, path_type=Path), required=True, help="File."
)
def export(tenant: str, export_format: str, output: Path, **options: str | None) -> None:
    """Export a tenant's audit log to a file (audited; progress shown)."""
    system = _system()
    try:
        tenant_id = _tenant(system, tenant)
        filters = _filters(system, **options)
        ctx = operator_context(system, getpass.getuser())
        export_id = new_export_id()
        system.audit.record_export(
            ctx.principal,
            tenant_id,
            export_id,
            {"format": export_format, "filters": filters.as_dict(), "via": "cli"},
        )
        with psycopg.connect(system.projector_conninfo, autocommit=True) as conn:
            conn.execute(
                "INSERT INTO audit_exports (export_id, tenant_id, requested_by, format, filters) "
                "VALUES (%s, %s, %s, %s, %s)",
                [
                    export_id,
                    tenant_id,
                    ctx.principal.sub,
                    export_format,
                    json.dumps(filters.as_dict()),
                ],
            )
            job = _run_with_progress(system, conn, export_id)
        if job["status"] != "completed":
            msg = f"export {export_id} {job['status']}: {job['error']}"
            raise click.ClickException(msg)
        output.write_bytes(bytes(job["content"]))
        click.echo(
            f"{export_id}: {job['rows_written']} rows, {job['size_bytes']} bytes -> {output}\n"
            f"sha256 {job['sha256']}\n"
            f"chain head seq {job['chain_head']['seq']} hash {job['chain_head']['hash']}"
        )
    finally:
        system.close()


def _run_with_progress(
    system: System, conn: psycopg.Connection[Any], export_id: str
) -> dict[str, Any]:
    runner = system.export_runner()

    def work() -> None:
        with psycopg.connect(system.projector_conninfo, autocommit=True) as own:
            job = own.execute(
                "UPDATE audit_exports SET status = 'processing', started_at = now() "
                "WHERE export_id = %s RETURNING export_id, tenant_id, format, filters",
                [export_id],
            ).fetchone()
            assert job is not None
            keys = ("export_id", "tenant_id", "format", "filters")
            runner.run_job(own, dict(zip(keys, job, strict=True)))

    thread = threading.Thread(target=work, name="audit-export", daemon=True)
    thread.start()
    with click.progressbar(length=100, label="exporting", file=sys.stderr) as bar:
        shown = 0
        while thread.is_alive():
            thread.join(0.2)
            row = conn.execute(
                "SELECT progress FROM audit_exports WHERE export_id = %s", [export_id]
            ).fetchone()
            progress = int(row[0]) if row else 0
            bar.update(progress - shown)
            shown = progress
        bar.update(100 - shown)
    cur = conn.execute("SELECT * FROM audit_exports WHERE export_id = %s", [export_id])
    columns = [c.name for c in cur.description or []]
    found = cur.fetchone()
    assert found is not None
    return dict(zip(columns, found, strict=True))


@audit.command("verify")
@click.option("--tenant", default=None, help="The tenant's slug or id.")
@click.option("--all", "every", is_flag=True, help="Every tenant with an audit chain.")
@click.option("--json", "as_json", is_flag=True, help="The full report as JSON.")
def verify(tenant: str | None, every: bool, as_json: bool) -> None:
    """Verify a tenant's hash chain: exit status 0 when intact, 1 when a row was altered,
    removed or inserted."""
    if (tenant is None) == (not every):
        raise click.UsageError("give --tenant SLUG or --all")
    system = _system()
    broken = 0
    try:
        for runner in system.runners:
            runner.catch_up()
        with psycopg.connect(system.projector_conninfo, autocommit=True) as conn:
            if every:
                ids = [
                    r[0]
                    for r in conn.execute(
                        "SELECT tenant_id FROM audit_chain_heads ORDER BY tenant_id"
                    ).fetchall()
                ]
            else:
                ids = [_tenant(system, str(tenant))]
            started = time.perf_counter()
            for tenant_id in ids:
                report = verify_tenant_chain(conn, tenant_id)
                broken += 0 if report.ok else 1
                if as_json:
                    click.echo(json.dumps({"tenant_id": str(tenant_id), **report.as_dict()}))
                    continue
                state = "intact" if report.ok else "BROKEN"
                click.echo(
                    f"{tenant_id}: chain {state}: {report.rows} rows, seq "
                    f"{report.first_seq}..{report.last_seq}, head {report.head_seq} "
                    f"{report.head_hash[:16]}"
                )
                for problem in report.problems:
                    click.echo(f"  {json.dumps(problem)}")
            if not as_json:
                click.echo(
                    f"verified {len(ids)} chain(s) in {time.perf_counter() - started:.2f} s",
                    err=True,
                )
    finally:
        system.close()
    if broken:
        sys.exit(1)


@audit.command("replay")
@click.option("--tenant", required=True, help="The tenant's slug or id.")
@click.option("--to", "sink", type=click.Choice(SINKS), default="kafka", show_default=True)
@click.option(
    "--from",
    "start",
    default="1",
    show_default=True,
    help="A chain position (1: the oldest retained row) or an ISO 8601 time.",
)
def replay(tenant: str, sink: str, start: str) -> None:
    """Re-send a tenant's audit stream, in chain order, to a sink (Kafka's audit-trail topic)."""
    from_seq, from_time = 1, None
    if start.isdigit():
        from_seq = int(start)
    else:
        try:
            from_time = datetime.fromisoformat(start.replace("Z", "+00:00"))
        except ValueError:
            raise click.UsageError("--from: a chain position or an ISO 8601 time") from None
        from_time = from_time if from_time.tzinfo else from_time.replace(tzinfo=UTC)
    system = _system()
    try:
        tenant_id = _tenant(system, tenant)
        target = _sink(system, sink)
        started = time.perf_counter()
        try:
            with psycopg.connect(system.projector_conninfo) as conn:
                for n, row in enumerate(
                    replay_rows(conn, tenant_id, from_seq=from_seq, from_time=from_time), 1
                ):
                    target.send(row)
                    if n % 10_000 == 0:
                        click.echo(f"  {n} rows sent", err=True)
        finally:
            target.close()
        click.echo(
            f"replayed {target.sent} audit rows of {tenant_id} to {sink} "
            f"({target.topic}) in {time.perf_counter() - started:.2f} s"
        )
    finally:
        system.close()


def _sink(system: System, sink: str) -> Any:
    del sink  # Kafka is the one sink so far
    from confluent_kafka import Producer  # noqa: PLC0415 - the streaming extra
    from confluent_kafka.schema_registry import SchemaRegistryClient  # noqa: PLC0415

    from api.bootstrap import kafka_config  # noqa: PLC0415
    from infra.kafka.audit_sink import KafkaAuditSink  # noqa: PLC0415
    from infra.kafka.codec import EventCodec  # noqa: PLC0415
    from infra.kafka.topics import ensure_topics  # noqa: PLC0415

    config = kafka_config(system.settings)
    codec = EventCodec(SchemaRegistryClient(config.registry_conf()))
    ensure_topics(config, [config.topics.audit_trail])
    codec.register(config.compatibility)
    producer = Producer({**config.producer_conf(), "delivery.report.only.error": False})
    return KafkaAuditSink(producer, codec, config.topics.audit_trail)


@audit.command("purge")
@click.option("--tenant", default=None, help="Only this tenant (slug or id); default: all.")
def purge(tenant: str | None) -> None:
    """Run one retention pass now (what the audit_retention worker does every six hours)."""
    system = _system()
    try:
        for runner in system.runners:
            runner.catch_up()
        only = {_tenant(system, tenant)} if tenant else set()
        retention: RetentionRunner = system.retention_runner()
        done = retention.purge(only)
        for item in done:
            click.echo(json.dumps(item, default=str))
        click.echo(f"purged {len(done)} tenant(s)", err=True)
    finally:
        system.close()
