"""Gaps tracked over time: the catalogue run over a tenant's registered policies, each finding
given an identity that is stable across runs, and the status of each gap.

A gap's identity is its rule, its policy's key and its location in the policy (the rule of the
policy the detector names, the role for a separation-of-powers finding, else the policy as a
whole), never the wording of the finding, so a count in the message may change from one run to
the next without making a new gap.

Status: `open` when found; `fixed` when a later completed run no longer finds it (set by the
run); `accepted` when a tenant admin accepts the risk, with a reason. An accepted gap stays
accepted in later runs that find it again, until someone reopens it; a gap found again after it
was fixed is open again (a regression), unless it is still accepted.
"""

from __future__ import annotations

import re
from collections import Counter, OrderedDict
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from enum import StrEnum
from typing import Any
from uuid import NAMESPACE_URL, UUID, uuid5

from domain.errors import InvalidStateTransition, ValidationFailed
from domain.policy.gaps.catalogue import CATALOGUE, SEVERITY_WEIGHTS, GapRule, GapSeverity
from domain.policy.gaps.rego_facts import rego_facts
from domain.policy.rule_model import Policy
from domain.policy.sources import SourceFormat, parse_source

_GAP_NAMESPACE = uuid5(NAMESPACE_URL, "urn:acgs:gap")
_RULES = {rule.id: rule for rule in CATALOGUE}
MAX_REASON = 1000
# A review's reason: some text that is not only whitespace, no control character but tab and
# newline (what `reviewed_status` checks; the API documents it).
REASON_PATTERN = r"^[^\x00-\x08\x0b-\x1f\x7f]*[^\s\x00-\x1f\x7f][^\x00-\x08\x0b-\x1f\x7f]*$"
WHOLE_POLICY = "policy"
_JUDGED_ON_REGO = frozenset({"GAP-004"})  # the constitutional guard
# (a pattern of a detector's message, how its location is written); messages as the detectors
# of the catalogue write them: "rule r1: ...", "allow rule r1 ...", "rules a and b have ...",
# (Rego) "unconditional allow: rule_3", "clerk may both propose and approve".
_LOCATIONS = (
    (re.compile(r"^(?:allow )?rule (?P<at>\S+?):? "), "rule {at}"),
    (re.compile(r"^rules (?P<at>\S+ and \S+) "), "rules {at}"),
    (re.compile(r"^unconditional allow: (?P<at>.+)$"), "rule {at}"),
    (re.compile(r"^(?P<at>.+) may both \S+ and \S+$"), "role {at}"),
)


class GapStatus(StrEnum):
    OPEN = "open"
    FIXED = "fixed"
    ACCEPTED = "accepted"


class GapScope(StrEnum):
    """Which version of each registered policy a run analyses."""

    ACTIVE = "active"  # the active version; policies without one are skipped
    LATEST = "latest"  # the newest version, active or not


@dataclass(frozen=True, slots=True)
class RegisteredVersion:
    """One version of a registered policy, as the registry holds it."""

    policy_key: str
    version: int
    source: str
    source_format: str
    rego: str
    source_digest: str = ""  # the same for versions that share their source (optional)


@dataclass(frozen=True, slots=True)
class TrackedGap:
    """A finding with its identity: what a run records."""

    gap_id: UUID
    rule_id: str
    severity: GapSeverity
    policy_key: str
    policy_version: int
    location: str
    detail: str

    def as_json(self) -> dict[str, Any]:
        return {
            "gap_id": str(self.gap_id),
            "rule_id": self.rule_id,
            "severity": self.severity.value,
            "policy_key": self.policy_key,
            "policy_version": self.policy_version,
            "location": self.location,
            "detail": self.detail,
        }

    @classmethod
    def from_json(cls, data: Mapping[str, Any]) -> TrackedGap:
        return cls(
            UUID(str(data["gap_id"])),
            str(data["rule_id"]),
            GapSeverity(data["severity"]),
            str(data["policy_key"]),
            int(data["policy_version"]),
            str(data["location"]),
            str(data["detail"]),
        )


def catalogue_rule(rule_id: str) -> GapRule:
    return _RULES[rule_id]


def gap_identity(tenant_id: UUID, rule_id: str, policy_key: str, location: str) -> UUID:
    """The same id for the same gap in every run of the tenant."""
    return uuid5(_GAP_NAMESPACE, f"{tenant_id}\n{rule_id}\n{policy_key}\n{location}")


def location_of(detail: str) -> str:
    """Where in its policy a finding is: `rule <id>`, `rules <a> and <b>`, `role <name>`, or
    `policy` for a finding about the policy as a whole."""
    for pattern, written in _LOCATIONS:
        found = pattern.match(detail)
        if found is not None:
            return written.format(at=found["at"])
    return WHOLE_POLICY


class SourceModels:
    """The rule models of submitted sources, each source parsed once. Every policy of one
    submission keeps the whole submitted source as its version's source, so a run over a
    1,000-policy submission meets the same source 1,000 times; the last few are kept."""

    def __init__(self, keep: int = 8) -> None:
        self._keep = keep
        self._parsed: OrderedDict[tuple[str, str], dict[str, Policy]] = OrderedDict()

    def model(self, version: RegisteredVersion) -> Policy | None:
        """The rule model of a version submitted in a legacy format (None for Rego, or for a
        source that no longer parses)."""
        try:
            source_format = SourceFormat(version.source_format)
        except ValueError:
            return None
        if source_format is SourceFormat.AUTO:
            return None
        key = (source_format.value, version.source_digest or version.source)
        policies = self._parsed.get(key)
        if policies is None:
            parsed = parse_source(f"{version.policy_key}.src", version.source, source_format)
            policies = {p.policy_id: p for p in parsed if isinstance(p, Policy)}
            self._parsed[key] = policies
            if len(self._parsed) > self._keep:
                self._parsed.popitem(last=False)
        else:
            self._parsed.move_to_end(key)
        found = policies.get(version.policy_key)
        if found is None and len(policies) == 1:
            [found] = policies.values()
        return found


def _detected(rule: GapRule, version: RegisteredVersion, model: Policy | None) -> list[str]:
    """A version submitted in a legacy format is judged on its rule model (the detectors there
    are exact), except for the constitutional guard, which only the Rego that decides can carry;
    a version submitted as Rego is judged on its Rego (rules without a Rego detector find
    nothing there)."""
    if model is not None and rule.id not in _JUDGED_ON_REGO:
        return rule.detect_policy(model)
    if rule.detect_rego is None:
        return []
    return rule.detect_rego(rego_facts(f"{version.policy_key}.rego", version.rego))


def version_gaps(
    tenant_id: UUID, version: RegisteredVersion, models: SourceModels | None = None
) -> list[TrackedGap]:
    """The catalogue's findings on one registered version, one per gap identity (a second
    finding at the same place is the same gap)."""
    model = (models or SourceModels(keep=1)).model(version)
    found: dict[UUID, TrackedGap] = {}
    for rule in CATALOGUE:
        for detail in _detected(rule, version, model):
            location = location_of(detail)
            gap_id = gap_identity(tenant_id, rule.id, version.policy_key, location)
            found.setdefault(
                gap_id,
                TrackedGap(
                    gap_id,
                    rule.id,
                    rule.severity,
                    version.policy_key,
                    version.version,
                    location,
                    detail,
                ),
            )
    return list(found.values())


@dataclass(frozen=True)
class RunTally:
    """The cumulative counts of a run: what `result_summary` carries."""

    policies_analysed: int = 0
    gaps: int = 0
    score: int = 0
    by_severity: tuple[tuple[str, int], ...] = tuple((s.value, 0) for s in GapSeverity)
    by_rule: tuple[tuple[str, int], ...] = ()

    def add(self, analysed: int, gaps: Sequence[TrackedGap]) -> RunTally:
        severities = Counter(dict(self.by_severity)) + Counter(g.severity.value for g in gaps)
        rules = Counter(dict(self.by_rule)) + Counter(g.rule_id for g in gaps)
        return RunTally(
            self.policies_analysed + analysed,
            self.gaps + len(gaps),
            self.score + sum(SEVERITY_WEIGHTS[g.severity] for g in gaps),
            tuple((s.value, severities.get(s.value, 0)) for s in GapSeverity),
            tuple(sorted(rules.items())),
        )

    def as_json(self) -> dict[str, Any]:
        return {
            "policies_analysed": self.policies_analysed,
            "gaps_found": self.gaps,
            "score": self.score,
            "gap_severities": dict(self.by_severity),
            "gap_rules": dict(self.by_rule),
        }

    @classmethod
    def from_json(cls, data: Mapping[str, Any] | None) -> RunTally:
        if not data:
            return cls()
        severities = data.get("gap_severities", {})
        return cls(
            int(data.get("policies_analysed", 0)),
            int(data.get("gaps_found", 0)),
            int(data.get("score", 0)),
            tuple((s.value, int(severities.get(s.value, 0))) for s in GapSeverity),
            tuple(sorted((str(k), int(v)) for k, v in data.get("gap_rules", {}).items())),
        )


@dataclass(frozen=True)
class RunCounts:
    """What a completed run changed in the tenant's gaps: the gaps it found still open or
    accepted, those it found that were not open before (new or regressed), those it fixed."""

    open: int
    accepted: int
    new: int
    fixed: int

    def as_json(self) -> dict[str, int]:
        return {"open": self.open, "accepted": self.accepted, "new": self.new, "fixed": self.fixed}


# --- reviews ------------------------------------------------------------------------------------


class GapReview(StrEnum):
    """What a tenant admin may do to a gap."""

    ACCEPT = "accept"
    REOPEN = "reopen"


# A review is recorded as an audit entry (category governance) with one of these actions; its
# details hold the gap, the new status and the reason, and the `gap_reviews` read model is
# rebuilt from them.
REVIEW_ACTIONS = {GapReview.ACCEPT: "accept_gap", GapReview.REOPEN: "reopen_gap"}


def reviewed_status(current: GapStatus, action: object, reason: object) -> GapStatus:
    """The status after a review: `accept` an open gap, `reopen` an accepted one, always with a
    reason. ValidationFailed names every bad field; InvalidStateTransition for another status."""
    problems = []
    if action not in tuple(GapReview):
        choices = ", ".join(r.value for r in GapReview)
        problems.append({"field": "action", "message": f"one of {choices}"})
    text = reason if isinstance(reason, str) else ""
    if not text.strip() or len(text) > MAX_REASON:
        problems.append({"field": "reason", "message": f"1 to {MAX_REASON} characters required"})
    elif any((ord(c) < 32 and c not in "\n\t") or c == "\x7f" for c in text):
        problems.append({"field": "reason", "message": "must not hold control characters"})
    if problems:
        raise ValidationFailed.listing(problems)
    review = GapReview(str(action))
    source, target = {
        GapReview.ACCEPT: (GapStatus.OPEN, GapStatus.ACCEPTED),
        GapReview.REOPEN: (GapStatus.ACCEPTED, GapStatus.OPEN),
    }[review]
    if current is not source:
        raise InvalidStateTransition(
            f"cannot {review.value} a gap that is {current.value}",
            {"status": current.value, "action": review.value},
        )
    return target
