"""A seeded generator of realistic legacy policies in all four formats, for the benchmark."""

from __future__ import annotations

import json
import random
from typing import Any

import yaml

ROLES = ["analyst", "admin", "auditor", "engineer", "contractor", "clinician", "dpo"]
ACTIONS = ["read", "list", "write", "delete", "export", "approve", "propose"]
TYPES = ["document", "record", "report", "dataset", "ticket"]
TAGS = ["pii", "finance", "public", "internal", "health"]


def _comparison(rng: random.Random) -> dict[str, Any]:  # noqa: PLR0911
    kind = rng.randrange(9)
    if kind == 0:
        return {"field": "user.role", "op": "eq", "value": rng.choice(ROLES)}
    if kind == 1:
        return {"field": "action", "op": "in", "value": rng.sample(ACTIONS, rng.randint(1, 3))}
    if kind == 2:
        return {"field": "resource.tags", "op": "contains", "value": rng.choice(TAGS)}
    if kind == 3:
        return {
            "field": "user.clearance",
            "op": rng.choice(["gt", "gte", "lt"]),
            "value": rng.randint(1, 5),
        }
    if kind == 4:
        return {"field": "resource.type", "op": "ne", "value": rng.choice(TYPES)}
    if kind == 5:
        return {"field": "context.mfa", "op": "eq", "value": rng.random() < 0.5}
    if kind == 6:
        return {"field": "resource.id", "op": "starts_with", "value": rng.choice(["doc-", "rec-"])}
    if kind == 7:
        return {"field": "context.purpose", "op": "exists"}
    return {"field": "user.department", "op": "not_in", "value": rng.sample(["hr", "it", "ops"], 2)}


def _condition(rng: random.Random) -> dict[str, Any]:
    members = [_comparison(rng) for _ in range(rng.randint(1, 3))]
    if rng.random() < 0.2:
        members[0] = {"not": members[0]}
    if len(members) > 1 and rng.random() < 0.3:
        return {"any": members}
    return {"all": members} if len(members) > 1 else members[0]


def rule_model(rng: random.Random, policy_id: str) -> dict[str, Any]:
    rules = []
    for number in range(rng.randint(3, 20)):
        rule: dict[str, Any] = {
            "id": f"r{number}",
            "effect": rng.choice(["allow", "deny"]),
            "when": _condition(rng),
        }
        if rng.random() < 0.3:
            rule["priority"] = rng.randint(0, 10)
        if rule["effect"] == "deny" and rng.random() < 0.5:
            rule["reason"] = f"blocked by {policy_id}/{number}"
        if rng.random() < 0.3:
            rule["obligations"] = [{"type": "audit"}]
        rules.append(rule)
    return {
        "policy_id": policy_id,
        "combining": rng.choice(["deny-overrides", "permit-overrides", "first-applicable"]),
        "default": "deny",
        "rules": rules,
    }


_DSL_OPS = {"eq": "==", "ne": "!=", "gt": ">", "gte": ">=", "lt": "<", "lte": "<="}


def _dsl_condition(condition: dict[str, Any]) -> str:
    if "all" in condition:
        return "(" + " AND ".join(_dsl_condition(m) for m in condition["all"]) + ")"
    if "any" in condition:
        return "(" + " OR ".join(_dsl_condition(m) for m in condition["any"]) + ")"
    if "not" in condition:
        return "NOT " + _dsl_condition(condition["not"])
    field, op, value = condition["field"], condition["op"], condition.get("value")
    literal = json.dumps(value)
    if op in _DSL_OPS:
        return f"{field} {_DSL_OPS[op]} {literal}"
    words = {"in": "IN", "not_in": "NOT IN", "contains": "CONTAINS", "starts_with": "STARTS WITH"}
    if op == "exists":
        return f"{field} EXISTS"
    return f"{field} {words[op]} {literal}"


def dsl_text(model: dict[str, Any]) -> str:
    lines = [f"POLICY {model['policy_id']}", f"COMBINE {model['combining']}", "DEFAULT deny", ""]
    for rule in model["rules"]:
        priority = f" PRIORITY {rule['priority']}" if "priority" in rule else ""
        lines.append(f"RULE {rule['id']}{priority}")
        lines.append(f"  WHEN {_dsl_condition(rule['when'])}")
        reason = f" BECAUSE {json.dumps(rule['reason'])}" if "reason" in rule else ""
        lines.append(f"  THEN {rule['effect'].upper()}{reason}")
        lines.extend("  OBLIGE audit" for _ in rule.get("obligations", []))
        lines.append("")
    return "\n".join(lines)


def _iam_condition(rng: random.Random) -> dict[str, Any]:
    condition: dict[str, Any] = {}
    if rng.random() < 0.6:
        condition["StringEquals"] = {"user.department": rng.sample(["hr", "it", "ops"], 2)}
    if rng.random() < 0.5:
        condition["NumericLessThan"] = {"user.risk": str(rng.randint(1, 9))}
    if rng.random() < 0.2:
        condition["StringLike"] = {"user.email": rng.choice(["*@acme.com", "ops-?@*"])}
    if rng.random() < 0.2:
        condition["StringNotEquals"] = {"user.type": "contractor"}
    if rng.random() < 0.2:
        condition["Bool"] = {"context.mfa": rng.choice(["true", "false"])}
    if rng.random() < 0.1:
        condition["Null"] = {"context.ticket": rng.choice(["true", "false"])}
    return condition


def iam_text(rng: random.Random, policy_id: str) -> str:
    """An IAM-style document: Action or NotAction, Resource or NotResource (or neither), with
    `*` and `?` wildcards, and conditions of most operators."""
    statements = []
    for number in range(rng.randint(3, 20)):
        statement: dict[str, Any] = {"Sid": f"S{number}", "Effect": rng.choice(["Allow", "Deny"])}
        action_key = "NotAction" if rng.random() < 0.2 else "Action"
        statement[action_key] = [
            rng.choice([f"docs:{rng.choice(ACTIONS).title()}*", "docs:Re?d", "docs:*"])
        ]
        resource_key = rng.choice(["Resource"] * 6 + ["NotResource", None])
        if resource_key is not None:
            statement[resource_key] = rng.choice(
                ["arn:docs:*", "arn:docs:team/*", "*", "arn:docs:?/private"]
            )
        condition = _iam_condition(rng)
        if condition:
            statement["Condition"] = condition
        statements.append(statement)
    return json.dumps({"Version": "2012-10-17", "Id": policy_id, "Statement": statements}, indent=2)


def corpus(size: int, seed: int = 7) -> list[tuple[str, str]]:
    """`size` (file name, text) pairs, one policy each, formats in rotation."""
    rng = random.Random(seed)
    files: list[tuple[str, str]] = []
    for number in range(size):
        policy_id = f"bench-{number:05d}"
        kind = number % 4
        if kind == 3:
            files.append((f"{policy_id}.json", iam_text(rng, policy_id)))
            continue
        model = rule_model(rng, policy_id)
        if kind == 0:
            files.append((f"{policy_id}.json", json.dumps(model, indent=2)))
        elif kind == 1:
            files.append((f"{policy_id}.yaml", yaml.safe_dump(model, sort_keys=False)))
        else:
            files.append((f"{policy_id}.rules", dsl_text(model)))
    return files
