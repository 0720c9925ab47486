"""Creating our topics when they are missing (production may manage them itself; then this finds
them present and does nothing)."""

from __future__ import annotations

import logging
from collections.abc import Iterable

from confluent_kafka import KafkaError, KafkaException
from confluent_kafka.admin import AdminClient, NewTopic  # type: ignore[attr-defined]

from infra.kafka.config import KafkaConfig, Topics

log = logging.getLogger(__name__)
DEFAULT_PARTITIONS = 3


def all_topics(topics: Topics) -> list[str]:
    main = [topics.governance_events, topics.audit_trail, topics.external_events]
    return main + [topics.dlq(t) for t in main]


def ensure_topics(
    config: KafkaConfig,
    names: Iterable[str] | None = None,
    *,
    partitions: int = DEFAULT_PARTITIONS,
    timeout: float = 10.0,
) -> None:
    """Create each topic that does not exist yet (one replica per partition on one broker)."""
    admin = AdminClient(config.client_conf())
    wanted = list(names) if names is not None else all_topics(config.topics)
    existing = set(admin.list_topics(timeout=timeout).topics)
    missing = [n for n in wanted if n not in existing]
    if not missing:
        return
    futures = admin.create_topics(
        [NewTopic(n, num_partitions=partitions, replication_factor=1) for n in missing],
        request_timeout=timeout,
    )
    for name, future in futures.items():
        try:
            future.result(timeout=timeout)
        except KafkaException as exc:
            if exc.args[0].code() != KafkaError.TOPIC_ALREADY_EXISTS:
                raise
        log.info("created topic %s with %d partitions", name, partitions)
