"""The console's audit pages over plain HTTP: one event found by its time (with or without a
zone) and id, in the tenant's log and across tenants; what is refused: a cursor this service did
not issue, a page size not offered, a time that is not one, an event not at that time, an export
format not offered. Real app and PostgreSQL."""

from __future__ import annotations

import re
from collections.abc import Iterator
from uuid import UUID, uuid4

import pytest

from domain.maci import MaciRole
from tests.e2e.console_http import Console, by_id, console_of, errors_of, new_tenant
from tests.e2e.policy_support import rego, submitted
from tests.peers.http import Api

pytestmark = [pytest.mark.e2e, pytest.mark.postgres]
EVENT = re.compile(r'href="/console/tenants/[^/]+/audit/events/([0-9a-f-]{36})\?at=([^"]+)"')


@pytest.fixture(scope="module")
def tenant(api: Api) -> UUID:
    with api.client(api.token(MaciRole.EXECUTIVE)) as platform:
        tenant_id = new_tenant(api, platform, "caf")
    with api.client(api.token(MaciRole.EXECUTIVE, tenant_id=tenant_id)) as admin:
        submitted(admin, tenant_id, rego("doc", "owner"))
    api.wait_projected()
    return tenant_id


@pytest.fixture
def auditor(api: Api, tenant: UUID) -> Iterator[Console]:
    console = console_of(api, MaciRole.EXECUTIVE, tenant_id=tenant)
    yield console
    console.close()


@pytest.fixture
def operator(api: Api) -> Iterator[Console]:
    console = console_of(api, MaciRole.EXECUTIVE)
    yield console
    console.close()


def test_one_event_is_found_by_its_time_and_id(
    auditor: Console, operator: Console, tenant: UUID
) -> None:
    log = auditor.get(f"/tenants/{tenant}/audit")
    events = EVENT.findall(log.text)
    assert events, log.text
    base = f"/tenants/{tenant}/audit/events"
    for audit_id, at in events:
        shown = auditor.get(f"{base}/{audit_id}?at={at}")
        assert shown.status_code == 200
        assert audit_id in shown.text
    audit_id, at = events[0]
    naive = at.replace("%2B00%3A00", "")  # a time without a zone is taken as UTC
    assert naive != at
    assert auditor.get(f"{base}/{audit_id}?at={naive}").status_code == 200
    across = operator.get(f"/audit/events/{audit_id}?at={at}")
    assert across.status_code == 200
    assert audit_id in across.text
    other = auditor.get(f"{base}/{uuid4()}?at={at}")
    assert other.status_code == 404
    assert by_id(other, "error-message") == "audit event not found"
    untimed = auditor.get(f"{base}/{audit_id}?at=yesterday")
    assert untimed.status_code == 422
    assert "must be the event's time" in (by_id(untimed, "error-message") or "")


def test_the_log_refuses_what_it_did_not_offer(
    auditor: Console, operator: Console, tenant: UUID
) -> None:
    forged = auditor.get(f"/tenants/{tenant}/audit", params={"after": "bogus"})
    assert forged.status_code == 422
    assert errors_of(forged) == ["Paging: is not a cursor this service issued"]
    sized = operator.get("/audit", params={"limit": "7"})
    assert sized.status_code == 422
    assert by_id(sized, "limit-error") == "one of 25, 50, 100, 250"
    chart = auditor.get(f"/tenants/{tenant}/audit/timeline", params={"limit": "7"})
    assert chart.status_code == 422
    assert "one of 25, 50, 100, 250" in chart.text
    export = auditor.post(f"/tenants/{tenant}/audit/exports", {"format": "xml"})
    assert export.status_code == 422
    assert by_id(export, "format-error") == "Export format: one of json, jsonl, csv, pdf"
