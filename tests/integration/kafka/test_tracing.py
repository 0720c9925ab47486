"""One trace, followed with an in-memory exporter, from an HTTP request through the command and
the event store to the projections, the Kafka relay and a Kafka consumer."""

from __future__ import annotations

from collections.abc import AsyncIterator, Iterator
from typing import Any

import httpx
import psycopg
import pytest
from confluent_kafka.schema_registry import SchemaRegistryClient
from opentelemetry.sdk.trace import ReadableSpan
from opentelemetry.sdk.trace.export import SimpleSpanProcessor
from opentelemetry.sdk.trace.export.in_memory_span_exporter import InMemorySpanExporter

from api.bootstrap import System, build_relay
from api.http.app import create_app
from api.tokens import issue_as_operator
from domain.maci import MaciRole
from domain.tenancy import SYSTEM_TENANT_ID
from infra import tracing
from infra.kafka.codec import EventCodec
from infra.kafka.config import KafkaConfig
from infra.kafka.consumer import DomainEventConsumer, make_broker
from tests.integration.kafka.support import HASH, log_head, wait_until
from tests.peers.http import serving

pytestmark = [pytest.mark.kafka, pytest.mark.postgres]
TRACE_ID = "4bf92f3577b34da6a3ce929d0e0e4736"
CALLER = f"00-{TRACE_ID}-00f067aa0ba902b7-01"  # a caller's sampled span


class Recorder(DomainEventConsumer):
    name = "trace_recorder"

    def __init__(self, **kwargs: Any) -> None:
        super().__init__(**kwargs)
        self.seen: list[Any] = []

    def process(self, value: Any, cur: psycopg.Cursor[Any]) -> None:
        del cur
        self.seen.append(value)


@pytest.fixture
def spans() -> Iterator[InMemorySpanExporter]:
    exporter = InMemorySpanExporter()
    tracing.add_processor(SimpleSpanProcessor(exporter))
    yield exporter
    exporter.shutdown()  # the processor stays with the provider; a stopped exporter keeps nothing


@pytest.fixture
async def consumer(
    system: System, kafka_config: KafkaConfig, unique: str
) -> AsyncIterator[Recorder]:
    codec = EventCodec(SchemaRegistryClient(kafka_config.registry_conf()))
    recorder = Recorder(
        topic=kafka_config.topics.governance_events,
        conninfo=system.projector_conninfo,
        config=kafka_config,
        codec=codec,
        name=f"trace_{unique}",
    )
    yield recorder
    recorder.close()
    codec.close()


def _by_name(spans: tuple[ReadableSpan, ...], name: str) -> ReadableSpan:
    found = [s for s in spans if s.name == name]
    assert len(found) == 1, [s.name for s in spans]
    return found[0]


async def test_one_trace_runs_from_the_request_to_the_projections_and_a_consumer(
    system: System,
    kafka_config: KafkaConfig,
    spans: InMemorySpanExporter,
    consumer: Recorder,
    unique: str,
) -> None:
    relay = build_relay(system, kafka_config, name=f"relay_{unique}")
    relay.prepare()
    relay.seek(log_head(system))
    for runner in system.runners:
        runner.catch_up()
    token = issue_as_operator(
        system,
        "pytest",
        tenant_id=SYSTEM_TENANT_ID,
        roles=(MaciRole.EXECUTIVE,),
        sub=f"tracer-{unique}",
        ttl_seconds=900,
    ).token
    spans.clear()
    with serving(create_app(system)) as url:
        response = httpx.post(
            f"{url}/v1/tenants",
            headers={"Authorization": f"Bearer {token}", "traceparent": CALLER},
            json={
                "tenant_name": f"Traced {unique}",
                "tenant_slug": f"traced-{unique}",
                "admin_email": "ops@traced.test",
                "constitutional_hash": HASH,
            },
            timeout=30,
        )
    assert response.status_code == 201, response.text
    for runner in system.runners:
        runner.catch_up()
    try:
        assert relay.catch_up() >= 1
    finally:
        relay.close()
    broker = make_broker(kafka_config)
    consumer.subscribe(broker)
    await broker.start()
    try:
        await wait_until(
            lambda: any(
                getattr(e, "tenant_slug", None) == f"traced-{unique}" for e in consumer.seen
            )
        )
    finally:
        await broker.stop()

    finished = tuple(
        s for s in spans.get_finished_spans() if format(s.context.trace_id, "032x") == TRACE_ID
    )
    server = _by_name(finished, "POST /v1/tenants")
    command = _by_name(finished, "command create")
    append = _by_name(finished, "event_store.append")
    tenants = _by_name(finished, "projection.apply tenants")
    audit = _by_name(finished, "projection.apply audit_log")
    relayed = _by_name(finished, "kafka.relay publish")
    consumed = _by_name(finished, f"kafka.consume trace_{unique}")

    assert format(server.parent.span_id, "016x") == "00f067aa0ba902b7"  # the caller's span
    assert command.parent.span_id == server.context.span_id
    assert append.parent.span_id == command.context.span_id
    for child in (tenants, audit, relayed, consumed):  # the event carries the request's span
        assert child.parent.span_id == server.context.span_id, child.name
    attributes = dict(server.attributes or {})
    assert attributes[tracing.USER] == f"tracer-{unique}"
    assert attributes[tracing.TENANT] == str(SYSTEM_TENANT_ID)
    assert attributes[tracing.ROLE] == "EXECUTIVE"
    assert attributes[tracing.HASH] == HASH
    assert attributes[tracing.CRITICAL] is True  # the tenant lifecycle
    assert attributes["http.response.status_code"] == 201
