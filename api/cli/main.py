"""Entry point of the `acgs` command: the root group; each command group lives in its own module."""

from __future__ import annotations

import click


@click.group(context_settings={"help_option_names": ["-h", "--help"]})
@click.version_option(package_name="acgs-enterprise")
def cli() -> None:
    """ACGS enterprise governance backend."""
