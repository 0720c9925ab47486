"""The gap catalogue: each rule with severity, rationale, detector, remediation.

A remediation is written as a small policy in the rule DSL; its Rego snippet is what the converter
makes of it, so the snippet passes the same compile-and-prove gate as every converted policy.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from enum import StrEnum

from domain.policy.gaps import policy_detectors, rego_detectors
from domain.policy.gaps.rego_facts import RegoFacts
from domain.policy.rule_model import Policy

PolicyDetector = Callable[[Policy], list[str]]
RegoDetector = Callable[[RegoFacts], list[str]]


class GapSeverity(StrEnum):
    CRITICAL = "critical"
    HIGH = "high"
    MEDIUM = "medium"
    LOW = "low"


SEVERITY_WEIGHTS = {
    GapSeverity.CRITICAL: 10,
    GapSeverity.HIGH: 5,
    GapSeverity.MEDIUM: 2,
    GapSeverity.LOW: 1,
}


@dataclass(frozen=True)
class GapRule:
    id: str
    title: str
    severity: GapSeverity
    rationale: str
    detector: str
    remediation: str
    remediation_policy: str
    detect_policy: PolicyDetector
    detect_rego: RegoDetector | None


CATALOGUE: tuple[GapRule, ...] = (
    GapRule(
        "GAP-001",
        "No default deny",
        GapSeverity.CRITICAL,
        "A request no rule foresaw is allowed: every omission becomes a grant.",
        "the policy's default is allow (Rego: `default allow := true`).",
        "Set DEFAULT deny and grant explicitly.",
        "POLICY remediation-default-deny\nDEFAULT deny\nRULE analysts-read\n"
        '  WHEN user.role == "analyst" AND action == "read"\n  THEN ALLOW\n  OBLIGE audit\n',
        policy_detectors.default_allow,
        rego_detectors.default_allow,
    ),
    GapRule(
        "GAP-002",
        "Wildcard allow",
        GapSeverity.CRITICAL,
        "An allow rule that applies to every action or resource grants far more than intended.",
        "an allow rule without condition, or whose only tests are `*` wildcards on action or "
        "resource.",
        "Name the actions and resources, and condition on the principal.",
        "POLICY remediation-wildcard-allow\nRULE readers-read\n"
        '  WHEN action IN ["read", "list"] AND user.role IN ["reader", "analyst"]\n'
        "  THEN ALLOW\n  OBLIGE audit\n",
        policy_detectors.wildcard_allow,
        rego_detectors.wildcard_allow,
    ),
    GapRule(
        "GAP-003",
        "Allow without conditions on sensitive resources",
        GapSeverity.HIGH,
        "Sensitive data (PII, secrets, financial, medical, classified) reachable without any "
        "condition on who asks or in which context.",
        "an allow rule that names a sensitive resource but tests nothing under `user.` or "
        "`context.`.",
        "Require a role (and, for PII, a purpose) before granting access to sensitive resources.",
        "POLICY remediation-sensitive-allow\nRULE finance-read\n"
        '  WHEN resource.type == "financial" AND user.department == "finance"\n'
        '  AND action == "read"\n'
        "  THEN ALLOW\n  OBLIGE audit\n",
        policy_detectors.unconditional_sensitive_allow,
        rego_detectors.unconditional_sensitive_allow,
    ),
    GapRule(
        "GAP-004",
        "Missing constitutional guard",
        GapSeverity.CRITICAL,
        "Decisions must be bound to the constitutional hash; a policy without the guard decides "
        "under any constitution.",
        "legacy sources cannot carry it; Rego that never reads `input.constitutional_hash`.",
        "Convert with `acgs policy convert`: every generated module denies on a hash mismatch.",
        "POLICY remediation-constitutional-guard\nRULE members-read\n"
        '  WHEN user.role == "member" AND action == "read"\n  THEN ALLOW\n',
        policy_detectors.missing_constitutional_guard,
        rego_detectors.missing_constitutional_guard,
    ),
    GapRule(
        "GAP-005",
        "Missing audit obligation",
        GapSeverity.MEDIUM,
        "Grants that leave no audit trail cannot be reviewed or attested.",
        "allow rules of which none carries an `audit` obligation.",
        "Add `OBLIGE audit` (JSON: an obligation of type audit) to allow rules.",
        "POLICY remediation-audit\nRULE staff-read\n"
        '  WHEN user.role == "staff" AND action == "read"\n'
        "  THEN ALLOW\n  OBLIGE audit\n",
        policy_detectors.missing_audit_obligation,
        rego_detectors.missing_audit_obligation,
    ),
    GapRule(
        "GAP-006",
        "Separation-of-powers violation",
        GapSeverity.HIGH,
        "The same role may both propose and approve, so one principal can push a change alone.",
        "one role (or any principal) allowed both a proposing action (propose, submit, create, "
        "request) and an approving one (approve, authorize, sign-off).",
        "Grant proposing and approving to different roles, and deny approving one's own proposal.",
        "POLICY remediation-separation-of-powers\nCOMBINE deny-overrides\n"
        'RULE legislative-proposes\n  WHEN user.role == "legislative" AND action == "propose"\n'
        "  THEN ALLOW\n  OBLIGE audit\nRULE judicial-approves\n"
        '  WHEN user.role == "judicial" AND action == "approve"\n  THEN ALLOW\n  OBLIGE audit\n'
        'RULE no-self-approval\n  WHEN action == "approve" AND resource.proposer == user.id\n'
        '  THEN DENY BECAUSE "proposer may not approve"\n',
        policy_detectors.separation_of_powers,
        None,
    ),
    GapRule(
        "GAP-007",
        "Unreachable or shadowed rule",
        GapSeverity.MEDIUM,
        "A rule that can never decide hides an intention nobody enforces.",
        "first-applicable rules after an unconditional rule or after an identical condition; "
        "rules of the losing effect behind an unconditional winner.",
        "Reorder by priority, merge duplicates, or delete the dead rule.",
        "POLICY remediation-ordering\nCOMBINE first-applicable\nRULE admins PRIORITY 10\n"
        '  WHEN user.role == "admin"\n  THEN ALLOW\n  OBLIGE audit\nRULE everyone-else\n'
        '  THEN DENY BECAUSE "not an administrator"\n',
        policy_detectors.unreachable_rules,
        None,
    ),
    GapRule(
        "GAP-008",
        "Contradictory rules",
        GapSeverity.MEDIUM,
        "Conditions that cannot hold, or equal conditions with opposite effects, mean the "
        "outcome is decided by the combining algorithm rather than by intent.",
        "a condition pinning one field to two values; two rules with the same condition and "
        "opposite effects.",
        "Make conditions disjoint and state the intended outcome once.",
        "POLICY remediation-contradiction\nRULE contractors-read\n"
        '  WHEN user.type == "contractor" AND action == "read"\n  THEN ALLOW\n  OBLIGE audit\n'
        'RULE contractors-no-write\n  WHEN user.type == "contractor" AND action == "write"\n'
        '  THEN DENY BECAUSE "contractors may not write"\n',
        policy_detectors.contradictory_rules,
        None,
    ),
    GapRule(
        "GAP-009",
        "Unbounded validity",
        GapSeverity.LOW,
        "Grants without a time bound outlive the need that justified them.",
        "allow rules while no condition tests a time, date, expiry or validity field.",
        "Bound grants in time, e.g. `context.time < resource.expires_at`.",
        "POLICY remediation-validity\nRULE temporary-access\n"
        '  WHEN user.role == "contractor" AND context.time < resource.expires_at\n'
        "  THEN ALLOW\n  OBLIGE audit\n",
        policy_detectors.unbounded_validity,
        rego_detectors.unbounded_validity,
    ),
    GapRule(
        "GAP-010",
        "PII access without purpose",
        GapSeverity.HIGH,
        "Access to personal data needs a declared purpose (GDPR art. 5(1)(b), purpose limitation).",
        "an allow rule about PII whose condition never tests `context.purpose`.",
        "Require a declared purpose from an allowed list.",
        "POLICY remediation-pii-purpose\nRULE pii-read\n"
        '  WHEN resource.tags CONTAINS "pii" AND context.purpose IN ["care", "billing"]\n'
        '  AND user.role == "clinician"\n  THEN ALLOW\n  OBLIGE audit\n',
        policy_detectors.pii_without_purpose,
        rego_detectors.pii_without_purpose,
    ),
)
