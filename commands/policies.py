"""Policy registry commands: submit a source (a new version, converted and gated on the way in),
activate or roll back a version, retire a policy, and set the tenant's decision-log setting.

A tenant's policies belong to it; the system tenant's policies are the system-wide ones (read by
every tenant, written only by platform principals, since only they act for the system tenant).
Every command runs the shared preamble first (permission, constitutional hash, event metadata).
"""

from __future__ import annotations

import hashlib
from dataclasses import dataclass
from typing import Any
from uuid import UUID

from commands.application import GovernanceApplication
from commands.authorization import Permission, authorize
from commands.context import CommandContext, Principal
from commands.policy_intake import PolicyIntake, SubmitPolicy
from commands.preamble import CommandPreamble
from domain.errors import Forbidden, NotFound, ValidationFailed
from domain.events import EventMeta
from domain.policy.gate import RegoEngine
from domain.policy.limits import DEFAULT_LIMITS, PolicyLimits
from domain.registry.decision_log import (
    DecisionLogSettings,
    mask_fields,
    settings_aggregate_id,
)
from domain.registry.policy import PolicyStatus, PolicyVersion, TenantPolicy, policy_aggregate_id
from domain.tenancy import SYSTEM_TENANT_ID

MAX_POLICY_KEY = 255


@dataclass(frozen=True)
class Submitted:
    """The versions a submission added (one per policy of the source) and its report."""

    versions: list[tuple[TenantPolicy, PolicyVersion]]
    report: dict[str, Any]


@dataclass(frozen=True)
class Activation:
    policy: TenantPolicy
    previous: int | None
    changed: bool
    rolled_back: bool


def owner_of(tenant_id: UUID) -> tuple[UUID, bool]:
    """Whose policy a policy submitted to `tenant_id` is, and whether it is system-wide."""
    return tenant_id, tenant_id == SYSTEM_TENANT_ID


class PolicyCommands:
    def __init__(
        self,
        app: GovernanceApplication,
        constitutional_hash: str,
        engine: RegoEngine,
        limits: PolicyLimits = DEFAULT_LIMITS,
    ) -> None:
        self._app = app
        self._hash = constitutional_hash
        self._preamble = CommandPreamble(app, constitutional_hash)
        self._intake = PolicyIntake(engine, constitutional_hash, limits)

    def close(self) -> None:
        self._intake.close()

    # --- submit -------------------------------------------------------------------------------

    def submit(self, ctx: CommandContext, tenant_id: UUID, command: SubmitPolicy) -> Submitted:
        """Convert and gate the source; every policy in it gets a new version (a new policy is
        registered first). A source any policy of which fails adds nothing."""
        meta = self._preamble.begin(
            ctx, Permission.POLICY_AUTHOR, tenant_id, "submit_policy", tenant_id
        )
        intake = self._intake.convert(command)
        results, names, report = intake.results, intake.names, intake.report
        owner, system_wide = owner_of(tenant_id)
        added: list[tuple[TenantPolicy, PolicyVersion]] = []
        for result in results:
            policy = self._load_or_register(
                owner, result.policy_id, names.get(result.policy_id), system_wide, meta
            )
            version = policy.add_version(
                source=command.source,
                source_format=result.source_format,
                rego=result.rego or "",
                package=result.package or "",
                conversion_status=result.status.value,
                report=result.as_json(),
                meta=meta,
            )
            added.append((policy, version))
        self._app.save_for(owner, *(policy for policy, _ in added))
        return Submitted(added, report)

    def _load_or_register(
        self, owner: UUID, policy_key: str, name: str | None, system_wide: bool, meta: EventMeta
    ) -> TenantPolicy:
        if not policy_key or len(policy_key) > MAX_POLICY_KEY:
            raise ValidationFailed.field(
                "policy_id", f"must be 1 to {MAX_POLICY_KEY} characters", policy_id=policy_key
            )
        try:
            return self._app.load(owner, policy_aggregate_id(owner, policy_key), TenantPolicy)
        except NotFound:
            return TenantPolicy.register(
                owner=owner,
                policy_key=policy_key,
                name=name or policy_key,
                system_wide=system_wide,
                meta=meta,
            )

    # --- activation and retirement ------------------------------------------------------------

    def activate(
        self, ctx: CommandContext, tenant_id: UUID, policy_key: str, version: int
    ) -> Activation:
        """Activate `version` (a rollback when older than the active one)."""
        meta = self._preamble.begin(
            ctx, Permission.POLICY_AUTHOR, tenant_id, "activate_policy", tenant_id
        )
        policy = self._writable(tenant_id, policy_key)
        previous = policy.active_version
        changed = policy.activate(version, meta)
        if changed:
            self._app.save_for(tenant_id, policy)
        rolled_back = changed and previous is not None and version < previous
        return Activation(policy, previous, changed, rolled_back)

    def retire(self, ctx: CommandContext, tenant_id: UUID, policy_key: str) -> TenantPolicy:
        meta = self._preamble.begin(
            ctx, Permission.POLICY_AUTHOR, tenant_id, "retire_policy", tenant_id
        )
        policy = self._writable(tenant_id, policy_key)
        policy.retire(meta)
        self._app.save_for(tenant_id, policy)
        return policy

    def _writable(self, tenant_id: UUID, policy_key: str) -> TenantPolicy:
        """The tenant's own policy; a system-wide one of that id is refused (403), anything
        else is 404."""
        try:
            return self._app.load(
                tenant_id, policy_aggregate_id(tenant_id, policy_key), TenantPolicy
            )
        except NotFound:
            pass
        system_id = policy_aggregate_id(SYSTEM_TENANT_ID, policy_key)
        try:
            self._app.load(SYSTEM_TENANT_ID, system_id, TenantPolicy)
        except NotFound:
            raise NotFound("policy not found", {"policy_id": policy_key}) from None
        raise Forbidden(
            "system-wide policies are written only by platform principals",
            {"policy_id": policy_key, "system_wide": True},
        )

    # --- decision-log setting -----------------------------------------------------------------

    def decision_log_setting(
        self, principal: Principal, tenant_id: UUID
    ) -> tuple[bool, tuple[str, ...]]:
        """The tenant's setting as last recorded (read from its events, not the read model)."""
        authorize(principal, Permission.POLICY_READ, tenant_id)
        try:
            settings = self._app.load(
                tenant_id, settings_aggregate_id(tenant_id), DecisionLogSettings
            )
        except NotFound:
            return False, ()
        return settings.log_input, settings.mask_fields

    def configure_decision_log(
        self, ctx: CommandContext, tenant_id: UUID, *, log_input: object, fields: object
    ) -> DecisionLogSettings:
        meta = self._preamble.begin(
            ctx, Permission.DECISION_LOG_CONFIGURE, tenant_id, "configure_decision_log", tenant_id
        )
        if not isinstance(log_input, bool):
            raise ValidationFailed.field("log_input", "must be true or false")
        masked = mask_fields(fields)
        try:
            settings = self._app.load(
                tenant_id, settings_aggregate_id(tenant_id), DecisionLogSettings
            )
        except NotFound:
            settings = DecisionLogSettings.create(
                tenant_id=tenant_id, log_input=log_input, fields=masked, meta=meta
            )
        else:
            settings.change(log_input=log_input, fields=masked, meta=meta)
        self._app.save_for(tenant_id, settings)
        return settings


@dataclass(frozen=True)
class ConvertedSource:
    """A policy a migration job converted, to be recorded as a new version."""

    policy_key: str
    source: str
    source_format: str
    rego: str
    package: str
    conversion_status: str
    report: dict[str, Any]
    activate: bool = False


@dataclass(frozen=True)
class Recorded:
    added: int  # new versions
    unchanged: int  # the latest version already had this Rego and source: nothing added
    activated: int
    refused: dict[str, str]  # policy key -> why (a retired policy takes no new version)


def record_conversions(
    app: GovernanceApplication, tenant_id: UUID, converted: list[ConvertedSource], meta: EventMeta
) -> Recorded:
    """Add each converted policy to the tenant's registry as a new version (activated when
    asked), in one transaction. Idempotent: a policy whose latest version has the same Rego and
    source gets no second one, so a batch a job runs again after a crash adds nothing twice."""
    owner, system_wide = owner_of(tenant_id)
    touched: list[TenantPolicy] = []
    added = unchanged = activated = 0
    refused: dict[str, str] = {}
    for item in converted:
        try:
            policy = app.load(owner, policy_aggregate_id(owner, item.policy_key), TenantPolicy)
        except NotFound:
            policy = TenantPolicy.register(
                owner=owner,
                policy_key=item.policy_key,
                name=item.policy_key,
                system_wide=system_wide,
                meta=meta,
            )
        latest = policy.versions.get(len(policy.versions))
        if (
            latest is not None
            and latest.sha256 == _sha256(item.rego)
            and latest.source == item.source
        ):
            version = latest
            unchanged += 1
        elif policy.status is PolicyStatus.RETIRED:
            refused[item.policy_key] = "the policy is retired: it takes no new version"
            continue
        else:
            version = policy.add_version(
                source=item.source,
                source_format=item.source_format,
                rego=item.rego,
                package=item.package,
                conversion_status=item.conversion_status,
                report=item.report,
                meta=meta,
            )
            added += 1
        if item.activate and policy.status is not PolicyStatus.RETIRED:
            activated += int(policy.activate(version.number, meta))
        if policy.pending_events:
            touched.append(policy)
    if touched:
        app.save_for(owner, *touched)
    return Recorded(added, unchanged, activated, refused)


def _sha256(text: str) -> str:
    return hashlib.sha256(text.encode()).hexdigest()
