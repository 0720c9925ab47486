"""The Tenant aggregate as a specification: validation, lifecycle, events."""

from __future__ import annotations

from datetime import timedelta
from uuid import uuid4

import pytest

from domain.constitution import DEFAULT_CONSTITUTIONAL_HASH
from domain.errors import InvalidStateTransition, InvalidTenantSlug, ValidationFailed
from domain.events import SYSTEM_ACTOR, EventMeta, event_id, event_type
from domain.tenant.aggregate import Tenant
from domain.tenant.values import Quotas, TenantStatus

HASH = DEFAULT_CONSTITUTIONAL_HASH


def meta() -> EventMeta:
    return EventMeta(uuid4(), SYSTEM_ACTOR, HASH)


def new_tenant(**overrides: object) -> Tenant:
    values: dict[str, object] = {
        "name": "Acme Corporation",
        "slug": "acme-corp",
        "email": "admin@acme.com",
        "plan": "enterprise",
    }
    values.update(overrides)
    m = meta()
    return Tenant.register(tenant_id=m.tenant_id, meta=m, **values)  # type: ignore[arg-type]


def test_created_tenant_is_active_with_default_quotas() -> None:
    tenant = new_tenant()
    assert tenant.status is TenantStatus.ACTIVE
    assert tenant.quotas == Quotas(1000, 10, 100)
    assert tenant.billing_plan == "enterprise"
    [created] = tenant.collect_events()
    assert event_type(created) == "tenant.created"
    assert created.meta["constitutional_hash"] == HASH
    assert created.meta["actor"]["sub"] == "system"


@pytest.mark.parametrize(
    "slug",
    [
        "Invalid_Slug",
        "ab",
        "-acme",
        "acme-",
        "ac--me",
        "a" * 64,
        "acme corp",
        "acme;drop",
        "",
        "ümlaut",
    ],
)
def test_invalid_slug_is_refused_with_its_own_code(slug: str) -> None:
    with pytest.raises(InvalidTenantSlug) as err:
        new_tenant(slug=slug)
    assert err.value.code == "INVALID_TENANT_SLUG"
    assert err.value.details["constraint"] == "^[a-z0-9-]+$"


@pytest.mark.parametrize("slug", ["abc", "acme-corp", "a1-b2-c3", "x" * 63])
def test_valid_slugs_are_accepted(slug: str) -> None:
    assert new_tenant(slug=slug).tenant_slug == slug


@pytest.mark.parametrize(
    ("field", "overrides"),
    [
        ("tenant_name", {"name": "ab"}),
        ("tenant_name", {"name": "  a  "}),
        ("tenant_name", {"name": "x" * 256}),
        ("tenant_name", {"name": "bad\x00name"}),
        ("tenant_name", {"name": 12345}),
        ("admin_email", {"email": "not-an-email"}),
        ("admin_email", {"email": "a@b"}),
        ("admin_email", {"email": "a b@c.com"}),
        ("billing_plan", {"plan": "platinum"}),
    ],
)
def test_bad_profile_values_name_the_field(field: str, overrides: dict[str, object]) -> None:
    with pytest.raises(ValidationFailed) as err:
        new_tenant(**overrides)
    assert err.value.code == "VALIDATION_ERROR"
    assert err.value.details["fields"][0]["field"] == field


@pytest.mark.parametrize(
    "quotas",
    [
        {"max_requests_per_minute": 0},
        {"max_requests_per_minute": -5},
        {"max_storage_gb": 100_001},
        {"max_concurrent_connections": 1.5},
        {"max_requests_per_minute": True},
        {"max_storage_gb": "10"},
    ],
)
def test_quotas_must_be_positive_bounded_integers(quotas: dict[str, object]) -> None:
    with pytest.raises(ValidationFailed):
        Quotas(**quotas)  # type: ignore[arg-type]


def test_email_domain_is_normalised_to_lower_case() -> None:
    assert new_tenant(email="Admin@ACME.com").admin_email == "Admin@acme.com"


def test_email_local_part_is_at_most_64_characters() -> None:
    assert new_tenant(email="a" * 64 + "@acme.com").admin_email == "a" * 64 + "@acme.com"
    with pytest.raises(ValidationFailed) as err:
        new_tenant(email="a" * 65 + "@acme.com")
    assert err.value.details["fields"] == [
        {"field": "admin_email", "message": "local part must be at most 64 characters"}
    ]


def test_update_profile_reports_only_changed_fields() -> None:
    tenant = new_tenant()
    changed = tenant.update_profile(
        {"tenant_name": "Acme Corporation", "admin_email": "ops@acme.com"}, meta()
    )
    assert changed == ["admin_email"]
    assert tenant.admin_email == "ops@acme.com"


def test_quota_change_emits_one_event_with_all_quotas() -> None:
    tenant = new_tenant()
    tenant.collect_events()
    assert tenant.change_quotas({"max_storage_gb": 50}, meta()) == ["max_storage_gb"]
    [changed] = tenant.collect_events()
    assert changed.quotas == {
        "max_requests_per_minute": 1000,
        "max_storage_gb": 50,
        "max_concurrent_connections": 100,
    }


def test_deactivation_schedules_purge_thirty_days_later() -> None:
    tenant = new_tenant()
    tenant.deactivate(meta())
    assert tenant.status is TenantStatus.DEACTIVATED
    assert tenant.deactivated_at is not None
    assert tenant.data_purge_scheduled == tenant.deactivated_at + timedelta(days=30)


def test_reactivation_clears_the_purge_schedule() -> None:
    tenant = new_tenant()
    tenant.deactivate(meta())
    tenant.reactivate(meta())
    assert tenant.status is TenantStatus.ACTIVE
    assert tenant.data_purge_scheduled is None


@pytest.mark.parametrize(
    ("setup", "action"),
    [
        ([], "reactivate"),
        ([], "purge"),
        (["suspend"], "suspend"),
        (["deactivate"], "deactivate"),
        (["deactivate", "purge"], "reactivate"),
        (["deactivate", "purge"], "purge"),
    ],
)
def test_illegal_transitions_are_typed_errors_and_emit_nothing(
    setup: list[str], action: str
) -> None:
    tenant = new_tenant()
    for step in setup:
        getattr(tenant, step)(meta())
    tenant.collect_events()
    with pytest.raises(InvalidStateTransition):
        getattr(tenant, action)(meta())
    assert tenant.collect_events() == []


def test_purged_tenant_cannot_be_updated() -> None:
    tenant = new_tenant()
    tenant.deactivate(meta())
    tenant.purge(meta())
    with pytest.raises(InvalidStateTransition):
        tenant.update_profile({"tenant_name": "New name"}, meta())


def test_replaying_events_rebuilds_the_same_state() -> None:
    tenant = new_tenant()
    tenant.update_profile({"tenant_name": "Renamed Corp"}, meta())
    tenant.change_quotas({"max_requests_per_minute": 5000}, meta())
    tenant.suspend(meta())
    events = tenant.collect_events()
    rebuilt = None
    for e in events:
        rebuilt = e.mutate(rebuilt)
    assert isinstance(rebuilt, Tenant)
    assert (rebuilt.tenant_name, rebuilt.quotas.max_requests_per_minute, rebuilt.status) == (
        "Renamed Corp",
        5000,
        TenantStatus.SUSPENDED,
    )


def test_event_ids_are_stable_and_distinct() -> None:
    aggregate = uuid4()
    assert event_id(aggregate, 1) == event_id(aggregate, 1)
    assert event_id(aggregate, 1) != event_id(aggregate, 2)
