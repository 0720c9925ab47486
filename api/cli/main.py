"""Entry point of the `acgs` command: the root group; each command group lives in its own module.

A setting the service cannot use (api.settings.SettingsError) ends every command the same way,
here and only here: one line `Error: <message naming the variable>` on stderr and exit status 2,
never a traceback.
"""

from __future__ import annotations

from typing import Any

import click

from api.settings import SettingsError
from infra.postgres.embedded import EmbeddedPostgresError

SETTINGS_EXIT_STATUS = 2


class BadSetting(click.ClickException):
    """A SettingsError as the CLI reports it."""

    exit_code = SETTINGS_EXIT_STATUS


class AcgsGroup(click.Group):
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


from api.cli.audit import audit  # noqa: E402
from api.cli.db import db  # noqa: E402
from api.cli.keys import keys  # noqa: E402
from api.cli.migrate import migrate  # noqa: E402
from api.cli.policy import policy  # noqa: E402
from api.cli.projections import projections, replay  # noqa: E402
from api.cli.serve import serve  # noqa: E402
from api.cli.sinks import sinks  # noqa: E402
from api.cli.streaming import streaming  # noqa: E402
from api.cli.token import token  # noqa: E402
from api.cli.warehouse import warehouse  # noqa: E402
from api.cli.worker import worker  # noqa: E402

for command in (db, serve, replay, projections, policy, token, worker, streaming, keys, audit):
    cli.add_command(command)
cli.add_command(sinks)
cli.add_command(migrate)
cli.add_command(warehouse)

if __name__ == "__main__":
    cli()
