"""Entry point of the `acgs` command: the root group; each command group lives in its own module.

A setting the service cannot use (api.settings.SettingsError) ends every command the same way,
here and only here: one line `Error: <message naming the variable>` on stderr and exit status 2,
never a traceback.
"""

from __future__ import annotations

from importlib import import_module
from typing import Any

import click

from api.settings import SettingsError
from infra.postgres.embedded import EmbeddedPostgresError

SETTINGS_EXIT_STATUS = 2


class BadSetting(click.ClickException):
    """A SettingsError as the CLI reports it."""

    exit_code = SETTINGS_EXIT_STATUS


# Each command group, by name: its module and attribute. A group's module is imported only when
# the group is invoked (or `--help` lists them all), so a command pays for its own imports alone.
COMMANDS = {
    "audit": "api.cli.audit:audit",
    "db": "api.cli.db:db",
    "keys": "api.cli.keys:keys",
    "migrate": "api.cli.migrate:migrate",
    "policy": "api.cli.policy:policy",
    "projections": "api.cli.projections:projections",
    "replay": "api.cli.projections:replay",
    "serve": "api.cli.serve:serve",
    "sinks": "api.cli.sinks:sinks",
    "streaming": "api.cli.streaming:streaming",
    "token": "api.cli.token:token",
    "warehouse": "api.cli.warehouse:warehouse",
    "worker": "api.cli.worker:worker",
}


class AcgsGroup(click.Group):
    def list_commands(self, ctx: click.Context) -> list[str]:  # noqa: ARG002 - click.Group's
        return sorted(COMMANDS)

    def get_command(self, ctx: click.Context, cmd_name: str) -> click.Command | None:  # noqa: ARG002
        target = COMMANDS.get(cmd_name)
        if target is None:
            return None
        module, attribute = target.split(":")
        command: click.Command = getattr(import_module(module), attribute)
        return command

    def invoke(self, ctx: click.Context) -> Any:
        try:
            return super().invoke(ctx)
        except SettingsError as exc:
            raise BadSetting(str(exc)) from None
        except EmbeddedPostgresError as exc:  # no server binaries, or the server would not start
            raise click.ClickException(str(exc)) from None


@click.group(cls=AcgsGroup, context_settings={"help_option_names": ["-h", "--help"]})
@click.version_option(package_name="acgs-enterprise")
def cli() -> None:
    """ACGS enterprise governance backend."""


if __name__ == "__main__":
    cli()
