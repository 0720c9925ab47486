"""The rule DSL: grammar, meaning of its constructs, and syntax errors that stop one policy only."""

from __future__ import annotations

from domain.policy.dsl_format import split_policy_blocks
from domain.policy.rule_model import AllOf, Comparison, Effect, Not, Obligation, Operator, Policy
from domain.policy.sources import UnparsedPolicy, parse_source

EXAMPLE = """# comment to end of line; keywords are case-insensitive
POLICY pii-access "PII access"
COMBINE deny-overrides            # optional
DEFAULT deny                      # optional

RULE analysts-read PRIORITY 10
  WHEN user.role == "analyst" AND action IN ["read", "list"] AND NOT resource.classified
  THEN ALLOW
  OBLIGE audit                    # optional, repeatable
  OBLIGE notify "dpo@acme.com"

RULE no-export
  WHEN action == "export" AND resource.tags CONTAINS "pii"
  THEN DENY BECAUSE "PII may not be exported"
"""


def _only_policy(text: str) -> Policy:
    [parsed] = parse_source("example.rules", text)
    assert isinstance(parsed, Policy), parsed
    return parsed


def test_the_specification_example_parses_into_the_rule_model() -> None:
    policy = _only_policy(EXAMPLE)
    assert policy.policy_id == "pii-access"
    assert policy.name == "PII access"
    first, second = policy.rules
    assert first.priority == 10
    assert first.effect is Effect.ALLOW
    assert first.when == AllOf(
        (
            Comparison("user.role", Operator.EQ, "analyst"),
            Comparison("action", Operator.IN, ["read", "list"]),
            Not(Comparison("resource.classified", Operator.EQ, value=True)),
        )
    )
    assert first.obligations == (
        Obligation.of({"type": "audit"}),
        Obligation.of({"type": "notify", "target": "dpo@acme.com"}),
    )
    assert second.reason == "PII may not be exported"
    assert (second.location.line, second.location.column) == (12, 1)  # type: ignore[union-attr]


def test_keywords_are_case_insensitive() -> None:
    policy = _only_policy("policy p rule r when user.a == 1 then allow oblige audit")
    assert policy.rules[0].effect is Effect.ALLOW


def test_not_in_is_the_not_in_operator_while_not_around_in_negates_in() -> None:
    policy = _only_policy(
        "POLICY p RULE a WHEN user.x NOT IN [1] THEN ALLOW "
        "RULE b WHEN NOT (user.x IN [1]) THEN ALLOW"
    )
    assert policy.rules[0].when == Comparison("user.x", Operator.NOT_IN, [1])
    assert policy.rules[1].when == Not(Comparison("user.x", Operator.IN, [1]))


def test_a_path_operand_compares_two_request_fields() -> None:
    policy = _only_policy("POLICY p RULE a WHEN resource.owner == user.id THEN ALLOW")
    assert policy.rules[0].when == Comparison("resource.owner", Operator.EQ, value_field="user.id")


def test_strings_take_json_escapes_and_numbers_are_json_numbers() -> None:
    policy = _only_policy(
        'POLICY p RULE a WHEN user.n == "caf\\u00e9 \\"x\\"" OR user.v >= -1.5e2 THEN ALLOW'
    )
    comparisons = policy.rules[0].when.members  # type: ignore[union-attr]
    assert comparisons[0].value == 'café "x"'
    assert comparisons[1].value == -150.0


def test_and_binds_tighter_than_or() -> None:
    policy = _only_policy(
        "POLICY p RULE a WHEN user.a EXISTS OR user.b EXISTS AND user.c EXISTS THEN DENY"
    )
    when = policy.rules[0].when
    assert type(when).__name__ == "AnyOf"
    assert type(when.members[1]).__name__ == "AllOf"  # type: ignore[union-attr]


def test_a_syntax_error_names_file_line_and_column_and_stops_only_its_policy() -> None:
    text = (
        "POLICY good-one RULE a THEN ALLOW\n"
        "POLICY broken\n"
        "RULE x WHEN user.a == THEN ALLOW\n"
        "POLICY good-two RULE b THEN DENY\n"
    )
    parsed = parse_source("mixed.rules", text)
    assert [type(item).__name__ for item in parsed] == ["Policy", "UnparsedPolicy", "Policy"]
    broken = parsed[1]
    assert isinstance(broken, UnparsedPolicy)
    assert broken.name == "broken"
    assert (broken.error.location.file, broken.error.location.line) == ("mixed.rules", 3)
    assert broken.error.location.column == 23
    assert "THEN" in broken.error.reason


def test_policy_inside_a_string_or_comment_does_not_start_a_policy() -> None:
    text = 'POLICY p # POLICY q\nRULE a WHEN user.note == "POLICY z" THEN ALLOW\n'
    policy = _only_policy(text)
    assert policy.rules[0].when == Comparison("user.note", Operator.EQ, "POLICY z")


def test_duplicate_rule_ids_are_a_syntax_error_of_that_policy() -> None:
    [parsed] = parse_source("d.rules", "POLICY p RULE a THEN ALLOW RULE a THEN DENY")
    assert isinstance(parsed, UnparsedPolicy)
    assert "duplicate rule id" in parsed.error.reason


def test_a_path_inside_a_list_fails_only_its_policy_with_the_reason() -> None:
    text = (
        'POLICY bad\nRULE r WHEN action IN ["read", user.role] THEN ALLOW\n'
        'POLICY good\nRULE r WHEN action IN ["read"] THEN ALLOW\n'
    )
    bad, good = parse_source("lists.rules", text)
    assert isinstance(bad, UnparsedPolicy)
    assert bad.name == "bad"
    assert "a list may hold literals only" in bad.error.reason
    assert isinstance(good, Policy)


def test_not_exists_tests_that_a_field_is_absent() -> None:
    policy = _only_policy("POLICY p RULE r WHEN user.mfa NOT EXISTS THEN ALLOW")
    assert policy.rules[0].when == Comparison("user.mfa", Operator.NOT_EXISTS)


def test_a_policy_id_beyond_ascii_letters_digits_and_dot_dash_underscore_is_refused() -> None:
    [parsed] = parse_source("ids.rules", "POLICY caf\u00e9 RULE r THEN ALLOW")
    assert isinstance(parsed, UnparsedPolicy)
    assert parsed.error.reason == "invalid policy id 'caf\u00e9'"


def test_text_without_a_policy_keyword_is_one_unparsed_block_and_blank_text_none() -> None:
    [parsed] = parse_source("stray.rules", "RULE r THEN ALLOW\n")
    assert isinstance(parsed, UnparsedPolicy)
    assert parsed.error.reason == "unexpected 'RULE', expected one of: 'POLICY'"
    assert split_policy_blocks("") == []
    assert split_policy_blocks(" \n\t\n") == []


def test_code_before_the_first_policy_is_a_block_of_its_own_but_comments_are_not() -> None:
    stray, policy = parse_source(
        "lead.rules", "RULE stray THEN ALLOW\nPOLICY p RULE a THEN ALLOW\n"
    )
    assert isinstance(stray, UnparsedPolicy)
    assert isinstance(policy, Policy)
    assert [
        p.policy_id for p in parse_source("c.rules", "# header\n\nPOLICY p RULE a THEN ALLOW")
    ] == ["p"]


def test_a_stray_closing_bracket_or_comma_is_a_syntax_error_at_its_place() -> None:
    closing, comma = (
        parse_source("s.rules", "POLICY p RULE r WHEN user.a) THEN ALLOW")[0],
        parse_source("s.rules", "POLICY p RULE r WHEN (user.a, user.b) THEN ALLOW")[0],
    )
    assert isinstance(closing, UnparsedPolicy)
    assert closing.error.reason == "unexpected ')', expected one of: 'THEN'"
    assert isinstance(comma, UnparsedPolicy)
    assert comma.error.reason.startswith("unexpected ',', expected one of: ')', 'AND'")
    assert (comma.error.location.line, comma.error.location.column) == (1, 29)
