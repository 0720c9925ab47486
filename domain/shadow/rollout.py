"""The ShadowRollout aggregate: one per tenant, the share of its traffic routed to Rego.

Steps go 0 → 25 → 50 → 100 %. A step up needs the evidence of the current step (at least
`MIN_DECISIONS` decisions, at least `MIN_AGREEMENT` of them agreeing); a step past 50 % is only
requested, and takes effect when a JUDICIAL principal other than the requester approves it. A
rollback (by hand, or by the rollback rule) returns to 0 %. Every change starts a new *epoch*:
the metrics that judge a step are those of its own epoch. Guards run in the public methods; the
event methods only change state, so a replay rebuilds the same rollout.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any
from uuid import NAMESPACE_URL, UUID, uuid5

from eventsourcing.domain import Aggregate, event

from domain.errors import Forbidden, InvalidStateTransition, ValidationFailed
from domain.events import EventMeta
from domain.maci import MaciRole
from domain.shadow.metrics import RollbackRule

STEPS = (0, 25, 50, 100)
APPROVAL_ABOVE = 50  # a step to more than this needs a JUDICIAL approval
MIN_DECISIONS = 1000
MIN_AGREEMENT = 0.95
_ROLLOUT_NAMESPACE = uuid5(NAMESPACE_URL, "urn:acgs:shadow-rollout")


def rollout_id(tenant_id: UUID) -> UUID:
    return uuid5(_ROLLOUT_NAMESPACE, str(tenant_id))


@dataclass(frozen=True)
class StepEvidence:
    """The metrics of the current epoch that a step up is judged on."""

    decisions: int
    agreement_rate: float | None

    def as_dict(self) -> dict[str, Any]:
        return {
            "decisions": self.decisions,
            "agreement_rate": self.agreement_rate,
            "required_decisions": MIN_DECISIONS,
            "required_agreement_rate": MIN_AGREEMENT,
        }


def rollback_rule(values: dict[str, Any]) -> RollbackRule:
    """The rule from its settings; every bad one is listed at once."""
    defaults = RollbackRule()
    problems = []
    checks = {
        "threshold": (float, 0.0, 1.0),
        "window_decisions": (int, 1, 100_000),
        "window_seconds": (float, 1.0, 86_400.0),
        "min_decisions": (int, 1, 100_000),
    }
    unknown = sorted(set(values) - set(checks))
    problems += [{"field": f"rollback.{name}", "message": "unknown setting"} for name in unknown]
    chosen: dict[str, Any] = {}
    for name, (kind, low, high) in checks.items():
        value = values.get(name, getattr(defaults, name))
        number_ok = isinstance(value, int | float) and not isinstance(value, bool)
        if (
            not number_ok
            or (kind is int and not isinstance(value, int))
            or not low <= value <= high
        ):
            problems.append(
                {
                    "field": f"rollback.{name}",
                    "message": f"must be a {kind.__name__} in {low}..{high}",
                }
            )
            continue
        chosen[name] = kind(value)
    if problems:
        raise ValidationFailed.listing(problems)
    return RollbackRule(**chosen)


class ShadowRollout(Aggregate):
    class Event(Aggregate.Event):
        meta: dict[str, Any]

    class Configured(Event, Aggregate.Created):
        policy_key: str
        rollback: dict[str, Any]

    class Reconfigured(Event):
        policy_key: str
        rollback: dict[str, Any]

    class StepRequested(Event):
        target: int
        evidence: dict[str, Any]

    class StepChanged(Event):
        percentage: int
        previous: int
        evidence: dict[str, Any]
        requested_by: str
        approved_by: str | None

    class RolledBack(Event):
        previous: int
        automatic: bool
        reason: str
        evidence: dict[str, Any]

    @classmethod
    def configure_new(
        cls, *, tenant_id: UUID, policy_key: str, rule: RollbackRule, meta: EventMeta
    ) -> ShadowRollout:
        return cls(
            id=rollout_id(tenant_id),
            policy_key=policy_key,
            rollback=rule.as_dict(),
            meta=meta.as_dict(),
        )

    @event(Configured)
    def __init__(
        self, id: UUID, policy_key: str, rollback: dict[str, Any], meta: dict[str, Any]
    ) -> None:
        del id, meta
        self.policy_key = policy_key
        self.rule = RollbackRule(**rollback)
        self.percentage = 0
        self.epoch = 1
        self.pending: tuple[int, str] | None = None  # (target, requested by)

    # --- configuration ------------------------------------------------------------------------

    def reconfigure(self, *, policy_key: str, rule: RollbackRule, meta: EventMeta) -> bool:
        """Change the policy or the rollback rule; the policy only while no traffic is routed."""
        if policy_key == self.policy_key and rule == self.rule:
            return False
        if policy_key != self.policy_key and self.percentage > 0:
            raise InvalidStateTransition(
                "the shadow policy can change only at 0 %: roll back first",
                {"percentage": self.percentage, "policy_id": self.policy_key},
            )
        self._reconfigured(policy_key=policy_key, rollback=rule.as_dict(), meta=meta.as_dict())
        return True

    @event(Reconfigured)
    def _reconfigured(
        self, policy_key: str, rollback: dict[str, Any], meta: dict[str, Any]
    ) -> None:
        del meta
        if policy_key != self.policy_key:
            self.epoch += 1
            self.pending = None
        self.policy_key = policy_key
        self.rule = RollbackRule(**rollback)

    # --- steps --------------------------------------------------------------------------------

    @property
    def next_step(self) -> int | None:
        index = STEPS.index(self.percentage)
        return STEPS[index + 1] if index + 1 < len(STEPS) else None

    def request_step(self, target: int, evidence: StepEvidence, meta: EventMeta) -> bool:
        """Step up to `target`; True if it took effect, False if it now awaits approval."""
        if target != self.next_step:
            raise InvalidStateTransition(
                f"steps go {' -> '.join(map(str, STEPS))}; from {self.percentage} % the next "
                f"step is {self.next_step}",
                {"percentage": self.percentage, "target": target, "next_step": self.next_step},
            )
        if self.pending is not None:
            raise InvalidStateTransition(
                "a step is already awaiting approval",
                {"pending_target": self.pending[0], "requested_by": self.pending[1]},
            )
        _require_evidence(evidence)
        if target > APPROVAL_ABOVE:
            self._step_requested(target=target, evidence=evidence.as_dict(), meta=meta.as_dict())
            return False
        self._step_changed(
            percentage=target,
            previous=self.percentage,
            evidence=evidence.as_dict(),
            requested_by=meta.actor.sub,
            approved_by=None,
            meta=meta.as_dict(),
        )
        return True

    @event(StepRequested)
    def _step_requested(self, target: int, evidence: dict[str, Any], meta: dict[str, Any]) -> None:
        del evidence
        self.pending = (target, str(meta["actor"]["sub"]))

    def approve(self, evidence: StepEvidence, meta: EventMeta) -> int:
        """Approve the pending step (separation of powers: a JUDICIAL principal who did not
        request it); returns the new percentage."""
        if self.pending is None:
            raise InvalidStateTransition(
                "no step is awaiting approval", {"percentage": self.percentage}
            )
        target, requester = self.pending
        if MaciRole.JUDICIAL not in meta.actor.roles:
            raise Forbidden(
                "a promotion past 50 % is approved by a JUDICIAL principal",
                {"required_roles": [MaciRole.JUDICIAL.value]},
            )
        if meta.actor.sub == requester:
            raise Forbidden(
                "separation of powers: the principal who requested a step cannot approve it",
                {"requested_by": requester},
            )
        _require_evidence(evidence)
        self._step_changed(
            percentage=target,
            previous=self.percentage,
            evidence=evidence.as_dict(),
            requested_by=requester,
            approved_by=meta.actor.sub,
            meta=meta.as_dict(),
        )
        return target

    @event(StepChanged)
    def _step_changed(
        self,
        percentage: int,
        previous: int,
        evidence: dict[str, Any],
        requested_by: str,
        approved_by: str | None,
        meta: dict[str, Any],
    ) -> None:
        del previous, evidence, requested_by, approved_by, meta
        self.percentage = percentage
        self.epoch += 1
        self.pending = None

    def roll_back(
        self, *, automatic: bool, reason: str, evidence: dict[str, Any], meta: EventMeta
    ) -> None:
        """Back to 0 % (and any pending request dropped), with the evidence of why."""
        if self.percentage == 0 and self.pending is None:
            raise InvalidStateTransition("nothing to roll back: 0 % is routed to Rego", {})
        self._rolled_back(
            previous=self.percentage,
            automatic=automatic,
            reason=reason,
            evidence=evidence,
            meta=meta.as_dict(),
        )

    @event(RolledBack)
    def _rolled_back(
        self,
        previous: int,
        automatic: bool,
        reason: str,
        evidence: dict[str, Any],
        meta: dict[str, Any],
    ) -> None:
        del previous, automatic, reason, evidence, meta
        self.percentage = 0
        self.epoch += 1
        self.pending = None


def _require_evidence(evidence: StepEvidence) -> None:
    rate = evidence.agreement_rate
    if evidence.decisions < MIN_DECISIONS or rate is None or rate < MIN_AGREEMENT:
        raise InvalidStateTransition(
            f"a step up needs at least {MIN_AGREEMENT:.0%} agreement over at least "
            f"{MIN_DECISIONS} decisions at the current step",
            evidence.as_dict(),
        )
