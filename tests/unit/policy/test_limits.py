"""Bounds on untrusted policy sources: each refused in the toolkit's words, at its line and column,
as one failed policy. Small bounds (`PolicyLimits(...)`) keep these fast; the full-size hostile
documents, with their time and memory bounds, are in tests/integration/policy."""

from __future__ import annotations

import json

import pytest

from api.http.errors import status_of
from domain.policy.dsl_format import split_policy_blocks
from domain.policy.errors import PolicyLimitExceeded, PolicyTooLarge
from domain.policy.limits import DEFAULT_LIMITS, PolicyLimits
from domain.policy.rule_model import Comparison, Operator, Policy
from domain.policy.sources import SourceFormat, UnparsedPolicy, parse_source


def _refused(file: str, text: str, limits: PolicyLimits = DEFAULT_LIMITS) -> PolicyLimitExceeded:
    parsed = parse_source(file, text, SourceFormat.AUTO, limits)
    assert len(parsed) == 1, parsed
    [only] = parsed
    assert isinstance(only, UnparsedPolicy), only
    assert isinstance(only.error, PolicyLimitExceeded), only.error
    assert "recursion" not in only.error.reason
    return only.error


def _where(error: PolicyLimitExceeded) -> tuple[int, int]:
    return error.location.line, error.location.column


# --- nesting: every format, in the toolkit's words, at the place --------------------------------


def test_dsl_parentheses_nested_past_the_bound_name_the_line_and_column() -> None:
    text = "POLICY p\nRULE r WHEN " + "(" * 3000 + "a" + ")" * 3000 + " THEN ALLOW\n"
    error = _refused("deep.rules", text)
    assert error.reason == "conditions nested deeper than 64 levels at line 2, column 77"
    assert _where(error) == (2, 77)
    assert error.limit == "condition_depth"
    assert error.code == "POLICY_LIMIT_EXCEEDED"


def test_dsl_not_chains_count_as_nesting() -> None:
    error = _refused("nots.rules", "POLICY p\nRULE r WHEN " + "NOT " * 3000 + "a THEN ALLOW\n")
    assert error.reason.startswith("conditions nested deeper than 64 levels at line 2, column ")
    mixed = "POLICY p\nRULE r WHEN " + "NOT (" * 40 + "a" + ")" * 40 + " THEN ALLOW\n"
    assert _refused("mixed.rules", mixed).limit == "condition_depth"


def test_many_nots_side_by_side_are_not_nesting() -> None:
    conditions = " AND ".join(f"NOT user.flag{index}" for index in range(200))
    [policy] = parse_source("flat.rules", f"POLICY p\nRULE r WHEN {conditions} THEN DENY\n")
    assert isinstance(policy, Policy), policy


def test_dsl_lists_nested_past_the_bound() -> None:
    text = "POLICY p\nRULE r WHEN a IN " + "[" * 100 + "1" + "]" * 100 + " THEN ALLOW\n"
    assert _refused("lists.rules", text).reason.startswith("lists nested deeper than 64 levels")


def test_a_json_document_nested_deeper_than_the_decoder_goes_is_refused_at_its_place() -> None:
    deep = '{"policy_id": "p", "rules": [{"id": "r", "effect": "allow", "when": '
    text = deep + '{"not": ' * 3000 + '{"field": "a", "op": "exists"}' + "}" * 3000 + "}]}"
    error = _refused("deep.json", text)
    assert error.reason == "document nested deeper than 256 levels at line 1, column 2093"
    assert error.limit == "document_depth"


def test_json_conditions_nested_past_the_bound_name_the_rule() -> None:
    when: dict[str, object] = {"field": "a", "op": "exists"}
    for _ in range(65):
        when = {"not": when}
    document = {"policy_id": "p", "rules": [{"id": "deep", "effect": "allow", "when": when}]}
    text = json.dumps(document, indent=1)
    error = _refused("cond.json", text)
    assert text.splitlines()[4] == '   "id": "deep",'  # the rule, where its id is
    assert error.reason == "rule deep: conditions nested deeper than 64 levels at line 5, column 4"
    assert error.policy_id is None or error.policy_id == "p"


def test_64_levels_of_conditions_are_allowed() -> None:
    when: dict[str, object] = {"field": "a", "op": "exists"}
    for _ in range(63):
        when = {"not": when}
    document = {"policy_id": "p", "rules": [{"id": "deep", "effect": "allow", "when": when}]}
    [policy] = parse_source("ok.json", json.dumps(document))
    assert isinstance(policy, Policy), policy


def test_a_yaml_document_nested_past_the_bound_is_refused_before_it_is_composed() -> None:
    head = "policy_id: p\nrules:\n- id: r\n  effect: allow\n  when: "
    text = head + "{not: " * 3000 + "{field: a, op: exists}" + "}" * 3000 + "\n"
    error = _refused("deep.yaml", text)
    assert error.reason == "document nested deeper than 256 levels at line 5, column 1527"


def test_yaml_flow_lists_past_the_parsers_own_bound_are_refused_as_too_deep() -> None:
    # libyaml stops at 1,000 levels of flow lists while reading ahead, before our count does.
    text = "policy_id: p\nrules:\n- id: r\n  effect: allow\n  when: " + "[" * 3000 + "]" * 3000
    error = _refused("deep.yaml", text + "\n")
    assert error.reason == "document nested deeper than 256 levels at line 5, column 1007"


def test_an_iam_document_nested_past_the_bound() -> None:
    text = '{"Statement": [{"Effect": "Allow", "Action": ' + "[" * 3000 + "]" * 3000 + "}]}"
    error = _refused("deep-iam.json", text)
    assert error.reason.startswith("document nested deeper than 256 levels at line 1, column ")


# --- YAML aliases: counted as what they stand for ----------------------------------------------


def _alias_bomb(levels: int = 8) -> str:
    lines = ["policy_id: bomb", "a0: &a0 [x, x, x, x, x, x, x, x, x, x]"]
    for level in range(1, levels + 1):
        lines.append(f"a{level}: &a{level} [{', '.join([f'*a{level - 1}'] * 10)}]")
    lines += ["rules:", "  - id: r", "    effect: allow"]
    lines.append(f"    when: {{field: action, op: in, value: *a{levels}}}")
    return "\n".join(lines) + "\n"


def test_the_alias_bomb_is_refused_at_the_alias_that_crosses_the_bound() -> None:
    error = _refused("bomb.yaml", _alias_bomb())
    assert error.reason == (
        "document of more than 1,000,000 values (aliases expanded) at line 7, column 45"
    )
    assert error.limit == "document_nodes"


def test_aliases_expand_into_the_depth_too() -> None:
    text = "a0: &a0 " + "[" * 200 + "]" * 200 + "\nb: " + "[" * 100 + "*a0" + "]" * 100 + "\n"
    error = _refused("deep-alias.yaml", "policy_id: p\n" + text)
    assert error.reason.startswith("document nested deeper than 256 levels (aliases expanded)")


def test_a_recursive_alias_is_refused() -> None:
    error = _refused("loop.yaml", "policy_id: p\nloop: &a [1, *a]\nrules: []\n")
    assert error.reason == "alias *a refers to a collection holding it at line 2, column 14"


def test_ordinary_anchors_and_aliases_still_work() -> None:
    text = (
        "policy_id: shared\n"
        "readers: &readers {field: user.role, op: in, value: [analyst, auditor]}\n"
        "rules:\n"
        "  - {id: read, effect: allow, when: *readers}\n"
        "  - id: list\n"
        "    effect: allow\n"
        "    when: {all: [*readers, {field: action, op: eq, value: ls}]}\n"
    )
    [policy] = parse_source("anchors.yaml", text)
    assert isinstance(policy, Policy), policy
    assert policy.rules[0].when == Comparison("user.role", Operator.IN, ["analyst", "auditor"])
    scalar = (
        "policy_id: p\nrole: &role admin\nrules:\n"
        "- {id: r, effect: allow, when: {field: user.role, op: eq, value: *role}}\n"
    )
    [policy] = parse_source("scalar.yaml", scalar)
    assert isinstance(policy, Policy), policy
    assert policy.rules[0].when == Comparison("user.role", Operator.EQ, "admin")


def test_a_json_document_of_more_values_than_the_bound_is_refused() -> None:
    text = json.dumps({"policy_id": "p", "rules": [], "extra": list(range(20))})
    error = _refused("many.json", text, PolicyLimits(document_nodes=10))
    assert error.reason == "document of more than 10 values at line 1, column 1"
    assert error.limit == "document_nodes"


def test_a_json_document_past_a_lowered_depth_is_refused_at_its_place() -> None:
    text = '{"policy_id": "p", "rules": [], "x": [[[[1]]]]}'
    error = _refused("deep.json", text, PolicyLimits(document_depth=3))
    assert error.reason == "document nested deeper than 3 levels at line 1, column 40"


def test_past_the_decoder_but_within_a_raised_depth_bound_is_refused_at_the_start() -> None:
    text = "[" * 3000 + "]" * 3001  # the decoder gives up before it sees the stray bracket
    error = _refused("deep.json", text, PolicyLimits(document_depth=5000))
    assert error.reason == "document nested deeper than 5000 levels at line 1, column 1"


# --- counts and lengths -----------------------------------------------------------------------


SMALL = PolicyLimits(rules=3, list_values=4, string_length=20, pattern_length=8)


def test_rules_per_policy_in_every_format() -> None:
    dsl = "POLICY p\n" + "".join(f"RULE r{index} THEN ALLOW\n" for index in range(5))
    error = _refused("many.rules", dsl, SMALL)
    assert error.reason == "more than 3 rules in one policy at line 5, column 1"
    rules = [{"id": f"r{index}", "effect": "allow"} for index in range(4)]
    error = _refused("many.json", json.dumps({"policy_id": "p", "rules": rules}), SMALL)
    assert error.reason == "policy p has 4 rules, more than the 3 allowed at line 1, column 2"
    statements = [{"Sid": f"s{index}", "Effect": "Allow"} for index in range(4)]
    iam = json.dumps({"Id": "i", "Statement": statements})
    assert _refused("many-iam.json", iam, SMALL).limit == "rules"


def test_a_long_in_list_in_every_format() -> None:
    dsl = "POLICY p\nRULE r WHEN a IN [1, 2, 3, 4, 5] THEN ALLOW\n"
    error = _refused("list.rules", dsl, SMALL)
    assert error.reason == "a list of more than 4 values at line 2, column 18"
    yaml_text = (
        "policy_id: p\nrules:\n"
        "- {id: r, effect: allow, when: {field: a, op: in, value: [1, 2, 3, 4, 5]}}\n"
    )
    assert _refused("list.yaml", yaml_text, SMALL).limit == "list_values"
    when = {"field": "a", "op": "in", "value": [1, 2, 3, 4, 5]}
    document = {"policy_id": "p", "rules": [{"id": "r", "effect": "allow", "when": when}]}
    text = json.dumps(document)
    error = _refused("list.json", text, SMALL)
    column = text.index("[1, 2") + 1
    assert error.reason == f"a list or object of more than 4 items at line 1, column {column}"
    condition = {"StringEquals": {"user.team": ["a", "b", "c", "d", "e"]}}
    iam = {"Statement": [{"Effect": "Allow", "Condition": condition}]}
    assert _refused("list-iam.json", json.dumps(iam), SMALL).limit == "list_values"


def test_the_in_list_bound_holds_when_documents_may_hold_longer_lists() -> None:
    limits = PolicyLimits(rules=100, list_values=4)
    when = {"field": "a", "op": "not_in", "value": [1, 2, 3, 4, 5]}
    document = {"policy_id": "p", "rules": [{"id": "r", "effect": "allow", "when": when}]}
    text = json.dumps(document)
    error = _refused("list.json", text, limits)
    column = text.index('"id"') + 1
    assert error.reason == (
        f"rule r: 'not_in' list of 5 values, more than the 4 allowed at line 1, column {column}"
    )


def test_patterns_and_strings_have_a_length_bound() -> None:
    error = _refused("p.rules", 'POLICY p\nRULE r WHEN a MATCHES "^abcdefgh$" THEN ALLOW\n', SMALL)
    assert error.reason == (
        "rule r: pattern of 10 characters, more than the 8 allowed at line 2, column 1"
    )
    error = _refused("s.rules", 'POLICY p\nRULE r WHEN a == "' + "x" * 30 + '" THEN ALLOW\n', SMALL)
    assert error.reason == "a string of more than 20 characters at line 2, column 18"
    wildcard = {"Statement": [{"Effect": "Allow", "Action": "svc:Get*Thing"}]}
    assert _refused("w.json", json.dumps(wildcard), SMALL).limit == "pattern_length"
    yaml_text = "policy_id: p\nname: " + "y" * 30 + "\n"
    assert _refused("s.yaml", yaml_text, SMALL).reason == (
        "a string of more than 20 characters at line 2, column 7"
    )


def test_a_source_over_the_size_bound_is_refused_unparsed_as_too_large() -> None:
    error = _refused("big.json", " " * 2_000, PolicyLimits(source_bytes=1_000))
    assert isinstance(error, PolicyTooLarge)
    assert error.code == "POLICY_TOO_LARGE"
    assert error.reason == "source is larger than the 1,000 bytes allowed (2,000 bytes)"
    multibyte = '{"policy_id": "p", "name": "' + "é" * 300 + '"}'  # 600 bytes in UTF-8
    assert isinstance(
        _refused("mb.json", multibyte, PolicyLimits(source_bytes=500)), PolicyTooLarge
    )


# --- the settings object ----------------------------------------------------------------------


def test_limits_are_overridden_by_name_and_checked() -> None:
    raised = DEFAULT_LIMITS.with_overrides({"source_bytes": 8 << 20, "rules": 50})
    assert (raised.source_bytes, raised.rules, raised.list_values) == (8 << 20, 50, 10_000)
    with pytest.raises(ValueError, match="unknown limit 'depth'"):
        DEFAULT_LIMITS.with_overrides({"depth": 3})
    with pytest.raises(ValueError, match="must be a positive integer"):
        DEFAULT_LIMITS.with_overrides({"rules": 0})


def test_errors_carry_the_limit_for_an_http_caller() -> None:
    error = _refused("list.rules", "POLICY p\nRULE r WHEN a IN [1, 2, 3, 4, 5] THEN ALLOW\n", SMALL)
    assert error.details == {"file": "list.rules", "line": 2, "column": 18, "limit": "list_values"}


# --- DSL blocks keep their places without copies of the file before them -------------------------


def test_dsl_blocks_hold_only_their_own_text_and_report_file_positions() -> None:
    text = "# header\nPOLICY a RULE x THEN ALLOW\n\n  POLICY b RULE y WHEN z == THEN DENY\n"
    blocks = split_policy_blocks(text)
    assert [block.text.startswith("POLICY") for block in blocks] == [True, True]
    assert sum(len(block.text) for block in blocks) < len(text)
    first, second = parse_source("two.rules", text)
    assert isinstance(first, Policy)
    assert first.rules[0].location is not None
    assert (first.rules[0].location.line, first.rules[0].location.column) == (2, 10)
    assert isinstance(second, UnparsedPolicy)
    assert _where(second.error) == (4, 29)  # type: ignore[arg-type]


def test_an_http_caller_answers_413_for_size_and_422_for_the_other_bounds() -> None:
    assert status_of(PolicyTooLarge.code) == 413
    assert status_of(PolicyLimitExceeded.code) == 422


def test_policies_per_source_in_every_format() -> None:
    few = PolicyLimits(source_policies=2)
    dsl = "".join(f"POLICY p{index} RULE r THEN ALLOW\n" for index in range(3))
    error = _refused("many.rules", dsl, few)
    assert error.reason == "more than 2 policies in one source at line 3, column 1"
    yaml_text = "".join(f"---\npolicy_id: p{index}\n" for index in range(3))
    assert _refused("many.yaml", yaml_text, few).reason == (
        "more than 2 policies in one source at line 5, column 1"
    )
    bundle = json.dumps({"policies": [{"policy_id": f"p{index}"} for index in range(3)]})
    assert _refused("many.json", bundle, few).limit == "source_policies"
