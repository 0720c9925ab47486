"""Webhook commands: register, change, delete, test (the tenant's EXECUTIVE, like every
integration), and what the delivery workers record: a webhook disabled after too many
consecutive failed deliveries (as the system, audited like every event).

A target URL passes the `TargetCheck` port (the SSRF guard: every address its host resolves to
is checked) at registration and on each change; the secret, given or generated, is sealed under
the integrations' envelope encryption and shown once, in the registration's answer.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any, Protocol
from uuid import UUID, uuid4

from commands.application import GovernanceApplication
from commands.authorization import Permission
from commands.context import CommandContext
from commands.preamble import CommandPreamble
from domain.audit import AuditEntry
from domain.errors import NotFound
from domain.events import SYSTEM_ACTOR, EventMeta
from domain.secrets import SecretSealer
from domain.sinks import SinkRecord, record_of_body
from domain.tenant.aggregate import Tenant
from domain.tenant.values import TenantStatus
from domain.webhooks.aggregate import TEST_EVENT, Webhook
from domain.webhooks.delivery import Attempt, payload
from domain.webhooks.targets import Target, TargetRefused

TEST_ACTION = "test_webhook"


class TargetCheck(Protocol):
    def check(self, url: object, field: str = "webhook_url") -> Target:
        """The URL's target, or TargetRefused."""
        ...


class Sender(Protocol):
    def send(self, url: str, secret: str, body: bytes, event_id: str) -> Attempt: ...

    def close(self) -> None: ...


class DeliveryLog(Protocol):
    def record(
        self, owner: UUID, webhook_id: UUID, attempts: list[tuple[SinkRecord, Attempt]]
    ) -> None: ...

    def close(self) -> None: ...


@dataclass(frozen=True)
class RegisterWebhook:
    webhook_url: object
    events: object
    secret: object = None
    enabled: object = True


@dataclass(frozen=True)
class TestDelivery:
    webhook: Webhook
    event_id: str
    attempt: Attempt


class WebhookCommands:
    def __init__(
        self,
        app: GovernanceApplication,
        constitutional_hash: str,
        sealer: SecretSealer,
        targets: TargetCheck,
        sender: Sender,
        delivery_log: DeliveryLog,
    ) -> None:
        self._app = app
        self._hash = constitutional_hash
        self._preamble = CommandPreamble(app, constitutional_hash)
        self.sealer = sealer
        self._targets = targets
        self._sender = sender
        self._log = delivery_log

    def close(self) -> None:
        self._sender.close()
        self._log.close()

    def create(
        self, ctx: CommandContext, tenant_id: UUID, command: RegisterWebhook
    ) -> tuple[Webhook, str]:
        """The webhook and its clear secret (shown to the caller once)."""
        webhook_id = uuid4()
        meta = self._preamble.begin(
            ctx, Permission.INTEGRATION_MANAGE, tenant_id, "create_webhook", tenant_id
        )
        tenant = self._app.load(tenant_id, tenant_id, Tenant)
        if tenant.status is TenantStatus.PURGED:
            raise NotFound("tenant not found", {"tenant_id": str(tenant_id)})
        problems: list[dict[str, str]] = []
        target = self._target(command.webhook_url, problems)
        webhook, secret = Webhook.register(
            webhook_id=webhook_id,
            tenant_id=tenant_id,
            target=target,
            events=command.events,
            secret=command.secret,
            enabled=command.enabled,
            sealer=self.sealer,
            meta=meta,
            problems=problems,
        )
        try:
            self._app.save_for(tenant_id, webhook)
        except BaseException:
            self.sealer.shred(tenant_id, webhook.secret_key_id)  # nothing half-written
            raise
        return webhook, secret

    def update(
        self, ctx: CommandContext, tenant_id: UUID, webhook_id: UUID, changes: dict[str, Any]
    ) -> tuple[Webhook, list[str]]:
        meta = self._preamble.begin(
            ctx, Permission.INTEGRATION_MANAGE, tenant_id, "update_webhook", tenant_id
        )
        webhook = self.load(tenant_id, webhook_id)
        problems: list[dict[str, str]] = []
        target = (
            self._target(changes["webhook_url"], problems) if "webhook_url" in changes else None
        )
        updated = webhook.change(changes, target, meta, problems)
        if updated:
            self._app.save_for(tenant_id, webhook)
        return webhook, updated

    def delete(self, ctx: CommandContext, tenant_id: UUID, webhook_id: UUID) -> Webhook:
        """Delete, and shred the secret's data key (nothing can sign for it any more)."""
        meta = self._preamble.begin(
            ctx, Permission.INTEGRATION_MANAGE, tenant_id, "delete_webhook", tenant_id
        )
        webhook = self.load(tenant_id, webhook_id)
        webhook.delete(meta)
        self._app.save_for(tenant_id, webhook)
        self.sealer.shred(tenant_id, webhook.secret_key_id)
        return webhook

    def test(self, ctx: CommandContext, tenant_id: UUID, webhook_id: UUID) -> TestDelivery:
        """POST one signed `webhook.test` event now (the target checked again), log it with the
        deliveries, and audit the outcome."""
        meta = self._preamble.begin(
            ctx, Permission.INTEGRATION_MANAGE, tenant_id, TEST_ACTION, tenant_id
        )
        webhook = self.load(tenant_id, webhook_id)
        record = test_record(tenant_id, webhook_id, self._hash)
        body = payload(webhook_id, TEST_EVENT, record, self._hash)
        attempt = self._sender.send(
            webhook.webhook_url, webhook.clear_secret(self.sealer), body, record.event_id
        )
        self._log.record(tenant_id, webhook_id, [(record, attempt)])
        entry = AuditEntry.record(
            entry_id=uuid4(),
            category="integration",
            action=TEST_ACTION,
            result="success" if attempt.delivered else "failure",
            target_resource=f"webhook/{webhook_id}",
            details={"response_code": attempt.response_code, "error": attempt.error},
            meta=meta,
        )
        self._app.save_for(tenant_id, entry)
        return TestDelivery(webhook, record.event_id, attempt)

    def disable_after_failures(
        self, tenant_id: UUID, webhook_id: UUID, failures: int, reason: str
    ) -> bool:
        """The delivery worker's report of `failures` failed attempts in a row (as the
        system); False if the webhook was disabled or deleted already."""
        webhook = self._app.load(tenant_id, webhook_id, Webhook)
        meta = EventMeta(tenant_id, SYSTEM_ACTOR, self._hash)
        if not webhook.disable_after_failures(failures, reason, meta):
            return False
        self._app.save_for(tenant_id, webhook)
        return True

    def load(self, tenant_id: UUID, webhook_id: UUID) -> Webhook:
        """A live webhook of the tenant; NotFound otherwise."""
        try:
            webhook = self._app.load(tenant_id, webhook_id, Webhook)
        except NotFound:
            webhook = None
        if webhook is None or webhook.deleted or webhook.tenant_id != tenant_id:
            raise NotFound("webhook not found", {"webhook_id": str(webhook_id)})
        return webhook

    def _target(self, url: object, problems: list[dict[str, str]]) -> Target | None:
        try:
            return self._targets.check(url)
        except TargetRefused as refused:
            problems += refused.details.get("fields", [])
            return None


def test_record(tenant_id: UUID, webhook_id: UUID, constitutional_hash: str) -> SinkRecord:
    """The one record a webhook's test sends: `webhook.test`, with a fresh event id."""
    event_id = str(uuid4())
    body = {
        "event_type": TEST_EVENT,
        "event_category": "integration",
        "action": TEST_ACTION,
        "result": "success",
        "target_resource": f"webhook/{webhook_id}",
        "details": {"message": "ACGS webhook test event"},
        "timestamp": datetime.now(UTC).isoformat(),
        "event_id": event_id,
        "tenant_id": str(tenant_id),
        "constitutional_hash": constitutional_hash,
        "source_event_type": TEST_EVENT,
    }
    return record_of_body(body, position=0, event_id=event_id)
