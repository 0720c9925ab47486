"""`acgs serve`: the HTTP API, with projection runners in-process."""

from __future__ import annotations

import click
import uvicorn

from api.bootstrap import build
from api.http.app import create_app
from api.settings import Settings, SettingsError


@click.command()
@click.option(
    "--host", default=None, help="Interface to bind (default ACGS_HTTP_HOST or 127.0.0.1)."
)
@click.option("--port", default=None, type=int, help="Port (default ACGS_HTTP_PORT or 8000).")
def serve(host: str | None, port: int | None) -> None:
    """Serve the API; in the embedded profile, start PostgreSQL and migrate first."""
    try:
        settings = Settings.from_env()
    except SettingsError as exc:
        raise click.ClickException(str(exc)) from None
    host = host or settings.http_host
    port = port or settings.http_port
    system = build(settings)
    try:
        system.start_projections()
        where = (
            "embedded PostgreSQL in " + str(settings.data_dir) if system.embedded else "PostgreSQL"
        )
        click.echo(f"acgs: using {where}")
        click.echo(f"acgs: listening on http://{host}:{port}  (Ctrl-C stops)")
        uvicorn.run(create_app(system), host=host, port=port, log_level="warning", access_log=False)
    finally:
        system.close()
        click.echo("acgs: stopped")
