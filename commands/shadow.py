"""Shadow mode: each legacy decision is evaluated by the tenant's Rego and compared; the counts
are kept per tenant (durably, through the `ShadowMetrics` port); traffic is routed to Rego by
steps (the `ShadowRollout` aggregate); and the rollback rule takes the rollout back to 0 % on
its own when errors and missed violations exceed its threshold.

Live decisions are decided through `DecisionService.decide` (so a decision routed to Rego is
logged like any other); imported ones, already in the decision log, are evaluated on the same
cached engines without being logged again (`evaluate_imported`). Each violation the legacy
engine missed (legacy allow, Rego deny) is an alert: an audit entry of category `governance`,
one per legacy decision (its id is derived from the routing key, so a replayed batch does not
alert twice).
"""

from __future__ import annotations

import threading
import time
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any, Protocol
from uuid import NAMESPACE_URL, UUID, uuid5

from commands.application import GovernanceApplication
from commands.authorization import Permission, authorize
from commands.context import CommandContext, Principal
from commands.decisions import (
    DecisionEvaluationFailed,
    DecisionOutcome,
    DecisionRequest,
    DecisionService,
)
from commands.preamble import CommandPreamble
from domain.audit import AuditEntry
from domain.errors import ConcurrentModification, DomainError, NotFound, ValidationFailed
from domain.events import SYSTEM_ACTOR, Actor, EventMeta
from domain.registry.decision_log import canonical_input
from domain.shadow.comparison import Agreement, LegacyDecision, compare, routed_to_rego
from domain.shadow.metrics import RecentWindow, RollbackRule, Tally
from domain.shadow.rollout import ShadowRollout, StepEvidence, rollback_rule, rollout_id

MAX_BATCH = 1000
MAX_POLICY_KEY = 255
MISSED_VIOLATION_ACTION = "shadow_missed_violation"
STATE_TTL_SECONDS = 1.0  # how long a process trusts its copy of a rollout written elsewhere
_ALERT_NAMESPACE = uuid5(NAMESPACE_URL, "urn:acgs:shadow-alert")


class ShadowMetrics(Protocol):
    """Port: the durable counts (infra.postgres.shadow_metrics)."""

    def add(
        self,
        tenant_id: UUID,
        epoch: int,
        tallies: Mapping[datetime, Tally],
        progress: Any = None,
    ) -> None: ...

    def tally(self, tenant_id: UUID, epoch: int | None = None) -> Tally: ...

    def series(
        self, tenant_id: UUID, points: int = 500, resolution: str = "minute"
    ) -> list[tuple[datetime, float, int]]: ...

    def progress(self, tenant_id: UUID, job_id: UUID) -> Any: ...


@dataclass(frozen=True)
class RolloutState:
    policy_key: str
    percentage: int
    epoch: int
    rule: RollbackRule
    pending_target: int | None
    requested_by: str | None
    next_step: int | None = None

    @classmethod
    def of(cls, rollout: ShadowRollout) -> RolloutState:
        pending = rollout.pending
        return cls(
            rollout.policy_key,
            rollout.percentage,
            rollout.epoch,
            rollout.rule,
            pending[0] if pending else None,
            pending[1] if pending else None,
            rollout.next_step,
        )


@dataclass(frozen=True)
class Comparison:
    kind: Agreement
    routed_to_rego: bool
    legacy_allow: bool
    rego_allow: bool | None
    rego_latency_ms: float | None
    routing_key: str
    decision_id: UUID | None  # of the Rego decision in the decision log (live decisions)
    deny: tuple[str, ...] = ()
    error: str | None = None

    @classmethod
    def made(
        cls,
        legacy: LegacyDecision,
        key: str,
        rego_allow: bool,
        latency_ms: float,
        *,
        routed: bool,
        deny: frozenset[str],
        decision_id: UUID | None = None,
    ) -> Comparison:
        return cls(
            compare(legacy.allow, rego_allow),
            routed,
            legacy.allow,
            rego_allow,
            latency_ms,
            key,
            decision_id,
            tuple(sorted(deny)),
        )

    @classmethod
    def failed(cls, legacy: LegacyDecision, key: str, *, routed: bool, error: str) -> Comparison:
        return cls(Agreement.REGO_ERROR, routed, legacy.allow, None, None, key, None, error=error)


@dataclass(frozen=True)
class Compared:
    comparisons: list[Comparison]
    percentage: int
    rolled_back: dict[str, Any] | None  # the evidence, when this call tripped the rollback rule


def minute_of(at: datetime) -> datetime:
    return at.replace(second=0, microsecond=0)


class ShadowService:
    def __init__(
        self,
        app: GovernanceApplication,
        decisions: DecisionService,
        metrics: ShadowMetrics,
        constitutional_hash: str,
        clock: Callable[[], float] = time.time,
    ) -> None:
        self._app = app
        self._decisions = decisions
        self.metrics = metrics
        self._hash = constitutional_hash
        self._preamble = CommandPreamble(app, constitutional_hash)
        self._clock = clock
        self._states: dict[UUID, tuple[float, RolloutState | None]] = {}
        self._windows: dict[tuple[UUID, int], RecentWindow] = {}
        self._lock = threading.Lock()
        self.rollbacks = 0
        self.alerts = 0

    # --- configuration and steps (commands) ---------------------------------------------------

    def configure(
        self, ctx: CommandContext, tenant_id: UUID, policy_key: object, rollback: object
    ) -> RolloutState:
        """Choose the policy shadow mode evaluates and the rollback rule's settings."""
        meta = self._preamble.begin(
            ctx, Permission.SHADOW_ROUTE, tenant_id, "configure_shadow_mode", tenant_id
        )
        key, rule = _configuration(policy_key, rollback)
        rollout = self._rollout(tenant_id)
        if rollout is None:
            rollout = ShadowRollout.configure_new(
                tenant_id=tenant_id, policy_key=key, rule=rule, meta=meta
            )
        else:
            rollout.reconfigure(policy_key=key, rule=rule, meta=meta)
        return self._save(tenant_id, rollout)

    def request_step(self, ctx: CommandContext, tenant_id: UUID, target: int) -> RolloutState:
        """Step up to `target` (past 50 %: recorded as requested, awaiting approval)."""
        meta = self._preamble.begin(
            ctx, Permission.SHADOW_ROUTE, tenant_id, "request_shadow_step", tenant_id
        )
        rollout = self._required(tenant_id)
        rollout.request_step(target, self._evidence(tenant_id, rollout.epoch), meta)
        return self._save(tenant_id, rollout)

    def approve(self, ctx: CommandContext, tenant_id: UUID) -> RolloutState:
        meta = self._preamble.begin(
            ctx, Permission.SHADOW_APPROVE, tenant_id, "approve_shadow_step", tenant_id
        )
        rollout = self._required(tenant_id)
        rollout.approve(self._evidence(tenant_id, rollout.epoch), meta)
        return self._save(tenant_id, rollout)

    def roll_back(self, ctx: CommandContext, tenant_id: UUID, reason: str) -> RolloutState:
        meta = self._preamble.begin(
            ctx, Permission.SHADOW_ROUTE, tenant_id, "roll_back_shadow_mode", tenant_id
        )
        rollout = self._required(tenant_id)
        tally = self.metrics.tally(tenant_id, rollout.epoch)
        rollout.roll_back(automatic=False, reason=reason, evidence=tally.summary(), meta=meta)
        return self._save(tenant_id, rollout)

    # --- reads --------------------------------------------------------------------------------

    def status(self, principal: Principal, tenant_id: UUID) -> dict[str, Any]:
        """The configuration, the step, and the metrics of the step and of all time."""
        authorize(principal, Permission.SHADOW_READ, tenant_id)
        state = self.state(tenant_id, fresh=True)
        if state is None:
            raise NotFound("shadow mode is not configured", {"tenant_id": str(tenant_id)})
        return {
            "policy_id": state.policy_key,
            "percentage": state.percentage,
            "epoch": state.epoch,
            "next_step": state.next_step,
            "pending_approval": (
                None
                if state.pending_target is None
                else {"target": state.pending_target, "requested_by": state.requested_by}
            ),
            "rollback": state.rule.as_dict(),
            "current_step": self.metrics.tally(tenant_id, state.epoch).summary(),
            "all_time": {
                **self.metrics.tally(tenant_id).summary(),
                "agreement_series": [
                    [minute.isoformat(), round(rate, 6)]
                    for minute, rate, _ in self.metrics.series(tenant_id)
                ],
            },
        }

    def state(self, tenant_id: UUID, *, fresh: bool = False) -> RolloutState | None:
        """The tenant's rollout as this process knows it (reloaded after `STATE_TTL_SECONDS`)."""
        now = self._clock()
        cached = self._states.get(tenant_id)
        if not fresh and cached is not None and now - cached[0] < STATE_TTL_SECONDS:
            return cached[1]
        rollout = self._rollout(tenant_id)
        state = None if rollout is None else RolloutState.of(rollout)
        self._states[tenant_id] = (now, state)
        return state

    # --- comparison ---------------------------------------------------------------------------

    def compare_live(
        self, principal: Principal, tenant_id: UUID, decisions: Sequence[LegacyDecision]
    ) -> Compared:
        """Decide each request with Rego, compare, count, alert, and apply the rollback rule."""
        authorize(principal, Permission.SHADOW_SUBMIT, tenant_id)
        if not 1 <= len(decisions) <= MAX_BATCH:
            raise ValidationFailed.field("decisions", f"give 1 to {MAX_BATCH} decisions")
        state = self.state(tenant_id)
        if state is None:
            raise NotFound("shadow mode is not configured", {"tenant_id": str(tenant_id)})
        comparisons = self._decide_all(principal, tenant_id, state, decisions)
        now = self._clock()
        tally = Tally()
        for legacy, comparison in zip(decisions, comparisons, strict=True):
            tally.add(comparison.kind, legacy.latency_ms, comparison.rego_latency_ms)
        minute = minute_of(datetime.fromtimestamp(now, UTC))
        self.metrics.add(tenant_id, state.epoch, {minute: tally})
        self.alert(tenant_id, state, decisions, comparisons, principal.actor())
        evidence = self._watch(tenant_id, state, comparisons, now)
        percentage = 0 if evidence is not None else state.percentage
        return Compared(comparisons, percentage, evidence)

    def _decide_all(
        self,
        principal: Principal,
        tenant_id: UUID,
        state: RolloutState,
        decisions: Sequence[LegacyDecision],
    ) -> list[Comparison]:
        """The batch decided at once; when a request fails, each one on its own (so that only
        the failing ones are errors)."""
        requests = [DecisionRequest(state.policy_key, d.document()) for d in decisions]
        try:
            outcomes = self._decisions.decide(principal, tenant_id, requests)
        except (DecisionEvaluationFailed, NotFound):
            return [
                self._decide(principal, tenant_id, state, legacy, request)
                for legacy, request in zip(decisions, requests, strict=True)
            ]
        return [
            self._compared(legacy, outcome, state)
            for legacy, outcome in zip(decisions, outcomes, strict=True)
        ]

    def _decide(
        self,
        principal: Principal,
        tenant_id: UUID,
        state: RolloutState,
        legacy: LegacyDecision,
        request: DecisionRequest,
    ) -> Comparison:
        try:
            [outcome] = self._decisions.decide(principal, tenant_id, [request])
        except (DecisionEvaluationFailed, NotFound) as failure:
            key = legacy.routing_key()
            reason = failure.details.get("reason") or failure.message
            return Comparison.failed(
                legacy,
                key,
                routed=routed_to_rego(key, state.percentage),
                error=str(reason)[:500],
            )
        return self._compared(legacy, outcome, state)

    @staticmethod
    def _compared(
        legacy: LegacyDecision, outcome: DecisionOutcome, state: RolloutState
    ) -> Comparison:
        key = legacy.routing_key()
        return Comparison.made(
            legacy,
            key,
            outcome.decision.allow,
            outcome.latency_ms,
            routed=routed_to_rego(key, state.percentage),
            deny=outcome.decision.deny,
            decision_id=outcome.decision_id,
        )

    def evaluate_imported(
        self, tenant_id: UUID, policy_key: str, legacy: LegacyDecision
    ) -> Comparison:
        """Compare an imported decision (already logged) on the same cached engines, unlogged."""
        key = legacy.routing_key()
        active = self._decisions.cache.active(tenant_id, policy_key)
        if active is None:
            return Comparison.failed(
                legacy, key, routed=False, error=f"policy {policy_key} not found or not active"
            )
        document = {**legacy.document(), "constitutional_hash": self._hash}
        started = time.perf_counter()
        try:
            decision = self._decisions.evaluator.evaluate_json(
                active.cache_key,
                active.rego,
                active.package,
                canonical_input(document).decode(),
                generated=active.generated,
            )
        except DomainError as failure:
            return Comparison.failed(legacy, key, routed=False, error=failure.message[:500])
        latency = (time.perf_counter() - started) * 1000
        return Comparison.made(
            legacy, key, decision.allow, latency, routed=False, deny=decision.deny
        )

    # --- alerts and the rollback rule ---------------------------------------------------------

    def alert(
        self,
        tenant_id: UUID,
        state: RolloutState,
        decisions: Sequence[LegacyDecision],
        comparisons: Sequence[Comparison],
        actor: Actor,
    ) -> int:
        """Record an audit alert for each missed violation (once per legacy decision)."""
        meta = EventMeta(tenant_id, actor, self._hash)

        def entry(legacy: LegacyDecision, comparison: Comparison) -> AuditEntry:
            return AuditEntry.record(
                entry_id=uuid5(_ALERT_NAMESPACE, f"{tenant_id}:{comparison.routing_key}"),
                category="governance",
                action=MISSED_VIOLATION_ACTION,
                result="denied",
                target_resource=f"policy/{state.policy_key}",
                details={
                    "kind": comparison.kind.value,
                    "legacy_decision_id": legacy.decision_id,
                    "routing_key": comparison.routing_key,
                    "principal": _entity_id(legacy.principal),
                    "action": legacy.action,
                    "resource": _entity_id(legacy.resource),
                    "legacy_allow": True,
                    "rego_allow": False,
                    "rego_deny": list(comparison.deny),
                    "policy_id": state.policy_key,
                    "rollout_percentage": state.percentage,
                },
                meta=meta,
            )

        missed = [
            (legacy, comparison)
            for legacy, comparison in zip(decisions, comparisons, strict=True)
            if comparison.kind is Agreement.MISSED_VIOLATION
        ]
        if not missed:
            return 0
        try:
            self._app.save_for(tenant_id, *(entry(*pair) for pair in missed))
            saved = len(missed)
        except ConcurrentModification:  # some were alerted before (a replayed batch)
            # one by one, each entry made anew: the failed save took the events of the first
            saved = 0
            for pair in missed:
                try:
                    self._app.save_for(tenant_id, entry(*pair))
                    saved += 1
                except ConcurrentModification:
                    continue
        self.alerts += saved
        return saved

    def _watch(
        self, tenant_id: UUID, state: RolloutState, comparisons: Sequence[Comparison], now: float
    ) -> dict[str, Any] | None:
        """Feed the window of this tenant's step; roll back when the rule fires."""
        with self._lock:
            window = self._windows.get((tenant_id, state.epoch))
            if window is None or window.rule != state.rule:
                self._windows = {k: w for k, w in self._windows.items() if k[0] != tenant_id}
                window = self._windows[(tenant_id, state.epoch)] = RecentWindow(state.rule)
            for comparison in comparisons:
                window.add(now, comparison.kind)
            breach = window.breach(now) if state.percentage > 0 else None
        if breach is None:
            return None
        evidence = {
            **breach.as_dict(),
            "percentage_before": state.percentage,
            "policy_id": state.policy_key,
            "epoch": state.epoch,
        }
        rollout = self._rollout(tenant_id)
        if rollout is None or rollout.epoch != state.epoch or rollout.percentage == 0:
            self._states.pop(tenant_id, None)
            return None  # another process already changed the step
        rollout.roll_back(
            automatic=True,
            reason="error or critical-disagreement rate over the threshold",
            evidence=evidence,
            meta=EventMeta(tenant_id, SYSTEM_ACTOR, self._hash),
        )
        try:
            self._save(tenant_id, rollout)
        except ConcurrentModification:
            self._states.pop(tenant_id, None)
            return None
        self.rollbacks += 1
        return evidence

    # --- loading and saving -------------------------------------------------------------------

    def _rollout(self, tenant_id: UUID) -> ShadowRollout | None:
        try:
            return self._app.load(tenant_id, rollout_id(tenant_id), ShadowRollout)
        except NotFound:
            return None

    def _required(self, tenant_id: UUID) -> ShadowRollout:
        rollout = self._rollout(tenant_id)
        if rollout is None:
            raise NotFound("shadow mode is not configured", {"tenant_id": str(tenant_id)})
        return rollout

    def _save(self, tenant_id: UUID, rollout: ShadowRollout) -> RolloutState:
        self._app.save_for(tenant_id, rollout)
        state = RolloutState.of(rollout)
        self._states[tenant_id] = (self._clock(), state)
        return state

    def _evidence(self, tenant_id: UUID, epoch: int) -> StepEvidence:
        tally = self.metrics.tally(tenant_id, epoch)
        return StepEvidence(tally.total, tally.agreement_rate)


def _configuration(policy_key: object, rollback: object) -> tuple[str, RollbackRule]:
    problems: list[dict[str, Any]] = []
    if not isinstance(policy_key, str) or not 1 <= len(policy_key) <= MAX_POLICY_KEY:
        problems.append(
            {"field": "policy_id", "message": f"must be 1 to {MAX_POLICY_KEY} characters"}
        )
    rule = RollbackRule()
    if rollback is not None and not isinstance(rollback, dict):
        problems.append({"field": "rollback", "message": "must be an object"})
    elif rollback:
        try:
            rule = rollback_rule(rollback)
        except ValidationFailed as invalid:
            problems += invalid.details["fields"]
    if problems:
        raise ValidationFailed.listing(problems)
    assert isinstance(policy_key, str)
    return policy_key, rule


def _entity_id(value: str | dict[str, Any]) -> Any:
    return value.get("id") if isinstance(value, dict) else value
