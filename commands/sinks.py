"""What a tenant admin does with a SIEM sink besides configuring it (it is an integration of
type `siem`): read its deliveries (position, lag, counters, dead letters) and re-drive its dead
letters once the receiver is back. A re-drive sends each dead letter once more, removes the ones
the receiver acknowledged, and counts another attempt on the others; it is audited."""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any, Protocol
from uuid import UUID, uuid4

from commands.application import GovernanceApplication
from commands.authorization import Permission, authorize
from commands.context import CommandContext, Principal
from commands.integrations import IntegrationCommands
from commands.preamble import CommandPreamble
from domain.audit import AuditEntry
from domain.errors import NotFound
from domain.integration.aggregate import Integration
from domain.integration.values import IntegrationType
from domain.sinks import DeadLetter, DeliveryFailed, Sink, batches, follower_name, sink_scope

RETRY_ACTION = "retry_sink_dead_letters"


class DeadLetterStore(Protocol):
    def dead_letters(
        self, owner: UUID, integration_id: UUID, limit: int = 1000
    ) -> list[DeadLetter]: ...

    def count(self, owner: UUID, integration_id: UUID) -> int: ...

    def remove(self, owner: UUID, integration_id: UUID, event_ids: Sequence[str]) -> None: ...

    def failed_again(
        self, owner: UUID, integration_id: UUID, event_id: str, error: str
    ) -> None: ...

    def status(self, follower: str, scope: UUID | None) -> dict[str, Any]: ...

    def close(self) -> None: ...


SinkOpener = Callable[[dict[str, Any]], Sink]
StatsOf = Callable[[str], dict[str, Any]]  # a follower's counters in this process


@dataclass(frozen=True)
class Deliveries:
    integration_id: UUID
    follower: str
    status: dict[str, Any]  # position, head, events_behind, seconds_behind
    counters: dict[str, Any]
    dead_letter_count: int
    dead_letters: list[DeadLetter]


@dataclass(frozen=True)
class RetryOutcome:
    integration_id: UUID
    retried: int
    delivered: int
    remaining: int
    error: str | None


class SinkCommands:
    def __init__(
        self,
        app: GovernanceApplication,
        constitutional_hash: str,
        integrations: IntegrationCommands,
        store: DeadLetterStore,
        open_sink: SinkOpener,
        stats_of: StatsOf,
    ) -> None:
        self._app = app
        self._hash = constitutional_hash
        self._preamble = CommandPreamble(app, constitutional_hash)
        self._integrations = integrations
        self._store = store
        self._open_sink = open_sink
        self._stats_of = stats_of

    def close(self) -> None:
        self._store.close()

    def sink(self, tenant_id: UUID, integration_id: UUID) -> Integration:
        """A live SIEM integration of the tenant; NotFound for anything else."""
        integration = self._integrations.load(tenant_id, integration_id)
        if integration.integration_type is not IntegrationType.SIEM:
            raise NotFound("sink not found", {"integration_id": str(integration_id)})
        return integration

    def deliveries(
        self, principal: Principal, tenant_id: UUID, integration_id: UUID, limit: int = 100
    ) -> Deliveries:
        authorize(principal, Permission.INTEGRATION_READ, tenant_id)
        self.sink(tenant_id, integration_id)
        name = follower_name(integration_id)
        return Deliveries(
            integration_id=integration_id,
            follower=name,
            status=self._store.status(name, sink_scope(tenant_id)),
            counters=self._stats_of(name),
            dead_letter_count=self._store.count(tenant_id, integration_id),
            dead_letters=self._store.dead_letters(tenant_id, integration_id, limit),
        )

    def retry(self, ctx: CommandContext, tenant_id: UUID, integration_id: UUID) -> RetryOutcome:
        """Send every dead letter of the sink once more (in batches, in log order); stop at the
        first batch the receiver refuses as a whole."""
        meta = self._preamble.begin(
            ctx, Permission.INTEGRATION_MANAGE, tenant_id, RETRY_ACTION, tenant_id
        )
        integration = self.sink(tenant_id, integration_id)
        config = integration.clear_config(self._integrations.sealer)
        letters = self._store.dead_letters(tenant_id, integration_id, limit=100_000)
        delivered, error = self._redeliver(tenant_id, integration_id, config, letters)
        remaining = self._store.count(tenant_id, integration_id)
        entry = AuditEntry.record(
            entry_id=uuid4(),
            category="integration",
            action=RETRY_ACTION,
            result="success" if remaining == 0 else "failure",
            target_resource=f"integration/{integration_id}",
            details={"retried": len(letters), "delivered": delivered, "remaining": remaining},
            meta=meta,
        )
        self._app.save_for(tenant_id, entry)
        return RetryOutcome(integration_id, len(letters), delivered, remaining, error)

    def _redeliver(
        self,
        tenant_id: UUID,
        integration_id: UUID,
        config: dict[str, Any],
        letters: list[DeadLetter],
    ) -> tuple[int, str | None]:
        sink = self._open_sink(config)
        delivered = 0
        try:
            records = [letter.record for letter in letters]
            count = int(config.get("batch_size", 500))
            size = int(config.get("batch_max_bytes", 1_000_000))
            for batch in batches(records, max_count=count, max_bytes=size):
                try:
                    result = sink.deliver(batch)
                except DeliveryFailed as exc:
                    for record in batch:
                        self._store.failed_again(
                            tenant_id, integration_id, record.event_id, str(exc)
                        )
                    return delivered, str(exc)
                done = [r.event_id for r in batch if r.event_id not in result.failed]
                self._store.remove(tenant_id, integration_id, done)
                for event_id, why in result.failed.items():
                    self._store.failed_again(tenant_id, integration_id, event_id, why)
                delivered += len(done)
        finally:
            sink.close()
        return delivered, None
