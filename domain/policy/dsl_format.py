"""The rule DSL (legacy-formats.md, format 3), parsed by a lark LALR grammar into the rule model.

A file may hold several POLICY blocks; a syntax error stops only its own block. Blocks are found
by a small scanner that knows strings and comments, so a `POLICY` inside either is not a start.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from typing import Any

from lark import Lark, Token, Transformer, v_args
from lark.exceptions import UnexpectedCharacters, UnexpectedEOF, UnexpectedInput, UnexpectedToken

from domain.policy.errors import PolicySyntaxError
from domain.policy.model_document import POLICY_ID
from domain.policy.rule_model import (
    AllOf,
    AnyOf,
    Combining,
    Comparison,
    Condition,
    Effect,
    Location,
    Not,
    Obligation,
    Operator,
    Policy,
    Rule,
)

GRAMMAR = r"""
start: policy

policy: _POLICY IDENT [STRING] [_COMBINE COMBINING] [_DEFAULT EFFECT] rule*
rule: _RULE IDENT [_PRIORITY INT] [_WHEN expr] _THEN EFFECT [_BECAUSE STRING] oblige*
oblige: _OBLIGE IDENT [STRING]

?expr: and_expr (_OR and_expr)*         -> any_of
?and_expr: unary (_AND unary)*          -> all_of
?unary: _NOT unary                      -> negation
      | "(" expr ")"
      | test

test: path CMP operand                  -> compare
    | path _IN literal_list             -> member
    | path _NOT _IN literal_list        -> not_member
    | path _CONTAINS operand            -> contains
    | path _STARTS _WITH STRING         -> starts_with
    | path _ENDS _WITH STRING           -> ends_with
    | path _MATCHES STRING              -> matches
    | path _EXISTS                      -> exists
    | path _NOT _EXISTS                 -> not_exists
    | path                              -> truthy

?operand: literal | literal_list | path
literal: STRING | NUMBER | TRUE | FALSE | NULL
literal_list: "[" [operand ("," operand)*] "]"
path: IDENT ("." IDENT)*

CMP: "==" | "!=" | ">=" | "<=" | ">" | "<"
COMBINING.2: /(deny-overrides|permit-overrides|first-applicable)(?![A-Za-z0-9_-])/i
EFFECT.2: /(allow|deny)(?![A-Za-z0-9_-])/i
_POLICY: "POLICY"i
_COMBINE: "COMBINE"i
_DEFAULT: "DEFAULT"i
_RULE: "RULE"i
_PRIORITY: "PRIORITY"i
_WHEN: "WHEN"i
_THEN: "THEN"i
_BECAUSE: "BECAUSE"i
_OBLIGE: "OBLIGE"i
_OR: "OR"i
_AND: "AND"i
_NOT: "NOT"i
_IN: "IN"i
_CONTAINS: "CONTAINS"i
_STARTS: "STARTS"i
_ENDS: "ENDS"i
_WITH: "WITH"i
_MATCHES: "MATCHES"i
_EXISTS: "EXISTS"i
TRUE: "true"i
FALSE: "false"i
NULL: "null"i
IDENT: /(?!(?:and|or|not|in|then|when|rule|policy|because|oblige)(?![\w-]))[A-Za-z][\w-]*/i
STRING: /"(?:[^"\\\x00-\x1f]|\\["\\\/bfnrt]|\\u[0-9a-fA-F]{4})*"/
NUMBER: /-?(?:0|[1-9][0-9]*)(?:\.[0-9]+)?(?:[eE][+-]?[0-9]+)?/
INT: /-?[0-9]+/
COMMENT: /#[^\n]*/
%ignore COMMENT
%ignore /[ \t\r\n\f]+/
"""

_PARSER = Lark(GRAMMAR, parser="lalr", lexer="contextual", propagate_positions=True)

_CMP_OPERATORS = {
    "==": Operator.EQ,
    "!=": Operator.NE,
    ">": Operator.GT,
    ">=": Operator.GTE,
    "<": Operator.LT,
    "<=": Operator.LTE,
}


@dataclass(frozen=True, slots=True)
class _PathRef:
    path: str


@v_args(inline=True)
class _ToRuleModel(Transformer[Token, Any]):
    def __init__(self, file: str) -> None:
        super().__init__()
        self.file = file

    def path(self, *segments: Token) -> _PathRef:
        return _PathRef(".".join(str(segment) for segment in segments))

    def literal(self, token: Token) -> Any:
        if token.type == "STRING":
            return json.loads(token)
        if token.type == "NUMBER":
            text = str(token)
            return float(text) if any(c in text for c in ".eE") else int(text)
        return {"TRUE": True, "FALSE": False, "NULL": None}[token.type]

    def literal_list(self, *items: Any) -> list[Any]:
        return [] if items == (None,) else list(items)

    def compare(self, path: _PathRef, cmp: Token, operand: Any) -> Comparison:
        return _comparison(path, _CMP_OPERATORS[str(cmp)], operand)

    def member(self, path: _PathRef, items: list[Any]) -> Comparison:
        return _comparison(path, Operator.IN, items)

    def not_member(self, path: _PathRef, items: list[Any]) -> Comparison:
        return _comparison(path, Operator.NOT_IN, items)

    def contains(self, path: _PathRef, operand: Any) -> Comparison:
        return _comparison(path, Operator.CONTAINS, operand)

    def starts_with(self, path: _PathRef, text: Token) -> Comparison:
        return Comparison(path.path, Operator.STARTS_WITH, json.loads(text))

    def ends_with(self, path: _PathRef, text: Token) -> Comparison:
        return Comparison(path.path, Operator.ENDS_WITH, json.loads(text))

    def matches(self, path: _PathRef, text: Token) -> Comparison:
        return Comparison(path.path, Operator.MATCHES, json.loads(text))

    def exists(self, path: _PathRef) -> Comparison:
        return Comparison(path.path, Operator.EXISTS)

    def not_exists(self, path: _PathRef) -> Comparison:
        return Comparison(path.path, Operator.NOT_EXISTS)

    def truthy(self, path: _PathRef) -> Comparison:
        return Comparison(path.path, Operator.EQ, value=True)

    def negation(self, member: Condition) -> Not:
        return Not(member)

    def any_of(self, *members: Condition) -> Condition:
        return members[0] if len(members) == 1 else AnyOf(members)

    def all_of(self, *members: Condition) -> Condition:
        return members[0] if len(members) == 1 else AllOf(members)


def _comparison(path: _PathRef, op: Operator, operand: Any) -> Comparison:
    if isinstance(operand, _PathRef):
        return Comparison(path.path, op, value_field=operand.path)
    if isinstance(operand, list) and any(isinstance(item, _PathRef) for item in operand):
        raise ValueError("a list may hold literals only")
    return Comparison(path.path, op, operand)


def _obligation(tree: Any) -> Obligation:
    kind, target = tree.children
    attributes: dict[str, Any] = {"type": str(kind)}
    if target is not None:
        attributes["target"] = json.loads(target)
    return Obligation.of(attributes)


def _rule(tree: Any, file: str) -> Rule:
    rule_id, priority, when, effect, reason, *obligations = tree.children
    return Rule(
        id=str(rule_id),
        effect=Effect(str(effect).lower()),
        when=when,
        priority=int(priority) if priority is not None else 0,
        reason=json.loads(reason) if reason is not None else None,
        obligations=tuple(_obligation(item) for item in obligations),
        location=Location(file, tree.meta.line, tree.meta.column),
    )


def _policy(tree: Any, file: str) -> Policy:
    policy_id, name, combining, default, *rules = tree.children
    location = Location(file, tree.meta.line, tree.meta.column)
    if not POLICY_ID.fullmatch(str(policy_id)):
        raise PolicySyntaxError(f"invalid policy id '{policy_id}'", location)
    parsed_rules = [_rule(rule, file) for rule in rules]
    seen: set[str] = set()
    for rule in parsed_rules:
        if rule.id in seen:
            raise PolicySyntaxError(
                f"duplicate rule id '{rule.id}'", rule.location or location, str(policy_id)
            )
        seen.add(rule.id)
    return Policy(
        policy_id=str(policy_id),
        rules=tuple(parsed_rules),
        combining=Combining(str(combining).lower()) if combining else Combining.DENY_OVERRIDES,
        default=Effect(str(default).lower()) if default else Effect.DENY,
        name=json.loads(name) if name is not None else None,
        source_format="dsl",
        location=location,
    )


@dataclass(frozen=True, slots=True)
class PolicyBlock:
    """One `POLICY ...` block of a DSL file, padded so that positions stay those of the file."""

    text: str
    line: int
    column: int
    declared_id: str | None


def split_policy_blocks(text: str) -> list[PolicyBlock]:
    """Cut a DSL file at each POLICY keyword that is outside strings and comments."""
    starts: list[int] = []
    index, length = 0, len(text)
    while index < length:
        char = text[index]
        if char == "#":
            newline = text.find("\n", index)
            index = length if newline < 0 else newline
        elif char == '"':
            index = _end_of_string(text, index)
        elif char.isalpha():
            end = index
            while end < length and (text[end].isalnum() or text[end] in "_-"):
                end += 1
            if text[index:end].upper() == "POLICY":
                starts.append(index)
            index = end
        else:
            index += 1
    if not starts:
        return [PolicyBlock(text, 1, 1, None)] if text.strip() else []
    blocks: list[PolicyBlock] = []
    for number, start in enumerate(starts):
        end = starts[number + 1] if number + 1 < len(starts) else length
        line = text.count("\n", 0, start)
        column = start - (text.rfind("\n", 0, start) + 1)
        padded = "\n" * line + " " * column + text[start:end]
        blocks.append(PolicyBlock(padded, line + 1, column + 1, _declared_id(text, start + 6)))
    if text[: starts[0]].strip() and _has_code(text[: starts[0]]):
        blocks.insert(0, PolicyBlock(text[: starts[0]], 1, 1, None))
    return blocks


def _has_code(text: str) -> bool:
    return any(line.strip() and not line.strip().startswith("#") for line in text.splitlines())


def _end_of_string(text: str, index: int) -> int:
    index += 1
    while index < len(text) and text[index] not in '"\n':
        index += 2 if text[index] == "\\" else 1
    return index + 1


def _declared_id(text: str, index: int) -> str | None:
    while index < len(text) and text[index] in " \t\r\n":
        index += 1
    end = index
    while end < len(text) and (text[end].isalnum() or text[end] in "_.-"):
        end += 1
    return text[index:end] or None


def _describe(error: UnexpectedInput) -> str:
    if isinstance(error, UnexpectedToken):
        expected = sorted(_readable(name) for name in error.expected)
        found = "end of input" if error.token.type == "$END" else repr(str(error.token))
        return f"unexpected {found}, expected one of: {', '.join(expected)}"
    if isinstance(error, UnexpectedCharacters):
        return f"unexpected character {error.char!r}"
    if isinstance(error, UnexpectedEOF):
        return "unexpected end of input"
    return "syntax error"


def _readable(terminal: str) -> str:
    pattern = _PARSER.get_terminal(terminal).pattern
    if pattern.type == "str":
        return repr(pattern.value)
    return terminal.lstrip("_").lower()


def parse_policy_block(block: PolicyBlock, file: str) -> Policy:
    """Parse one block; raises PolicySyntaxError with the file, line and column of the fault."""
    try:
        tree = _PARSER.parse(block.text)
        transformed = _ToRuleModel(file).transform(tree)
    except UnexpectedInput as error:
        line = error.line if isinstance(error.line, int) and error.line > 0 else block.line
        column = error.column if isinstance(error.column, int) and error.column > 0 else 1
        raise PolicySyntaxError(
            _describe(error), Location(file, line, column), block.declared_id
        ) from None
    except Exception as error:  # noqa: BLE001 - lark wraps transformer faults (a path in a list)
        cause = error.__context__ or error
        raise PolicySyntaxError(
            str(getattr(cause, "orig_exc", cause)),
            Location(file, block.line, block.column),
            block.declared_id,
        ) from None
    return _policy(transformed.children[0], file)
