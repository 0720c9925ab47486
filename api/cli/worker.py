"""`acgs worker [--only NAME…]`: the projection runners, the Kafka relay and the Kafka consumers,
for deployments where they scale apart from the API (ARCHITECTURE "Runtime")."""

from __future__ import annotations

import asyncio
import signal
import threading
from collections.abc import Sequence
from typing import Any

import click

from api.bootstrap import System, build, kafka_config
from api.logging import configure_logging
from api.settings import Settings, SettingsError

EXTERNAL_EVENTS = "external_events"


def external_events_consumer(system: System, config: Any) -> Any:
    """The external-events consumer (infra.kafka.external_events.ExternalEventsConsumer)."""
    from confluent_kafka.schema_registry import SchemaRegistryClient  # noqa: PLC0415

    from infra.kafka.external_events import ExternalEventsConsumer  # noqa: PLC0415

    return ExternalEventsConsumer(
        app=system.app,
        constitutional_hash=system.settings.constitutional_hash,
        registry=SchemaRegistryClient(config.registry_conf()),
        topic=config.topics.external_events,
        conninfo=system.projector_conninfo,
        config=config,
    )


def _selected(system: System, only: Sequence[str]) -> tuple[list[Any], bool]:
    """The followers of the log (runners and relay) and whether the consumers run."""
    followers: dict[str, Any] = {r.name: r for r in system.runners}
    if system.relay is not None:
        followers[system.relay.name] = system.relay
    streaming = system.settings.kafka_bootstrap_servers is not None
    known = [*followers, *([EXTERNAL_EVENTS] if streaming else [])]
    unknown = sorted(set(only) - set(known))
    if unknown:
        msg = f"unknown worker part(s): {', '.join(unknown)}; known: {', '.join(known)}"
        raise click.UsageError(msg)
    chosen = [f for name, f in followers.items() if not only or name in only]
    return chosen, streaming and (not only or EXTERNAL_EVENTS in only)


async def _run_consumers(system: System, stop: threading.Event, consumers: bool) -> None:
    loop = asyncio.get_running_loop()
    stopping = asyncio.Event()
    for sig in (signal.SIGINT, signal.SIGTERM):
        loop.add_signal_handler(sig, stopping.set)
    if not consumers:
        await stopping.wait()
        return
    from infra.kafka.consumer import make_broker  # noqa: PLC0415 - optional extra

    config = kafka_config(system.settings)
    consumer = external_events_consumer(system, config)
    broker = make_broker(config, client_id="acgs-worker")
    consumer.subscribe(broker)
    try:
        await broker.start()
        click.echo(f"acgs worker: consuming {config.topics.external_events}")
        await stopping.wait()
    finally:
        stop.set()
        await broker.stop()
        consumer.close()
        consumer.registry.close()


@click.command()
@click.option(
    "--only",
    "only",
    multiple=True,
    metavar="NAME",
    help="Run only this part (repeatable): a projection name, kafka_relay, external_events.",
)
def worker(only: tuple[str, ...]) -> None:
    """Run projection runners, the Kafka relay and Kafka consumers until interrupted."""
    try:
        settings = Settings.from_env()
    except SettingsError as exc:
        raise click.ClickException(str(exc)) from None
    configure_logging(settings.log_level)
    system = build(settings)
    stop = threading.Event()
    threads: list[threading.Thread] = []
    try:
        followers, consumers = _selected(system, only)
        for follower in followers:
            thread = threading.Thread(
                target=follower.run, args=(stop,), name=f"worker-{follower.name}", daemon=True
            )
            thread.start()
            threads.append(thread)
        names = [f.name for f in followers] + ([EXTERNAL_EVENTS] if consumers else [])
        click.echo(f"acgs worker: running {', '.join(names) or 'nothing'}  (Ctrl-C stops)")
        asyncio.run(_run_consumers(system, stop, consumers))
    finally:
        stop.set()
        for thread in threads:
            thread.join(timeout=10)
        system.close()
        click.echo("acgs worker: stopped")
