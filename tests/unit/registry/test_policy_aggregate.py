"""The TenantPolicy aggregate: versions, activation, rollback, retirement, and replay."""

from __future__ import annotations

from uuid import uuid4

import pytest

from domain.errors import InvalidStateTransition, NotFound
from domain.events import SYSTEM_ACTOR, EventMeta
from domain.registry.policy import PolicyStatus, TenantPolicy, policy_aggregate_id

TENANT = uuid4()
META = EventMeta(TENANT, SYSTEM_ACTOR, "cdd01ef066bc6cf2")


def _policy(versions: int = 2) -> TenantPolicy:
    policy = TenantPolicy.register(
        owner=TENANT, policy_key="door", name="Door", system_wide=False, meta=META
    )
    for n in range(versions):
        policy.add_version(
            source=f"source {n}",
            source_format="rego",
            rego=f"package p{n}",
            package=f"p{n}",
            conversion_status="converted",
            report={},
            meta=META,
        )
    return policy


def _replayed(policy: TenantPolicy) -> TenantPolicy:
    events = policy.collect_events()
    copy: TenantPolicy | None = None
    for event in events:
        copy = event.mutate(copy)  # type: ignore[assignment]
    assert copy is not None
    return copy


def test_the_id_is_the_same_for_the_same_owner_and_policy_id() -> None:
    assert policy_aggregate_id(TENANT, "door") == _policy().id
    assert policy_aggregate_id(uuid4(), "door") != _policy().id


def test_versions_are_numbered_and_immutable_and_a_new_policy_is_a_draft() -> None:
    policy = _policy()
    assert sorted(policy.versions) == [1, 2]
    assert policy.versions[2].sha256 != policy.versions[1].sha256
    assert policy.status is PolicyStatus.DRAFT
    assert policy.active is None


def test_activation_then_rollback_then_nothing_to_do() -> None:
    policy = _policy()
    assert policy.activate(2, META) is True
    assert policy.activate(1, META) is True
    assert policy.activate(1, META) is False
    kinds = [type(e).__name__ for e in policy.collect_events()]
    assert kinds[-2:] == ["Activated", "RolledBack"]
    assert policy.active is not None
    assert policy.active.number == 1


def test_an_unknown_version_is_not_found_and_emits_nothing() -> None:
    policy = _policy()
    policy.collect_events()
    with pytest.raises(NotFound):
        policy.activate(3, META)
    assert policy.collect_events() == []


def test_a_retired_policy_takes_no_version_activation_or_second_retirement() -> None:
    policy = _policy()
    policy.activate(1, META)
    policy.retire(META)
    policy.collect_events()
    assert policy.active is None
    for attempt in (
        lambda: policy.activate(2, META),
        lambda: policy.retire(META),
        lambda: policy.add_version(
            source="s",
            source_format="rego",
            rego="r",
            package="p",
            conversion_status="converted",
            report={},
            meta=META,
        ),
    ):
        with pytest.raises(InvalidStateTransition):
            attempt()
    assert policy.collect_events() == []


def test_replaying_the_events_rebuilds_the_same_policy() -> None:
    policy = _policy()
    policy.activate(2, META)
    policy.activate(1, META)
    copy = _replayed(policy)
    assert (copy.status, copy.active_version, copy.versions) == (
        policy.status,
        policy.active_version,
        policy.versions,
    )
