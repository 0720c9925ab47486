"""Running the catalogue over policies and Rego modules; the findings, the score, the report."""

from __future__ import annotations

import json
from collections import Counter
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

from domain.policy.gaps.catalogue import CATALOGUE, SEVERITY_WEIGHTS, GapRule, GapSeverity
from domain.policy.gaps.rego_facts import rego_facts
from domain.policy.rule_model import Policy


@dataclass(frozen=True, slots=True)
class GapFinding:
    gap_id: str
    title: str
    severity: GapSeverity
    policy: str
    source: str
    detail: str

    def as_json(self) -> dict[str, Any]:
        return {
            "gap_id": self.gap_id,
            "title": self.title,
            "severity": self.severity.value,
            "policy": self.policy,
            "source": self.source,
            "detail": self.detail,
        }


def _finding(rule: GapRule, policy: str, source: str, detail: str) -> GapFinding:
    return GapFinding(rule.id, rule.title, rule.severity, policy, source, detail)


def policy_gaps(policy: Policy, source: str) -> list[GapFinding]:
    return [
        _finding(rule, policy.policy_id, source, detail)
        for rule in CATALOGUE
        for detail in rule.detect_policy(policy)
    ]


def rego_gaps(file: str, module: str) -> list[GapFinding]:
    facts = rego_facts(file, module)
    name = facts.package or file
    return [
        _finding(rule, name, file, detail)
        for rule in CATALOGUE
        if rule.detect_rego is not None
        for detail in rule.detect_rego(facts)
    ]


def severity_score(findings: Sequence[GapFinding]) -> int:
    """Weighted count by severity: critical 10, high 5, medium 2, low 1."""
    return sum(SEVERITY_WEIGHTS[finding.severity] for finding in findings)


def severity_counts(findings: Sequence[GapFinding]) -> dict[str, int]:
    """How many findings of each severity, most severe first (every severity named)."""
    by_severity = Counter(finding.severity.value for finding in findings)
    return {severity.value: by_severity.get(severity.value, 0) for severity in GapSeverity}


def _listed(items: dict[str, int]) -> str:
    return ", ".join(f"{name} {value}" for name, value in items.items())


def score_summary(findings: Sequence[GapFinding]) -> str:
    """`severity score 27 from 4 findings (critical 2, high 1, medium 1, low 0)`."""
    counts = _listed(severity_counts(findings))
    return f"severity score {severity_score(findings)} from {len(findings)} findings ({counts})"


def gap_report_json(findings: Sequence[GapFinding], analysed: int) -> dict[str, Any]:
    return {
        "policies_analysed": analysed,
        "score": severity_score(findings),
        "by_severity": severity_counts(findings),
        "by_rule": dict(sorted(Counter(finding.gap_id for finding in findings).items())),
        "findings": [finding.as_json() for finding in findings],
    }


def gap_report_markdown(findings: Sequence[GapFinding], analysed: int) -> str:
    report = gap_report_json(findings, analysed)
    weights = _listed({severity.value: SEVERITY_WEIGHTS[severity] for severity in GapSeverity})
    lines = [
        "# Gap analysis",
        "",
        f"{analysed} policies analysed; {len(findings)} findings "
        f"({_listed(report['by_severity'])}); severity score **{report['score']}** "
        f"(weights {weights}).",
        "",
        "| severity | findings |",
        "|---|---|",
        *(f"| {name} | {count} |" for name, count in report["by_severity"].items()),
        "",
        "| gap | severity | policy | source | detail |",
        "|---|---|---|---|---|",
    ]
    for finding in findings:
        lines.append(
            f"| {finding.gap_id} {finding.title} | {finding.severity.value} | "
            f"`{finding.policy}` | {finding.source} | {finding.detail.replace('|', '/')} |"
        )
    return "\n".join(lines) + "\n"


def gap_report_text(findings: Sequence[GapFinding], analysed: int) -> str:
    return json.dumps(gap_report_json(findings, analysed), indent=2, ensure_ascii=False) + "\n"
