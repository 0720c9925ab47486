"""Plain helpers of the streaming tests: the platform context, the log head, reading topics back,
waiting for a condition (the fixtures are in conftest.py)."""

from __future__ import annotations

import asyncio
import time
from collections.abc import Callable
from typing import Any

import psycopg
import pytest
from confluent_kafka import OFFSET_BEGINNING, Consumer, Message, TopicPartition
from eventsourcing.persistence import StoredEvent

from api.bootstrap import System
from commands.context import CommandContext, Principal
from domain.constitution import DEFAULT_CONSTITUTIONAL_HASH
from domain.maci import MaciRole
from domain.tenancy import SYSTEM_TENANT_ID
from infra.kafka.config import KafkaConfig

HASH = DEFAULT_CONSTITUTIONAL_HASH
TRACE = "00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01"


PLATFORM = CommandContext(
    Principal("operator", SYSTEM_TENANT_ID, (MaciRole.EXECUTIVE,)), HASH, TRACE
)


def log_head(system: System) -> int:
    with psycopg.connect(system.projector_conninfo) as conn:
        row = conn.execute("SELECT coalesce(max(notification_id), 0) FROM governance_events")
        return int(row.fetchone()[0])  # type: ignore[index]


def stored_events_after(system: System, position: int) -> list[Any]:
    """The domain events recorded after `position`, in log order."""
    with psycopg.connect(system.projector_conninfo) as conn:
        rows = conn.execute(
            "SELECT originator_id, originator_version, topic, state FROM governance_events "
            "WHERE notification_id > %s ORDER BY notification_id",
            [position],
        ).fetchall()
    return [
        system.app.mapper.to_domain_event(StoredEvent(r[0], r[1], r[2], bytes(r[3]))) for r in rows
    ]


def read_topic(
    config: KafkaConfig, topic: str, *, at_least: int, timeout: float = 20.0
) -> list[Message]:
    """Every message of `topic` from the beginning, once at least `at_least` have arrived (or the
    deadline passed). Partitions are assigned, not joined, so no group rebalance is waited for."""
    consumer = Consumer(
        {**config.client_conf(), "group.id": f"reader-{topic}", "enable.auto.commit": False}
    )
    try:
        partitions = consumer.list_topics(topic, timeout=10).topics[topic].partitions
        consumer.assign([TopicPartition(topic, p, OFFSET_BEGINNING) for p in partitions])
        messages: list[Message] = []
        deadline = time.monotonic() + timeout
        while len(messages) < at_least and time.monotonic() < deadline:
            for msg in consumer.consume(500, timeout=0.2):
                if msg.error() is None:
                    messages.append(msg)
        # anything else already there (duplicates) arrives within a short quiet period
        quiet_until = time.monotonic() + 0.5
        while time.monotonic() < quiet_until:
            batch = consumer.consume(500, timeout=0.1)
            messages.extend(m for m in batch if m.error() is None)
            if batch:
                quiet_until = time.monotonic() + 0.5
        return messages
    finally:
        consumer.close()


def headers_of(msg: Message) -> dict[str, bytes]:
    return {k: v for k, v in (msg.headers() or []) if v is not None}


async def wait_until(condition: Callable[[], bool], *, timeout: float = 30.0) -> None:
    """Poll `condition` until it holds; fail with a clear message at the deadline."""
    deadline = time.monotonic() + timeout
    while not condition():
        if time.monotonic() > deadline:
            pytest.fail(f"condition not met within {timeout} s")
        await asyncio.sleep(0.05)


def wait_until_sync(condition: Callable[[], bool], *, timeout: float = 30.0) -> None:
    deadline = time.monotonic() + timeout
    while not condition():
        if time.monotonic() > deadline:
            pytest.fail(f"condition not met within {timeout} s")
        time.sleep(0.05)
