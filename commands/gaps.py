"""Governance gaps in the audit log: the critical gaps a gap-analysis run opened (alerts), and
reviews: a tenant admin accepts a gap (a risk taken knowingly, with a reason) or reopens an
accepted one. Each is an audit entry whose details say what happened, so it is audited like any
change (and reaches the sinks) and the reviews' read model is rebuilt from the log.

The caller passes the gap as the read model shows it (like a retention change, which starts
from the current settings): the transition is checked against that status.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from contextlib import suppress
from dataclasses import dataclass
from typing import Any
from uuid import NAMESPACE_URL, UUID, uuid4, uuid5

from commands.application import GovernanceApplication
from commands.authorization import Permission
from commands.context import CommandContext
from commands.preamble import CommandPreamble
from domain.audit import AuditEntry
from domain.errors import ConcurrentModification, NotFound
from domain.events import SYSTEM_ACTOR, EventMeta
from domain.policy.gaps.tracking import (
    REVIEW_ACTIONS,
    GapReview,
    GapStatus,
    TrackedGap,
    catalogue_rule,
    reviewed_status,
)

REVIEW_ACTION = "review_gap"  # the action a refused review is audited under
GAP_OPENED_ACTION = "gap_found"  # a run opened a critical gap: event type governance.gap_found
_ALERTS = uuid5(NAMESPACE_URL, "urn:acgs:gap-alert")
ALERTS_PER_SAVE = 500


@dataclass(frozen=True)
class Reviewed:
    gap_id: UUID
    previous: GapStatus
    status: GapStatus
    reason: str
    reviewed_by: str


class GapCommands:
    def __init__(self, app: GovernanceApplication, constitutional_hash: str) -> None:
        self._app = app
        self._hash = constitutional_hash
        self._preamble = CommandPreamble(app, constitutional_hash)

    def gaps_opened(
        self, tenant_id: UUID, run_id: UUID, requested_by: str, gaps: Sequence[TrackedGap]
    ) -> None:
        """Record each critical gap a gap-analysis run opened (the sinks alert on it: its
        details carry the severity), in transactions of `ALERTS_PER_SAVE`. An entry's id is
        derived from the run and the gap, and the gaps come in the same order every time, so a
        run that reports again after a crash records nothing twice."""
        meta = EventMeta(tenant_id, SYSTEM_ACTOR, self._hash)
        for start in range(0, len(gaps), ALERTS_PER_SAVE):
            entries = [
                _opened(tenant_id, run_id, requested_by, gap, meta)
                for gap in gaps[start : start + ALERTS_PER_SAVE]
            ]
            with suppress(ConcurrentModification):  # saved by an earlier attempt of the run
                self._app.save_for(tenant_id, *entries)

    def review(
        self,
        ctx: CommandContext,
        tenant_id: UUID,
        gap_id: UUID,
        current: Mapping[str, Any] | None,
        *,
        action: object,
        reason: object,
    ) -> Reviewed:
        meta = self._preamble.begin(ctx, Permission.GAP_REVIEW, tenant_id, REVIEW_ACTION, tenant_id)
        if current is None:
            raise NotFound("gap not found", {"gap_id": str(gap_id)})
        previous = GapStatus(current["status"])
        status = reviewed_status(previous, action, reason)
        text = str(reason)
        entry = AuditEntry.record(
            entry_id=uuid4(),
            category="governance",
            action=REVIEW_ACTIONS[GapReview(str(action))],
            result="success",
            target_resource=f"tenant/{tenant_id}/gaps/{gap_id}",
            details={
                "gap_id": str(gap_id),
                "rule_id": current["rule_id"],
                "policy_key": current["policy_key"],
                "location": current["location"],
                "previous": previous.value,
                "status": status.value,
                "reason": text,
            },
            meta=meta,
        )
        self._app.save_for(tenant_id, entry)
        return Reviewed(gap_id, previous, status, text, ctx.principal.sub)


def _opened(
    tenant_id: UUID, run_id: UUID, requested_by: str, gap: TrackedGap, meta: EventMeta
) -> AuditEntry:
    rule = catalogue_rule(gap.rule_id)
    return AuditEntry.record(
        entry_id=uuid5(_ALERTS, f"{run_id}:{gap.gap_id}"),
        category="governance",
        action=GAP_OPENED_ACTION,
        result="success",
        target_resource=f"tenant/{tenant_id}/gaps/{gap.gap_id}",
        details={
            **gap.as_json(),
            "title": rule.title,
            "remediation": rule.remediation,
            "run_id": str(run_id),
            "requested_by": requested_by,
        },
        meta=meta,
    )
