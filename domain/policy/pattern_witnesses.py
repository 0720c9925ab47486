"""Strings that an RE2 pattern finds a match in, and strings it does not: the gate's probes for
`matches` (and so for IAM wildcards, which become anchored RE2 patterns).

A small parser reads the RE2 syntax (literals, `.`, classes, escapes, groups, alternation,
repetition, anchors, flags) into a tree; candidates are built from the tree and every candidate is
confirmed by RE2 itself, so a construct read loosely here costs a probe, never a wrong one.
"""

from __future__ import annotations

from dataclasses import dataclass
from functools import lru_cache

from domain.policy.reference_evaluator import InvalidPattern, compiled_pattern

# Characters tried for `.`, negated classes and mutations: letters, digits, punctuation, space,
# a newline and non-ASCII, so that classes of every kind find a member.
_POOL = "a0Z_-. ~/:@é\n\u03b19zA"
_MAX_LENGTH = 4096
_MAX_REPEAT = 64
_PERL_CLASSES = {
    "d": "0",
    "D": "a",
    "w": "a",
    "W": "-",
    "s": " ",
    "S": "a",
}
_POSIX_CLASSES = {
    "alnum": "a0",
    "alpha": "aZ",
    "ascii": "a~",
    "blank": " ",
    "cntrl": "\x01",
    "digit": "09",
    "graph": "a~",
    "lower": "az",
    "print": "a ",
    "punct": "-~",
    "space": " ",
    "upper": "AZ",
    "word": "a_",
    "xdigit": "0f",
}
_CONTROL_ESCAPES = {"n": "\n", "t": "\t", "r": "\r", "f": "\f", "v": "\v", "a": "\a"}
_ASSERTIONS = frozenset("bBAz")


class _Unsupported(ValueError):
    """A construct this reader does not build strings for (the pattern still compiles in RE2)."""


@dataclass(frozen=True, slots=True)
class _Chars:
    """One character: any of `choices` (the first is preferred)."""

    choices: str


@dataclass(frozen=True, slots=True)
class _Seq:
    items: tuple[_Node, ...]


@dataclass(frozen=True, slots=True)
class _Alt:
    options: tuple[_Node, ...]


@dataclass(frozen=True, slots=True)
class _Repeat:
    item: _Node
    least: int
    most: int | None


_Node = _Chars | _Seq | _Alt | _Repeat
_EMPTY = _Seq(())


class _Reader:
    def __init__(self, pattern: str) -> None:
        self.text = pattern
        self.at = 0

    def peek(self) -> str:
        return self.text[self.at] if self.at < len(self.text) else ""

    def take(self) -> str:
        char = self.peek()
        if not char:
            raise _Unsupported("unexpected end")
        self.at += 1
        return char

    def alternation(self) -> _Node:
        options = [self.sequence()]
        while self.peek() == "|":
            self.at += 1
            options.append(self.sequence())
        return options[0] if len(options) == 1 else _Alt(tuple(options))

    def sequence(self) -> _Node:
        items: list[_Node] = []
        while self.peek() not in ("", "|", ")"):
            atom = self.atom()
            items.append(self.repetition(atom))
        return items[0] if len(items) == 1 else _Seq(tuple(items))

    def repetition(self, atom: _Node) -> _Node:
        while True:
            char = self.peek()
            if char in ("*", "+", "?"):
                self.at += 1
                least, most = {"*": (0, None), "+": (1, None), "?": (0, 1)}[char]
            elif char == "{" and (bounds := self.bounds()) is not None:
                least, most = bounds
            else:
                return atom
            if self.peek() == "?":  # lazy: the same strings match
                self.at += 1
            atom = _Repeat(atom, least, most)

    def bounds(self) -> tuple[int, int | None] | None:
        close = self.text.find("}", self.at)
        inner = self.text[self.at + 1 : close] if close > 0 else ""
        low, comma, high = inner.partition(",")
        if not low.isdigit() or (high and not high.isdigit()):
            return None
        self.at = close + 1
        least = int(low)
        most = least if not comma else (int(high) if high else None)
        return least, most

    def atom(self) -> _Node:
        char = self.take()
        if char == "(":
            return self.group()
        if char == "[":
            return self.char_class()
        if char == ".":
            return _Chars(_POOL.replace("\n", "") + "\n")
        if char in ("^", "$"):
            return _EMPTY
        if char == "\\":
            return self.escape()
        if char in ("*", "+", "?"):
            raise _Unsupported("repetition of nothing")
        return _Chars(char)

    def group(self) -> _Node:
        if self.peek() == "?":
            self.at += 1
            if self.peek() == "P" or self.peek() == "<":
                if self.peek() == "P":
                    self.at += 1
                close = self.text.find(">", self.at)
                if close < 0:
                    raise _Unsupported("unterminated group name")
                self.at = close + 1
            else:
                while self.peek() not in (":", ")", ""):
                    self.take()  # flags: i, m, s, U and their negation
                if self.take() == ")":
                    return _EMPTY
        inner = self.alternation()
        self.take()  # its ")": an alternation ends there or at the end, where `take` refuses
        return inner

    def escape(self) -> _Node:
        char = self.take()
        if char in _ASSERTIONS:
            return _EMPTY
        if char in _PERL_CLASSES:
            return _Chars(_PERL_CLASSES[char])
        if char in ("p", "P"):
            self.unicode_class_name()
            return _Chars("a\u03b10" if char == "p" else "0 -a")
        if char == "Q":
            end = self.text.find("\\E", self.at)
            literal = self.text[self.at : end if end >= 0 else len(self.text)]
            self.at = end + 2 if end >= 0 else len(self.text)
            return _Seq(tuple(_Chars(c) for c in literal))
        return _Chars(self.escaped_char(char))

    def unicode_class_name(self) -> None:
        if self.peek() == "{":
            close = self.text.find("}", self.at)
            if close < 0:
                raise _Unsupported("unterminated class name")
            self.at = close + 1
        else:
            self.take()

    def escaped_char(self, char: str) -> str:
        if char in _CONTROL_ESCAPES:
            return _CONTROL_ESCAPES[char]
        if char == "x":
            if self.peek() == "{":
                close = self.text.find("}", self.at)
                digits = self.text[self.at + 1 : close]
                self.at = close + 1
            else:
                digits = self.text[self.at : self.at + 2]
                self.at += 2
            try:
                return chr(int(digits, 16))
            except ValueError:
                raise _Unsupported("bad hex escape") from None
        if char.isdigit():
            digits = char
            while len(digits) < 3 and self.peek().isdigit():
                digits += self.take()
            return chr(int(digits, 8))
        return char

    def char_class(self) -> _Node:
        negated = self.peek() == "^"
        if negated:
            self.at += 1
        members: list[str] = []
        ranges: list[tuple[str, str]] = []
        first = True
        while first or self.peek() != "]":
            first = False
            char = self.take()
            if char == "[" and self.peek() == ":":
                close = self.text.find(":]", self.at)
                name = self.text[self.at + 1 : close].lstrip("^")
                self.at = close + 2
                members.extend(_POSIX_CLASSES.get(name, "a"))
                continue
            if char == "\\":
                escaped = self.take()
                if escaped in _PERL_CLASSES:
                    members.extend(_PERL_CLASSES[escaped])
                    continue
                if escaped in ("p", "P"):
                    self.unicode_class_name()
                    members.extend("a\u03b1")
                    continue
                char = self.escaped_char(escaped)
            if self.peek() == "-" and self.text[self.at + 1 : self.at + 2] not in ("]", ""):
                self.at += 1
                high = self.take()
                if high == "\\":
                    high = self.escaped_char(self.take())
                ranges.append((char, high))
                members.extend((char, high))
            else:
                members.append(char)
        self.at += 1
        if not negated:
            return _Chars("".join(dict.fromkeys(members)))

        def excluded(candidate: str) -> bool:
            return candidate in members or any(low <= candidate <= high for low, high in ranges)

        outside = "".join(c for c in _POOL if not excluded(c))
        return _Chars(outside or "\x7f")


def _build(node: _Node, variant: int) -> str:
    """Variant 0 is the shortest string; higher variants repeat more and pick other options."""
    if isinstance(node, _Chars):
        return node.choices[variant % len(node.choices)]
    if isinstance(node, _Seq):
        return "".join(_build(item, variant) for item in node.items)
    if isinstance(node, _Alt):
        return _build(node.options[variant % len(node.options)], variant)
    extra = min(variant, _MAX_REPEAT)
    count = node.least + extra if node.most is None else min(node.most, node.least + extra)
    if count > _MAX_REPEAT * 4:
        raise _Unsupported("repetition too long for a probe")
    return "".join(_build(node.item, variant) for _ in range(count))


def _searches(pattern: str, text: str) -> bool:
    return compiled_pattern(pattern).search(text) is not None


@lru_cache(maxsize=4096)
def matching_strings(pattern: str) -> tuple[str, ...]:
    """Up to a few strings RE2 finds a match in (empty when none was found)."""
    try:
        compiled_pattern(pattern)
    except InvalidPattern:
        return ()
    candidates: list[str] = []
    try:
        tree = _Reader(pattern).alternation()
        candidates.extend(_build(tree, variant) for variant in range(4))
    except (_Unsupported, RecursionError):
        pass
    candidates.extend(("", "a", "0", "test"))
    found = [
        text
        for text in dict.fromkeys(candidates)
        if len(text) <= _MAX_LENGTH and _searches(pattern, text)
    ]
    return tuple(found[:3])


@lru_cache(maxsize=4096)
def non_matching_strings(pattern: str) -> tuple[str, ...]:
    """Up to a few strings RE2 finds no match in: near misses of the matching ones first."""
    try:
        compiled_pattern(pattern)
    except InvalidPattern:
        return ()
    candidates: list[str] = []
    for text in matching_strings(pattern)[:2]:
        if text:
            middle = len(text) // 2
            candidates += [text[:-1], text[1:], text[:middle] + text[middle + 1 :]]
            candidates += [text + "~", "~" + text, text.swapcase()]
            candidates += [text[:index] + "\x7f" + text[index + 1 :] for index in (0, middle)]
    candidates += ["", "~", "0", "a", "\n", "A-1"]
    found = [text for text in dict.fromkeys(candidates) if not _searches(pattern, text)]
    return tuple(found[:2])
