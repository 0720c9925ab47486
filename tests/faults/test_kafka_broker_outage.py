"""The Kafka broker taken away and brought back while clients create tenants through a real
`acgs serve` streaming to it: writes go on being accepted (the log, not the broker, is the
record), the relay resumes by itself, and every event of the log reaches the topic exactly once,
counted by event id.

Two ways of taking it away: frozen (SIGSTOP: its connections stay open, nothing is answered, as
a hung or partitioned broker) and thawed (SIGCONT), on memory storage; and killed (the process
ends: SIGINT, or SIGKILL as a crash; its port closed) and a new process started on the same
port, on storage that outlives it (a bucket of the session's S3 store). The broker is each
test's own; the schema registry is the session's."""

from __future__ import annotations

import signal
import socket
import time
from collections import Counter
from collections.abc import Callable
from pathlib import Path
from uuid import UUID

import httpx
import psycopg
import pytest
from confluent_kafka import OFFSET_BEGINNING, Consumer, TopicPartition

from domain.events import event_id
from infra.kafka.config import KafkaConfig, Topics
from infra.kafka.local_broker import TansuBroker
from infra.kafka.schema_registry_server import SchemaRegistryHTTPServer
from infra.postgres.embedded import EmbeddedPostgres
from tests.faults.conftest import FaultServe
from tests.faults.load import TenantLoad, lift_platform_rate_limit
from tests.peers.http import wait_for
from tests.peers.s3 import S3Store

pytestmark = [pytest.mark.faults, pytest.mark.kafka, pytest.mark.e2e]

OUTAGE_SECONDS = 6.0


def _logged_event_ids(data_dir: Path) -> list[UUID]:
    with psycopg.connect(EmbeddedPostgres(data_dir).url(), autocommit=True) as conn:
        rows = conn.execute(
            "SELECT originator_id, originator_version FROM governance_events"
        ).fetchall()
    return [event_id(UUID(str(o)), int(v)) for o, v in rows]


def _log_head(data_dir: Path) -> int:
    with psycopg.connect(EmbeddedPostgres(data_dir).url(), autocommit=True) as conn:
        row = conn.execute("SELECT max(notification_id) FROM governance_events").fetchone()
    return int(row[0]) if row and row[0] is not None else 0


def _relay_position(data_dir: Path) -> int:
    """The log position up to which the broker has acknowledged the relay's messages."""
    with psycopg.connect(EmbeddedPostgres(data_dir).url(), autocommit=True) as conn:
        row = conn.execute(
            "SELECT position FROM projection_positions WHERE name = 'kafka_relay'"
        ).fetchone()
    return int(row[0]) if row else 0


class TopicReader:
    """Every message of the topic from the beginning, by event id (the header the relay sets)."""

    def __init__(self, bootstrap_servers: str, registry_url: str, topic: str) -> None:
        self.topic = topic
        self.seen: Counter[UUID] = Counter()
        self._consumer = Consumer(
            {
                **KafkaConfig(bootstrap_servers, registry_url).client_conf(),
                "group.id": "fault-reader",
                "enable.auto.commit": False,
            }
        )
        partitions = self._consumer.list_topics(topic, timeout=10).topics[topic].partitions
        self._consumer.assign([TopicPartition(topic, p, OFFSET_BEGINNING) for p in partitions])

    def read(self) -> Counter[UUID]:
        for message in self._consumer.consume(1000, timeout=0.2):
            if message.error() is None:
                headers = dict(message.headers() or [])
                self.seen[UUID(headers["event_id"].decode())] += 1
        return self.seen

    def close(self) -> None:
        self._consumer.close()


def _outage_under_load(
    tmp_path: Path,
    broker: TansuBroker,
    registry: SchemaRegistryHTTPServer,
    take_down: Callable[[TenantLoad], None],
    bring_back: Callable[[], None],
) -> dict[str, object]:
    """Tenants created through `acgs serve` streaming to `broker` (started here) while it is
    taken down for OUTAGE_SECONDS and brought back; asserts every event of the log is on the
    topic exactly once and returns the figures."""
    broker.start()
    data_dir = tmp_path / "serve"
    serve = FaultServe(
        data_dir,
        extra={
            "ACGS_KAFKA_BOOTSTRAP_SERVERS": broker.bootstrap_servers,
            "ACGS_SCHEMA_REGISTRY_URL": registry.url,
        },
    )
    reader: TopicReader | None = None
    try:
        serve.start().wait_ready()
        lift_platform_rate_limit(EmbeddedPostgres(data_dir).url())
        token = serve.bootstrap_token()
        with TenantLoad(serve.url, token) as load:
            wait_for(lambda: len(load.created) >= 10, timeout=60)
            take_down(load)
            stopped_at = time.monotonic()
            wait_for(lambda: time.monotonic() - stopped_at > OUTAGE_SECONDS, timeout=30)
            accepted_while_stopped = load.created_since(stopped_at)
            bring_back()
            resumed_at = time.monotonic()
            wait_for(lambda: load.created_since(resumed_at) >= 10, timeout=60)
        assert load.other == [], load.other[:5]
        assert load.refused == []  # the broker is not on the write path
        assert accepted_while_stopped > 0

        logged = _logged_event_ids(data_dir)
        reader = TopicReader(broker.bootstrap_servers, registry.url, Topics().governance_events)
        deadline = time.monotonic() + 90
        while not set(reader.read()) >= set(logged) and time.monotonic() < deadline:
            pass
        missing = set(logged) - set(reader.seen)
        if missing:
            metrics = httpx.get(f"{serve.url}/metrics", timeout=10).text.splitlines()
            relay = [line for line in metrics if "kafka_relay" in line or "lag" in line]
            pytest.fail(f"{len(missing)} of {len(logged)} events never reached the topic: {relay}")
        caught_up_after = time.monotonic() - resumed_at
        quiet_until = time.monotonic() + 1.0  # duplicates, if any, would be there by now
        while time.monotonic() < quiet_until:
            reader.read()
        seen = reader.seen
        twice = {e: n for e, n in seen.items() if n > 1}
        assert set(logged) <= set(seen)  # none lost
        assert twice == {}, f"{len(twice)} events delivered more than once"
        assert set(seen) == set(_logged_event_ids(data_dir))  # nothing that is not in the log
        return {
            "accepted": len(load.created),
            "accepted_while_broker_stopped": accepted_while_stopped,
            "events_in_log": len(logged),
            "delivered": sum(seen.values()),
            "distinct_delivered": len(seen),
            "duplicates": len(twice),
            "outage_s": OUTAGE_SECONDS,
            "all_delivered_after_resume_s": round(caught_up_after, 2),
        }
    finally:
        if reader is not None:
            reader.close()
        serve.stop()
        broker.stop()


def test_a_stopped_broker_loses_no_event_and_duplicates_none(
    tmp_path: Path, schema_registry: SchemaRegistryHTTPServer, figures: Callable[..., None]
) -> None:
    broker = TansuBroker(log_path=tmp_path / "tansu.log")
    figures(
        **_outage_under_load(
            tmp_path, broker, schema_registry, lambda _: broker.pause(), broker.resume
        )
    )


def _refuses_connections(port: int) -> bool:
    try:
        with socket.create_connection(("127.0.0.1", port), timeout=0.2):
            return False
    except ConnectionRefusedError:
        return True


@pytest.mark.parametrize("sig", [signal.SIGINT, signal.SIGKILL], ids=["SIGINT", "SIGKILL"])
def test_a_killed_and_restarted_broker_loses_no_event_and_duplicates_none(
    tmp_path: Path,
    schema_registry: SchemaRegistryHTTPServer,
    s3_store: S3Store,
    figures: Callable[..., None],
    sig: signal.Signals,
) -> None:
    broker = s3_store.broker(tmp_path / "tansu.log")
    pids: list[int] = []
    acknowledged: list[int] = []

    def kill(load: TenantLoad) -> None:
        # Tansu (this test's broker) is killed with nothing in flight: its S3 storage saves a
        # producer's sequence before the messages, so a kill between the two loses a batch that
        # it later acknowledges as a duplicate (its defect, not the relay's; a Kafka cluster
        # stores both with the batch). Writes go on through the outage.
        load.pause()
        head = _log_head(tmp_path / "serve")
        wait_for(lambda: _relay_position(tmp_path / "serve") >= head, timeout=60)
        acknowledged.append(head)  # the events the new broker must still hold
        assert broker.process is not None
        pids.append(broker.process.pid)
        broker.kill(sig)
        assert _refuses_connections(broker.port)  # the process is gone, its port closed
        load.resume()

    def start_again() -> None:
        broker.start()
        assert broker.process is not None
        pids.append(broker.process.pid)

    result = _outage_under_load(tmp_path, broker, schema_registry, kill, start_again)
    assert pids[0] != pids[1]  # a new broker process, on the same port
    figures(signal=sig.name, log_position_acknowledged_before_kill=acknowledged[0], **result)
