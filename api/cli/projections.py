"""`acgs replay` and `acgs projections`: rebuild and inspect read models."""

from __future__ import annotations

import time

import click

from api.bootstrap import all_projections, build
from api.settings import Settings


@click.command()
@click.argument("projection", type=click.Choice([p.name for p in all_projections()]))
def replay(projection: str) -> None:
    """Rebuild one read model from the start of the event log."""
    system = build(Settings.from_env())
    try:
        runner = system.runner(projection)
        started = time.perf_counter()
        runner.reset()
        applied = runner.catch_up()
        elapsed = time.perf_counter() - started
        click.echo(f"replayed {projection}: {applied} events in {elapsed:.2f} s")
    finally:
        system.close()


@click.group()
def projections() -> None:
    """Inspect projections."""


@projections.command("status")
def status() -> None:
    """Each follower's position and lag behind the event log; one this deployment does not run
    (e.g. the relay while streaming is off) is shown as disabled."""
    system = build(Settings.from_env())
    try:
        for row in system.projection_status():
            lag = (
                f"behind {row['events_behind']:>6} events / {row['seconds_behind']:.3f} s"
                if row["enabled"]
                else "disabled (this deployment does not run it)"
            )
            click.echo(
                f"{row['name']:<20} position {row['position']:>8}  head {row['head']:>8}  {lag}"
            )
    finally:
        system.close()
