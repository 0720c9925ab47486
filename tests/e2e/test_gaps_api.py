"""Governance gaps over real HTTP: policies submitted through the API, a gap_analysis job run
over them by the deployment's migration runner, then the list with its
filters, paging and trend, and reviews (accept, reopen) with their refusals in the one error
envelope."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any
from uuid import UUID, uuid4

import httpx
import pytest

from domain.maci import MaciRole
from tests.e2e.policy_support import WRITE, activate, run_gap_analysis, submitted
from tests.peers.http import HASH, Api

pytestmark = [pytest.mark.e2e, pytest.mark.postgres, pytest.mark.rego]

OPEN_DOOR = "POLICY door\nDEFAULT allow\nRULE anyone-reads\n  THEN ALLOW\n"
CLOSED_DOOR = (
    "POLICY door\nDEFAULT deny\nRULE analysts-read\n"
    '  WHEN user.role == "analyst" AND action == "read" AND context.time < resource.expires_at\n'
    "  THEN ALLOW\n  OBLIGE audit\n"
)
PAYROLL = (
    "POLICY payroll\nRULE payroll-read\n"
    '  WHEN resource.type == "payroll" AND action == "read"\n  THEN ALLOW\n'
    'RULE clerk-proposes\n  WHEN user.role == "clerk" AND action IN ["propose", "approve"]\n'
    "  THEN ALLOW\n"
)


def _error(response: httpx.Response, status: int, code: str) -> dict[str, Any]:
    assert response.status_code == status, response.text
    body = response.json()
    assert set(body) == {"error"}
    assert set(body["error"]) == {"code", "message", "details", "constitutional_hash"}
    assert body["error"]["code"] == code, body
    assert body["error"]["constitutional_hash"] == HASH
    return dict(body["error"])


class Tenant:
    def __init__(self, api: Api, platform: httpx.Client, slug: str) -> None:
        self.id = UUID(api.create_tenant(platform, slug)["tenant_id"])
        self.api = api
        self.clients: list[httpx.Client] = []

    def client(self, role: MaciRole) -> httpx.Client:
        token = self.api.token(role, tenant_id=self.id, sub=f"{role.value.lower()}-user")
        self.clients.append(self.api.client(token))
        return self.clients[-1]

    def analyse(self) -> UUID:
        return run_gap_analysis(self.api.system, self.id, batch_size=1)

    def gaps(self, client: httpx.Client, **query: Any) -> dict[str, Any]:
        response = client.get(f"/v1/tenants/{self.id}/gaps", params=query)
        assert response.status_code == 200, response.text
        body: dict[str, Any] = response.json()
        return body


@pytest.fixture
def tenant(api: Api, platform: httpx.Client, unique: str) -> Iterator[Tenant]:
    made = Tenant(api, platform, f"gaps-{unique}")
    yield made
    for client in made.clients:
        client.close()


def _gap(body: dict[str, Any], policy: str, rule: str) -> dict[str, Any]:
    [gap] = [g for g in body["gaps"] if (g["policy_id"], g["rule_id"]) == (policy, rule)]
    return gap


def test_gaps_close_over_time_and_the_trend_shows_it(tenant: Tenant, api: Api) -> None:
    author = tenant.client(MaciRole.LEGISLATIVE)
    monitor = tenant.client(MaciRole.MONITOR)
    admin = tenant.client(MaciRole.EXECUTIVE)
    for source in (OPEN_DOOR, PAYROLL):
        submitted(author, tenant.id, source, "dsl")
    for key in ("door", "payroll"):
        assert activate(author, tenant.id, key, 1).status_code == 200
    first = tenant.analyse()

    listed = tenant.gaps(monitor)
    assert listed["total"] == 8
    assert [g["severity"] for g in listed["gaps"]][:2] == ["critical", "critical"]
    door_default = _gap(listed, "door", "GAP-001")
    assert door_default["status"] == "open"
    assert door_default["title"] == "No default deny"
    assert door_default["remediation"] == "Set DEFAULT deny and grant explicitly."
    assert (door_default["location"], door_default["policy_version"]) == ("policy", 1)
    assert listed["trend"] == [
        {
            "run_id": str(first),
            "completed_at": listed["trend"][0]["completed_at"],
            "scope": "active",
            "policies_analysed": 2,
            "gaps_found": 8,
            "score": 23 + 13,
            "gap_severities": {"critical": 2, "high": 2, "medium": 2, "low": 2},
            "open": 8,
            "accepted": 0,
            "new": 8,
            "fixed": 0,
        }
    ]
    page = tenant.gaps(monitor, limit=3, offset=3)
    assert (page["total"], len(page["gaps"]), page["limit"], page["offset"]) == (8, 3, 3, 3)
    assert {g["gap_id"] for g in page["gaps"]}.isdisjoint(
        g["gap_id"] for g in tenant.gaps(monitor, limit=3)["gaps"]
    )

    separation = _gap(listed, "payroll", "GAP-006")
    reviewed = admin.patch(
        f"/v1/tenants/{tenant.id}/gaps/{separation['gap_id']}",
        json={"action": "accept", "reason": "two clerks by procedure", "constitutional_hash": HASH},
    )
    assert reviewed.status_code == 200, reviewed.text
    assert reviewed.json() == {
        "gap_id": separation["gap_id"],
        "previous_status": "open",
        "status": "accepted",
        "reason": "two clerks by procedure",
        "reviewed_by": "executive-user",
        "constitutional_hash": HASH,
    }

    submitted(author, tenant.id, CLOSED_DOOR, "dsl")
    assert activate(author, tenant.id, "door", 2).status_code == 200
    second = tenant.analyse()

    after = tenant.gaps(monitor)
    assert {g["rule_id"]: g["status"] for g in after["gaps"] if g["policy_id"] == "door"} == {
        "GAP-001": "fixed",
        "GAP-002": "fixed",
        "GAP-005": "fixed",
        "GAP-009": "fixed",
    }
    accepted = _gap(after, "payroll", "GAP-006")
    assert accepted["status"] == "accepted"
    assert accepted["review"]["reason"] == "two clerks by procedure"
    assert accepted["review"]["reviewed_by"] == "executive-user"
    assert _gap(after, "door", "GAP-001")["fixed_in_run"] == str(second)
    assert [(r["run_id"], r["score"], r["open"], r["fixed"]) for r in after["trend"]] == [
        (str(first), 36, 8, 0),
        (str(second), 13, 3, 4),
    ]
    assert tenant.gaps(monitor, status="fixed")["total"] == 4
    assert tenant.gaps(monitor, status="accepted")["total"] == 1
    high_open = tenant.gaps(monitor, status="open", severity="high")
    assert [g["rule_id"] for g in high_open["gaps"]] == ["GAP-003"]
    assert tenant.gaps(monitor, policy_id="door")["total"] == 4

    reopened = admin.patch(
        f"/v1/tenants/{tenant.id}/gaps/{separation['gap_id']}",
        json={"action": "reopen", "reason": "procedure dropped"},
        headers=WRITE,
    )
    assert reopened.status_code == 200, reopened.text
    assert reopened.json()["status"] == "open"
    api.wait_projected()
    assert _gap(tenant.gaps(monitor), "payroll", "GAP-006")["status"] == "open"


def test_reviews_are_refused_in_the_one_envelope(
    tenant: Tenant, api: Api, platform: httpx.Client, unique: str
) -> None:
    author = tenant.client(MaciRole.LEGISLATIVE)
    admin = tenant.client(MaciRole.EXECUTIVE)
    submitted(author, tenant.id, OPEN_DOOR, "dsl")
    assert activate(author, tenant.id, "door", 1).status_code == 200
    tenant.analyse()
    gap = _gap(tenant.gaps(admin), "door", "GAP-001")
    url = f"/v1/tenants/{tenant.id}/gaps/{gap['gap_id']}"

    accept = {"action": "accept", "reason": "r"}
    bad = _error(
        admin.patch(url, json={"action": "ignore"}, headers=WRITE), 422, "VALIDATION_ERROR"
    )
    assert [f["field"] for f in bad["details"]["fields"]] == ["action", "reason"]
    _error(admin.patch(url, json=accept), 400, "CONSTITUTIONAL_HASH_REQUIRED")
    _error(author.patch(url, json=accept, headers=WRITE), 403, "FORBIDDEN")
    reopen = {"action": "reopen", "reason": "r"}
    _error(admin.patch(url, json=reopen, headers=WRITE), 409, "INVALID_STATE_TRANSITION")
    missing = f"/v1/tenants/{tenant.id}/gaps/{uuid4()}"
    _error(admin.patch(missing, json=accept, headers=WRITE), 404, "NOT_FOUND")
    query = admin.get(f"/v1/tenants/{tenant.id}/gaps", params={"status": "closed", "limit": 0})
    fields = _error(query, 422, "VALIDATION_ERROR")["details"]["fields"]
    assert [f["field"] for f in fields] == ["status", "limit"]
    nul = admin.get(f"/v1/tenants/{tenant.id}/gaps", params={"policy_id": "door\x00"})
    assert _error(nul, 422, "VALIDATION_ERROR")["details"]["fields"][0]["field"] == "policy_id"

    stranger = Tenant(api, platform, f"gaps-other-{unique}")
    try:
        outsider = stranger.client(MaciRole.EXECUTIVE)
        _error(outsider.get(f"/v1/tenants/{tenant.id}/gaps"), 404, "NOT_FOUND")
        _error(outsider.patch(url, json=accept, headers=WRITE), 404, "NOT_FOUND")
        assert stranger.gaps(outsider)["total"] == 0
    finally:
        for client in stranger.clients:
            client.close()
