"""WCAG AA contrast of the console's colours, computed from console.css itself: every rule that
sets a text colour is read against its own background (or the page's), and must reach 4.5:1;
the colours that mark a control's edge or the keyboard focus must reach 3:1 against the page
(non-text contrast). The chart's line colours in audit.js are graphics: 3:1 as well."""

from __future__ import annotations

import re
from pathlib import Path

import pytest

STATIC = Path(__file__).resolve().parents[3] / "api" / "console" / "static"
CSS = (STATIC / "console.css").read_text()
TEXT_MINIMUM = 4.5
NON_TEXT_MINIMUM = 3.0
_HEX = re.compile(r"#([0-9a-fA-F]{6}|[0-9a-fA-F]{3})\b")


def _strip_comments(css: str) -> str:
    return re.sub(r"/\*.*?\*/", "", css, flags=re.DOTALL)


def variables(css: str) -> dict[str, str]:
    root = re.search(r":root\s*\{([^}]*)\}", _strip_comments(css))
    assert root is not None
    return dict(re.findall(r"(--[a-z-]+)\s*:\s*(#[0-9a-fA-F]{3,6})", root.group(1)))


def rules(css: str) -> list[tuple[str, dict[str, str]]]:
    """(selector, declarations) of every innermost rule (those inside @media too)."""
    found = []
    for selector, body in re.findall(r"([^{}]+)\{([^{}]*)\}", _strip_comments(css)):
        declarations = {}
        for part in body.split(";"):
            if ":" in part:
                name, value = part.split(":", 1)
                declarations[name.strip()] = value.strip()
        found.append((selector.strip().split("{")[-1].strip(), declarations))
    return found


def resolve(value: str, names: dict[str, str]) -> str | None:
    """The hex colour a value names (a var() of :root, or a literal); None for anything else
    (currentColor, inherit, a gradient...)."""
    var = re.fullmatch(r"var\((--[a-z-]+)\)", value.strip())
    if var:
        return names[var.group(1)]
    literal = _HEX.search(value)
    if literal and value.strip().lower() in {literal.group(0).lower()} | {"white", "black"}:
        return literal.group(0)
    return {"white": "#ffffff", "black": "#000000"}.get(value.strip().lower())


def luminance(colour: str) -> float:
    digits = colour.lstrip("#")
    if len(digits) == 3:
        digits = "".join(c * 2 for c in digits)
    channels = [int(digits[i : i + 2], 16) / 255 for i in (0, 2, 4)]
    linear = [c / 12.92 if c <= 0.04045 else ((c + 0.055) / 1.055) ** 2.4 for c in channels]
    return 0.2126 * linear[0] + 0.7152 * linear[1] + 0.0722 * linear[2]


def ratio(one: str, other: str) -> float:
    light, dark = sorted((luminance(one), luminance(other)), reverse=True)
    return (light + 0.05) / (dark + 0.05)


def test_the_formula_against_known_pairs() -> None:
    assert ratio("#000000", "#ffffff") == pytest.approx(21.0)
    assert ratio("#ffffff", "#ffffff") == pytest.approx(1.0)
    assert ratio("#767676", "#ffffff") == pytest.approx(4.54, abs=0.01)  # the classic AA grey
    assert ratio("#777777", "#ffffff") < TEXT_MINIMUM


def text_pairs(css: str) -> list[tuple[str, str, str]]:
    """(selector, text colour, background) of every rule that sets a text colour."""
    names = variables(css)
    page = names["--bg"]
    pairs = []
    for selector, declarations in rules(css):
        if "color" not in declarations:
            continue
        fg = resolve(declarations["color"], names)
        if fg is None:
            continue
        background = declarations.get("background-color", declarations.get("background"))
        bg = resolve(background, names) if background else page
        pairs.append((selector, fg, bg or page))
    return pairs


def test_every_text_colour_reaches_aa_on_its_background() -> None:
    pairs = text_pairs(CSS)
    assert len(pairs) >= 10  # the rules were found at all
    selectors = {s for s, _, _ in pairs}
    assert {"body", "a", ".error", "button, .button", ".who"} <= selectors
    weak = [(s, fg, bg, round(ratio(fg, bg), 2)) for s, fg, bg in pairs]
    weak = [w for w in weak if w[3] < TEXT_MINIMUM]
    assert weak == []


def test_text_on_a_coloured_button_reaches_aa() -> None:
    """Buttons are white text on the link colour, and on the error colour when dangerous."""
    names = variables(CSS)
    for background in ("--link", "--error"):
        assert ratio("#ffffff", names[background]) >= TEXT_MINIMUM, background


def test_status_colours_reach_aa_on_the_page_and_the_panel() -> None:
    names = variables(CSS)
    for name in ("--fg", "--muted", "--link", "--error", "--ok", "--warn"):
        for background in ("--bg", "--panel"):
            assert ratio(names[name], names[background]) >= TEXT_MINIMUM, (name, background)


def test_control_edges_and_the_focus_ring_reach_three_to_one() -> None:
    names = variables(CSS)
    for name in ("--control", "--focus", "--fg"):
        assert ratio(names[name], names["--bg"]) >= NON_TEXT_MINIMUM, name
    outline = [d for s, d in rules(CSS) if ":focus-visible" in s and "outline" in d]
    assert outline
    assert "var(--focus)" in outline[0]["outline"]
    assert re.match(r"[3-9]px", outline[0]["outline"])  # wide enough to see
    # set off from the control, so the ring is seen against the page, whatever the control's
    # own colour (a blue button's ring is not measured against the blue)
    assert outline[0]["outline-offset"] == "2px"


def test_chart_lines_reach_three_to_one() -> None:
    script = (STATIC / "audit.js").read_text()
    block = re.search(r"COLOURS = \{([^}]*)\}", script)
    assert block is not None
    colours = dict(re.findall(r'(\w+): "(#[0-9a-fA-F]{6})"', block.group(1)))
    assert set(colours) == {"success", "failure", "denied"}
    page = variables(CSS)["--bg"]
    for name, colour in colours.items():
        assert ratio(colour, page) >= NON_TEXT_MINIMUM, name


def test_a_weak_colour_would_be_caught() -> None:
    """The check reads what the file says: a pale text colour in a rule fails it."""
    pale = CSS + "\n.faint { color: #999; }\n"
    weak = [p for p in text_pairs(pale) if ratio(p[1], p[2]) < TEXT_MINIMUM]
    assert [p[0] for p in weak] == [".faint"]
