"""One policy through the pipeline: analysis, Rego generation, the gate; its result for reports."""

from __future__ import annotations

from dataclasses import dataclass, field
from enum import StrEnum
from typing import Any

from domain.constitution import DEFAULT_CONSTITUTIONAL_HASH
from domain.policy.analysis import analyse
from domain.policy.diagnostics import Diagnostic, Severity, error
from domain.policy.gate import GateVerdict, RegoEngine, run_gate
from domain.policy.rego_generator import generate_rego, package_name
from domain.policy.rule_model import Location, Policy
from domain.policy.sources import Parsed, UnparsedPolicy


class ConversionStatus(StrEnum):
    CONVERTED = "converted"
    PARTIAL = "partial"
    FAILED = "failed"


@dataclass(frozen=True, slots=True)
class ConversionSettings:
    tenant: str | None = None
    constitutional_hash: str = DEFAULT_CONSTITUTIONAL_HASH


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


def _gate_summary(verdict: GateVerdict) -> dict[str, Any]:
    summary: dict[str, Any] = {
        "passed": verdict.passed,
        "requests": verdict.requests_evaluated,
        "unreached_rules": list(verdict.unreached_rules),
        "uncovered_branches": list(verdict.uncovered_branches),
    }
    if verdict.counterexample is not None:
        summary["counterexample"] = verdict.counterexample.as_json()
    if verdict.engine_error is not None:
        summary["engine_error"] = verdict.engine_error.message
    return summary


def _coverage_warnings(verdict: GateVerdict, policy: Policy) -> list[Diagnostic]:
    found: list[Diagnostic] = []
    locations = {rule.id: rule.location for rule in policy.rules}
    for rule_id in verdict.unreached_rules:
        found.append(
            Diagnostic(
                Severity.WARNING,
                "GATE_RULE_NOT_REACHED",
                "no generated request makes this rule applicable; its Rego was compiled but "
                "not proven on an applicable request",
                locations.get(rule_id),
                rule_id,
            )
        )
    found.extend(
        Diagnostic(Severity.WARNING, "GATE_BRANCH_NOT_COVERED", text, policy.location)
        for text in verdict.uncovered_branches
    )
    return found


def convert_policy(
    policy: Policy, engine: RegoEngine, source: str, settings: ConversionSettings
) -> PolicyResult:
    findings = analyse(policy)
    errors = tuple(item for item in findings if item.severity is Severity.ERROR)
    warnings = [item for item in findings if item.severity is Severity.WARNING]
    base: dict[str, Any] = {
        "policy_id": policy.policy_id,
        "source": source,
        "source_format": policy.source_format,
        "rules_converted": len(policy.rules),
        "rules_total": policy.total_rules,
    }
    package = package_name(policy.policy_id, settings.tenant)
    if errors:
        return PolicyResult(
            **base,
            status=ConversionStatus.FAILED,
            warnings=tuple(warnings),
            errors=errors,
            recommendation=f"Fix {errors[0].location or source}: {errors[0].message}.",
        )
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
    )
    warnings.extend(_coverage_warnings(verdict, policy))
    if not verdict.passed:
        return PolicyResult(
            **base,
            status=ConversionStatus.FAILED,
            warnings=tuple(warnings),
            errors=(_gate_error(verdict, policy, package),),
            recommendation="Do not deploy: the generated Rego does not decide like the source "
            "(see the counterexample); keep the legacy policy and report the converter fault.",
            package=package,
            gate=_gate_summary(verdict),
        )
    status = ConversionStatus.PARTIAL if policy.unsupported else ConversionStatus.CONVERTED
    return PolicyResult(
        **base,
        status=status,
        warnings=tuple(warnings),
        recommendation=_recommendation(policy, warnings),
        package=package,
        rego=rego,
        gate=_gate_summary(verdict),
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


def _recommendation(policy: Policy, warnings: list[Diagnostic]) -> str:
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
    parsed: Parsed, engine: RegoEngine, source: str, settings: ConversionSettings
) -> PolicyResult:
    if isinstance(parsed, UnparsedPolicy):
        return failed_to_parse(parsed, source)
    return convert_policy(parsed, engine, source, settings)
