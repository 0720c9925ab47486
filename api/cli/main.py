"""Entry point of the `acgs` command: the root group; each command group lives in its own module."""

from __future__ import annotations

import click


@click.group(context_settings={"help_option_names": ["-h", "--help"]})
@click.version_option(package_name="acgs-enterprise")
def cli() -> None:
    """ACGS enterprise governance backend."""


from api.cli.db import db  # noqa: E402
from api.cli.projections import projections, replay  # noqa: E402
from api.cli.serve import serve  # noqa: E402
from api.cli.token import token  # noqa: E402

cli.add_command(db)
cli.add_command(serve)
cli.add_command(replay)
cli.add_command(projections)


from api.cli.policy import policy  # noqa: E402

cli.add_command(policy)
cli.add_command(token)

from api.cli.streaming import streaming  # noqa: E402
from api.cli.worker import worker  # noqa: E402

cli.add_command(worker)
cli.add_command(streaming)
