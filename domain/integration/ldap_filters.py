"""LDAP search filters with placeholders (`(uid={username})`, `(member={user_dn})`), filled in
with every value escaped as RFC 4515 requires, so a user name cannot change the filter."""

from __future__ import annotations

_ESCAPES = {"\\": r"\5c", "*": r"\2a", "(": r"\28", ")": r"\29", "\x00": r"\00"}


def escape_filter_value(value: str) -> str:
    """RFC 4515 section 3: backslash, asterisk, parentheses and NUL as `\\XX` escapes."""
    return "".join(_ESCAPES.get(char, char) for char in value)


def render_filter(template: str, **values: str) -> str:
    """`template` with each `{name}` replaced by the escaped value."""
    rendered = template
    for name, value in values.items():
        rendered = rendered.replace("{" + name + "}", escape_filter_value(value))
    return rendered
