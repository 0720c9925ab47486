"""`acgs streaming …`: the AsyncAPI document of our topics, and the local broker and schema
registry that `acgs serve --kafka-local` (or ACGS_KAFKA_LOCAL=1) starts for development."""

from __future__ import annotations

import dataclasses
from pathlib import Path
from typing import Any

import click

from api.settings import Settings

ASYNCAPI_PATH = Path(__file__).resolve().parents[2] / "docs" / "asyncapi.json"


@click.group()
def streaming() -> None:
    """Event streaming (Kafka) tools."""


@streaming.command("asyncapi")
@click.option(
    "--output",
    type=click.Path(dir_okay=False, path_type=Path),
    default=ASYNCAPI_PATH,
    show_default=True,
    help="Where to write the document ('-' prints it).",
)
def asyncapi(output: Path) -> None:
    """Generate the AsyncAPI document of our topics (faststream)."""
    from api.streaming.asyncapi import render  # noqa: PLC0415 - needs the streaming extra

    text = render()
    if str(output) == "-":
        click.echo(text, nl=False)
    else:
        output.write_text(text)
        click.echo(f"wrote {output}")


def start_local_streaming(settings: Settings) -> tuple[Settings, Any]:
    """Start a local broker (Tansu) and schema registry; return the settings pointing at them and
    the handle to stop them with (infra.kafka.local_broker.LocalStreaming)."""
    from infra.kafka.local_broker import LocalStreaming  # noqa: PLC0415 - development only

    local = LocalStreaming()
    bootstrap, registry_url = local.start()
    click.echo(f"acgs: local Kafka broker on {bootstrap}, schema registry on {registry_url}")
    click.echo(
        f"acgs: watch events with e.g. `kcat -b {bootstrap} -t governance-events -C "
        f"-s value=avro -r {registry_url}`"
    )
    local_settings = dataclasses.replace(
        settings, kafka_bootstrap_servers=bootstrap, schema_registry_url=registry_url
    )
    return local_settings, local


@streaming.command("tail")
@click.option("--topic", default="governance-events", show_default=True)
@click.option("--from-beginning/--new-only", default=True, show_default=True)
@click.option("--limit", type=int, default=0, help="Stop after this many messages (0: never).")
@click.option("--timeout", type=float, default=0.0, help="Stop after this many idle seconds.")
def tail(topic: str, from_beginning: bool, limit: int, timeout: float) -> None:
    """Print the messages of a topic as JSON lines, decoded with their Avro schemas (uses
    ACGS_KAFKA_BOOTSTRAP_SERVERS and ACGS_SCHEMA_REGISTRY_URL)."""
    import json  # noqa: PLC0415
    import time  # noqa: PLC0415

    from confluent_kafka import OFFSET_BEGINNING, OFFSET_END, Consumer, TopicPartition  # noqa: PLC0415
    from confluent_kafka.schema_registry import SchemaRegistryClient  # noqa: PLC0415
    from confluent_kafka.schema_registry.avro import AvroDeserializer  # noqa: PLC0415

    from api.bootstrap import kafka_config  # noqa: PLC0415
    from infra.kafka.codec import header_list  # noqa: PLC0415

    config = kafka_config(Settings.from_env())
    consumer = Consumer({**config.client_conf(), "group.id": "acgs-tail"})
    registry = SchemaRegistryClient(config.registry_conf())
    decode = AvroDeserializer(registry)
    start = OFFSET_BEGINNING if from_beginning else OFFSET_END
    try:
        partitions = consumer.list_topics(topic, timeout=10).topics[topic].partitions
        consumer.assign([TopicPartition(topic, p, start) for p in partitions])
        seen, idle_since = 0, time.monotonic()
        while not limit or seen < limit:
            msg = consumer.poll(0.5)
            if msg is None or msg.error() is not None:
                if timeout and time.monotonic() - idle_since > timeout:
                    break
                continue
            idle_since, seen = time.monotonic(), seen + 1
            value = msg.value()
            try:
                body: Any = decode(value) if value and value[0] == 0 else value
            except Exception:  # noqa: BLE001 - show what cannot be decoded as text
                body = value
            if isinstance(body, bytes):
                body = body.decode("utf-8", "replace")
            headers = {k: v.decode("utf-8", "replace") for k, v in header_list(msg.headers())}
            line = {
                "partition": msg.partition(),
                "offset": msg.offset(),
                "key": (msg.key() or b"").decode(),
                "headers": headers,
                "value": body,
            }
            click.echo(json.dumps(line, default=str))
    except KeyboardInterrupt:
        pass
    finally:
        consumer.close()
        registry.close()
