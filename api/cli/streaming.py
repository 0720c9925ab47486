"""`acgs streaming …`: the AsyncAPI document of our topics, and the local broker and schema
registry that `acgs serve --kafka-local` (or ACGS_KAFKA_LOCAL=1) starts for development."""

from __future__ import annotations

import dataclasses
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import click

from api.settings import Settings, SettingsError

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


LOCAL_ADDRESS_FILE = "kafka-local.json"  # in the data directory, written by --kafka-local
RETRY_MAX_SECONDS = 10.0


def start_local_streaming(settings: Settings) -> tuple[Settings, Any]:
    """Start a local broker (Tansu) and schema registry, on the same ports as last time on this
    data directory when they are free; return the settings pointing at them and the handle to
    stop them with (infra.kafka.local_broker.LocalStreaming)."""
    from infra.kafka.local_broker import (  # noqa: PLC0415 - development only
        BrokerUnavailable,
        LocalStreaming,
    )

    local = LocalStreaming(address_file=settings.data_dir / LOCAL_ADDRESS_FILE)
    try:
        bootstrap, registry_url = local.start()
    except BrokerUnavailable as exc:
        raise click.ClickException(str(exc)) from None
    click.echo(f"acgs: local Kafka broker on {bootstrap}, schema registry on {registry_url}")
    click.echo(
        "acgs: follow the events with `acgs streaming tail` (same data directory), or e.g. "
        f"`kcat -b {bootstrap} -t governance-events -C -s value=avro -r {registry_url}`"
    )
    local_settings = dataclasses.replace(
        settings, kafka_bootstrap_servers=bootstrap, schema_registry_url=registry_url
    )
    return local_settings, local


def streaming_settings(settings: Settings) -> Settings:
    """The settings, or, when no broker is configured, those of the local broker that
    `acgs serve --kafka-local` last ran on this data directory; neither is a SettingsError."""
    if settings.kafka_bootstrap_servers:
        return settings
    from infra.kafka.local_broker import LocalAddresses  # noqa: PLC0415

    local = LocalAddresses.read(settings.data_dir / LOCAL_ADDRESS_FILE)
    if local is None:
        msg = (
            "ACGS_KAFKA_BOOTSTRAP_SERVERS is not set, and no local broker of "
            f"`acgs serve --kafka-local` is recorded in {settings.data_dir}"
        )
        raise SettingsError(msg)
    return dataclasses.replace(
        settings,
        kafka_bootstrap_servers=local.bootstrap_servers,
        schema_registry_url=local.schema_registry_url,
    )


def json_value(value: Any) -> Any:
    """JSON for what Avro decoding yields besides JSON types: instants as ISO 8601 in UTC with
    `Z`, bytes as text."""
    if isinstance(value, datetime):
        if value.tzinfo is None:
            value = value.replace(tzinfo=UTC)
        return value.astimezone(UTC).isoformat().replace("+00:00", "Z")
    if isinstance(value, bytes):
        return value.decode("utf-8", "replace")
    return str(value)


class BrokerWatch:
    """Says once that the broker cannot be reached (and once that it is back), instead of the
    client library's line per connection attempt; the client retries with backoff."""

    def __init__(self, bootstrap: str) -> None:
        self.bootstrap = bootstrap
        self.down = False

    def error(self, err: Any) -> None:
        from confluent_kafka import KafkaError  # noqa: PLC0415

        if err.code() in (KafkaError._TRANSPORT, KafkaError._ALL_BROKERS_DOWN):
            self.unreachable(err.str())
        else:
            click.echo(f"acgs: Kafka: {err.str()}", err=True)

    def unreachable(self, reason: str) -> None:
        if not self.down:
            self.down = True
            click.echo(
                f"acgs: the Kafka broker at {self.bootstrap} cannot be reached ({reason}); "
                f"retrying (every {RETRY_MAX_SECONDS:.0f} s at most) until it is back",
                err=True,
            )

    def reachable(self) -> None:
        if self.down:
            self.down = False
            click.echo(f"acgs: the Kafka broker at {self.bootstrap} is back", err=True)


@streaming.command("tail")
@click.option("--topic", default="governance-events", show_default=True)
@click.option("--from-beginning/--new-only", default=True, show_default=True)
@click.option("--limit", type=int, default=0, help="Stop after this many messages (0: never).")
@click.option("--timeout", type=float, default=0.0, help="Stop after this many idle seconds.")
def tail(topic: str, from_beginning: bool, limit: int, timeout: float) -> None:
    """Print the messages of a topic as JSON lines, decoded with their Avro schemas (uses
    ACGS_KAFKA_BOOTSTRAP_SERVERS and ACGS_SCHEMA_REGISTRY_URL, or else the local broker that
    `acgs serve --kafka-local` runs on the same ACGS_DATA_DIR)."""
    import json  # noqa: PLC0415
    import time  # noqa: PLC0415

    from confluent_kafka import (  # noqa: PLC0415
        OFFSET_BEGINNING,
        OFFSET_END,
        Consumer,
        KafkaException,
        TopicPartition,
    )
    from confluent_kafka.schema_registry import SchemaRegistryClient  # noqa: PLC0415
    from confluent_kafka.schema_registry.avro import AvroDeserializer  # noqa: PLC0415

    from api.bootstrap import kafka_config  # noqa: PLC0415
    from infra.kafka.codec import header_list  # noqa: PLC0415

    config = kafka_config(streaming_settings(Settings.from_env()))
    watch = BrokerWatch(config.bootstrap_servers)
    consumer = Consumer(
        {
            **config.client_conf(),
            "group.id": "acgs-tail",
            "error_cb": watch.error,
            "log_level": 2,  # connection failures come through error_cb, said once
            "reconnect.backoff.ms": 250,
            "reconnect.backoff.max.ms": int(RETRY_MAX_SECONDS * 1000),
        }
    )
    registry = SchemaRegistryClient(config.registry_conf())
    decode = AvroDeserializer(registry)
    start = OFFSET_BEGINNING if from_beginning else OFFSET_END
    try:
        started = time.monotonic()
        wait = min(RETRY_MAX_SECONDS, timeout) if timeout else RETRY_MAX_SECONDS
        while True:
            try:
                metadata = consumer.list_topics(topic, timeout=wait)
                break
            except KafkaException as exc:
                watch.unreachable(str(exc.args[0].str() if exc.args else exc))
                if timeout and time.monotonic() - started > timeout:
                    return
        watch.reachable()
        partitions = metadata.topics[topic].partitions
        consumer.assign([TopicPartition(topic, p, start) for p in partitions])
        seen, idle_since = 0, time.monotonic()
        while not limit or seen < limit:
            msg = consumer.poll(0.5)
            if msg is None or msg.error() is not None:
                if timeout and time.monotonic() - idle_since > timeout:
                    break
                continue
            watch.reachable()
            idle_since, seen = time.monotonic(), seen + 1
            value = msg.value()
            try:
                body: Any = decode(value) if value and value[0] == 0 else value
            except Exception:  # noqa: BLE001 - show what cannot be decoded as text
                body = value
            headers = {k: v.decode("utf-8", "replace") for k, v in header_list(msg.headers())}
            line = {
                "partition": msg.partition(),
                "offset": msg.offset(),
                "key": (msg.key() or b"").decode(),
                "headers": headers,
                "value": body,
            }
            click.echo(json.dumps(line, default=json_value))
    except KeyboardInterrupt:
        pass
    finally:
        consumer.close()
        registry.close()
