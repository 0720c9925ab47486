"""How an integration's configuration is described and checked: typed fields (some marked
secret) and rules across fields. `ConfigSchema.validate` reports every problem at once, each
named by its path (`config.server_url`), and never echoes a value (it may be a secret)."""

from __future__ import annotations

import re
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from enum import StrEnum
from typing import Any
from urllib.parse import urlsplit

from domain.errors import ValidationFailed

Problem = tuple[str, str]  # (config key, message)
Rule = Callable[[dict[str, Any], bool], list[Problem]]  # (config, production) -> problems

MAX_STRING = 4096
MAX_PEM = 65536
MAX_LIST = 100
_PLACEHOLDER_RE = re.compile(r"\{([^{}]*)\}")
_DN_RE = re.compile(r"^[A-Za-z][A-Za-z0-9-]*=[^,]+(?:,\s*[A-Za-z][A-Za-z0-9-]*=[^,]+)*$")
PEM_CERTIFICATE = "-----BEGIN CERTIFICATE-----"


class Kind(StrEnum):
    STRING = "string"
    BOOL = "boolean"
    INT = "integer"
    STRING_LIST = "list of strings"
    STRING_MAP = "object of strings"


@dataclass(frozen=True)
class ConfigField:
    name: str
    kind: Kind
    description: str
    example: Any
    required: bool = False
    default: Any = None  # None: absent unless given
    secret: bool = False
    choices: tuple[str, ...] = ()
    bounds: tuple[int, int] | None = None
    map_keys: tuple[str, ...] = ()  # the keys a STRING_MAP may hold
    check: Callable[[Any], str | None] | None = None  # a message when the value is wrong
    max_length: int = MAX_STRING

    def problems(self, value: Any) -> list[str]:
        """What is wrong with `value` for this field (empty when it is right)."""
        wrong_type = _type_problem(self, value)
        if wrong_type:
            return [wrong_type]
        found: list[str] = []
        items = value if self.kind is Kind.STRING_LIST else [value]
        for item in items:
            if self.choices and item not in self.choices:
                found.append(f"must be one of {', '.join(self.choices)}")
            if self.check is not None and (message := self.check(item)):
                found.append(message)
        if self.bounds is not None and not self.bounds[0] <= value <= self.bounds[1]:
            found.append(f"must be between {self.bounds[0]} and {self.bounds[1]}")
        return found[:1]


def _type_problem(spec: ConfigField, value: Any) -> str | None:  # noqa: PLR0911 - one per kind
    if spec.kind is Kind.BOOL:
        return None if isinstance(value, bool) else "must be a boolean"
    if spec.kind is Kind.INT:
        ok = isinstance(value, int) and not isinstance(value, bool)
        return None if ok else "must be an integer"
    if spec.kind is Kind.STRING:
        if not isinstance(value, str):
            return "must be a string"
        if spec.required and not value.strip():
            return "must not be empty"
        return (
            None
            if len(value) <= spec.max_length
            else f"must be at most {spec.max_length} characters"
        )
    if spec.kind is Kind.STRING_LIST:
        if not isinstance(value, list) or not all(isinstance(v, str) and v for v in value):
            return "must be a list of non-empty strings"
        return None if len(value) <= MAX_LIST else f"must hold at most {MAX_LIST} items"
    if not isinstance(value, dict) or not all(
        isinstance(v, str) and v.strip() for v in value.values()
    ):
        return "must be an object whose values are non-empty strings"
    unknown = sorted(set(value) - set(spec.map_keys))
    if unknown:
        return f"has unknown keys ({', '.join(unknown)}); allowed: {', '.join(spec.map_keys)}"
    return None


@dataclass(frozen=True)
class ConfigSchema:
    """The configuration of one integration type."""

    fields: tuple[ConfigField, ...]
    rules: tuple[Rule, ...] = ()
    description: str = ""
    by_name: dict[str, ConfigField] = field(init=False, repr=False, compare=False)

    def __post_init__(self) -> None:
        object.__setattr__(self, "by_name", {f.name: f for f in self.fields})

    @property
    def secret_fields(self) -> frozenset[str]:
        return frozenset(f.name for f in self.fields if f.secret)

    def validate(self, config: object, *, production: bool) -> dict[str, Any]:
        """The complete configuration (defaults filled in), or ValidationFailed listing every
        bad field."""
        if not isinstance(config, Mapping):
            raise _failed([("", "must be an object")])
        problems = self._field_problems(config)
        complete = self._with_defaults(config)
        if not problems:
            for rule in self.rules:
                problems += rule(complete, production)
        if problems:
            raise _failed(problems)
        return complete

    def merge(
        self, current: Mapping[str, Any], changes: object, *, production: bool
    ) -> tuple[dict[str, Any], list[str]]:
        """`current` with `changes` applied (a key set to null falls back to its default or is
        removed), validated as a whole; returns the new configuration and the keys whose value
        changed. Secret values in `current` are whatever the caller keeps there (sealed)."""
        if not isinstance(changes, Mapping):
            raise _failed([("", "must be an object")])
        unknown = [(k, "unknown field") for k in changes if k not in self.by_name]
        given = {k: v for k, v in changes.items() if v is not None and k in self.by_name}
        problems = unknown + self._value_problems(given)
        merged = {k: v for k, v in current.items() if k not in changes}
        merged.update(given)
        complete = self._with_defaults(merged)
        missing = [
            (f.name, "is required") for f in self.fields if f.required and f.name not in complete
        ]
        problems += missing
        if not problems:
            for rule in self.rules:
                problems += rule(complete, production)
        if problems:
            raise _failed(problems)
        changed = sorted(
            k for k in changes if k in self.by_name and complete.get(k) != current.get(k)
        )
        return complete, changed

    def _field_problems(self, config: Mapping[str, Any]) -> list[Problem]:
        problems: list[Problem] = [(k, "unknown field") for k in config if k not in self.by_name]
        for spec in self.fields:
            if config.get(spec.name) is None and spec.required:
                problems.append((spec.name, "is required"))
        given = {k: v for k, v in config.items() if k in self.by_name and v is not None}
        return problems + self._value_problems(given)

    def _value_problems(self, given: Mapping[str, Any]) -> list[Problem]:
        return [(k, m) for k, v in given.items() for m in self.by_name[k].problems(v)]

    def _with_defaults(self, config: Mapping[str, Any]) -> dict[str, Any]:
        complete = {k: v for k, v in config.items() if v is not None and k in self.by_name}
        for spec in self.fields:
            if spec.name not in complete and spec.default is not None:
                complete[spec.name] = _copy(spec.default)
        return complete


def _copy(value: Any) -> Any:
    if isinstance(value, dict):
        return dict(value)
    if isinstance(value, list | tuple):
        return list(value)
    return value


def _failed(problems: list[Problem]) -> ValidationFailed:
    fields = [
        {"field": f"config.{key}" if key else "config", "message": message, "source": "body"}
        for key, message in problems
    ]
    summary = "; ".join(f"{f['field']}: {f['message']}" for f in fields)
    return ValidationFailed(summary[:300], {"fields": fields})


# --- value checks shared by the schemas -------------------------------------------------------


def url_check(*schemes: str) -> Callable[[Any], str | None]:
    def check(value: Any) -> str | None:
        try:
            parts = urlsplit(value)
            port = parts.port
        except ValueError:
            return "must be a valid URL"
        del port
        if parts.scheme not in schemes or not parts.hostname:
            return f"must be a URL with scheme {' or '.join(schemes)} and a host"
        return None

    return check


def dn_check(value: Any) -> str | None:
    return (
        None if _DN_RE.fullmatch(value.strip()) else "must be a distinguished name (cn=...,dc=...)"
    )


def filter_check(*placeholders: str, empty_allowed: bool = False) -> Callable[[Any], str | None]:
    """An LDAP search filter: parenthesised, balanced, using only the given placeholders (or,
    with `empty_allowed`, the empty string: no search)."""

    def check(value: Any) -> str | None:
        if empty_allowed and value == "":
            return None
        if not (value.startswith("(") and value.endswith(")")) or not _balanced(value):
            return "must be an LDAP filter in balanced parentheses, e.g. (uid={username})"
        used = set(_PLACEHOLDER_RE.findall(value))
        unknown = sorted(used - set(placeholders))
        if unknown:
            return f"may use only the placeholders {', '.join('{' + p + '}' for p in placeholders)}"
        if not used:
            return f"must use a placeholder: {' or '.join('{' + p + '}' for p in placeholders)}"
        return None

    return check


def _balanced(text: str) -> bool:
    depth = 0
    for char in text:
        depth += {"(": 1, ")": -1}.get(char, 0)
        if depth < 0:
            return False
    return depth == 0


def pem_certificates_check(value: Any) -> str | None:
    if PEM_CERTIFICATE not in value or len(value) > MAX_PEM:
        return "must be one or more PEM certificates (-----BEGIN CERTIFICATE-----)"
    return None


def host_port_check(value: Any) -> str | None:
    host, _, port = value.rpartition(":")
    if not host or not port.isdigit() or not 0 < int(port) < 65536:
        return "must be host:port"
    return None
