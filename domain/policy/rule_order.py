"""The order in which rules decide, per combining algorithm (legacy-formats.md, "Meaning").

Every algorithm is "the first applicable rule in this order decides, else the default":
first-applicable orders by priority (higher first, ties in document order); deny-overrides puts
every deny rule before every allow rule; permit-overrides the reverse.
"""

from __future__ import annotations

from domain.policy.rule_model import Combining, Effect, Policy, Rule


def deciding_order(policy: Policy) -> tuple[Rule, ...]:
    if policy.combining is Combining.FIRST_APPLICABLE:
        return policy.ordered_rules()
    first = Effect.DENY if policy.combining is Combining.DENY_OVERRIDES else Effect.ALLOW
    leading = tuple(rule for rule in policy.rules if rule.effect is first)
    return leading + tuple(rule for rule in policy.rules if rule.effect is not first)
