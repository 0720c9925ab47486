"""Findings about a policy: warnings and errors, each with the place in the source it is about."""

from __future__ import annotations

from dataclasses import dataclass
from enum import StrEnum
from typing import Any

from domain.policy.rule_model import Location


class Severity(StrEnum):
    WARNING = "warning"
    ERROR = "error"


@dataclass(frozen=True, slots=True)
class Diagnostic:
    severity: Severity
    code: str
    message: str
    location: Location | None = None
    rule_id: str | None = None

    def as_json(self) -> dict[str, Any]:
        loc = self.location
        return {
            "severity": self.severity.value,
            "code": self.code,
            "message": self.message,
            "file": loc.file if loc else None,
            "line": loc.line if loc else None,
            "column": loc.column if loc else None,
            "rule_id": self.rule_id,
        }

    def __str__(self) -> str:
        where = f"{self.location}: " if self.location else ""
        rule = f" (rule {self.rule_id})" if self.rule_id else ""
        return f"{where}{self.severity.value} {self.code}: {self.message}{rule}"


def warning(
    code: str, message: str, location: Location | None = None, rule_id: str | None = None
) -> Diagnostic:
    return Diagnostic(Severity.WARNING, code, message, location, rule_id)


def error(
    code: str, message: str, location: Location | None = None, rule_id: str | None = None
) -> Diagnostic:
    return Diagnostic(Severity.ERROR, code, message, location, rule_id)
