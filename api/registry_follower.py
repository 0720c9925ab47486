"""The policy cache's follower: keeps this API process's cached active versions, decision-log
settings and compiled engines in step with the event log, whichever process recorded a change.

It follows the log with the one `LogFollower` (LISTEN/NOTIFY wake-up, polling as a fallback),
from the head of the log when it starts, holding its position in memory (no position row: what
it invalidates lives and dies with the process). Only the stored topic is read, never the
payload: any event of a policy drops that policy's cached entries and engines; any event of a
tenant's decision-log setting drops that tenant's cached setting.
"""

from __future__ import annotations

import threading
from typing import Any

from eventsourcing.utils import get_topic

from commands.decisions import PolicyEvaluator, RegistryCache
from domain.registry.decision_log import DecisionLogSettings
from domain.registry.policy import TenantPolicy
from infra.postgres.follower import LogFollower

POLICY_CACHE = "policy_cache"
_POLICY_TOPICS = get_topic(TenantPolicy).split(":")[0] + ":" + TenantPolicy.__qualname__ + "."
_SETTINGS_TOPICS = (
    get_topic(DecisionLogSettings).split(":")[0] + ":" + DecisionLogSettings.__qualname__ + "."
)


class RegistryCacheFollower:
    name = POLICY_CACHE

    def __init__(
        self,
        conninfo: str,
        cache: RegistryCache,
        evaluator: PolicyEvaluator,
        *,
        poll_seconds: float = 1.0,
    ) -> None:
        self.follower = LogFollower(conninfo, POLICY_CACHE, track_position=False)
        self.cache = cache
        self.evaluator = evaluator
        self.poll_seconds = poll_seconds
        self.position: int | None = None
        self.invalidations = 0

    def run(self, stop: threading.Event) -> None:
        try:
            if self.position is None:
                self.position = self.follower.head()
            self.cache.go_live()
            self.follower.follow(stop, self.catch_up, poll_seconds=self.poll_seconds)
        finally:
            self.cache.go_dark()
            self.follower.close()

    def catch_up(self) -> int:
        """Apply the events recorded since the position; returns how many were read."""
        if self.position is None:
            return 0
        rows: list[Any] = self.follower.read(self.position)
        for _, originator_id, _, topic, _, tenant_id, _ in rows:
            if topic.startswith(_POLICY_TOPICS):
                self.cache.invalidate_policy(originator_id)
                self.evaluator.evict(originator_id)
                self.invalidations += 1
            elif topic.startswith(_SETTINGS_TOPICS) and tenant_id is not None:
                self.cache.invalidate_settings(tenant_id)
                self.invalidations += 1
        if rows:
            self.position = rows[-1][0]
        return len(rows)

    def close(self) -> None:
        self.follower.close()
