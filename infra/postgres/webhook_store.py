"""The webhook workers' tables as the projector role (every statement names the tenant that owns
the webhook): the delivery log of migration 0022, the enabled webhooks to run, and their dead
letters, kept with the sinks' (`sink_dead_letters`, keyed by the webhook's id)."""

from __future__ import annotations

from collections.abc import Sequence
from uuid import UUID

from domain.sinks import SinkRecord
from domain.webhooks.delivery import Attempt
from infra.postgres.sink_store import ConfiguredSink, SinkStore

_RECORD = """
INSERT INTO webhook_deliveries (tenant_id, webhook_id, event_id, position, event_type, status,
    attempts, response_code, latency_ms, error)
VALUES (%s, %s, %s, %s, %s, %s, 1, %s, %s, %s)
ON CONFLICT (webhook_id, event_id) DO UPDATE SET status = EXCLUDED.status,
    attempts = webhook_deliveries.attempts + 1, response_code = EXCLUDED.response_code,
    latency_ms = EXCLUDED.latency_ms, error = EXCLUDED.error, last_attempt_at = now()
"""
_DEAD = (
    "UPDATE webhook_deliveries SET status = 'dead_lettered' "
    "WHERE tenant_id = %s AND webhook_id = %s AND event_id = ANY(%s)"
)
_WEBHOOKS = "SELECT webhook_id, tenant_id, version FROM webhooks WHERE enabled ORDER BY created_at"


class WebhookStore(SinkStore):
    """The sinks' store (dead letters, positions, slugs) plus the webhooks' delivery log."""

    def record(
        self, owner: UUID, webhook_id: UUID, attempts: Sequence[tuple[SinkRecord, Attempt]]
    ) -> None:
        if not attempts:
            return
        rows = [
            (
                owner,
                webhook_id,
                UUID(record.event_id),
                record.position,
                str(record.body.get("source_event_type", record.event_type))[:200],
                "delivered" if a.delivered else "failed",
                a.response_code,
                a.latency_ms,
                None if a.error is None else a.error[:2000],
            )
            for record, a in attempts
        ]
        with self._lock, self._connection().transaction() as tx, tx.connection.cursor() as cur:
            cur.executemany(_RECORD, rows)

    def add(
        self,
        owner: UUID,
        integration_id: UUID,
        failures: Sequence[tuple[SinkRecord, str]],
        attempts: int,
    ) -> None:
        """Dead-letter the records (as the sinks do), marking them so in the delivery log."""
        super().add(owner, integration_id, failures, attempts)
        self._execute(_DEAD, [owner, integration_id, [UUID(r.event_id) for r, _ in failures]])

    def configured(self) -> list[ConfiguredSink]:
        """Every enabled webhook of every tenant (its id in `integration_id`)."""
        return [
            ConfiguredSink(UUID(str(w)), UUID(str(t)), int(v))
            for w, t, v in self._execute(_WEBHOOKS)
        ]
