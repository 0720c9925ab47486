"""The Kafka relay: a follower of the event store's notification log in the second delivery mode
of `infra.postgres.follower.LogFollower` (publish, then advance once acknowledged).

It follows the log from its position in `projection_positions`, publishes each event
to `governance-events` and its audit record to `audit-trail` (key: tenant id; headers
`event_type`, `event_id`, `constitutional_hash`, `traceparent`; the event's message also
`log_position`, its notification id in the log), waits until the broker has
acknowledged every message of the batch (idempotent producer, acks=all), and only then moves its
position. A crash between publishing and moving the position therefore re-publishes the batch:
duplicates, never loss; consumers deduplicate on `event_id`. While the broker is away the
producer keeps the batch queued (no delivery timeout) and the relay waits.

An event that cannot be decoded or encoded goes to the topic's dead-letter topic with the error,
and the stream moves on. One key keeps one partition, so each tenant's events keep their order.

Each event is read straight from its stored JSON into its parts (`EventCodec.parts_of_stored`):
its Avro record and its audit record are both made from them, with no domain object in between.
A state that needs the application's mapper (an upcast, an unusual value) is decoded by it.
"""

from __future__ import annotations

import json
import logging
import threading
import time
from collections.abc import Callable
from contextlib import nullcontext
from dataclasses import dataclass, field
from typing import Any, cast

from confluent_kafka import KafkaError, Message, Producer
from eventsourcing.persistence import Mapper, StoredEvent
from opentelemetry.trace import SpanKind

from domain.events import event_id
from infra import tracing
from infra.kafka.codec import EventCodec, EventParts, Headers, RegistryUnavailable, header_list
from infra.kafka.config import KafkaConfig
from infra.kafka.topics import ensure_topics
from infra.postgres.follower import LogFollower, LogRow

LOG_POSITION = "log_position"  # header of an event's message: its notification id in the log

log = logging.getLogger(__name__)
# The audit record of an event from its parts, called with the keywords audit_id, event_type,
# aggregate_id, timestamp, meta and fields (the read side's `audit_record_of`).
AuditRecordOf = Callable[..., dict[str, Any]]
Outgoing = tuple[str, bytes, bytes, Headers]  # topic, value, key, headers


class DeliveryFailed(RuntimeError):
    """The broker did not acknowledge every message of a batch; the batch is published again."""


class RelayStopped(RuntimeError):
    """Stop was requested while the batch was still waiting for the broker."""


class NotPrepared(RuntimeError):
    """Topics could not be created or schemas registered yet (broker or registry away)."""


@dataclass
class RelayStats:
    events: int = 0  # events whose batch was acknowledged and whose position was committed
    messages: int = 0  # messages acknowledged (events and audit records)
    dead_letters: int = 0
    batches: int = 0
    retries: int = 0


@dataclass
class _Acks:
    """Counts the broker's delivery reports of a set of produced messages."""

    unacked: int = 0
    failures: list[tuple[KafkaError, Message]] = field(default_factory=list)

    def __call__(self, err: KafkaError | None, msg: Message) -> None:
        self.unacked -= 1
        if err is not None:
            self.failures.append((err, msg))


@dataclass
class _Batch:
    """One batch of the log, encoded and ready to produce."""

    last: int  # notification id of its last event: the position once it is acknowledged
    events: int
    messages: list[Outgoing] = field(default_factory=list)
    sent: int = 0  # messages of events and audit records (the rest are dead letters)
    acks: _Acks = field(default_factory=_Acks)


class KafkaRelay:
    def __init__(
        self,
        conninfo: str,
        mapper: Mapper[Any],
        codec: EventCodec,
        config: KafkaConfig,
        *,
        audit_record: AuditRecordOf,
        name: str = "kafka_relay",
        producer_factory: Callable[[dict[str, Any]], Producer] = Producer,
    ) -> None:
        self.mapper = mapper
        self.codec = codec
        self.config = config
        self.audit_record = audit_record
        self._producer_factory = producer_factory
        self._producer: Producer | None = None
        # Losing the last position update in a database crash only re-publishes (consumers
        # deduplicate), so the relay need not wait for each one to reach the disk.
        self.follower = LogFollower(
            conninfo, name, batch_size=config.relay_batch_size, synchronous_commit=False
        )
        self.stats = RelayStats()
        self._prepared = False

    @property
    def name(self) -> str:
        return self.follower.name

    # --- resources ----------------------------------------------------------------------------

    def producer(self) -> Producer:
        if self._producer is None:
            # Every message's report, not only failures: a batch is complete when all of its
            # messages are reported, whatever the batches after it are doing.
            conf = {**self.config.producer_conf(), "delivery.report.only.error": False}
            self._producer = self._producer_factory(conf)
        return self._producer

    def close(self) -> None:
        self.follower.close()
        if self._producer is not None:
            self._producer.flush(5)
            self._producer = None
        self.codec.close()

    # --- position -----------------------------------------------------------------------------

    def position(self) -> int:
        return self.follower.position()

    def seek(self, position: int) -> None:
        """Publish from just after `position` (0 re-publishes the whole log, e.g. for a new
        consumer that needs history; consumers deduplicate)."""
        self.follower.advance(position)

    def reset(self) -> None:
        self.seek(0)

    def _advance(self, position: int) -> None:
        """Move the position once the batch up to it is acknowledged."""
        self.follower.advance(position)

    # --- relaying -----------------------------------------------------------------------------

    def step(self, stop: threading.Event | None = None) -> int:
        """Publish the next batch and, once the broker acknowledged all of it, move the position.
        Returns the number of events relayed."""
        batch = self._encode(self._fetch(self.position()))
        if batch is None:
            return 0
        self._produce_batch(batch)
        self._complete(batch, stop)
        return batch.events

    def catch_up(self, stop: threading.Event | None = None) -> int:
        """Publish until the end of the log; returns the number of events relayed. Batches are
        pipelined: the next batch is read, encoded and produced while the broker acknowledges
        the previous one; the position moves past a batch only once every message of it is
        acknowledged (and the batches before it), so it never passes an unacknowledged message.
        The idempotent producer keeps each partition's order across batches."""
        total = 0
        position = self.position()
        pending: _Batch | None = None
        while True:
            try:
                batch = self._encode(self._fetch(position))
                if batch is not None:
                    self._produce_batch(batch)
            finally:
                if pending is not None:
                    self._complete(pending, stop)
                    total += pending.events
                    pending = None
            if batch is None:
                return total
            pending, position = batch, batch.last

    def _fetch(self, position: int) -> list[LogRow]:
        return self.follower.read(position)

    def _encode(self, rows: list[LogRow]) -> _Batch | None:
        """The messages of a batch of stored events, in log order (not produced yet)."""
        if not rows:
            return None
        batch = _Batch(last=rows[-1][0], events=len(rows))
        for row in rows:
            batch.sent += self._encode_event(row, batch.messages)
        return batch

    def _encode_event(self, row: LogRow, out: list[Outgoing]) -> int:
        """Append the messages of one stored event to `out`; returns how many are not dead
        letters."""
        topics = self.config.topics
        codec = self.codec
        try:
            parts = self._parts(row)
            key, value, headers = codec.parts_message(parts, topics.governance_events)
        except RegistryUnavailable:
            raise
        except Exception as exc:  # noqa: BLE001 - any undecodable/unencodable event is dead-lettered
            out.append(self._dead_letter(topics.governance_events, row, exc))
            return 0
        position = (LOG_POSITION, str(row[0]).encode())  # the event's place in the log
        out.append((topics.governance_events, value, key, [*headers, position]))
        trace_parent = parts.meta.get("trace_parent")
        with (
            tracing.continued(  # the relay's step in a sampled trace (none in the others)
                "kafka.relay publish",
                trace_parent,
                kind=SpanKind.PRODUCER,
                attributes={
                    "messaging.system": "kafka",
                    "messaging.destination.name": topics.governance_events,
                    "messaging.message.id": parts.event_id,
                    tracing.TENANT: str(parts.meta.get("tenant_id")),
                },
            )
            if tracing.sampled(trace_parent)
            else nullcontext()
        ):
            return self._encode_audit(row, parts, headers, out)

    def _encode_audit(
        self, row: LogRow, parts: EventParts, headers: Headers, out: list[Outgoing]
    ) -> int:
        """Append the audit record's message of an event whose message is in `out`."""
        topics = self.config.topics
        codec = self.codec
        try:
            audit = self.audit_record(
                audit_id=parts.event_id,
                event_type=parts.plan.event_type,
                aggregate_id=parts.aggregate_id,
                timestamp=parts.timestamp,
                meta=parts.meta,
                fields=parts.fields,
            )
            trace = headers[-1:]  # the event's traceparent (the last of its headers)
            key, value, headers = codec.audit_message(
                audit, topics.audit_trail, trace, plain=parts.plain
            )
        except RegistryUnavailable:
            raise
        except Exception as exc:  # noqa: BLE001
            out.append(self._dead_letter(topics.audit_trail, row, exc))
            return 1
        out.append((topics.audit_trail, value, key, headers))
        return 2

    def _parts(self, row: LogRow) -> EventParts:
        _, originator_id, version, stored_topic, state, _, _ = row
        state = bytes(state)
        parts = self.codec.parts_of_stored(stored_topic, originator_id, version, state)
        if parts is None:
            stored = StoredEvent(originator_id, version, stored_topic, state)
            parts = self.codec.parts_of_event(self.mapper.to_domain_event(stored))
        return parts

    def _produce_batch(self, batch: _Batch) -> None:
        """Queue every message of the batch (no per-message poll: delivery reports are served
        while waiting for the batch)."""
        producer = self.producer()
        produce = producer.produce
        acks = batch.acks
        acks.unacked = len(batch.messages)
        for topic, value, key, headers in batch.messages:
            try:
                produce(topic, value, key, headers=cast("Any", headers), on_delivery=acks)
            except BufferError:  # the local queue is full: let the broker drain it
                self._produce(topic, value, key, headers, acks)

    def _complete(self, batch: _Batch, stop: threading.Event | None) -> None:
        """Wait until the broker acknowledged the batch, dead-letter what it refused for good,
        then move the position past the batch."""
        self._await_delivery(batch.acks, stop)
        rejected = self._dead_letter_rejected(batch.acks, stop)
        self._advance(batch.last)
        self.stats.events += batch.events
        self.stats.messages += batch.sent
        self.stats.dead_letters += len(batch.messages) - batch.sent + rejected
        self.stats.batches += 1

    def _produce(self, topic: str, value: bytes, key: bytes, headers: Headers, acks: _Acks) -> None:
        producer = self.producer()
        while True:
            try:
                producer.produce(topic, value, key, headers=cast("Any", headers), on_delivery=acks)
            except BufferError:  # the local queue is full: let the broker drain it
                producer.poll(0.1)
            else:
                return

    def _dead_letter(self, topic: str, row: LogRow, exc: BaseException) -> Outgoing:
        """The dead-letter message of an event that cannot be published to `topic`."""
        notification_id, originator_id, version, stored_topic, state, tenant_id, _ = row
        log.error(
            "relay: event %s/%s (notification %s) cannot be published to %s: %s",
            originator_id,
            version,
            notification_id,
            topic,
            exc,
        )
        body = {
            "notification_id": notification_id,
            "aggregate_id": str(originator_id),
            "aggregate_version": version,
            "stored_topic": stored_topic,
            "tenant_id": str(tenant_id),
            "error": str(exc),
            "state": bytes(state).decode("utf-8", "replace"),
        }
        headers = [
            ("event_id", str(event_id(originator_id, version)).encode()),
            ("stored_topic", str(stored_topic).encode()),
            ("error", str(exc)[:1000].encode()),
            ("error_type", type(exc).__name__.encode()),
            ("dlq_source_topic", topic.encode()),
        ]
        return (
            self.config.topics.dlq(topic),
            json.dumps(body).encode(),
            str(tenant_id).encode(),
            headers,
        )

    def _await_delivery(self, acks: _Acks, stop: threading.Event | None) -> None:
        producer = self.producer()
        started = time.monotonic()
        warned = False
        while acks.unacked > 0:
            producer.poll(0.5)
            if acks.unacked <= 0:
                break
            if stop is not None and stop.is_set():
                raise RelayStopped("stopped while waiting for the broker")
            if not warned and time.monotonic() - started > 5:
                log.warning(
                    "relay %s: the broker has not acknowledged the batch for 5 s; "
                    "waiting (the position stays where it is)",
                    self.name,
                )
                warned = True
        failures = acks.failures
        if any(err.fatal() or err.retriable() for err, _ in failures):
            err = failures[0][0]
            if err.fatal():
                self._producer = None  # a fatal idempotence error: start a new producer
            raise DeliveryFailed(f"{len(failures)} message(s) not delivered: {err.str()}")

    def _dead_letter_rejected(self, acks: _Acks, stop: threading.Event | None) -> int:
        """Messages the broker refused for good (e.g. too large) go to the dead-letter topic as
        a description: the payload itself would be refused again."""
        rejected = acks.failures
        dead = _Acks()
        for err, msg in rejected:
            topic = msg.topic() or ""
            headers = header_list(msg.headers())
            headers += [
                ("error", err.str().encode()),
                ("error_type", err.name().encode()),
                ("dlq_source_topic", topic.encode()),
            ]
            body = json.dumps({"error": err.str(), "value_bytes": len(msg.value() or b"")})
            dead.unacked += 1
            dlq = self.config.topics.dlq(topic)
            self._produce(dlq, body.encode(), msg.key() or b"", headers, dead)
        if rejected:
            self._await_delivery(dead, stop)
            if dead.failures:
                problem = f"dead letters not delivered: {dead.failures[0][0].str()}"
                raise DeliveryFailed(problem)
        return len(rejected)

    def prepare(self) -> None:
        """Create missing topics and register every schema (an incompatible schema change is
        refused here, before anything is published)."""
        ensure_topics(self.config)
        self.codec.register(self.config.compatibility)
        self._prepared = True

    def _prepare_and_catch_up(self, stop: threading.Event) -> int:
        if not self._prepared:
            try:
                self.prepare()
            except RegistryUnavailable:
                raise
            except Exception as exc:  # broker or registry away: a transient failure
                raise NotPrepared(f"cannot prepare topics and schemas ({exc})") from exc
        return self.catch_up(stop)

    def _count_retry(self, exc: Exception) -> None:
        del exc
        self.stats.retries += 1

    def run(self, stop: threading.Event, poll_seconds: float = 1.0) -> None:
        """Follow the log until `stop` is set; survives database, broker and registry outages
        (the position stays until the broker has acknowledged a batch). Any other failure
        propagates (the supervisor restarts the relay; the position has not moved past anything
        unacknowledged, so that is safe)."""
        try:
            self.follower.follow(
                stop,
                lambda: self._prepare_and_catch_up(stop),
                poll_seconds=poll_seconds,
                transient=(DeliveryFailed, RegistryUnavailable, NotPrepared),
                on_retry=self._count_retry,
            )
        except RelayStopped:
            return
