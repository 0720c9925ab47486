"""`acgs serve`: the HTTP API, with projection runners in-process."""

from __future__ import annotations

import getpass

import click
import uvicorn

from api.bootstrap import System, build
from api.cli.streaming import start_local_streaming
from api.http.app import create_app
from api.logging import configure_logging
from api.settings import Settings, SettingsError
from api.tokens import BOOTSTRAP_TTL_SECONDS, issue_as_operator
from domain.maci import MaciRole
from domain.tenancy import SYSTEM_TENANT_ID

BOOTSTRAP_MARKER = "bootstrap-token-issued"


@click.command()
@click.option(
    "--host", default=None, help="Interface to bind (default ACGS_HTTP_HOST or 127.0.0.1)."
)
@click.option("--port", default=None, type=int, help="Port (default ACGS_HTTP_PORT or 8000).")
@click.option(
    "--kafka-local",
    is_flag=True,
    default=False,
    help="Also start a local Kafka broker and schema registry and stream to them "
    "(development; same as ACGS_KAFKA_LOCAL=1).",
)
def serve(host: str | None, port: int | None, kafka_local: bool = False) -> None:
    """Serve the API; in the embedded profile, start PostgreSQL and migrate first."""
    try:
        settings = Settings.from_env()
    except SettingsError as exc:
        raise click.ClickException(str(exc)) from None
    configure_logging(settings.log_level)
    host = host or settings.http_host
    port = port or settings.http_port
    local_streaming = None
    if kafka_local or settings.kafka_local:
        settings, local_streaming = start_local_streaming(settings)
    try:
        system = build(settings)
    except BaseException:
        if local_streaming is not None:
            local_streaming.stop()
        raise
    try:
        system.start_workers()
        app = create_app(system)
        where = (
            "embedded PostgreSQL in " + str(settings.data_dir) if system.embedded else "PostgreSQL"
        )
        click.echo(f"acgs: using {where}")
        _print_bootstrap_token(system)
        click.echo(f"acgs: listening on http://{host}:{port}  (Ctrl-C stops)")
        uvicorn.run(app, host=host, port=port, log_level="warning", access_log=False)
    finally:
        system.close()
        if local_streaming is not None:
            local_streaming.stop()
        click.echo("acgs: stopped")


def _print_bootstrap_token(system: System) -> None:
    """On the first start on a data directory, print one platform EXECUTIVE token (audited)."""
    marker = system.settings.data_dir / BOOTSTRAP_MARKER
    if marker.exists():
        return
    issued = issue_as_operator(
        system,
        getpass.getuser(),
        tenant_id=SYSTEM_TENANT_ID,
        roles=(MaciRole.EXECUTIVE,),
        sub="bootstrap-operator",
        ttl_seconds=BOOTSTRAP_TTL_SECONDS,
    )
    marker.write_text(f"{issued.jti}\n")
    click.echo(
        "acgs: first start - a platform EXECUTIVE token, valid 12 h, printed once "
        "(more with: acgs token issue --platform --role EXECUTIVE):"
    )
    click.echo(issued.token)
