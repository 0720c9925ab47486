"""Request and response bodies of shadow mode (`/v1/tenants/{tid}/shadow...`), msgspec Structs."""

from __future__ import annotations

from typing import Annotated, Any, Literal

import msgspec
from msgspec import UNSET, UnsetType

from api.http.bodies import struct_problems
from api.http.dto import HashValue, documented
from api.http.policy_dto import NO_NUL, PolicyKey
from commands.shadow import MAX_BATCH, Compared, Comparison
from domain.errors import ValidationFailed
from domain.shadow.comparison import LegacyDecision

Text = Annotated[str, msgspec.Meta(min_length=1, max_length=1024), documented(pattern=NO_NUL)]
Reason = Annotated[str, msgspec.Meta(max_length=500), documented(pattern=NO_NUL)]
DecisionName = Literal["allow", "deny"]
MAX_PROBLEMS = 100  # reported of one body at most
ShadowAction = Literal["configure", "request_step", "approve", "roll_back"]


class LegacyDecisionItem(msgspec.Struct, forbid_unknown_fields=True, kw_only=True):
    """One decision the legacy engine made: the request, its outcome and its latency."""

    principal: Text | dict[str, Any]
    action: Text
    resource: Text | dict[str, Any]
    context: dict[str, Any] = msgspec.field(default_factory=dict)
    decision: DecisionName
    latency_ms: Annotated[float, msgspec.Meta(ge=0)]
    decision_id: Text | UnsetType = UNSET

    def legacy(self) -> LegacyDecision:
        return LegacyDecision(
            principal=self.principal,
            action=self.action,
            resource=self.resource,
            context=self.context,
            allow=self.decision == "allow",
            latency_ms=float(self.latency_ms),
            decision_id=None if self.decision_id is UNSET else self.decision_id,
        )


class ShadowDecisionsBody(msgspec.Struct, forbid_unknown_fields=True, kw_only=True):
    """Legacy decisions to compare (1 to 1,000), each a `LegacyDecisionItem`: checked here, item
    by item, so that every bad field of every item is reported at once."""

    decisions: Annotated[list[dict[str, Any]], msgspec.Meta(min_length=1, max_length=MAX_BATCH)]
    constitutional_hash: HashValue | UnsetType = UNSET

    def items(self) -> list[LegacyDecisionItem]:
        problems: list[dict[str, str]] = []
        items = []
        for index, raw in enumerate(self.decisions):
            found = struct_problems(raw, LegacyDecisionItem)
            if found:
                problems += [{**p, "field": f"decisions[{index}].{p['field']}"} for p in found][
                    : MAX_PROBLEMS - len(problems)
                ]
                continue
            items.append(msgspec.convert(raw, LegacyDecisionItem, strict=True))
            if len(problems) >= MAX_PROBLEMS:
                break
        if problems:
            raise ValidationFailed.listing(problems)
        return items


class ComparisonView(msgspec.Struct, kw_only=True):
    legacy_decision_id: str | None
    agreement: str  # agree, legacy_allow_rego_deny, legacy_deny_rego_allow, rego_error
    routed_to_rego: bool
    served_decision: DecisionName  # Rego's when routed and decided, else the legacy one
    legacy_decision: DecisionName
    rego_decision: DecisionName | None
    rego_decision_id: str | None
    rego_latency_ms: float | None
    deny: list[str]
    error: str | None

    @classmethod
    def of(cls, item: LegacyDecisionItem, comparison: Comparison) -> ComparisonView:
        rego = comparison.rego_allow
        served = rego if comparison.routed_to_rego and rego is not None else comparison.legacy_allow
        return cls(
            legacy_decision_id=None if item.decision_id is UNSET else item.decision_id,
            agreement=comparison.kind.value,
            routed_to_rego=comparison.routed_to_rego,
            served_decision=_name(served),
            legacy_decision=_name(comparison.legacy_allow),
            rego_decision=None if rego is None else _name(rego),
            rego_decision_id=None
            if comparison.decision_id is None
            else str(comparison.decision_id),
            rego_latency_ms=(
                None if comparison.rego_latency_ms is None else round(comparison.rego_latency_ms, 4)
            ),
            deny=list(comparison.deny),
            error=comparison.error,
        )


class ShadowDecisionsResult(msgspec.Struct, kw_only=True):
    results: list[ComparisonView]
    percentage: int  # the step after this call (0 when it tripped the rollback rule)
    rolled_back: dict[str, Any] | None  # the evidence, when this call rolled the rollout back
    constitutional_hash: str

    @classmethod
    def of(
        cls, items: list[LegacyDecisionItem], compared: Compared, constitutional_hash: str
    ) -> ShadowDecisionsResult:
        return cls(
            results=[
                ComparisonView.of(item, c)
                for item, c in zip(items, compared.comparisons, strict=True)
            ],
            percentage=compared.percentage,
            rolled_back=compared.rolled_back,
            constitutional_hash=constitutional_hash,
        )


class ShadowCommandBody(msgspec.Struct, forbid_unknown_fields=True, kw_only=True):
    """`configure` (policy_id, rollback), `request_step` (target), `approve`, `roll_back`
    (reason)."""

    action: ShadowAction
    policy_id: PolicyKey | UnsetType = UNSET
    rollback: dict[str, Any] | UnsetType = UNSET
    target: int | UnsetType = UNSET
    reason: Reason | UnsetType = UNSET
    constitutional_hash: HashValue | UnsetType = UNSET

    def misplaced(self) -> list[dict[str, str]]:
        """Fields given that the action does not take, and those it needs but lacks."""
        takes = {
            "configure": ({"policy_id", "rollback"}, {"policy_id"}),
            "request_step": ({"target"}, {"target"}),
            "approve": (set(), set()),
            "roll_back": ({"reason"}, set()),
        }[self.action]
        allowed, required = takes
        problems = []
        for name in ("policy_id", "rollback", "target", "reason"):
            given = getattr(self, name) is not UNSET
            if given and name not in allowed:
                problems.append({"field": name, "message": f"not taken by {self.action}"})
            if not given and name in required:
                problems.append({"field": name, "message": f"is required by {self.action}"})
        return problems


class ShadowStatus(msgspec.Struct, kw_only=True):
    """The configuration, the step, and the metrics (of the current step and of all time)."""

    policy_id: str
    percentage: int
    epoch: int
    next_step: int | None
    pending_approval: dict[str, Any] | None
    rollback: dict[str, Any]
    current_step: dict[str, Any]
    all_time: dict[str, Any]  # with agreement_series: [[iso minute, rate], ...]
    constitutional_hash: str


def _name(allow: bool) -> DecisionName:
    return "allow" if allow else "deny"
