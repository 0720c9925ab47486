"""Typed errors of policy parsing; each knows where in which file it happened."""

from __future__ import annotations

from domain.errors import DomainError
from domain.policy.rule_model import Location


class PolicySyntaxError(DomainError):
    """A source text that does not parse; stops only the policy it belongs to."""

    code = "POLICY_SYNTAX_ERROR"

    def __init__(self, message: str, location: Location, policy_id: str | None = None) -> None:
        super().__init__(
            f"{location}: {message}",
            {"file": location.file, "line": location.line, "column": location.column},
        )
        self.reason = message
        self.location = location
        self.policy_id = policy_id


class PolicyModelError(DomainError):
    """A document that parses but is not a valid rule model (missing id, bad effect, ...)."""

    code = "POLICY_MODEL_ERROR"

    def __init__(self, message: str, location: Location, policy_id: str | None = None) -> None:
        super().__init__(
            f"{location}: {message}",
            {"file": location.file, "line": location.line, "column": location.column},
        )
        self.reason = message
        self.location = location
        self.policy_id = policy_id


class PolicyLimitExceeded(DomainError):
    """A source over one of the bounds of `PolicyLimits` (depth, rules, list, string, pattern).

    `limit` names the bound (a field of PolicyLimits); over HTTP this is a 422."""

    code = "POLICY_LIMIT_EXCEEDED"

    def __init__(
        self, message: str, location: Location, policy_id: str | None = None, *, limit: str
    ) -> None:
        super().__init__(
            f"{location}: {message}",
            {
                "file": location.file,
                "line": location.line,
                "column": location.column,
                "limit": limit,
            },
        )
        self.reason = message
        self.location = location
        self.policy_id = policy_id
        self.limit = limit


class PolicyTooLarge(PolicyLimitExceeded):
    """A source (or a batch) bigger than allowed, refused before it is read; HTTP 413."""

    code = "POLICY_TOO_LARGE"
