"""A SIEM sink's source when streaming is on: a Kafka consumer group of its own
(`acgs-sink-<integration id>`) on `governance-events`, handing the sink runner the same rows the
notification log would (`projections.sinks.runner.LogSource`), so a sink is written once against
the event, not the transport.

Each message is decoded (Avro, through the registry) to its domain event and turned back into
the stored event the log holds (the application's mapper), with the event's place in the log from
the relay's `log_position` header: the runner enriches and delivers it exactly as it would a row
of the log. Offsets are committed only once the sink confirmed the round up to a row ("publish,
then advance"): a sink stopped or killed mid-round starts again from the last confirmed offsets
(the receiver deduplicates on `event_id`). When a round fails, the next read rewinds to the
committed offsets. A message that cannot be decoded, or that lacks `log_position`, goes to
`<topic>.dlq` with its headers plus the error (as our other consumers do) and the stream moves
on. The sink's row in `projection_positions` is kept too, so its deliveries view shows how far it
is; the committed offsets are what it resumes from.

This is a plain confluent-kafka consumer rather than a faststream subscriber
(`infra.kafka.consumer`): the sink runner pulls rounds at its own pace (batching by count, bytes
and time, retries that may hold a round for minutes) and commits after the receiver's
acknowledgement, which a push-style handler committing after each batch cannot express.
"""

from __future__ import annotations

import logging
import threading
from collections import deque
from collections.abc import Callable
from typing import Any
from uuid import UUID

from confluent_kafka import (
    OFFSET_BEGINNING,
    Consumer,
    KafkaError,
    KafkaException,
    Message,
    Producer,
    TopicPartition,
)
from eventsourcing.persistence import Mapper

from infra.kafka.codec import EventCodec, header_list
from infra.kafka.config import KafkaConfig
from infra.kafka.consumer import is_permanent
from infra.kafka.relay import LOG_POSITION
from infra.postgres.follower import LogFollower, LogRow

log = logging.getLogger(__name__)
POLL_SECONDS = 0.2
_PATIENT = {"max.poll.interval.ms": 900_000}
Offsets = dict[tuple[str, int], int]  # (topic, partition) -> the next offset to consume


class Undeliverable(Exception):
    """A message no retry can turn into a row (undecodable, no log position)."""


def sink_group(integration_id: UUID) -> str:
    """The consumer group of a sink (one per sink: each has its own offsets)."""
    return f"acgs-sink-{integration_id}"


class KafkaSinkSource:
    """The runner's source over a consumer group (see the module docstring)."""

    def __init__(
        self,
        config: KafkaConfig,
        codec: EventCodec,
        mapper: Mapper[Any],
        positions: LogFollower,
        *,
        group_id: str,
        topic: str | None = None,
        poll_seconds: float = POLL_SECONDS,
    ) -> None:
        self.name = positions.name
        self.topic = topic or config.topics.governance_events
        self.group_id = group_id
        self.dlq_topic = config.topics.dlq(self.topic)
        self._codec = codec
        self._mapper = mapper
        self._positions = positions
        self._poll_seconds = poll_seconds
        # A round may wait minutes for a receiver's retries without polling.
        self._consumer = Consumer({**config.consumer_conf(group_id), **_PATIENT})
        self._consumer.subscribe([self.topic])
        self._dlq = Producer({**config.client_conf(), "acks": "all"})
        self._offsets: Offsets = {}  # after the rows handed out so far
        self._pending: deque[tuple[int, Offsets]] = deque()  # (row's position, offsets after it)
        self._confirmed = positions.position()
        self._returned = self._confirmed

    # --- LogSource ----------------------------------------------------------------------------

    def position(self) -> int:
        """The log position of the last row the sink confirmed."""
        return self._confirmed

    def advance(self, position: int) -> None:
        """Commit the offsets after the row at `position` (the last of a confirmed round)."""
        while self._pending:
            at, offsets = self._pending.popleft()
            if at == position:
                self._commit(offsets)
                break
        self._confirmed = position
        self._positions.advance(position)

    def read(self, after: int, limit: int | None = None) -> list[LogRow]:
        """The next rows; `after` other than the last row handed out (a failed round is being
        read again) rewinds to the committed offsets first."""
        if after != self._returned:
            self._rewind(after)
        rows: list[LogRow] = []
        for message in self._consumer.consume(limit or 500, self._poll_seconds):
            error = message.error()
            if error is not None:
                if error.code() == KafkaError._PARTITION_EOF:
                    continue
                raise KafkaException(error)
            key = (str(message.topic()), int(message.partition() or 0))
            self._offsets[key] = int(message.offset() or 0) + 1
            try:
                row = self._row(message)
            except Undeliverable as exc:
                self._dead_letter(message, exc)
                self._pass_dead_letter()
                continue
            rows.append(row)
            self._pending.append((row[0], dict(self._offsets)))
        if rows:
            self._returned = rows[-1][0]
        return rows

    def follow(
        self,
        stop: threading.Event,
        catch_up: Callable[[], int],
        *,
        poll_seconds: float = 1.0,
    ) -> None:
        """Call `catch_up` until `stop` is set (each read waits up to `poll_seconds` for
        messages); a broker error is retried after a second from the committed offsets."""
        del poll_seconds  # the consumer's own wait paces the loop
        while not stop.is_set():
            try:
                catch_up()
            except KafkaException as exc:
                log.warning("%s: %s; trying again", self.name, exc)
                stop.wait(1.0)

    def close(self) -> None:
        try:
            self._consumer.close()
        finally:
            self._dlq.flush(10)
            self._positions.close()
            self._codec.close()

    # --- messages -----------------------------------------------------------------------------

    def _row(self, message: Message) -> LogRow:
        headers = dict(header_list(message.headers()))
        try:
            position = int(headers[LOG_POSITION])
        except (KeyError, ValueError) as exc:
            msg = f"no {LOG_POSITION} header"
            raise Undeliverable(msg) from exc
        try:
            record = self._codec.decode(message.value() or b"", self.topic)
            event = self._codec.event_from_record(record)
        except Exception as exc:
            if is_permanent(exc):
                raise Undeliverable(f"undecodable message: {exc}") from exc
            raise
        stored = self._mapper.to_stored_event(event)
        return (
            position,
            UUID(str(stored.originator_id)),
            stored.originator_version,
            stored.topic,
            stored.state,
            UUID(record["tenant_id"]),
            record["occurred_at"],
        )

    def _pass_dead_letter(self) -> None:
        """Let the offsets move past a dead-lettered message: with the last row not yet
        confirmed, or at once when every row handed out is confirmed."""
        if self._pending:
            self._pending[-1] = (self._pending[-1][0], dict(self._offsets))
        else:
            self._commit(self._offsets)

    def _commit(self, offsets: Offsets) -> None:
        self._dlq.flush(30)  # a dead letter is stored before its offset is passed
        self._consumer.commit(
            offsets=[TopicPartition(t, p, o) for (t, p), o in offsets.items()],
            asynchronous=False,
        )

    def _rewind(self, after: int) -> None:
        """Back to the committed offsets (what the sink confirmed), forgetting what was read."""
        assigned = self._consumer.assignment()
        if assigned:
            for tp in self._consumer.committed(assigned, timeout=10):
                offset = tp.offset if tp.offset >= 0 else OFFSET_BEGINNING
                self._consumer.seek(TopicPartition(tp.topic, tp.partition, offset))
        self._offsets.clear()
        self._pending.clear()
        self._returned = after

    def _dead_letter(self, message: Message, exc: Exception) -> None:
        log.error(
            "%s: dead-lettering %s[%s]@%s: %s",
            self.name,
            message.topic(),
            message.partition(),
            message.offset(),
            exc,
        )
        headers: list[tuple[str, str | bytes | None]] = [
            *header_list(message.headers()),
            ("error", str(exc)[:1000].encode()),
            ("error_type", type(exc).__name__.encode()),
            ("dlq_source_topic", str(message.topic()).encode()),
            ("dlq_source_partition", str(message.partition()).encode()),
            ("dlq_source_offset", str(message.offset()).encode()),
            ("dlq_attempts", b"1"),
            ("dlq_consumer", self.name.encode()),
        ]
        self._dlq.produce(self.dlq_topic, message.value() or b"", message.key(), headers=headers)
        self._dlq.poll(0)
