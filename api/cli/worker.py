"""`acgs worker [--only NAME…]`: the background workers (audit-partition maintenance, projection
runners, the Kafka relay, the Kafka consumers) without the HTTP API, for deployments where they
scale apart from it. The same list, under the same supervisor, as `acgs serve` runs."""

from __future__ import annotations

import signal
import threading
from types import FrameType

import click

from api.bootstrap import UnknownWorker, build
from api.logging import configure_logging
from api.settings import Settings


@click.command()
@click.option(
    "--only",
    "only",
    multiple=True,
    metavar="NAME",
    help="Run only this worker (repeatable): audit_partitions, a projection name, kafka_relay, "
    "external_events.",
)
def worker(only: tuple[str, ...]) -> None:
    """Run the background workers until interrupted (SIGINT or SIGTERM)."""
    settings = Settings.from_env()  # a bad setting: one line and exit 2, in the root group
    configure_logging(settings.log_level)
    stopping = threading.Event()

    def on_signal(signum: int, frame: FrameType | None) -> None:
        del signum, frame
        stopping.set()

    for sig in (signal.SIGINT, signal.SIGTERM):
        signal.signal(sig, on_signal)
    system = build(settings)
    try:
        try:
            names = system.start_workers(only)
        except UnknownWorker as exc:
            raise click.UsageError(str(exc)) from None
        click.echo(f"acgs worker: running {', '.join(names)}  (Ctrl-C stops)")
        while not stopping.wait(1.0):
            pass
    finally:
        system.close()
        click.echo("acgs worker: stopped")
