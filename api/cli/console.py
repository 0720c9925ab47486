"""The rich console the CLI prints its tables with."""

from __future__ import annotations

from rich.console import Console

# Wide enough for any row: output that is not a terminal (a pipe, a file, CI) gets whole rows.
UNCUT_WIDTH = 100_000


def table_console() -> Console:
    """A console on stdout: the terminal's width on a terminal, else rows are never cut."""
    console = Console()
    if not console.is_terminal:
        console = Console(width=UNCUT_WIDTH)
    return console
