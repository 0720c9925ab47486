"""A sink of audit rows on Kafka: each row as the audit-trail topic's Avro record (the same
message the relay sends for a new event), keyed by tenant. `acgs audit replay` re-sends a
tenant's audit stream through it."""

from __future__ import annotations

from typing import Any, cast

from confluent_kafka import KafkaError, Message, Producer

from infra.kafka.codec import EventCodec


class DeliveryFailed(RuntimeError):
    """The broker did not acknowledge every message."""


class KafkaAuditSink:
    def __init__(self, producer: Producer, codec: EventCodec, topic: str) -> None:
        self.producer = producer
        self.codec = codec
        self.topic = topic
        self.sent = 0
        self.acknowledged = 0
        self.errors: list[str] = []

    def _report(self, err: KafkaError | None, msg: Message) -> None:
        del msg
        if err is None:
            self.acknowledged += 1
        elif len(self.errors) < 10:
            self.errors.append(str(err))

    def send(self, row: dict[str, Any]) -> None:
        key, value, headers = self.codec.audit_message(row, self.topic)
        while True:
            try:
                self.producer.produce(
                    self.topic, value, key, headers=cast("Any", headers), on_delivery=self._report
                )
                break
            except BufferError:  # the local queue is full: let the broker catch up
                self.producer.poll(0.1)
        self.sent += 1
        self.producer.poll(0)

    def close(self, timeout: float = 30.0) -> None:
        """Wait for every acknowledgement; raise DeliveryFailed if any message was not."""
        try:
            remaining = self.producer.flush(timeout)
        finally:
            self.codec.close()
        if remaining or self.errors or self.acknowledged != self.sent:
            msg = f"{self.sent - self.acknowledged} of {self.sent} messages not acknowledged" + (
                f": {self.errors[0]}" if self.errors else ""
            )
            raise DeliveryFailed(msg)
