"""The console's stylesheet parses as a whole: an unclosed block would swallow every rule
after it (the browser drops them silently)."""

from __future__ import annotations

import re
from pathlib import Path

CSS = Path(__file__).parents[3] / "api" / "console" / "static" / "console.css"


def test_every_block_is_closed_and_none_closes_twice() -> None:
    text = re.sub(r"/\*.*?\*/", "", CSS.read_text(), flags=re.S)
    depth = 0
    for number, line in enumerate(text.splitlines(), 1):
        depth += line.count("{") - line.count("}")
        assert 0 <= depth <= 2, f"line {number}: nesting {depth}: {line}"
    assert depth == 0


def test_top_level_rules_start_outside_any_media_block() -> None:
    """A media query's rules are indented; an unindented rule inside one is a merge slip."""
    text = re.sub(r"/\*.*?\*/", "", CSS.read_text(), flags=re.S)
    depth = 0
    for number, line in enumerate(text.splitlines(), 1):
        if depth == 1 and line and not line.startswith((" ", "}")):
            raise AssertionError(f"line {number} starts a rule inside a block: {line}")
        depth += line.count("{") - line.count("}")
