"""The rule DSL (legacy-formats.md, format 3), parsed by a lark LALR grammar into the rule model.

A file may hold several POLICY blocks; a syntax error stops only its own block. Blocks are found
by a small scanner that knows strings and comments, so a `POLICY` inside either is not a start.
"""

from __future__ import annotations

import json
import re
from dataclasses import dataclass
from functools import cache
from typing import Any

from lark import Lark, Token, Transformer, v_args
from lark.exceptions import UnexpectedCharacters, UnexpectedInput, UnexpectedToken

from domain.policy.errors import PolicyLimitExceeded, PolicySyntaxError
from domain.policy.limits import DEFAULT_LIMITS, PolicyLimits, exceeded
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
    """Conditions into the rule model, applied by the parser as it reduces (no parse tree is
    built for them: about 40 % less parsing time); `rule` and `policy` stay trees with positions."""

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


@cache
def _parser() -> Lark:
    """The grammar's parser, built on first use (building it is most of this module's import
    time, which every `acgs` command would otherwise pay)."""
    return Lark(
        GRAMMAR,
        parser="lalr",
        lexer="contextual",
        propagate_positions=True,
        transformer=_ToRuleModel(),
    )


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


def _rule(tree: Any, file: str, block: PolicyBlock) -> Rule:
    rule_id, priority, when, effect, reason, *obligations = tree.children
    return Rule(
        id=str(rule_id),
        effect=Effect(str(effect).lower()),
        when=when,
        priority=int(priority) if priority is not None else 0,
        reason=json.loads(reason) if reason is not None else None,
        obligations=tuple(_obligation(item) for item in obligations),
        location=block.location(file, tree.meta.line, tree.meta.column),
    )


def _policy(tree: Any, file: str, block: PolicyBlock) -> Policy:
    policy_id, name, combining, default, *rules = tree.children
    location = block.location(file, tree.meta.line, tree.meta.column)
    if not POLICY_ID.fullmatch(str(policy_id)):
        raise PolicySyntaxError(f"invalid policy id '{policy_id}'", location)
    parsed_rules = [_rule(rule, file, block) for rule in rules]
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
    """One `POLICY ...` block of a DSL file, starting at `line`, `column` of the file."""

    text: str
    line: int
    column: int
    declared_id: str | None

    def location(self, file: str, line: int, column: int) -> Location:
        """A position inside the block (1-based, as lark gives it) as a place in the file."""
        if line <= 1:
            return Location(file, self.line, self.column + max(column, 1) - 1)
        return Location(file, self.line + line - 1, column)


# Comments, strings (to their end or the end of the line) and the keyword POLICY as a word.
_STRING = r'"[^"\\\n]*(?:\\.[^"\\\n]*)*"?'
_BLOCK_TOKEN = re.compile(r"#[^\n]*|" + _STRING + r"|(?<![\w-])(?P<start>POLICY)(?![\w-])", re.I)


def split_policy_blocks(text: str, at_most: int | None = None) -> list[PolicyBlock]:
    """Cut a DSL file at each POLICY keyword that is outside strings and comments (only the
    first `at_most` blocks when given: enough to tell that a file holds too many)."""
    starts = [token.start() for token in _BLOCK_TOKEN.finditer(text) if token.lastgroup]
    length = len(text)
    if not starts:
        return [PolicyBlock(text, 1, 1, None)] if text.strip() else []
    blocks: list[PolicyBlock] = []
    line, counted = 0, 0
    for number, start in enumerate(starts[:at_most]):
        end = starts[number + 1] if number + 1 < len(starts) else length
        line, counted = line + text.count("\n", counted, start), start  # newlines before start
        column = start - (text.rfind("\n", 0, start) + 1)
        blocks.append(
            PolicyBlock(text[start:end], line + 1, column + 1, _declared_id(text, start + 6))
        )
    if text[: starts[0]].strip() and _has_code(text[: starts[0]]):
        blocks.insert(0, PolicyBlock(text[: starts[0]], 1, 1, None))
    return blocks


def _has_code(text: str) -> bool:
    return any(line.strip() and not line.strip().startswith("#") for line in text.splitlines())


def _declared_id(text: str, index: int) -> str | None:
    while index < len(text) and text[index] in " \t\r\n":
        index += 1
    end = index
    while end < len(text) and end - index < 256 and (text[end].isalnum() or text[end] in "_.-"):
        end += 1
    return text[index:end] or None


# What the bounds of a block look at: comments and strings (skipped whole), brackets, commas,
# and words (NOT nests the condition it precedes; RULE starts a rule).
_BOUND_TOKEN = re.compile(r"#[^\n]*|" + _STRING + r"|[()\[\],]|[^\W\d_][\w-]*")


def check_block_bounds(block: PolicyBlock, file: str, limits: PolicyLimits) -> None:
    """Refuse, before parsing, a block whose nesting, rules, lists or strings break a bound;
    each check stops at the first token over it, so a hostile block costs little to refuse."""
    bounds = _BlockBounds(block, file, limits)
    for token in _BOUND_TOKEN.finditer(block.text):
        bounds.see(token.group(), token.start())


class _BlockBounds:
    """Nesting is counted as the parser will build it: `(` and `[` open a level, and each NOT
    opens one around what follows it until that operand ends (a word, or the closing bracket)."""

    def __init__(self, block: PolicyBlock, file: str, limits: PolicyLimits) -> None:
        self.block, self.file, self.limits = block, file, limits
        self.groups: list[list[Any]] = []  # [char, offset, outer level, commas]
        self.level = self.nots = self.rules = 0

    def see(self, value: str, offset: int) -> None:
        first = value[0]
        if first == "#":
            return
        if first in "([":
            self._open(first, offset)
        elif first in ")]":
            if self.groups:
                self.level = self.groups.pop()[2]
            self.nots = 0
        elif first == ",":
            self._comma()
        elif len(value) - (2 if first == '"' else 0) > self.limits.string_length:
            what = f"a string of more than {self.limits.string_length:,} characters"
            raise _refused(self.block, self.file, offset, "string_length", what)
        elif first != '"' and value.upper() == "NOT":
            self.nots += 1
            self._check_depth("conditions", self.level + self.nots, offset)
        else:
            self.nots = 0
            if first != '"' and value.upper() == "RULE":
                self.rules += 1
                if self.rules > self.limits.rules:
                    what = f"more than {self.limits.rules:,} rules in one policy"
                    raise _refused(self.block, self.file, offset, "rules", what)

    def _open(self, char: str, offset: int) -> None:
        self.groups.append([char, offset, self.level, 0])
        self.level, self.nots = self.level + self.nots + 1, 0
        self._check_depth("conditions" if char == "(" else "lists", self.level, offset)

    def _comma(self) -> None:
        self.nots = 0
        if not self.groups or self.groups[-1][0] != "[":
            return
        group = self.groups[-1]
        group[3] += 1
        if group[3] + 1 > self.limits.list_values:
            what = f"a list of more than {self.limits.list_values:,} values"
            raise _refused(self.block, self.file, group[1], "list_values", what)

    def _check_depth(self, nested: str, level: int, offset: int) -> None:
        if level > self.limits.condition_depth:
            what = f"{nested} nested deeper than {self.limits.condition_depth} levels"
            raise _refused(self.block, self.file, offset, "condition_depth", what)


def _refused(
    block: PolicyBlock, file: str, offset: int, limit: str, what: str
) -> PolicyLimitExceeded:
    line = block.text.count("\n", 0, offset) + 1
    column = offset - (block.text.rfind("\n", 0, offset) + 1) + 1
    error = exceeded(limit, what, block.location(file, line, column))
    error.policy_id = block.declared_id
    return error


def _describe(error: UnexpectedInput) -> str:
    if isinstance(error, UnexpectedToken):
        expected = sorted(_readable(name) for name in error.expected)
        found = "end of input" if error.token.type == "$END" else repr(str(error.token))
        return f"unexpected {found}, expected one of: {', '.join(expected)}"
    if isinstance(error, UnexpectedCharacters):
        return f"unexpected character {error.char!r}"
    return "syntax error"  # no other kind is known to reach here; never an AssertionError


def _readable(terminal: str) -> str:
    pattern = _parser().get_terminal(terminal).pattern
    if pattern.type == "str":
        return repr(pattern.value)
    return terminal.lstrip("_").lower()


def parse_policy_block(
    block: PolicyBlock, file: str, limits: PolicyLimits = DEFAULT_LIMITS
) -> Policy:
    """Parse one block; raises PolicySyntaxError with the file, line and column of the fault,
    or PolicyLimitExceeded (before parsing) when the block breaks a bound."""
    check_block_bounds(block, file, limits)
    try:
        transformed = _parser().parse(block.text)
    except UnexpectedInput as error:
        line = error.line if isinstance(error.line, int) and error.line > 0 else 1
        column = error.column if isinstance(error.column, int) and error.column > 0 else 1
        raise PolicySyntaxError(
            _describe(error), block.location(file, line, column), block.declared_id
        ) from None
    except Exception as error:  # noqa: BLE001 - a fault of the transformer (a path in a list)
        cause = error.__context__ or error
        raise PolicySyntaxError(
            str(getattr(cause, "orig_exc", cause)),
            Location(file, block.line, block.column),
            block.declared_id,
        ) from None
    return _policy(transformed.children[0], file, block)
