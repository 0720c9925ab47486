"""The Tenant aggregate: its lifecycle and the events it emits.

Every event carries `meta` (EventMeta as a dict: tenant, actor, constitutional hash, trace parent).
State changes happen only in the event-decorated methods, so replaying the events rebuilds the
same tenant. Guards run before an event is triggered, so an illegal call emits nothing.
"""

from __future__ import annotations

from collections.abc import Callable
from datetime import datetime, timedelta
from typing import Any
from uuid import UUID

from eventsourcing.domain import Aggregate, event

from domain.errors import InvalidStateTransition, ValidationFailed
from domain.events import EventMeta
from domain.tenant.sign_in_settings import SignInSettings
from domain.tenant.values import (
    GRACE_PERIOD_DAYS,
    BillingPlan,
    Quotas,
    TenantStatus,
    admin_email,
    tenant_name,
    tenant_slug,
)

PROFILE_FIELDS = frozenset({"tenant_name", "admin_email", "billing_plan"})  # update_profile's


def _plan(value: object) -> str:
    return BillingPlan.parse(value).value


class Tenant(Aggregate):
    """An isolated customer of the platform. Its id is the `tenant_id` of all its data."""

    class Event(Aggregate.Event):
        meta: dict[str, Any]

    class Created(Event, Aggregate.Created):
        tenant_name: str
        tenant_slug: str
        admin_email: str
        billing_plan: str
        quotas: dict[str, int]

    class ProfileUpdated(Event):
        changes: dict[str, str]

    class QuotasChanged(Event):
        quotas: dict[str, int]

    class SignInSettingsChanged(Event):
        default_role: str  # a MACI role name or "none"
        access_token_ttl_seconds: int
        refresh_token_ttl_seconds: int

    class Suspended(Event):
        pass

    class Reactivated(Event):
        pass

    class Deactivated(Event):
        """Applied by hand rather than through a decorated method, because the deactivation
        time is the event's own timestamp, which a decorated method cannot see."""

        grace_period_days: int

        def apply(self, aggregate: Tenant) -> None:
            aggregate.status = TenantStatus.DEACTIVATED
            aggregate.deactivated_at = self.timestamp
            aggregate.data_purge_scheduled = self.timestamp + timedelta(days=self.grace_period_days)

    class Purged(Event):
        pass

    @classmethod
    def register(
        cls,
        *,
        tenant_id: UUID,
        name: object,
        slug: object,
        email: object,
        plan: object = BillingPlan.STANDARD,
        quotas: Quotas | None = None,
        meta: EventMeta,
    ) -> Tenant:
        """Validate every input, then create the tenant (one `Created` event)."""
        return cls(
            id=tenant_id,
            tenant_name=tenant_name(name),
            tenant_slug=tenant_slug(slug),
            admin_email=admin_email(email),
            billing_plan=BillingPlan.parse(plan).value,
            quotas=(quotas or Quotas()).as_dict(),
            meta=meta.as_dict(),
        )

    @event(Created)
    def __init__(
        self,
        id: UUID,
        tenant_name: str,
        tenant_slug: str,
        admin_email: str,
        billing_plan: str,
        quotas: dict[str, int],
        meta: dict[str, Any],
    ) -> None:
        del id, meta
        self.tenant_name = tenant_name
        self.tenant_slug = tenant_slug
        self.admin_email = admin_email
        self.billing_plan = billing_plan
        self.quotas = Quotas(**quotas)
        self.sign_in = SignInSettings()
        self.status = TenantStatus.ACTIVE
        self.deactivated_at: datetime | None = None
        self.data_purge_scheduled: datetime | None = None

    # --- profile and quotas -------------------------------------------------------------------

    def update_profile(self, changes: dict[str, object], meta: EventMeta) -> list[str]:
        """Change name, admin email and/or billing plan; return the names actually changed."""
        self._require(TenantStatus.ACTIVE, TenantStatus.SUSPENDED, action="update")
        validators: dict[str, Callable[[object], str]] = {
            "tenant_name": tenant_name,
            "admin_email": admin_email,
            "billing_plan": _plan,
        }
        new: dict[str, str] = {}
        problems: list[dict[str, Any]] = []
        for key in sorted(PROFILE_FIELDS & set(changes)):
            try:
                new[key] = validators[key](changes[key])
            except ValidationFailed as invalid:
                problems += invalid.details["fields"]
        if problems:
            raise ValidationFailed.listing(problems)
        new = {k: v for k, v in new.items() if getattr(self, k) != v}
        if new:
            self._profile_updated(changes=new, meta=meta.as_dict())
        return sorted(new)

    @event(ProfileUpdated)
    def _profile_updated(self, changes: dict[str, str], meta: dict[str, Any]) -> None:
        del meta
        for key, value in changes.items():
            setattr(self, key, value)

    def change_quotas(self, changes: dict[str, object], meta: EventMeta) -> list[str]:
        """Change any of the three quotas; return the names actually changed."""
        self._require(TenantStatus.ACTIVE, TenantStatus.SUSPENDED, action="change quotas of")
        quotas = self.quotas.changed(**changes)
        changed = sorted(k for k, v in quotas.as_dict().items() if v != getattr(self.quotas, k))
        if changed:
            self._quotas_changed(quotas=quotas.as_dict(), meta=meta.as_dict())
        return changed

    @event(QuotasChanged)
    def _quotas_changed(self, quotas: dict[str, int], meta: dict[str, Any]) -> None:
        del meta
        self.quotas = Quotas(**quotas)

    def change_sign_in_settings(self, changes: dict[str, object], meta: EventMeta) -> list[str]:
        """Change the default role and/or the token lifetimes; return the names changed."""
        self._require(TenantStatus.ACTIVE, TenantStatus.SUSPENDED, action="change sign-in of")
        settings = self.sign_in.changed(changes).as_dict()
        old = self.sign_in.as_dict()
        changed = sorted(k for k, v in settings.items() if v != old[k])
        if changed:
            self._sign_in_settings_changed(**settings, meta=meta.as_dict())
        return changed

    @event(SignInSettingsChanged)
    def _sign_in_settings_changed(
        self,
        default_role: str,
        access_token_ttl_seconds: int,
        refresh_token_ttl_seconds: int,
        meta: dict[str, Any],
    ) -> None:
        del meta
        self.sign_in = SignInSettings.from_dict(
            {
                "default_role": default_role,
                "access_token_ttl_seconds": access_token_ttl_seconds,
                "refresh_token_ttl_seconds": refresh_token_ttl_seconds,
            }
        )

    # --- lifecycle ----------------------------------------------------------------------------

    def suspend(self, meta: EventMeta) -> None:
        self._require(TenantStatus.ACTIVE, action="suspend")
        self._suspended(meta=meta.as_dict())

    @event(Suspended)
    def _suspended(self, meta: dict[str, Any]) -> None:
        del meta
        self.status = TenantStatus.SUSPENDED

    def reactivate(self, meta: EventMeta) -> None:
        self._require(TenantStatus.SUSPENDED, TenantStatus.DEACTIVATED, action="reactivate")
        self._reactivated(meta=meta.as_dict())

    @event(Reactivated)
    def _reactivated(self, meta: dict[str, Any]) -> None:
        del meta
        self.status = TenantStatus.ACTIVE
        self.deactivated_at = None
        self.data_purge_scheduled = None

    def deactivate(self, meta: EventMeta) -> None:
        """Soft delete: data is kept for the grace period, then purged."""
        self._require(TenantStatus.ACTIVE, TenantStatus.SUSPENDED, action="deactivate")
        self.trigger_event(
            self.Deactivated, grace_period_days=GRACE_PERIOD_DAYS, meta=meta.as_dict()
        )

    def purge(self, meta: EventMeta) -> None:
        """Delete the tenant's data for good; only a deactivated tenant can be purged."""
        self._require(TenantStatus.DEACTIVATED, action="purge")
        self._purged(meta=meta.as_dict())

    @event(Purged)
    def _purged(self, meta: dict[str, Any]) -> None:
        del meta
        self.status = TenantStatus.PURGED

    def _require(self, *allowed: TenantStatus, action: str) -> None:
        if self.status not in allowed:
            msg = f"cannot {action} a tenant that is {self.status.value}"
            raise InvalidStateTransition(
                msg, {"status": self.status.value, "allowed_from": [s.value for s in allowed]}
            )
