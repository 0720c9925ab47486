"""One policy through the pipeline: analysis, Rego generation, the gate; its result for reports."""

from __future__ import annotations

from dataclasses import dataclass, field, replace
from enum import StrEnum
from typing import Any

from domain.constitution import DEFAULT_CONSTITUTIONAL_HASH
from domain.policy.analysis import analyse
from domain.policy.diagnostics import Diagnostic, Severity, error, warning
from domain.policy.gate import GateVerdict, RegoEngine, run_gate
from domain.policy.gate_inputs import DEFAULT_MAX_INPUTS
from domain.policy.limits import DEFAULT_LIMITS, PolicyLimits
from domain.policy.rego_generator import generate_rego, package_name
from domain.policy.rule_model import Location, Policy
from domain.policy.sources import Parsed, UnparsedPolicy
from domain.policy.work_budget import Clock, ConversionBudgetExceeded, Deadline

DEFAULT_TIME_BUDGET_SECONDS = DEFAULT_LIMITS.conversion_milliseconds / 1000


class ConversionStatus(StrEnum):
    CONVERTED = "converted"
    """Every rule converted, and the Rego proven equal to the source on requests that make
    every rule the analysis does not prove never applicable applicable."""
    UNPROVEN = "unproven"
    """The Rego agreed on every generated request, but some rule was never made applicable."""
    PARTIAL = "partial"
    FAILED = "failed"


@dataclass(frozen=True, slots=True)
class ConversionSettings:
    tenant: str | None = None
    constitutional_hash: str = DEFAULT_CONSTITUTIONAL_HASH
    max_gate_inputs: int = DEFAULT_MAX_INPUTS
    """Generated gate requests per policy, at most; coverage short of it is reported."""
    time_budget_seconds: float | None = DEFAULT_TIME_BUDGET_SECONDS
    """Per policy; a policy over it is failed (needs a clock: see `convert_policy`)."""

    @classmethod
    def bounded_by(
        cls, limits: PolicyLimits, tenant: str | None, constitutional_hash: str
    ) -> ConversionSettings:
        """The settings whose work bounds are the `gate_inputs` and `conversion_milliseconds`
        of `limits`."""
        return cls(
            tenant=tenant,
            constitutional_hash=constitutional_hash,
            max_gate_inputs=limits.gate_inputs,
            time_budget_seconds=limits.conversion_milliseconds / 1000,
        )


@dataclass(frozen=True)
class PolicyResult:
    policy_id: str
    source: str
    source_format: str
    status: ConversionStatus
    rules_converted: int
    rules_total: int
    warnings: tuple[Diagnostic, ...] = ()
    errors: tuple[Diagnostic, ...] = ()
    recommendation: str = ""
    package: str | None = None
    rego: str | None = None
    gate: dict[str, Any] = field(default_factory=dict)
    constitutional_compliant: bool = False

    def as_json(self) -> dict[str, Any]:
        return {
            "policy_id": self.policy_id,
            "source": self.source,
            "format": self.source_format,
            "status": self.status.value,
            "rules_converted": self.rules_converted,
            "rules_total": self.rules_total,
            "coverage": round(self.rules_converted / self.rules_total, 4)
            if self.rules_total
            else 1.0,
            "warnings": [item.as_json() for item in self.warnings],
            "errors": [item.as_json() for item in self.errors],
            "recommendation": self.recommendation,
            "package": self.package,
            "gate": self.gate,
            "constitutional_compliant": self.constitutional_compliant,
        }

    def as_failed(self, reason: Diagnostic, recommendation: str) -> PolicyResult:
        """This result failed after all: no module, no rule counted as converted."""
        return replace(
            self,
            status=ConversionStatus.FAILED,
            rules_converted=0,
            errors=(*self.errors, reason),
            recommendation=recommendation,
            rego=None,
            constitutional_compliant=False,
        )


def failed_to_parse(unparsed: UnparsedPolicy, source: str) -> PolicyResult:
    failure = unparsed.error
    diagnostic = error(failure.code, failure.reason, failure.location, None)
    return PolicyResult(
        policy_id=unparsed.name,
        source=source,
        source_format=unparsed.source_format,
        status=ConversionStatus.FAILED,
        rules_converted=0,
        rules_total=0,
        errors=(diagnostic,),
        recommendation=f"Fix the source at {failure.location} ({failure.reason}), convert again.",
    )


def _gate_summary(verdict: GateVerdict, policy: Policy) -> dict[str, Any]:
    reachable = len(policy.rules) - len(verdict.never_applicable_rules)
    summary: dict[str, Any] = {
        "passed": verdict.passed,
        "requests": verdict.requests_evaluated,
        "rules_reached": reachable - len(verdict.unreached_rules),
        "rules_reachable": reachable,
        "unreached_rules": list(verdict.unreached_rules),
        "never_applicable_rules": list(verdict.never_applicable_rules),
        "uncovered_branches": len(verdict.uncovered_branches),
        "inputs_capped": verdict.inputs_capped,
    }
    if verdict.counterexample is not None:
        summary["counterexample"] = verdict.counterexample.as_json()
    if verdict.engine_error is not None:
        summary["engine_error"] = verdict.engine_error.message
    return summary


def _coverage_findings(verdict: GateVerdict, policy: Policy, max_inputs: int) -> list[Diagnostic]:
    """What the gate did not exercise; each uncovered branch once (the report lists it here)."""
    found: list[Diagnostic] = []
    locations = {rule.id: rule.location for rule in policy.rules}
    for rule_id in verdict.unreached_rules:
        found.append(
            warning(
                "GATE_RULE_NOT_REACHED",
                "no generated request makes this rule applicable: its Rego is unproven",
                locations.get(rule_id),
                rule_id,
            )
        )
    found.extend(
        warning("GATE_BRANCH_NOT_COVERED", text, policy.location)
        for text in verdict.uncovered_branches
    )
    if verdict.inputs_capped:
        found.append(
            warning(
                "GATE_INPUT_LIMIT_REACHED",
                f"input generation stopped at the limit of {max_inputs} requests",
                policy.location,
            )
        )
    return found


def convert_policy(
    policy: Policy,
    engine: RegoEngine,
    source: str,
    settings: ConversionSettings,
    clock: Clock | None = None,
) -> PolicyResult:
    """Analysis, Rego, gate. With a `clock`, `settings.time_budget_seconds` bounds the work:
    a policy over budget is failed with CONVERSION_TIME_BUDGET_EXCEEDED."""
    deadline = Deadline.after(settings.time_budget_seconds, clock)
    findings = analyse(policy)
    errors = tuple(item for item in findings if item.severity is Severity.ERROR)
    warnings = [item for item in findings if item.severity is Severity.WARNING]
    base = PolicyResult(
        policy_id=policy.policy_id,
        source=source,
        source_format=policy.source_format,
        status=ConversionStatus.CONVERTED,
        rules_converted=len(policy.rules),
        rules_total=policy.total_rules,
        warnings=tuple(warnings),
    )
    package = package_name(policy.policy_id, settings.tenant)
    if errors:
        return replace(
            base,
            status=ConversionStatus.FAILED,
            rules_converted=0,
            errors=errors,
            recommendation=f"Fix {errors[0].location or source}: {errors[0].message}.",
        )
    try:
        deadline.check("analysis")
        rego = generate_rego(
            policy,
            tenant=settings.tenant,
            constitutional_hash=settings.constitutional_hash,
            source=source,
        )
        verdict = run_gate(
            policy,
            engine,
            filename=f"{policy.policy_id}.rego",
            module=rego,
            package=package,
            constitutional_hash=settings.constitutional_hash,
            max_inputs=settings.max_gate_inputs,
            deadline=deadline,
        )
    except ConversionBudgetExceeded as over:
        return base.as_failed(
            error(over.code, over.message, policy.location),
            "Not converted: the policy needs more work than the time budget allows; split it "
            "or raise the budget, then convert again.",
        )
    warnings.extend(_coverage_findings(verdict, policy, settings.max_gate_inputs))
    proven = replace(
        base, warnings=tuple(warnings), package=package, gate=_gate_summary(verdict, policy)
    )
    if not verdict.passed:
        return proven.as_failed(
            _gate_error(verdict, policy, package),
            "Do not deploy: the generated Rego does not decide like the source "
            "(see the counterexample); keep the legacy policy and report the converter fault.",
        )
    if verdict.unreached_rules:
        status = ConversionStatus.UNPROVEN
    elif policy.unsupported:
        status = ConversionStatus.PARTIAL
    else:
        status = ConversionStatus.CONVERTED
    return replace(
        proven,
        status=status,
        recommendation=_recommendation(policy, verdict, warnings),
        rego=rego,
        constitutional_compliant=verdict.guard_verified,
    )


def _gate_error(verdict: GateVerdict, policy: Policy, package: str) -> Diagnostic:
    where = Location(f"{policy.policy_id}.rego")
    if verdict.engine_error is not None:
        line = getattr(verdict.engine_error, "line", 0)
        column = getattr(verdict.engine_error, "column", 0)
        where = Location(f"{policy.policy_id}.rego", line, column)
        return error(verdict.engine_error.code, verdict.engine_error.message, where)
    return error(
        "GATE_MISMATCH",
        f"data.{package} decides differently from the source on the counterexample",
        policy.location or where,
    )


def _recommendation(policy: Policy, verdict: GateVerdict, warnings: list[Diagnostic]) -> str:
    if verdict.unreached_rules:
        names = ", ".join(verdict.unreached_rules)
        also = (
            f" Rule(s) {', '.join(rule.id for rule in policy.unsupported)} were not converted "
            "(MANUAL REVIEW)."
            if policy.unsupported
            else ""
        )
        return (
            f"Unproven: no generated request makes rule(s) {names} applicable, so their Rego was "
            f"never checked where it decides; review them by hand before deploying.{also}"
        )
    if policy.unsupported:
        names = ", ".join(rule.id for rule in policy.unsupported)
        return (
            f"Manual review: rewrite rule(s) {names} by hand (see the MANUAL REVIEW comments "
            "in the Rego) before deploying; the other rules are proven equivalent."
        )
    if warnings:
        count = len(warnings)
        return f"Converted and proven equivalent; review the {count} warning(s) before deploying."
    return "Converted and proven equivalent; ready to deploy."


def convert_parsed(
    parsed: Parsed,
    engine: RegoEngine,
    source: str,
    settings: ConversionSettings,
    clock: Clock | None = None,
) -> PolicyResult:
    if isinstance(parsed, UnparsedPolicy):
        return failed_to_parse(parsed, source)
    return convert_policy(parsed, engine, source, settings, clock)
