"""The ShadowRollout aggregate: steps, evidence, approval, rollback, replay."""

from __future__ import annotations

from uuid import uuid4

import pytest

from domain.constitution import DEFAULT_CONSTITUTIONAL_HASH
from domain.errors import Forbidden, InvalidStateTransition, ValidationFailed
from domain.events import Actor, EventMeta
from domain.maci import MaciRole
from domain.shadow.metrics import RollbackRule
from domain.shadow.rollout import ShadowRollout, StepEvidence, rollback_rule

TENANT = uuid4()
GOOD = StepEvidence(1000, 0.95)


def meta(sub: str, *roles: MaciRole) -> EventMeta:
    return EventMeta(TENANT, Actor(sub, roles), DEFAULT_CONSTITUTIONAL_HASH)


IMPLEMENTER = meta("ivan", MaciRole.IMPLEMENTER)
JUDGE = meta("judy", MaciRole.JUDICIAL)


def rollout() -> ShadowRollout:
    return ShadowRollout.configure_new(
        tenant_id=TENANT, policy_key="documents", rule=RollbackRule(), meta=IMPLEMENTER
    )


def at_fifty() -> ShadowRollout:
    made = rollout()
    made.request_step(25, GOOD, IMPLEMENTER)
    made.request_step(50, GOOD, IMPLEMENTER)
    return made


def test_steps_go_0_25_50_and_each_starts_a_new_epoch() -> None:
    made = rollout()
    assert (made.percentage, made.epoch) == (0, 1)
    assert made.request_step(25, GOOD, IMPLEMENTER) is True
    assert (made.percentage, made.epoch) == (25, 2)
    assert made.request_step(50, GOOD, IMPLEMENTER) is True
    assert (made.percentage, made.epoch) == (50, 3)


@pytest.mark.parametrize("target", [50, 100, 0, 30])
def test_a_step_out_of_order_is_refused(target: int) -> None:
    made = rollout()
    with pytest.raises(InvalidStateTransition) as refused:
        made.request_step(target, GOOD, IMPLEMENTER)
    assert refused.value.details["next_step"] == 25
    assert made.percentage == 0
    assert len(made.collect_events()) == 1  # only the creation


@pytest.mark.parametrize(
    "evidence", [StepEvidence(999, 1.0), StepEvidence(5000, 0.9499), StepEvidence(0, None)]
)
def test_a_step_up_needs_95_percent_over_1000_decisions(evidence: StepEvidence) -> None:
    made = rollout()
    with pytest.raises(InvalidStateTransition) as refused:
        made.request_step(25, evidence, IMPLEMENTER)
    assert refused.value.details["decisions"] == evidence.decisions
    assert refused.value.details["required_decisions"] == 1000
    assert made.percentage == 0


def test_past_fifty_the_step_waits_for_a_judicial_approval() -> None:
    made = at_fifty()
    assert made.request_step(100, GOOD, IMPLEMENTER) is False
    assert made.percentage == 50
    assert made.pending == (100, "ivan")
    assert made.approve(GOOD, JUDGE) == 100
    assert made.percentage == 100
    assert made.pending is None
    changed = made.collect_events()[-1]
    assert isinstance(changed, ShadowRollout.StepChanged)
    assert (changed.requested_by, changed.approved_by) == ("ivan", "judy")


def test_the_requester_cannot_approve_even_when_judicial() -> None:
    made = at_fifty()
    both = meta("jo", MaciRole.IMPLEMENTER, MaciRole.JUDICIAL)
    made.request_step(100, GOOD, both)
    with pytest.raises(Forbidden, match="separation of powers"):
        made.approve(GOOD, both)
    assert made.percentage == 50


@pytest.mark.parametrize("role", [MaciRole.EXECUTIVE, MaciRole.CONTROLLER, MaciRole.AUDITOR])
def test_a_non_judicial_principal_cannot_approve(role: MaciRole) -> None:
    made = at_fifty()
    made.request_step(100, GOOD, IMPLEMENTER)
    with pytest.raises(Forbidden):
        made.approve(GOOD, meta("other", role))
    assert made.percentage == 50


def test_approval_rechecks_the_evidence_and_needs_a_pending_step() -> None:
    made = at_fifty()
    with pytest.raises(InvalidStateTransition, match="no step is awaiting"):
        made.approve(GOOD, JUDGE)
    made.request_step(100, GOOD, IMPLEMENTER)
    with pytest.raises(InvalidStateTransition):
        made.approve(StepEvidence(1000, 0.5), JUDGE)


def test_rollback_returns_to_zero_with_its_evidence_and_drops_a_pending_step() -> None:
    made = at_fifty()
    made.request_step(100, GOOD, IMPLEMENTER)
    made.roll_back(automatic=True, reason="errors", evidence={"rate": 0.2}, meta=JUDGE)
    assert (made.percentage, made.pending) == (0, None)
    event = made.collect_events()[-1]
    assert isinstance(event, ShadowRollout.RolledBack)
    assert (event.previous, event.automatic, event.evidence) == (50, True, {"rate": 0.2})
    with pytest.raises(InvalidStateTransition, match="nothing to roll back"):
        made.roll_back(automatic=False, reason="again", evidence={}, meta=IMPLEMENTER)


def test_the_policy_changes_only_at_zero() -> None:
    made = at_fifty()
    with pytest.raises(InvalidStateTransition):
        made.reconfigure(policy_key="other", rule=RollbackRule(), meta=IMPLEMENTER)
    assert made.reconfigure(policy_key="documents", rule=RollbackRule(0.1), meta=IMPLEMENTER)
    assert made.rule.threshold == 0.1
    assert made.epoch == 3  # the rule changed, not the policy: the same step goes on


def test_replaying_the_events_rebuilds_the_rollout() -> None:
    made = at_fifty()
    made.request_step(100, GOOD, IMPLEMENTER)
    made.approve(GOOD, JUDGE)
    events = made.collect_events()
    copy = None
    for stored in events:
        copy = stored.mutate(copy)
    assert isinstance(copy, ShadowRollout)
    assert (copy.percentage, copy.epoch, copy.pending) == (100, made.epoch, None)


def test_rollback_settings_list_every_bad_field() -> None:
    with pytest.raises(ValidationFailed) as invalid:
        rollback_rule({"threshold": 2, "window_decisions": "x", "bogus": 1})
    fields = {f["field"] for f in invalid.value.details["fields"]}
    assert fields == {"rollback.threshold", "rollback.window_decisions", "rollback.bogus"}
    assert rollback_rule({"threshold": 0.1}).threshold == 0.1
