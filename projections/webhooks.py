"""The `webhooks` read model: one row per live webhook (a deleted webhook's row is removed; its
events stay in the log), never its secret; and the queries the API runs on it and on the
delivery log (`webhook_deliveries`, written by the webhook workers)."""

from __future__ import annotations

from collections.abc import Callable, Sequence
from typing import Any
from uuid import UUID

from eventsourcing.utils import resolve_topic
from psycopg import AsyncConnection, Cursor
from psycopg.rows import DictRow

from domain.events import event_type_of
from domain.sinks import SinkRecord
from domain.tenant.aggregate import Tenant
from domain.webhooks.aggregate import Webhook

COLUMNS = (
    "webhook_id, tenant_id, webhook_url, events, enabled, disabled_reason, version, "
    "constitutional_hash, created_at, updated_at"
)
DELIVERY_COLUMNS = (
    "event_id, position, event_type, status, attempts, response_code, latency_ms, error, "
    "first_attempt_at, last_attempt_at"
)

_TOPIC = 3  # the event's topic in a row of the notification log


class SubscribedRecords:
    """A webhook runner's enrichment: the sink records of the rows whose event type the webhook
    subscribed to (the others are passed over before any decoding)."""

    def __init__(
        self,
        types: frozenset[str],
        make: Callable[[Sequence[Sequence[Any]]], list[SinkRecord]],
    ) -> None:
        self._types = types
        self._make = make
        self._type_of: dict[str, str] = {}

    def __call__(self, rows: Sequence[Sequence[Any]]) -> list[SinkRecord]:
        return self._make([r for r in rows if self._kind(str(r[_TOPIC])) in self._types])

    def _kind(self, topic: str) -> str:
        kind = self._type_of.get(topic)
        if kind is None:
            kind = self._type_of[topic] = event_type_of(resolve_topic(topic))
        return kind


class WebhooksProjection:
    name = "webhooks"
    tables = ("webhooks",)

    def apply(self, cur: Cursor[Any], event: Any) -> None:
        if isinstance(event, Tenant.Purged):
            cur.execute("DELETE FROM webhooks WHERE tenant_id = %s", [event.originator_id])
            return
        if not isinstance(event, Webhook.Event):
            return
        version = event.originator_version
        if isinstance(event, Webhook.Registered):
            cur.execute(
                f"INSERT INTO webhooks ({COLUMNS}) "  # noqa: S608 - fixed column list; values are bound parameters  # nosec B608
                "VALUES (%s, %s, %s, %s, %s, NULL, %s, %s, %s, %s) "
                "ON CONFLICT (webhook_id) DO NOTHING",
                [
                    event.originator_id,
                    event.meta["tenant_id"],
                    event.webhook_url,
                    event.events,
                    event.enabled,
                    version,
                    event.meta["constitutional_hash"],
                    event.timestamp,
                    event.timestamp,
                ],
            )
        elif isinstance(event, Webhook.Updated):
            cur.execute(
                "UPDATE webhooks SET webhook_url = %s, events = %s, enabled = %s, "
                "disabled_reason = CASE WHEN %s THEN NULL ELSE disabled_reason END, "
                "version = %s, updated_at = %s WHERE webhook_id = %s",
                [
                    event.webhook_url,
                    event.events,
                    event.enabled,
                    event.enabled,
                    version,
                    event.timestamp,
                    event.originator_id,
                ],
            )
        elif isinstance(event, Webhook.Disabled):
            reason = f"{event.consecutive_failures} consecutive failed deliveries: {event.reason}"
            cur.execute(
                "UPDATE webhooks SET enabled = false, disabled_reason = %s, version = %s, "
                "updated_at = %s WHERE webhook_id = %s",
                [reason, version, event.timestamp, event.originator_id],
            )
        elif isinstance(event, Webhook.Deleted):
            cur.execute("DELETE FROM webhooks WHERE webhook_id = %s", [event.originator_id])


# --- queries (run inside a tenant session) ----------------------------------------------------


async def list_webhooks(
    conn: AsyncConnection[DictRow], limit: int, offset: int
) -> tuple[list[dict[str, Any]], int]:
    """A page of the tenant's webhooks, oldest first, and how many there are."""
    cur = await conn.execute(
        f"SELECT {COLUMNS}, count(*) OVER () AS total FROM webhooks "  # noqa: S608 - fixed column list; values are bound parameters  # nosec B608
        "ORDER BY created_at, webhook_id LIMIT %s OFFSET %s",
        [limit, offset],
    )
    rows = await cur.fetchall()
    if rows or offset == 0:
        return rows, int(rows[0]["total"]) if rows else 0
    counted = await (await conn.execute("SELECT count(*) AS n FROM webhooks")).fetchone()
    return rows, int(counted["n"]) if counted else 0


async def find_webhook(conn: AsyncConnection[DictRow], webhook_id: UUID) -> dict[str, Any] | None:
    cur = await conn.execute(
        f"SELECT {COLUMNS} FROM webhooks WHERE webhook_id = %s",  # noqa: S608 - fixed column list; values are bound parameters  # nosec B608
        [webhook_id],
    )
    return await cur.fetchone()


async def list_deliveries(
    conn: AsyncConnection[DictRow], webhook_id: UUID, limit: int, offset: int
) -> tuple[list[dict[str, Any]], int]:
    """A page of a webhook's delivery log, latest attempt first, and its size."""
    cur = await conn.execute(
        f"SELECT {DELIVERY_COLUMNS} FROM webhook_deliveries "  # noqa: S608 - fixed column list; values are bound parameters  # nosec B608
        "WHERE webhook_id = %s ORDER BY last_attempt_at DESC, position DESC LIMIT %s OFFSET %s",
        [webhook_id, limit, offset],
    )
    rows = await cur.fetchall()
    counted = await (
        await conn.execute(
            "SELECT count(*) AS n FROM webhook_deliveries WHERE webhook_id = %s", [webhook_id]
        )
    ).fetchone()
    return rows, int(counted["n"]) if counted else 0
