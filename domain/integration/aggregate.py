"""The enterprise integration aggregate (`Integration`, so its events are `integration.*`, the
names webhooks and sinks know, e.g. `integration.health_changed`).

Its configuration is validated against its type's schema in the public methods; secret fields
are sealed (`domain.secrets`) before any event is triggered, so events hold only sealed values
and the id of the integration's data key. The event-decorated methods only change state.
"""

from __future__ import annotations

from datetime import datetime, timedelta
from typing import Any
from uuid import UUID

from eventsourcing.domain import Aggregate, event

from domain.errors import InvalidStateTransition, ValidationFailed
from domain.events import EventMeta
from domain.integration.schemas import schema_of
from domain.integration.values import (
    REDACTED,
    HealthStatus,
    IntegrationType,
    integration_name,
)
from domain.secrets import SecretSealer

ARCHIVE_RETENTION_DAYS = 365  # archived configurations keep their secrets this long


def secret_path(key: str) -> str:
    return f"config.{key}"


def redact_config(integration_type: str, config: dict[str, Any]) -> dict[str, Any]:
    """The configuration as a response shows it: every secret field `***REDACTED***`."""
    secrets = schema_of(IntegrationType(integration_type)).secret_fields
    return {k: REDACTED if k in secrets else v for k, v in config.items()}


class Integration(Aggregate):
    """A tenant's connection to an enterprise system (directory, IdP, sink, warehouse)."""

    class Event(Aggregate.Event):
        meta: dict[str, Any]

    class Created(Event, Aggregate.Created):
        integration_type: str
        integration_name: str
        config: dict[str, Any]
        config_key_id: str
        enabled: bool

    class Updated(Event):
        """The state after a change (name, enabled, configuration) and what changed."""

        integration_name: str
        enabled: bool
        config: dict[str, Any]
        updated_fields: list[str]

    class HealthChanged(Event):
        health_status: str
        previous_status: str
        reason: str

    class Archived(Event):
        """Applied by hand: the archive time is the event's own timestamp."""

        retention_days: int

        def apply(self, aggregate: Integration) -> None:
            aggregate.archived_at = self.timestamp
            aggregate.purge_after = self.timestamp + timedelta(days=self.retention_days)

    class SecretsShredded(Event):
        pass

    @classmethod
    def register(
        cls,
        *,
        integration_id: UUID,
        tenant_id: UUID,
        integration_type: object,
        name: object,
        config: object,
        enabled: bool,
        sealer: SecretSealer,
        production: bool,
        meta: EventMeta,
    ) -> Integration:
        """Validate every input (all problems at once), then seal the secrets under a new data
        key and create the integration (one `Created` event)."""
        problems: list[dict[str, Any]] = []
        kind = _collect(problems, lambda: IntegrationType.parse(integration_type))
        valid_name = _collect(problems, lambda: integration_name(name))
        complete = None
        if kind is not None:
            complete = _collect(
                problems, lambda: schema_of(kind).validate(config, production=production)
            )
        if problems or kind is None or valid_name is None or complete is None:
            raise _all(problems)
        key_id = sealer.new_key(tenant_id)
        sealed = _sealed(sealer, tenant_id, key_id, kind, complete, set(complete))
        return cls(
            id=integration_id,
            integration_type=kind.value,
            integration_name=valid_name,
            config=sealed,
            config_key_id=key_id,
            enabled=enabled,
            meta=meta.as_dict(),
        )

    @event(Created)
    def __init__(
        self,
        id: UUID,
        integration_type: str,
        integration_name: str,
        config: dict[str, Any],
        config_key_id: str,
        enabled: bool,
        meta: dict[str, Any],
    ) -> None:
        del id
        self.tenant_id = UUID(meta["tenant_id"])
        self.created_by: str = meta["actor"]["sub"]
        self.integration_type = IntegrationType(integration_type)
        self.integration_name = integration_name
        self.config = config
        self.config_key_id = config_key_id
        self.enabled = enabled
        self.health_status = HealthStatus.UNKNOWN
        self.archived_at: datetime | None = None
        self.purge_after: datetime | None = None
        self.secrets_shredded = False

    # --- changes ------------------------------------------------------------------------------

    def update(
        self,
        changes: dict[str, Any],
        *,
        sealer: SecretSealer,
        production: bool,
        meta: EventMeta,
    ) -> list[str]:
        """Apply a partial update (`integration_name`, `enabled`, `config` merged key by key);
        returns the changed fields, config keys as `config.<key>`."""
        self._require_live("update")
        problems: list[dict[str, Any]] = []
        name = self.integration_name
        if "integration_name" in changes:
            name = _collect(problems, lambda: integration_name(changes["integration_name"])) or name
        enabled = changes.get("enabled", self.enabled)
        config, changed_keys = self.config, []
        if "config" in changes:
            merged = _collect(
                problems,
                lambda: schema_of(self.integration_type).merge(
                    self.config, changes["config"], production=production
                ),
            )
            if merged is not None:
                config, changed_keys = merged
        if problems:
            raise _all(problems)
        changed_keys = [k for k in changed_keys if not self._same_secret(sealer, k, config[k])]
        config = _sealed(
            sealer,
            self.tenant_id,
            self.config_key_id,
            self.integration_type,
            config,
            set(changed_keys),
        )
        updated = [f"config.{k}" for k in changed_keys]
        if name != self.integration_name:
            updated.append("integration_name")
        if enabled != self.enabled:
            updated.append("enabled")
        if updated:
            self._updated(
                integration_name=name,
                enabled=enabled,
                config=config,
                updated_fields=sorted(updated),
                meta=meta.as_dict(),
            )
        return sorted(updated)

    @event(Updated)
    def _updated(
        self,
        integration_name: str,
        enabled: bool,
        config: dict[str, Any],
        updated_fields: list[str],
        meta: dict[str, Any],
    ) -> None:
        del updated_fields, meta
        self.integration_name = integration_name
        self.enabled = enabled
        self.config = config

    def record_health(self, status: HealthStatus, reason: str, meta: EventMeta) -> bool:
        """Record the outcome of a check; an event only when the status changes."""
        if status is self.health_status or self.archived_at is not None:
            return False
        self._health_changed(
            health_status=status.value,
            previous_status=self.health_status.value,
            reason=reason[:500],
            meta=meta.as_dict(),
        )
        return True

    @event(HealthChanged)
    def _health_changed(
        self, health_status: str, previous_status: str, reason: str, meta: dict[str, Any]
    ) -> None:
        del previous_status, reason, meta
        self.health_status = HealthStatus(health_status)

    def archive(self, meta: EventMeta, retention_days: int = ARCHIVE_RETENTION_DAYS) -> None:
        """Delete: the integration is kept for audit, its secrets until the retention passes."""
        self._require_live("delete")
        self.trigger_event(self.Archived, retention_days=retention_days, meta=meta.as_dict())

    def shred_secrets(self, sealer: SecretSealer, now: datetime, meta: EventMeta) -> bool:
        """Crypto-shred the secrets of an archived integration once its retention has passed."""
        if self.purge_after is None or self.secrets_shredded or now < self.purge_after:
            return False
        sealer.shred(self.tenant_id, self.config_key_id)
        self._secrets_shredded(meta=meta.as_dict())
        return True

    @event(SecretsShredded)
    def _secrets_shredded(self, meta: dict[str, Any]) -> None:
        del meta
        self.secrets_shredded = True

    # --- reading ------------------------------------------------------------------------------

    @property
    def archived(self) -> bool:
        return self.archived_at is not None

    def redacted_config(self) -> dict[str, Any]:
        return redact_config(self.integration_type.value, self.config)

    def clear_config(self, sealer: SecretSealer) -> dict[str, Any]:
        """The configuration with its secrets opened (for a connection; never to show)."""
        secrets = schema_of(self.integration_type).secret_fields
        return {
            k: sealer.open(self.tenant_id, self.config_key_id, secret_path(k), v)
            if k in secrets
            else v
            for k, v in self.config.items()
        }

    def _same_secret(self, sealer: SecretSealer, key: str, value: Any) -> bool:
        if key not in schema_of(self.integration_type).secret_fields or key not in self.config:
            return False
        old = sealer.open(self.tenant_id, self.config_key_id, secret_path(key), self.config[key])
        return bool(old == value)

    def _require_live(self, action: str) -> None:
        if self.archived_at is not None:
            msg = f"cannot {action} an integration that is archived"
            raise InvalidStateTransition(msg, {"status": "archived", "allowed_from": ["active"]})


def _sealed(
    sealer: SecretSealer,
    tenant_id: UUID,
    key_id: str,
    kind: IntegrationType,
    config: dict[str, Any],
    fresh: set[str],
) -> dict[str, Any]:
    """`config` with the secret fields named in `fresh` sealed (the others are sealed already)."""
    secrets = schema_of(kind).secret_fields
    sealed = dict(config)
    for key in secrets & fresh & set(config):
        sealed[key] = sealer.seal(tenant_id, key_id, secret_path(key), str(config[key]))
    return sealed


def _collect(problems: list[dict[str, Any]], produce: Any) -> Any:
    try:
        return produce()
    except ValidationFailed as exc:
        problems.extend(exc.details.get("fields", []))
        return None


def _all(problems: list[dict[str, Any]]) -> ValidationFailed:
    summary = "; ".join(f"{p['field']}: {p['message']}" for p in problems)
    return ValidationFailed(summary[:300], {"fields": problems})
