"""The policy pages' pieces that need no service: who sees which control, a policy's path, the
wait for a write to reach the read model, reading a form with a file, and the templates keeping
every free-text value of a report or a decision inert."""

from __future__ import annotations

import asyncio
from collections.abc import Callable, Iterator
from datetime import UTC, datetime, timedelta
from types import SimpleNamespace
from typing import Any
from uuid import uuid4

import pytest
from litestar.datastructures import UploadFile

from api.console.freshness import since, wait_for_write
from api.console.permissions import may
from api.console.policy_pages import _refusal, policy_path
from api.console.rendering import ENV, MAX_FORM_FIELD, Pending
from api.console.uploads import read_form_with_files, text_of
from commands.authorization import Permission
from commands.context import Principal
from commands.policy_intake import PolicyConversionFailed
from domain.errors import ValidationFailed
from domain.maci import MaciRole
from domain.tenancy import SYSTEM_TENANT_ID

SCRIPT = "<script>alert(1)</script>"
IMAGE = '"><img src=x onerror=alert(1)>'


@pytest.fixture
def uploads() -> Iterator[Callable[[str, str, bytes], UploadFile]]:
    """Uploaded files as litestar hands them over, closed at the end."""
    made: list[UploadFile] = []

    def upload(content_type: str, filename: str, data: bytes) -> UploadFile:
        made.append(UploadFile(content_type, filename, data))
        return made[-1]

    yield upload
    for file in made:
        asyncio.run(file.close())


def principal(*roles: MaciRole, tenant: Any = None) -> Principal:
    return Principal(sub="someone", tenant_id=tenant or uuid4(), roles=roles)


def test_authoring_controls_follow_the_permission_table() -> None:
    tenant = uuid4()
    for role, author in (
        (MaciRole.LEGISLATIVE, True),
        (MaciRole.EXECUTIVE, True),
        (MaciRole.AUDITOR, False),
        (MaciRole.MONITOR, False),
        (MaciRole.IMPLEMENTER, False),
    ):
        who = principal(role, tenant=tenant)
        assert may(who, Permission.POLICY_AUTHOR, tenant) is author, role
        assert may(who, Permission.POLICY_READ, tenant)
        assert may(who, Permission.DECISION_REQUEST, tenant)
        assert not may(who, Permission.POLICY_READ, uuid4())  # another tenant's
    operator = principal(MaciRole.EXECUTIVE, tenant=SYSTEM_TENANT_ID)
    assert may(operator, Permission.POLICY_AUTHOR, tenant)


def test_a_policy_id_is_one_path_segment() -> None:
    tenant = uuid4()
    assert policy_path(tenant, "a b/c?d#e") == f"/tenants/{tenant}/policies/a%20b%2Fc%3Fd%23e"
    assert policy_path(tenant, "documents") == f"/tenants/{tenant}/policies/documents"


def _request(**query: str) -> Any:
    return SimpleNamespace(query_params=query)


def test_a_page_after_a_write_waits_until_the_read_model_has_it() -> None:
    written = datetime(2026, 1, 2, 3, 4, 5, 678901, tzinfo=UTC)
    stamp = since(written)
    with pytest.raises(Pending):
        wait_for_write(_request(since=stamp), written - timedelta(microseconds=1), "the change")
    wait_for_write(_request(since=stamp), written, "the change")
    wait_for_write(_request(since=stamp), written + timedelta(seconds=5), "the change")  # later
    wait_for_write(_request(), written - timedelta(days=1), "the change")  # no write to wait for
    wait_for_write(_request(since="nonsense"), written - timedelta(days=1), "the change")


class _Form:
    def __init__(self, items: dict[str, Any]) -> None:
        self.items_ = items

    async def form(self) -> Any:
        return SimpleNamespace(items=self.items_.items)


def test_a_form_with_a_file_keeps_long_fields_whole_and_leaves_out_an_empty_file_input(
    uploads: Callable[[str, str, bytes], UploadFile],
) -> None:
    source = "x" * (MAX_FORM_FIELD * 3)
    chosen = uploads("application/json", "p.json", b"{}")
    empty = uploads("application/octet-stream", "", b"")
    request = _Form({"source": source, "name": "y" * (MAX_FORM_FIELD + 10), "file": chosen,
                     "other": empty})  # fmt: skip
    form = asyncio.run(read_form_with_files(request, {"source": 10 * MAX_FORM_FIELD}))  # type: ignore[arg-type]
    assert form.get("source") == source
    assert form.get("name") == "y" * MAX_FORM_FIELD
    assert set(form.files) == {"file"}


def test_nul_characters_are_refused_naming_every_field() -> None:
    request = _Form({"source": "a\x00b", "format": "\x00", "ok": "fine"})
    with pytest.raises(ValidationFailed) as refused:
        asyncio.run(read_form_with_files(request, {"source": 100}))  # type: ignore[arg-type]
    assert [p["field"] for p in refused.value.details["fields"]] == ["format", "source"]


@pytest.mark.parametrize(
    ("data", "message"),
    [
        (b"\xff\xfe", "must be UTF-8 text"),
        (b"a\x00b", "must not contain the NUL character (U+0000)"),
        (b"x" * 11, "is larger than 10 bytes"),
    ],
)
def test_an_uploaded_source_must_be_utf8_text_within_the_bound(
    data: bytes, message: str, uploads: Callable[[str, str, bytes], UploadFile]
) -> None:
    with pytest.raises(ValidationFailed) as refused:
        asyncio.run(text_of(uploads("text/plain", "p.json", data), "file", 10))
    assert refused.value.details["fields"] == [{"field": "file", "message": message}]
    assert asyncio.run(text_of(uploads("text/plain", "p.json", "é".encode()), "file", 10)) == "é"


def test_a_refusal_keeps_its_place_and_errors() -> None:
    refused = PolicyConversionFailed(
        "the source does not convert (p): Expecting value",
        {"line": 4, "column": 27, "errors": [{"policy_id": "p", "code": "C", "message": "m"}]},
    )
    shown = _refusal(refused)
    assert (shown["line"], shown["column"], shown["report"]) == (4, 27, None)
    assert shown["errors"] == [{"policy_id": "p", "code": "C", "message": "m"}]


def _report(text: str) -> dict[str, Any]:
    finding = {"severity": "warning", "code": "W", "message": text, "line": 3, "column": 9,
               "rule_id": text, "file": None}  # fmt: skip
    return {
        "constitutional_hash": "cdd01ef066bc6cf2",
        "engine": "regorus",
        "totals": {
            "policies": 1,
            "converted": 1,
            "unproven": 0,
            "partial": 0,
            "failed": 0,
            "rules_converted": 1,
            "rules_total": 1,
            "warnings": 1,
            "errors": 0,
            "constitutional_compliance_rate": 1.0,
        },
        "policies": [
            {
                "policy_id": text,
                "source": text,
                "format": "json",
                "status": "converted",
                "rules_converted": 1,
                "rules_total": 1,
                "coverage": 1.0,
                "warnings": [finding],
                "errors": [],
                "recommendation": text,
                "package": "acgs.policies.p",
                "gate": {
                    "passed": True,
                    "requests": 4,
                    "rules_reached": 1,
                    "rules_reachable": 1,
                    "counterexample": {"input": text},
                },
                "constitutional_compliant": True,
            }
        ],
    }


def test_a_report_shows_every_free_text_value_escaped() -> None:
    html = ENV.get_template("policy_report.html").render(report=_report(SCRIPT + IMAGE))
    assert "<script>" not in html
    assert "<img" not in html
    assert "&lt;script&gt;alert(1)&lt;/script&gt;" in html
    assert "line 3, column 9" in html
    assert "passed: 4 requests, rules reached 1 / 1" in html


def test_a_decision_shows_its_reasons_and_obligations_escaped() -> None:
    html = ENV.get_template("policy_decision.html").render(
        decision={"decision_id": "d", "allow": False, "deny": [SCRIPT],
                  "obligations": ['{"note": "' + IMAGE + '"}'], "policy_version": 3},
        errors={},
    )  # fmt: skip
    assert "<script>" not in html
    assert "<img" not in html
    assert ">deny<" in html
    assert 'id="decision-version">3<' in html
