"""Shadow mode over real HTTP: configure, compare legacy decisions, read the metrics, step up,
approval by another JUDICIAL principal, the automatic rollback, and refusals in the envelope."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any
from uuid import UUID

import httpx
import pytest

from domain.maci import MaciRole
from tests.e2e.policy_support import WRITE, activate, submitted
from tests.integration.shadow.support import SHADOW_REGO
from tests.peers.http import HASH, Api

pytestmark = [pytest.mark.e2e, pytest.mark.postgres]


class Tenant:
    def __init__(self, api: Api, platform: httpx.Client, slug: str) -> None:
        self.id = UUID(api.create_tenant(platform, slug)["tenant_id"])
        self._api = api
        self._clients: list[httpx.Client] = []

    def client(self, role: MaciRole, sub: str | None = None) -> httpx.Client:
        token = self._api.token(role, tenant_id=self.id, sub=sub or f"{role}-user")
        client = self._api.client(token)
        self._clients.append(client)
        return client

    def close(self) -> None:
        for client in self._clients:
            client.close()


@pytest.fixture
def tenant(api: Api, platform: httpx.Client, unique: str) -> Iterator[Tenant]:
    made = Tenant(api, platform, f"shd-{unique}")
    author = made.client(MaciRole.LEGISLATIVE)
    submitted(author, made.id, SHADOW_REGO, "rego")
    assert activate(author, made.id, "documents", 1).status_code == 200
    yield made
    made.close()


def _legacy(n: int, role: str, decision: str, **context: Any) -> dict[str, Any]:
    return {
        "decision_id": f"legacy-{n}",
        "principal": {"id": f"u{n}", "role": role},
        "action": "read",
        "resource": f"doc-{n}",
        "context": context,
        "decision": decision,
        "latency_ms": 3.5,
    }


def _agreeing(start: int, count: int) -> list[dict[str, Any]]:
    return [
        _legacy(n, "owner", "allow") if n % 2 else _legacy(n, "guest", "deny")
        for n in range(start, start + count)
    ]


def _command(client: httpx.Client, tenant: Tenant, **body: Any) -> httpx.Response:
    return client.post(
        f"/v1/tenants/{tenant.id}/shadow", json={**body, "constitutional_hash": HASH}
    )


def _compare(client: httpx.Client, tenant: Tenant, decisions: list[Any]) -> httpx.Response:
    return client.post(
        f"/v1/tenants/{tenant.id}/shadow/decisions",
        json={"decisions": decisions},
        headers=WRITE,
    )


def _error(response: httpx.Response, status: int, code: str) -> dict[str, Any]:
    assert response.status_code == status, response.text
    body = response.json()
    assert set(body) == {"error"}
    assert set(body["error"]) == {"code", "message", "details", "constitutional_hash"}
    assert body["error"]["code"] == code
    return dict(body["error"])


def test_from_configuration_to_100_percent(tenant: Tenant) -> None:
    ivan = tenant.client(MaciRole.IMPLEMENTER, "ivan")
    configured = _command(ivan, tenant, action="configure", policy_id="documents")
    assert configured.status_code == 200, configured.text
    assert configured.json()["percentage"] == 0

    answered = _compare(
        ivan,
        tenant,
        [_legacy(0, "guest", "allow"), _legacy(1, "owner", "allow"), _legacy(2, "owner", "deny")],
    )
    assert answered.status_code == 200, answered.text
    results = answered.json()["results"]
    assert [r["agreement"] for r in results] == [
        "legacy_allow_rego_deny",
        "agree",
        "legacy_deny_rego_allow",
    ]
    assert results[0]["deny"] == ["not an owner"]
    assert results[0]["served_decision"] == "allow"  # 0 %: the legacy engine still decides
    assert all(r["routed_to_rego"] is False for r in results)
    assert (
        _error(
            _command(ivan, tenant, action="request_step", target=25),
            409,
            "INVALID_STATE_TRANSITION",
        )["details"]["decisions"]
        == 3
    )

    for target, start in ((25, 100), (50, 2000)):
        assert _compare(ivan, tenant, _agreeing(start, 1000)).status_code == 200
        stepped = _command(ivan, tenant, action="request_step", target=target)
        assert stepped.status_code == 200, stepped.text
        assert stepped.json()["percentage"] == target
    routed = _compare(ivan, tenant, _agreeing(3000, 1000)).json()["results"]
    share = sum(r["routed_to_rego"] for r in routed) / len(routed)
    assert 0.45 < share < 0.55
    assert all(r["served_decision"] == r["rego_decision"] for r in routed if r["routed_to_rego"])

    requested = _command(ivan, tenant, action="request_step", target=100).json()
    assert requested["percentage"] == 50
    assert requested["pending_approval"] == {"target": 100, "requested_by": "ivan"}
    auditor = tenant.client(MaciRole.AUDITOR)
    _error(_command(auditor, tenant, action="approve"), 403, "FORBIDDEN")
    judy = tenant.client(MaciRole.JUDICIAL, "judy")
    approved = _command(judy, tenant, action="approve")
    assert approved.status_code == 200, approved.text
    assert approved.json()["percentage"] == 100

    status = tenant.client(MaciRole.MONITOR).get(f"/v1/tenants/{tenant.id}/shadow").json()
    assert status["percentage"] == 100
    assert status["next_step"] is None
    assert status["current_step"]["decisions"] == 0
    assert status["all_time"]["decisions"] == 3003
    assert status["all_time"]["missed_violations"] == 1
    assert status["all_time"]["agreement_rate"] == pytest.approx(3001 / 3003, abs=1e-5)
    # One point a minute: the two disagreements came first, so only the first minute is short
    # of 1 (the run may span several minutes on a slow machine).
    series = status["all_time"]["agreement_series"]
    assert [minute for minute, _ in series] == sorted(minute for minute, _ in series)
    assert series[0][1] <= 3001 / 3003 + 1e-5
    assert all(rate == 1 for _, rate in series[1:])
    assert status["constitutional_hash"] == HASH


def test_an_injected_burst_of_errors_rolls_back_over_http(tenant: Tenant) -> None:
    ivan = tenant.client(MaciRole.IMPLEMENTER, "ivan")
    rule = {"window_decisions": 100, "min_decisions": 20, "threshold": 0.05}
    assert (
        _command(ivan, tenant, action="configure", policy_id="documents", rollback=rule).status_code
        == 200
    )
    _compare(ivan, tenant, _agreeing(0, 1000))
    assert _command(ivan, tenant, action="request_step", target=25).json()["percentage"] == 25

    burst = [_legacy(5000 + n, "owner", "allow", fail=True) for n in range(30)]
    answered = _compare(ivan, tenant, burst).json()

    assert answered["percentage"] == 0
    assert answered["rolled_back"]["errors"] == 30
    assert answered["rolled_back"]["rate"] == 1.0
    assert {r["agreement"] for r in answered["results"]} == {"rego_error"}
    assert all(r["served_decision"] == "allow" for r in answered["results"])  # legacy serves
    status = ivan.get(f"/v1/tenants/{tenant.id}/shadow").json()
    assert (status["percentage"], status["epoch"]) == (0, 3)


def test_bad_fields_are_listed_at_once(tenant: Tenant) -> None:
    ivan = tenant.client(MaciRole.IMPLEMENTER)
    error = _error(
        _command(ivan, tenant, action="request_step", reason="x"), 422, "VALIDATION_ERROR"
    )
    assert {f["field"] for f in error["details"]["fields"]} == {"target", "reason"}
    error = _error(
        _compare(ivan, tenant, [{"principal": "a", "decision": "maybe", "latency_ms": -1}]),
        422,
        "VALIDATION_ERROR",
    )
    fields = {f["field"] for f in error["details"]["fields"]}
    assert {"decisions[0].action", "decisions[0].resource"} <= fields, fields
    configured = _command(
        ivan,
        tenant,
        action="configure",
        policy_id="documents",
        rollback={"threshold": 7, "window_seconds": 0},
    )
    error = _error(configured, 422, "VALIDATION_ERROR")
    assert {f["field"] for f in error["details"]["fields"]} == {
        "rollback.threshold",
        "rollback.window_seconds",
    }


def test_refusals(tenant: Tenant, api: Api, platform: httpx.Client, unique: str) -> None:
    monitor = tenant.client(MaciRole.MONITOR)
    _error(monitor.get(f"/v1/tenants/{tenant.id}/shadow"), 404, "NOT_FOUND")  # not configured
    _error(_compare(monitor, tenant, _agreeing(0, 1)), 403, "FORBIDDEN")
    ivan = tenant.client(MaciRole.IMPLEMENTER)
    missing_hash = ivan.post(
        f"/v1/tenants/{tenant.id}/shadow/decisions", json={"decisions": _agreeing(0, 1)}
    )
    _error(missing_hash, 400, "CONSTITUTIONAL_HASH_REQUIRED")
    other = Tenant(api, platform, f"shd-o-{unique}")
    try:
        stranger = other.client(MaciRole.EXECUTIVE)
        _error(
            _command(stranger, tenant, action="configure", policy_id="documents"), 404, "NOT_FOUND"
        )
    finally:
        other.close()


def test_a_replayed_idempotent_request_is_not_counted_twice(tenant: Tenant) -> None:
    ivan = tenant.client(MaciRole.IMPLEMENTER, "ivan")
    assert _command(ivan, tenant, action="configure", policy_id="documents").status_code == 200
    body = {"decisions": _agreeing(0, 10)}
    headers = {**WRITE, "Idempotency-Key": "legacy-batch-0"}
    url = f"/v1/tenants/{tenant.id}/shadow/decisions"

    first = ivan.post(url, json=body, headers=headers)
    again = ivan.post(url, json=body, headers=headers)

    assert first.status_code == again.status_code == 200
    assert again.json() == first.json()
    status = ivan.get(f"/v1/tenants/{tenant.id}/shadow").json()
    assert status["current_step"]["decisions"] == 10
    other = ivan.post(url, json={"decisions": _agreeing(10, 1)}, headers=headers)
    _error(other, 409, "IDEMPOTENCY_KEY_REUSED")
