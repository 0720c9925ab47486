"""docs/api.md prints the permission table and the error codes the code holds; they agree."""

from __future__ import annotations

from pathlib import Path

from api.http.errors import STATUS_BY_CODE
from commands.authorization import PERMISSIONS

DOC = Path(__file__).resolve().parents[2] / "docs" / "api.md"


def permission_table() -> str:
    lines = [
        "| permission | roles (or a role that includes one) | who | what |",
        "|---|---|---|---|",
    ]
    for permission, rule in PERMISSIONS.items():
        roles = ", ".join(sorted(r.value for r in rule.roles))
        who = (
            "platform principals"
            if rule.scope.value == "platform"
            else ("the tenant's principals, platform principals")
        )
        lines.append(f"| `{permission.value}` | {roles} | {who} | {rule.description} |")
    return "\n".join(lines)


def test_the_permission_table_in_the_docs_is_the_one_in_the_code() -> None:
    assert permission_table() in DOC.read_text(), (
        "docs/api.md is out of date; paste:\n" + permission_table()
    )


def test_every_error_code_is_documented_with_its_status() -> None:
    text = DOC.read_text()
    for code, status in STATUS_BY_CODE.items():
        assert f"| `{code}` | {status} |" in text, code
