"""The strings built for an RE2 pattern, construct by construct: what RE2 finds a match in, and
near misses it does not; and the reader refusing, not misreading, what is not RE2 syntax."""

from __future__ import annotations

import pytest

from domain.policy.pattern_witnesses import (
    _Reader,
    _Unsupported,
    matching_strings,
    non_matching_strings,
)


@pytest.mark.parametrize(
    ("pattern", "matching", "missing"),
    [
        ("ab+?c", ("abc", "abbc", "abbbc"), ("ab", "bc")),  # lazy: the same strings
        ("(ab){2,3}?", ("abab", "ababab"), ("aba", "bab")),
        ("a{x}b", ("a{x}b",), ("a{x}", "{x}b")),  # not bounds: literal braces
        ("a{1,x}", ("a{1,x}",), ("a{1,x", "{1,x}")),
        ("(?i:AB)c", ("ABc",), ("AB", "Bc")),
        ("(?im)ab", ("ab",), ("a", "b")),
        ("(?<n>ab)c", ("abc",), ("ab", "bc")),
        ("(?P<n>ab)c", ("abc",), ("ab", "bc")),
        (r"\p{Greek}+", ("\u03b1\u03b1",), ("", "~")),
        (r"\pN", ("0",), ("", "\x7f")),
        (r"\x{41}b", ("Ab",), ("A", "b")),
        (r"\x41b", ("Ab",), ("A", "b")),
        (r"\101b", ("Ab",), ("A", "b")),
        (r"\Ax\z", ("x",), ("", "x~")),  # assertions add no character
        (r"[\d_]x", ("0x", "_x"), ("0", "x")),
        (r"[\pL]y", ("ay", "\u03b1y"), ("a", "y")),
        (r"[\p{Greek}]z", ("\u03b1z",), ("\u03b1", "z")),
        (r"[\x{41}-\x{5A}]q", ("Aq", "Zq"), ("A", "q")),
        (r"[\n-\r]", ("\n", "\r"), ("", "\x7f")),
        (r"[^\D]", ("0",), ("", "\x7f")),
        ("[[:^alpha:]]", ("0",), ("", "a")),
    ],
)
def test_each_construct_gets_strings_that_match_and_near_misses(
    pattern: str, matching: tuple[str, ...], missing: tuple[str, ...]
) -> None:
    assert matching_strings(pattern) == matching
    assert non_matching_strings(pattern) == missing


def test_a_pattern_re2_refuses_has_no_strings() -> None:
    assert matching_strings("(a") == ()
    assert non_matching_strings("(a") == ()


@pytest.mark.parametrize(
    ("pattern", "reason"),
    [
        ("(a", "unexpected end"),
        ("a\\", "unexpected end"),
        ("*a", "repetition of nothing"),
        ("(?P<name", "unterminated group name"),
        (r"\p{Greek", "unterminated class name"),
        (r"\x{zz}", "bad hex escape"),
    ],
)
def test_the_reader_refuses_what_is_not_re2_syntax(pattern: str, reason: str) -> None:
    with pytest.raises(_Unsupported, match=reason):
        _Reader(pattern).alternation()
