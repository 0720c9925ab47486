"""Gap detectors on Rego modules (converted or hand-written)."""

from __future__ import annotations

from domain.policy.gaps.rego_facts import RegoFacts

_SENSITIVE = ("pii", "personal", "secret", "financial", "medical", "health", "classified")
_TIME = ("time.now_ns", "input.context.time", "expires", "valid_until", "input.context.date")


def default_allow(facts: RegoFacts) -> list[str]:
    heads = ("default allow := true", "default allow = true")
    return ["`default allow := true`"] if any(facts.has(head) for head in heads) else []


def _unconditional_allow_rules(facts: RegoFacts) -> list[str]:
    """Allow heads without a body, and generated `rule_N := true` rules whose effect is allow."""
    bare = ("allow := true", "allow = true", "allow if true", "allow if { true }")
    found = {line.strip() for line in facts.code_lines if line.strip() in bare}
    unconditional = {
        line.split(" ")[0]
        for line in facts.code_lines
        if line.startswith("rule_") and line.endswith(" := true")
    }
    found |= unconditional & _allow_chain_rules(facts)
    return sorted(found)


def wildcard_allow(facts: RegoFacts) -> list[str]:
    found = [f"unconditional allow: {item.strip()}" for item in _unconditional_allow_rules(facts)]
    found += [
        f"wildcard pattern in {facts.file}" for line in facts.code_lines if '"(?s)^.*$"' in line
    ]
    return found


def _allow_chain_rules(facts: RegoFacts) -> set[str]:
    """Generated rule names whose effect is allow, read from the decision chain."""
    names: set[str] = set()
    lines = list(facts.code_lines)
    for index, line in enumerate(lines[:-1]):
        if line.endswith('"allow" if {'):
            names.add(lines[index + 1].strip())
    return names


def unconditional_sensitive_allow(facts: RegoFacts) -> list[str]:
    code = facts.code.lower()
    mentions = any(word in code for word in _SENSITIVE)
    if mentions and facts.has("allow") and not ("input.user" in code or "input.context" in code):
        return ["sensitive resources allowed without a condition on user or context"]
    return []


def missing_constitutional_guard(facts: RegoFacts) -> list[str]:
    if facts.has("input.constitutional_hash"):
        return []
    return [f"{facts.file} never reads input.constitutional_hash"]


def missing_audit_obligation(facts: RegoFacts) -> list[str]:
    grants = facts.has("allow") and (
        bool(_allow_chain_rules(facts)) or facts.has("allow if") or facts.has("allow {")
    )
    if grants and not facts.has('"type": "audit"'):
        return ["allow without an audit obligation"]
    return []


def unbounded_validity(facts: RegoFacts) -> list[str]:
    if _allow_chain_rules(facts) and not any(facts.has(word) for word in _TIME):
        return ["allow without a time bound"]
    return []


def pii_without_purpose(facts: RegoFacts) -> list[str]:
    code = facts.code.lower()
    if "pii" in code and _allow_chain_rules(facts) and "input.context.purpose" not in code:
        return ["PII access without a declared purpose"]
    return []
