"""Reviews of governance gaps: a tenant admin accepts a gap (a risk taken knowingly, with a
reason) or reopens an accepted one. Each review is an audit entry whose details say what
changed, so it is audited like any change and the reviews' read model is rebuilt from the log.

The caller passes the gap as the read model shows it (like a retention change, which starts
from the current settings): the transition is checked against that status.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any
from uuid import UUID, uuid4

from commands.application import GovernanceApplication
from commands.authorization import Permission
from commands.context import CommandContext
from commands.preamble import CommandPreamble
from domain.audit import AuditEntry
from domain.errors import NotFound
from domain.policy.gaps.tracking import REVIEW_ACTIONS, GapReview, GapStatus, reviewed_status

REVIEW_ACTION = "review_gap"  # the action a refused review is audited under


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
        self._preamble = CommandPreamble(app, constitutional_hash)

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
