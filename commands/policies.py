"""Policy registry commands: submit a source (a new version, converted and gated on the way in),
activate or roll back a version, retire a policy, and set the tenant's decision-log setting.

A tenant's policies belong to it; the system tenant's policies are the system-wide ones (read by
every tenant, written only by platform principals, since only they act for the system tenant).
Every command runs the shared preamble first (permission, constitutional hash, event metadata).
"""

from __future__ import annotations

import re
import threading
from dataclasses import dataclass
from pathlib import PurePath
from typing import Any
from uuid import UUID

from commands.application import GovernanceApplication
from commands.authorization import Permission
from commands.context import CommandContext
from commands.policy_conversion import SourceText, run_conversion
from commands.preamble import CommandPreamble
from domain.errors import DomainError, Forbidden, NotFound, ValidationFailed
from domain.events import EventMeta
from domain.policy.conversion import ConversionSettings, ConversionStatus, PolicyResult
from domain.policy.conversion_report import report_json
from domain.policy.diagnostics import warning
from domain.policy.gate import RegoCompileError, RegoEngine
from domain.policy.limits import DEFAULT_LIMITS, PolicyLimits
from domain.policy.reference_evaluator import CONSTITUTIONAL_HASH_MISMATCH
from domain.policy.rule_model import Policy
from domain.policy.sources import EXTENSIONS, SourceFormat
from domain.registry.decision_log import (
    DecisionLogSettings,
    mask_fields,
    settings_aggregate_id,
)
from domain.registry.policy import PolicyVersion, TenantPolicy, policy_aggregate_id
from domain.tenancy import SYSTEM_TENANT_ID

FORMATS = ("auto", "json", "yaml", "dsl", "iam", "rego")
MAX_POLICY_KEY = 255
_PACKAGE = re.compile(r"^\s*package\s+([A-Za-z_][A-Za-z0-9_]*(?:\.[A-Za-z_][A-Za-z0-9_]*)*)", re.M)
_DSL_START = re.compile(r"^\s*policy\s", re.M | re.I)
_WRONG_HASH = "0000000000000000"


class PolicyConversionFailed(DomainError):
    """A submitted source did not convert (or did not compile): nothing was registered."""

    code = "POLICY_CONVERSION_FAILED"


@dataclass(frozen=True)
class SubmitPolicy:
    source: str
    source_format: str = "auto"
    filename: str | None = None  # a multipart upload's file name (its extension helps `auto`)
    allow_unguarded: bool = False  # a Rego module without the constitutional guard


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
        self._engine = engine  # bounded; one call at a time
        self._engine_lock = threading.Lock()
        self._limits = limits

    def close(self) -> None:
        """Stop the conversion engine's child process, if it has one."""
        close = getattr(self._engine, "close", None)
        if close is not None:
            close()

    # --- submit -------------------------------------------------------------------------------

    def submit(self, ctx: CommandContext, tenant_id: UUID, command: SubmitPolicy) -> Submitted:
        """Convert and gate the source; every policy in it gets a new version (a new policy is
        registered first). A source any policy of which fails adds nothing."""
        meta = self._preamble.begin(
            ctx, Permission.POLICY_AUTHOR, tenant_id, "submit_policy", tenant_id
        )
        if command.source_format not in FORMATS:
            raise ValidationFailed.field("format", f"must be one of {', '.join(FORMATS)}")
        if not command.source.strip():
            raise ValidationFailed.field("source", "must not be empty")
        chosen = _detected(command)
        if chosen == "rego":
            results, names = [self._rego_result(command)], dict[str, str]()
        else:
            results, names = self._converted(command, SourceFormat(chosen))
        report = report_json(results, self._hash, self._engine.name)
        _refuse_failures(results, report)
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

    def _converted(
        self, command: SubmitPolicy, source_format: SourceFormat
    ) -> tuple[list[PolicyResult], dict[str, str]]:
        name = command.filename or f"submitted{_extension(source_format)}"
        text = SourceText(name, command.source.replace("\r\n", "\n"))
        parsed = text.parse(source_format, self._limits)
        names = {p.policy_id: p.name for p in parsed if isinstance(p, Policy) and p.name}
        settings = ConversionSettings.bounded_by(self._limits, None, self._hash)
        with self._engine_lock:
            results = run_conversion(
                [text],
                lambda: self._engine,
                source_format=source_format,
                settings=settings,
                limits=self._limits,
            )
        if not results:
            raise ValidationFailed.field("source", "holds no policy")
        return results, names

    def _rego_result(self, command: SubmitPolicy) -> PolicyResult:
        """A Rego module as submitted: it must compile, define allow, deny and obligations, and
        (unless `allow_unguarded`) deny a request with another constitutional hash."""
        module = command.source
        found = _PACKAGE.search(module)
        if found is None:
            raise PolicyConversionFailed(
                "the Rego module has no package declaration",
                {"line": 1, "column": 1, "errors": [{"code": "REGO_COMPILE_ERROR"}]},
            )
        package = found.group(1)
        policy_key = package.rsplit(".", 1)[-1]
        probes = [{"constitutional_hash": self._hash}, {"constitutional_hash": _WRONG_HASH}]
        filename = command.filename or f"{policy_key}.rego"
        try:
            with self._engine_lock:
                decisions = self._engine.decisions(filename, module, package, probes)
        except RegoCompileError as failure:
            raise PolicyConversionFailed(
                f"the Rego module does not compile: {failure.message}",
                {
                    "line": failure.line,
                    "column": failure.column,
                    "errors": [{"code": failure.code, "message": failure.message}],
                },
            ) from None
        except DomainError as failure:
            raise PolicyConversionFailed(
                f"the Rego module cannot decide: {failure.message}",
                {"errors": [{"code": failure.code, "message": failure.message}]},
            ) from None
        guarded = not decisions[1].allow and CONSTITUTIONAL_HASH_MISMATCH in decisions[1].deny
        if not guarded and not command.allow_unguarded:
            raise PolicyConversionFailed(
                "the Rego module lacks the constitutional guard: a request with another "
                "constitutional_hash must be denied with the reason "
                f"'{CONSTITUTIONAL_HASH_MISMATCH}' (or submit it with allow_unguarded: true)",
                {"errors": [{"code": "CONSTITUTIONAL_GUARD_MISSING"}]},
            )
        warnings = (
            ()
            if guarded
            else (
                warning(
                    "CONSTITUTIONAL_GUARD_MISSING", "submitted without the constitutional guard"
                ),
            )
        )
        return PolicyResult(
            policy_id=policy_key,
            source=filename,
            source_format="rego",
            status=ConversionStatus.CONVERTED,
            rules_converted=0,
            rules_total=0,
            warnings=warnings,
            recommendation="Compiled by regorus; the constitutional guard holds."
            if guarded
            else "Compiled by regorus; review: it has no constitutional guard.",
            package=package,
            rego=module,
            constitutional_compliant=guarded,
        )

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


def _detected(command: SubmitPolicy) -> str:  # noqa: PLR0911 - one answer per clue
    """The format of `auto`: the file name's extension if it has a known one, else the text's
    first significant token (`{`/`[` JSON, `package` Rego, `policy` the DSL, otherwise YAML)."""
    if command.source_format != "auto":
        return command.source_format
    suffix = PurePath(command.filename or "").suffix.lower()
    if suffix == ".rego":
        return "rego"
    if suffix in EXTENSIONS:
        return EXTENSIONS[suffix].value
    text = command.source.lstrip()
    if text.startswith(("{", "[")):
        return "json"
    if _PACKAGE.search(command.source) and not _DSL_START.search(command.source):
        return "rego"
    if _DSL_START.search(command.source):
        return "dsl"
    return "yaml"


def _extension(source_format: SourceFormat) -> str:
    if source_format in (SourceFormat.JSON, SourceFormat.IAM):
        return ".json"
    return {SourceFormat.YAML: ".yaml", SourceFormat.DSL: ".rules"}.get(source_format, "")


def _refuse_failures(results: list[PolicyResult], report: dict[str, Any]) -> None:
    failed = [r for r in results if r.status is ConversionStatus.FAILED]
    if not failed:
        return
    errors = [
        {"policy_id": r.policy_id, **diagnostic.as_json()}
        for r in failed
        for diagnostic in r.errors
    ]
    first = errors[0] if errors else {}
    names = ", ".join(r.policy_id for r in failed)
    raise PolicyConversionFailed(
        f"the source does not convert ({names}): {first.get('message', 'failed')}",
        {
            "line": first.get("line"),
            "column": first.get("column"),
            "errors": errors,
            "report": report,
        },
    )
