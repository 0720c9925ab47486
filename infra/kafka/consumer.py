"""The base of our Kafka consumers (faststream, confluent broker): decode, deduplicate on
`event_id`, process, commit after processing (at-least-once), retry with backoff, and after the
last attempt dead-letter the message to `<topic>.dlq` with its original headers plus the error.

The dedup row (one row in `consumed_events` per consumer and event id) and whatever `process`
writes through the cursor it is given share one PostgreSQL transaction, so such an effect is
applied exactly once even when the message is redelivered. An effect written elsewhere (e.g.
through the event store, on its own connection) is not part of that transaction: it must be
idempotent itself, and a crash after it but before the dedup commit processes the message again.
A message
that cannot be decoded, or that processing refuses for good (`PermanentFailure`), is dead-lettered
at once: no partition ever stalls behind a poison message. Offsets are committed only after the
message was processed or dead-lettered; if even the dead-letter write fails, the message is
rewound and delivered again.
"""

from __future__ import annotations

import asyncio
import logging
import threading
from abc import ABC, abstractmethod
from collections.abc import Awaitable, Callable, Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, replace
from typing import Any, ClassVar
from uuid import UUID

import psycopg
from confluent_kafka import Message
from confluent_kafka.schema_registry.error import SchemaRegistryError
from confluent_kafka.serialization import SerializationError
from faststream import AckPolicy
from faststream.confluent import KafkaBroker, KafkaMessage
from faststream.message import StreamMessage
from opentelemetry.trace import SpanKind

from infra import tracing
from infra.kafka.codec import EventCodec, header_list
from infra.kafka.config import KafkaConfig

log = logging.getLogger(__name__)
Headers = list[tuple[str, bytes]]
MAX_BATCH = 500  # messages applied in one transaction
POLL_SECONDS = 0.005  # the longest a message waits for its batch to fill
FETCH_WAIT_MS = 10  # the longest the broker holds a fetch while waiting for data
_DEDUP = "INSERT INTO consumed_events (consumer, event_id) VALUES (%s, %s) ON CONFLICT DO NOTHING"


class PermanentFailure(Exception):
    """A message no retry can fix (undecodable, invalid, refused): dead-letter it at once."""


@dataclass(frozen=True)
class Decoded:
    event_id: UUID
    value: Any  # what `process` receives
    trace_parent: str | None = None  # the message's W3C traceparent header (set by the base)


@dataclass
class ConsumerStats:
    processed: int = 0
    duplicates: int = 0
    retries: int = 0
    dead_letters: int = 0


def make_broker(config: KafkaConfig, *, client_id: str = "acgs") -> KafkaBroker:
    """A faststream confluent broker for our consumers: idempotent publishing with acks=all."""
    extra = {k: v for k, v in config.client_conf().items() if k != "bootstrap.servers"}
    return KafkaBroker(
        config.bootstrap_servers,
        client_id=client_id,
        acks="all",
        enable_idempotence=True,
        config=extra or None,  # type: ignore[arg-type]
        log_level=logging.DEBUG,
    )


async def _raw_body(message: StreamMessage[Any]) -> Any:
    return message.body


def _headers(raw: Message) -> Headers:
    return header_list(raw.headers())


def declare(
    broker: KafkaBroker,
    handler: Callable[..., Awaitable[None]],
    *,
    topic: str,
    consumer_name: str,
    group_id: str,
    config: KafkaConfig,
    description: str = "",
    max_poll_interval_ms: int = 300_000,
    max_records: int = MAX_BATCH,
) -> Any:
    """Subscribe `handler` to `topic` in batches of what has arrived (manual commit after
    processing, earliest offset, raw bytes) and declare the dead-letter publisher; returns it."""
    session = config.session_timeout_ms
    broker.subscriber(
        topic,
        batch=True,
        max_records=max_records,
        polling_interval=POLL_SECONDS,
        fetch_max_wait_ms=FETCH_WAIT_MS,
        group_id=group_id,
        auto_offset_reset="earliest",
        session_timeout_ms=session,
        heartbeat_interval_ms=max(100, session // 10),
        max_poll_interval_ms=max_poll_interval_ms,
        ack_policy=AckPolicy.NACK_ON_ERROR,
        decoder=_raw_body,
        title=f"{topic}:{consumer_name}",
        description=description,
    )(handler)
    dlq_topic = config.topics.dlq(topic)
    return broker.publisher(
        dlq_topic,
        title=f"{dlq_topic}:{consumer_name}",
        schema=bytes,
        description=f"Messages of {topic} that {consumer_name} could not process (at once when "
        "invalid, else after its retries), with their original headers plus `error`, "
        "`error_type`, `dlq_source_topic`, `dlq_source_partition`, `dlq_source_offset`, "
        "`dlq_attempts`, `dlq_consumer`.",
    )


class EventConsumer(ABC):
    """Subclasses name themselves (`name`, also the dedup namespace and default group), decode a
    message, and process it: writes through the given cursor commit with the dedup row; any
    other effect must be idempotent on its own (see the module docstring)."""

    name: ClassVar[str]
    description: ClassVar[str] = ""

    def __init__(
        self,
        *,
        topic: str,
        conninfo: str,
        config: KafkaConfig,
        name: str | None = None,
        group_id: str | None = None,
        max_attempts: int = 5,
        backoff_seconds: float = 0.2,
        max_backoff_seconds: float = 5.0,
    ) -> None:
        self.consumer_name = name or self.name
        self.topic = topic
        self.dlq_topic = config.topics.dlq(topic)
        self.conninfo = conninfo
        self.config = config
        self.group_id = group_id or f"acgs-{self.consumer_name}"
        self.max_attempts = max_attempts
        self.backoff_seconds = backoff_seconds
        self.max_backoff_seconds = max_backoff_seconds
        self.stats = ConsumerStats()
        self._conn: psycopg.Connection[Any] | None = None
        # One thread per consumer: its connection is used by that thread only.
        self._executor = ThreadPoolExecutor(1, thread_name_prefix=f"consumer-{self.consumer_name}")
        self._dlq: Any = None

    @abstractmethod
    def decode(self, value: bytes | None, headers: Headers) -> Decoded:
        """Decode a message; raise PermanentFailure when it is not a valid message."""

    @abstractmethod
    def process(self, value: Any, cur: psycopg.Cursor[Any]) -> None:
        """Apply one message not seen before. `cur` is the dedup transaction's cursor: what is
        written through it commits (or rolls back) with the dedup row."""

    # --- wiring -------------------------------------------------------------------------------

    def subscribe(self, broker: KafkaBroker) -> None:
        retry_budget_ms = int(self.max_attempts * self.max_backoff_seconds * 1000)
        self._dlq = declare(
            broker,
            self._on_message,
            topic=self.topic,
            consumer_name=self.consumer_name,
            group_id=self.group_id,
            config=self.config,
            description=self.description,
            max_poll_interval_ms=max(300_000, 2 * retry_budget_ms),
        )

    def close(self) -> None:
        self._executor.submit(self._close_connection).result(timeout=10)
        self._executor.shutdown(wait=True)

    def _close_connection(self) -> None:
        if self._conn is not None:
            self._conn.close()
            self._conn = None

    # --- handling -----------------------------------------------------------------------------

    async def _on_message(self, bodies: list[bytes], message: KafkaMessage) -> None:
        del bodies  # the raw messages are read instead (for their headers, keys and offsets)
        """A batch: decoded and applied in one transaction; when anything in it fails, each
        message is handled on its own (retries, dead letters) so one failure costs no other."""
        raws = message.raw_message
        batch: tuple[Message, ...] = raws if isinstance(raws, tuple) else (raws,)
        loop = asyncio.get_running_loop()
        decoded: list[Decoded] = []
        try:
            decoded = [self._decode(raw.value(), _headers(raw)) for raw in batch]
            applied = await loop.run_in_executor(self._executor, self._apply_all, decoded)
        except Exception:  # noqa: BLE001 - the careful path sorts it out message by message
            for raw in batch:
                await self._handle_one(raw)
            return
        self.stats.processed += applied
        self.stats.duplicates += len(decoded) - applied

    async def _handle_one(self, raw: Message) -> None:
        headers = _headers(raw)
        loop = asyncio.get_running_loop()
        attempt = 0
        while True:
            attempt += 1
            try:
                decoded = self._decode(raw.value(), headers)
                applied = await loop.run_in_executor(self._executor, self._apply_all, [decoded])
            except PermanentFailure as exc:
                await self._dead_letter(raw, headers, exc, attempt)
                return
            except Exception as exc:  # noqa: BLE001 - every other failure is retried, then dead-lettered
                if attempt >= self.max_attempts:
                    await self._dead_letter(raw, headers, exc, attempt)
                    return
                self.stats.retries += 1
                delay = min(self.max_backoff_seconds, self.backoff_seconds * 2 ** (attempt - 1))
                log.warning(
                    "%s: attempt %d on %s[%s]@%s failed (%s); retrying in %.2f s",
                    self.consumer_name,
                    attempt,
                    raw.topic(),
                    raw.partition(),
                    raw.offset(),
                    exc,
                    delay,
                )
                await asyncio.sleep(delay)
                continue
            if applied:
                self.stats.processed += 1
            else:
                self.stats.duplicates += 1
            return

    def _decode(self, value: bytes | None, headers: Headers) -> Decoded:
        decoded = self.decode(value, headers)
        trace_parent = next((v for k, v in headers if k == "traceparent"), None)
        if trace_parent is None:
            return decoded
        return replace(decoded, trace_parent=trace_parent.decode("ascii", "replace"))

    def _process(self, decoded: Decoded, cur: psycopg.Cursor[Any]) -> None:
        """`process`, in a span of the message's trace when that trace is sampled."""
        if not tracing.sampled(decoded.trace_parent):
            self.process(decoded.value, cur)
            return
        with tracing.continued(
            f"kafka.consume {self.consumer_name}",
            decoded.trace_parent,
            kind=SpanKind.CONSUMER,
            attributes={
                "messaging.system": "kafka",
                "messaging.source.name": self.topic,
                "messaging.message.id": str(decoded.event_id),
                "messaging.consumer.group.name": self.group_id,
            },
        ):
            self.process(decoded.value, cur)

    def _apply_all(self, batch: list[Decoded]) -> int:
        """Process each message whose event id this consumer has not seen, all in one
        transaction; returns how many were processed (the rest were duplicates)."""
        if self._conn is None or self._conn.closed:
            self._conn = psycopg.connect(self.conninfo, autocommit=True)
        applied = 0
        try:
            with self._conn.transaction(), self._conn.cursor() as cur:
                for decoded in batch:
                    cur.execute(_DEDUP, [self.consumer_name, decoded.event_id], prepare=True)
                    if cur.rowcount:
                        self._process(decoded, cur)
                        applied += 1
        except psycopg.OperationalError:
            self._close_connection()
            raise
        return applied

    async def _dead_letter(
        self, raw: Message, headers: Headers, exc: BaseException, attempts: int
    ) -> None:
        log.error(
            "%s: dead-lettering %s[%s]@%s after %d attempt(s): %s",
            self.consumer_name,
            raw.topic(),
            raw.partition(),
            raw.offset(),
            attempts,
            exc,
        )
        extra = {
            "error": str(exc)[:1000],
            "error_type": type(exc).__name__,
            "dlq_source_topic": str(raw.topic()),
            "dlq_source_partition": str(raw.partition()),
            "dlq_source_offset": str(raw.offset()),
            "dlq_attempts": str(attempts),
            "dlq_consumer": self.consumer_name,
        }
        original = {k: v.decode("utf-8", "backslashreplace") for k, v in headers}
        await self._dlq.publish(raw.value() or b"", key=raw.key(), headers={**original, **extra})
        self.stats.dead_letters += 1


class ConsumerWorker:
    """Runs consumers on one broker connection, in an event loop of its own, until `stop` is set
    (a supervised worker: `run(stop)`, then `close()`)."""

    def __init__(
        self,
        consumers: Sequence[EventConsumer],
        config: KafkaConfig,
        *,
        client_id: str = "acgs",
        poll_seconds: float = 0.2,
    ) -> None:
        self.consumers = list(consumers)
        self.config = config
        self.client_id = client_id
        self.poll_seconds = poll_seconds

    def run(self, stop: threading.Event) -> None:
        asyncio.run(self._serve(stop))

    async def _serve(self, stop: threading.Event) -> None:
        broker = make_broker(self.config, client_id=self.client_id)
        for consumer in self.consumers:
            consumer.subscribe(broker)
        await broker.start()
        try:
            while not stop.is_set():
                await asyncio.sleep(self.poll_seconds)
        finally:
            await broker.stop()

    def close(self) -> None:
        for consumer in self.consumers:
            consumer.close()


def is_permanent(exc: Exception) -> bool:
    """Whether a decoding failure is the message's fault (not the registry being unreachable)."""
    if isinstance(exc, SchemaRegistryError):
        return 400 <= exc.http_status_code < 500
    return isinstance(exc, (SerializationError, ValueError, TypeError, KeyError, EOFError))


class DomainEventConsumer(EventConsumer):
    """A consumer of `governance-events`: `process` receives the domain event (as the relay
    published it), so a sink is written against the event, not the transport."""

    def __init__(self, *, codec: EventCodec, **kwargs: Any) -> None:
        super().__init__(**kwargs)
        self.codec = codec

    def decode(self, value: bytes | None, headers: Headers) -> Decoded:
        del headers
        try:
            record = self.codec.decode(value or b"", self.topic)
            return Decoded(UUID(record["event_id"]), self.codec.event_from_record(record))
        except Exception as exc:
            if is_permanent(exc):
                raise PermanentFailure(f"undecodable message: {exc}") from exc
            raise
