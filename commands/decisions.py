"""Decisions: a tenant asks whether a request is allowed by the active version of a policy.

The active version of each policy is cached in the process (`RegistryCache`), loaded from the
event store on a miss (so it is never older than the last activation recorded) and dropped when
the log delivers an event of that policy (activation, rollback, retirement) to this process. The
Rego is evaluated by a `PolicyEvaluator` (compiled engines per version and per thread); every
decision is handed to the decision log (`commands.decision_log`), off the request path.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Callable, Hashable, Iterable, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any, NamedTuple, Protocol
from uuid import UUID

from commands.application import GovernanceApplication
from commands.authorization import Permission, authorize
from commands.context import Principal
from domain.errors import DomainError, NotFound, ValidationFailed
from domain.events import Actor
from domain.policy.reference_evaluator import Decision
from domain.registry.decision_log import (
    DecisionLogSettings,
    canonical_input,
    digest_of,
    masked,
    new_decision_id,
    settings_aggregate_id,
)
from domain.registry.policy import TenantPolicy, policy_aggregate_id
from domain.tenancy import SYSTEM_TENANT_ID

MAX_BATCH = 1000


class DecisionEvaluationFailed(DomainError):
    """The policy could not be evaluated on the input: no decision (never an allow)."""

    code = "DECISION_EVALUATION_FAILED"


class PolicyEvaluator(Protocol):
    """Port: evaluates a policy version's Rego on one input (infra.rego.engine_cache)."""

    def evaluate_json(
        self, key: tuple[Hashable, int], module: str, package: str, request: str
    ) -> Decision:
        """The decision on the input given as JSON text."""
        ...

    def evict(self, policy_id: Hashable) -> None: ...


@dataclass(frozen=True, slots=True)
class ActivePolicy:
    policy_id: UUID  # the aggregate's id
    policy_key: str  # the id from the source
    version: int
    package: str
    rego: str
    system_wide: bool

    @property
    def cache_key(self) -> tuple[UUID, int]:
        """The key of this version's compiled engines."""
        return (self.policy_id, self.version)


class DecisionRecord(NamedTuple):
    """One decision as the decision log keeps it (a tuple: one is made per decision, on the
    request path)."""

    decision_id: UUID
    tenant_id: UUID
    policy: ActivePolicy
    input_sha256: str
    input: Any  # the (masked) input, or None when the tenant does not keep inputs
    decision: Decision
    latency_ms: float
    actor: Actor
    constitutional_hash: str
    decided_at: datetime


class DecisionOutcome(NamedTuple):
    decision_id: UUID
    policy: ActivePolicy
    decision: Decision
    latency_ms: float = 0.0  # of the evaluation alone


class DecisionSink(Protocol):
    def record(self, entry: DecisionRecord) -> None: ...


_UNSET: Any = object()


class RegistryCache:
    """The active version of each (tenant, policy id) and each tenant's decision-log setting,
    as this process last loaded them. An entry is stored only while the cache is `live` (the
    log is being followed, so a later change will reach `invalidate`) and only if no
    invalidation happened while it was being loaded."""

    def __init__(self, app: GovernanceApplication) -> None:
        self._app = app
        self._policies: dict[tuple[UUID, str], ActivePolicy | None] = {}
        self._settings: dict[UUID, tuple[bool, tuple[str, ...]]] = {}
        self._generation = 0
        self._lock = threading.Lock()
        self.live = False
        self.loads = 0

    def cached(self, tenant_id: UUID, policy_key: str) -> ActivePolicy | None:
        """The cached entry, or `_UNSET` (see `is_cached`)."""
        return self._policies.get((tenant_id, policy_key), _UNSET)

    @staticmethod
    def is_cached(entry: Any) -> bool:
        return entry is not _UNSET

    def active(self, tenant_id: UUID, policy_key: str) -> ActivePolicy | None:
        """The active version of the tenant's own policy `policy_key`, else of the system-wide
        one; None when neither exists, is active and not retired."""
        entry = self.cached(tenant_id, policy_key)
        if entry is not _UNSET:
            return entry
        generation = self._generation
        found = self._load(tenant_id, policy_key)
        self._store(generation, self._policies, (tenant_id, policy_key), found)
        return found

    def log_setting(self, tenant_id: UUID) -> tuple[bool, tuple[str, ...]]:
        entry = self._settings.get(tenant_id)
        if entry is not None:
            return entry
        generation = self._generation
        try:
            settings = self._app.load(
                tenant_id, settings_aggregate_id(tenant_id), DecisionLogSettings
            )
            found = (settings.log_input, settings.mask_fields)
        except NotFound:
            found = (False, ())
        self._store(generation, self._settings, tenant_id, found)
        return found

    def _store(self, generation: int, table: dict[Any, Any], key: Any, value: Any) -> None:
        with self._lock:
            if self.live and generation == self._generation:
                table[key] = value

    def _load(self, tenant_id: UUID, policy_key: str) -> ActivePolicy | None:
        self.loads += 1
        owners = [tenant_id] if tenant_id == SYSTEM_TENANT_ID else [tenant_id, SYSTEM_TENANT_ID]
        for owner in owners:
            try:
                policy = self._app.load(owner, policy_aggregate_id(owner, policy_key), TenantPolicy)
            except NotFound:
                continue
            version = policy.active
            if version is None:
                return None  # the tenant's own policy, draft or retired, shadows a system one
            return ActivePolicy(
                policy.id,
                policy.policy_key,
                version.number,
                version.package,
                version.rego,
                policy.system_wide,
            )
        return None

    # --- invalidation (the log follower calls these) ------------------------------------------

    def invalidate_policy(self, policy_id: UUID) -> None:
        with self._lock:
            self._generation += 1
            stale = [
                key
                for key, value in self._policies.items()
                if value is None or value.policy_id == policy_id
            ]
            for key in stale:
                del self._policies[key]

    def invalidate_many(self, policy_ids: Iterable[UUID]) -> None:
        """Drop what this process cached of policies it has just changed itself."""
        for policy_id in policy_ids:
            self.invalidate_policy(policy_id)

    def invalidate_settings(self, tenant_id: UUID) -> None:
        with self._lock:
            self._generation += 1
            self._settings.pop(tenant_id, None)

    def go_live(self) -> None:
        """The log is followed from now on: entries may be kept."""
        with self._lock:
            self._generation += 1
            self.live = True

    def go_dark(self) -> None:
        """The log is no longer followed: forget everything and keep nothing."""
        with self._lock:
            self._generation += 1
            self.live = False
            self._policies.clear()
            self._settings.clear()


class DecisionRequest(NamedTuple):
    policy_key: str
    input: dict[str, Any]


class DecisionService:
    def __init__(
        self,
        cache: RegistryCache,
        evaluator: PolicyEvaluator,
        sink: DecisionSink,
        constitutional_hash: str,
        clock: Callable[[], datetime] = lambda: datetime.now(UTC),
    ) -> None:
        self.cache = cache
        self.evaluator = evaluator
        self.sink = sink
        self._hash = constitutional_hash
        self._clock = clock
        self.evaluation_errors = 0

    def all_cached(self, tenant_id: UUID, requests: Sequence[DecisionRequest]) -> bool:
        """True when every policy asked for is resolved without a database round trip."""
        cached, is_cached = self.cache.cached, self.cache.is_cached
        return all(is_cached(cached(tenant_id, r.policy_key)) for r in requests)

    def decide(
        self, principal: Principal, tenant_id: UUID, requests: Sequence[DecisionRequest]
    ) -> list[DecisionOutcome]:
        """Every request's decision, in order. A missing or retired policy is NotFound (and
        nothing is decided); an evaluation failure is DecisionEvaluationFailed."""
        authorize(principal, Permission.DECISION_REQUEST, tenant_id)
        if len(requests) > MAX_BATCH:
            raise ValidationFailed.field("requests", f"at most {MAX_BATCH} requests per batch")
        resolved: dict[str, ActivePolicy] = {}
        for index, request in enumerate(requests):
            if request.policy_key in resolved:
                continue
            active = self.cache.active(tenant_id, request.policy_key)
            if active is None:
                raise NotFound(
                    "policy not found or not active",
                    {"policy_id": request.policy_key, "index": index},
                )
            resolved[request.policy_key] = active
        log_input, fields = self.cache.log_setting(tenant_id)
        actor = principal.actor()
        outcomes = []
        for request in requests:
            active = resolved[request.policy_key]
            document = request.input
            if "constitutional_hash" not in document:
                document = {**document, "constitutional_hash": self._hash}
            # encoded once: the engine's input and the decision log's digest
            canonical = canonical_input(document)
            started = time.perf_counter()
            try:
                decision = self.evaluator.evaluate_json(
                    active.cache_key, active.rego, active.package, canonical.decode()
                )
            except DomainError as failure:
                self.evaluation_errors += 1
                raise DecisionEvaluationFailed(
                    f"policy {active.policy_key} version {active.version} could not be "
                    "evaluated on the input; no decision was made",
                    {
                        "policy_id": active.policy_key,
                        "policy_version": active.version,
                        "reason": failure.message[:500],
                    },
                ) from None
            latency_ms = (time.perf_counter() - started) * 1000
            decision_id = new_decision_id()
            self.sink.record(
                DecisionRecord(
                    decision_id=decision_id,
                    tenant_id=tenant_id,
                    policy=active,
                    input_sha256=digest_of(canonical),
                    input=masked(document, fields) if log_input else None,
                    decision=decision,
                    latency_ms=latency_ms,
                    actor=actor,
                    constitutional_hash=self._hash,
                    decided_at=self._clock(),
                )
            )
            outcomes.append(DecisionOutcome(decision_id, active, decision, latency_ms))
        return outcomes
