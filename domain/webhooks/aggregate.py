"""The webhook aggregate (`Webhook`, events `webhook.*`): a tenant's endpoint, the events it
subscribes to, and its signing secret, sealed under a data key of its own (the integrations'
envelope encryption, `domain.secrets`) before any event exists, so events hold only the sealed
value. Guards run in the public methods; the event-decorated methods only change state.

A subscription names a public event (`policy.updated` ...); `SUBSCRIPTIONS` maps each onto the
event types of the log it stands for. A webhook is disabled by hand (PATCH `enabled`) or by
its deliveries after too many consecutive failures (`Disabled`, audited like every event), and
re-enabled by PATCH.
"""

from __future__ import annotations

from typing import Any
from uuid import UUID

from eventsourcing.domain import Aggregate, event

from domain.errors import InvalidStateTransition, ValidationFailed
from domain.events import EventMeta
from domain.secrets import SecretSealer
from domain.webhooks.signature import MAX_SECRET, MIN_SECRET, new_secret
from domain.webhooks.targets import Target

SECRET_PATH = "webhook.secret"  # noqa: S105 - not a secret: the sealed secret's associated data
TEST_EVENT = "webhook.test"
# Public event name -> the event types of the log it stands for.
SUBSCRIPTIONS: dict[str, frozenset[str]] = {
    "policy.updated": frozenset(
        {
            "tenant_policy.registered",
            "tenant_policy.version_added",
            "tenant_policy.activated",
            "tenant_policy.rolled_back",
            "tenant_policy.retired",
        }
    ),
    "migration.completed": frozenset({"migration_job.completed"}),
    "integration.health_changed": frozenset({"integration.health_changed"}),
    "webhook.disabled": frozenset({"webhook.disabled"}),
}
UPDATABLE = ("webhook_url", "events", "enabled")


def subscribed_types(events: list[str]) -> frozenset[str]:
    """The event types of the log a webhook subscribed to `events` receives."""
    return frozenset().union(*(SUBSCRIPTIONS[e] for e in events))


def public_event(event_type: str, events: list[str]) -> str:
    """The subscription under which an event of `event_type` is delivered."""
    return next((e for e in events if event_type in SUBSCRIPTIONS[e]), event_type)


def _events(value: object, problems: list[dict[str, str]]) -> list[str]:
    allowed = sorted(SUBSCRIPTIONS)
    if (
        not isinstance(value, list)
        or not value
        or any(not isinstance(v, str) or v not in SUBSCRIPTIONS for v in value)
    ):
        problems.append({"field": "events", "message": f"must be a non-empty list of {allowed}"})
        return []
    return sorted(set(value))


def _secret(value: object, problems: list[dict[str, str]]) -> str:
    if value is None:
        return new_secret()
    if not isinstance(value, str) or not MIN_SECRET <= len(value) <= MAX_SECRET:
        message = f"must be a string of {MIN_SECRET} to {MAX_SECRET} characters"
        problems.append({"field": "secret", "message": message})
        return ""
    if not value.isprintable() or value != value.strip():
        problems.append({"field": "secret", "message": "must be printable, without spaces"})
        return ""
    return value


def _enabled(value: object, problems: list[dict[str, str]]) -> bool:
    if not isinstance(value, bool):
        problems.append({"field": "enabled", "message": "must be true or false"})
        return False
    return value


def _raise(problems: list[dict[str, str]]) -> None:
    if problems:
        raise ValidationFailed.listing(problems)


class Webhook(Aggregate):
    class Event(Aggregate.Event):
        meta: dict[str, Any]

    class Registered(Event, Aggregate.Created):
        webhook_url: str
        events: list[str]
        secret: str  # sealed
        secret_key_id: str
        enabled: bool

    class Updated(Event):
        webhook_url: str
        events: list[str]
        enabled: bool
        updated_fields: list[str]

    class Disabled(Event):
        """Disabled by its deliveries after `consecutive_failures` failed attempts in a row."""

        consecutive_failures: int
        reason: str

    class Deleted(Event):
        pass

    @classmethod
    def register(
        cls,
        *,
        webhook_id: UUID,
        tenant_id: UUID,
        target: Target | None,
        events: object,
        secret: object,
        enabled: object,
        sealer: SecretSealer,
        meta: EventMeta,
        problems: list[dict[str, str]],
    ) -> tuple[Webhook, str]:
        """Validate (adding to the URL's `problems`, all reported at once), seal the secret
        (given, or generated) under a new data key; the webhook and the clear secret, which
        the caller shows once."""
        subscribed = _events(events, problems)
        clear = _secret(secret, problems)
        on = _enabled(enabled, problems)
        _raise(problems)
        assert target is not None  # a bad URL is one of the problems
        key_id = sealer.new_key(tenant_id)
        sealed = sealer.seal(tenant_id, key_id, SECRET_PATH, clear)
        webhook = cls(
            id=webhook_id,
            webhook_url=target.url,
            events=subscribed,
            secret=sealed,
            secret_key_id=key_id,
            enabled=on,
            meta=meta.as_dict(),
        )
        return webhook, clear

    @event(Registered)
    def __init__(
        self,
        id: UUID,
        webhook_url: str,
        events: list[str],
        secret: str,
        secret_key_id: str,
        enabled: bool,
        meta: dict[str, Any],
    ) -> None:
        del id
        self.tenant_id = UUID(meta["tenant_id"])
        self.webhook_url = webhook_url
        self.events = list(events)
        self.secret = secret
        self.secret_key_id = secret_key_id
        self.enabled = enabled
        self.disabled_reason: str | None = None
        self.deleted = False

    def clear_secret(self, sealer: SecretSealer) -> str:
        return sealer.open(self.tenant_id, self.secret_key_id, SECRET_PATH, self.secret)

    def change(
        self,
        changes: dict[str, Any],
        target: Target | None,
        meta: EventMeta,
        problems: list[dict[str, str]],
    ) -> list[str]:
        """A partial update of `webhook_url` (checked by the caller into `target`), `events`,
        `enabled`; the changed fields."""
        self._require_live("update")
        unknown = sorted(set(changes) - set(UPDATABLE))
        problems += [{"field": f, "message": "read-only or unknown field"} for f in unknown]
        if not changes:
            problems.append({"field": "body", "message": "no fields to update"})
        url = target.url if target is not None else self.webhook_url
        events = _events(changes["events"], problems) if "events" in changes else self.events
        enabled = _enabled(changes["enabled"], problems) if "enabled" in changes else self.enabled
        _raise(problems)
        updated = [
            name
            for name, old, new in (
                ("webhook_url", self.webhook_url, url),
                ("events", self.events, events),
                ("enabled", self.enabled, enabled),
            )
            if old != new
        ]
        if updated:
            self._updated(
                webhook_url=url,
                events=events,
                enabled=enabled,
                updated_fields=updated,
                meta=meta.as_dict(),
            )
        return updated

    @event(Updated)
    def _updated(
        self,
        webhook_url: str,
        events: list[str],
        enabled: bool,
        updated_fields: list[str],
        meta: dict[str, Any],
    ) -> None:
        del updated_fields, meta
        self.webhook_url = webhook_url
        self.events = list(events)
        self.enabled = enabled
        if enabled:
            self.disabled_reason = None

    def disable_after_failures(self, failures: int, reason: str, meta: EventMeta) -> bool:
        """Disable the webhook (False if it is disabled or deleted already)."""
        if self.deleted or not self.enabled:
            return False
        self._disabled(consecutive_failures=failures, reason=reason[:500], meta=meta.as_dict())
        return True

    @event(Disabled)
    def _disabled(self, consecutive_failures: int, reason: str, meta: dict[str, Any]) -> None:
        del meta
        self.enabled = False
        self.disabled_reason = f"{consecutive_failures} consecutive failed deliveries: {reason}"

    def delete(self, meta: EventMeta) -> None:
        self._require_live("delete")
        self._deleted(meta=meta.as_dict())

    @event(Deleted)
    def _deleted(self, meta: dict[str, Any]) -> None:
        del meta
        self.deleted = True
        self.enabled = False

    def _require_live(self, action: str) -> None:
        if self.deleted:
            raise InvalidStateTransition(
                f"cannot {action} a deleted webhook", {"status": "deleted"}
            )
