"""Connection settings for Kafka and the schema registry, and the librdkafka/registry client
configurations derived from them. Built by the composition root from `api.settings.Settings`."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

DLQ_SUFFIX = ".dlq"


@dataclass(frozen=True)
class Topics:
    """Topic names. Tests give each run its own names."""

    governance_events: str = "governance-events"
    audit_trail: str = "audit-trail"
    external_events: str = "external-events"

    @staticmethod
    def dlq(topic: str) -> str:
        return f"{topic}{DLQ_SUFFIX}"

    @classmethod
    def with_prefix(cls, prefix: str) -> Topics:
        return cls(f"{prefix}governance-events", f"{prefix}audit-trail", f"{prefix}external-events")


@dataclass(frozen=True)
class KafkaConfig:
    bootstrap_servers: str
    schema_registry_url: str
    security_protocol: str | None = None  # e.g. SASL_SSL; librdkafka's default is PLAINTEXT
    sasl_mechanism: str | None = None  # e.g. PLAIN, SCRAM-SHA-512
    sasl_username: str | None = None
    sasl_password: str | None = field(default=None, repr=False)
    schema_registry_basic_auth: str | None = field(default=None, repr=False)  # "user:secret"
    relay_batch_size: int = 2000  # notifications read and published per batch
    linger_ms: int = 5
    producer_batch_messages: int = 10000
    session_timeout_ms: int = 10000
    compatibility: str = "FULL"  # registry compatibility level set on our subjects
    topics: Topics = field(default_factory=Topics)

    def client_conf(self) -> dict[str, Any]:
        conf: dict[str, Any] = {"bootstrap.servers": self.bootstrap_servers}
        if self.security_protocol:
            conf["security.protocol"] = self.security_protocol
        if self.sasl_mechanism:
            conf["sasl.mechanism"] = self.sasl_mechanism
        if self.sasl_username is not None:
            conf["sasl.username"] = self.sasl_username
            conf["sasl.password"] = self.sasl_password or ""
        return conf

    def producer_conf(self) -> dict[str, Any]:
        """Idempotent, acks=all, and no delivery timeout: while the broker is away messages wait
        in the queue, so the relay waits too instead of losing or skipping anything."""
        return {
            **self.client_conf(),
            "enable.idempotence": True,
            "acks": "all",
            "linger.ms": self.linger_ms,
            "batch.num.messages": self.producer_batch_messages,
            "queue.buffering.max.messages": max(100_000, 4 * self.relay_batch_size),
            "message.timeout.ms": 0,
            "delivery.report.only.error": True,
        }

    def consumer_conf(self, group_id: str) -> dict[str, Any]:
        return {
            **self.client_conf(),
            "group.id": group_id,
            "auto.offset.reset": "earliest",
            "enable.auto.commit": False,
            "session.timeout.ms": self.session_timeout_ms,
            "heartbeat.interval.ms": max(100, self.session_timeout_ms // 10),
        }

    def registry_conf(self) -> dict[str, Any]:
        conf: dict[str, Any] = {"url": self.schema_registry_url}
        if self.schema_registry_basic_auth:
            conf["basic.auth.user.info"] = self.schema_registry_basic_auth
        return conf
