"""Every MACI role, from its own tenant, from another tenant and from the platform, against every
tenant operation of the HTTP API. The expected answers are written out by hand from the rules of
the product (who may do what), not computed from the permission table in the code: a wrong entry
in that table makes a cell here fail.

The rules the table below spells out:
- creating a tenant, changing its quotas, plan or status, deactivating and reactivating it are
  for the platform's EXECUTIVE only (a tenant's own EXECUTIVE may not);
- listing all tenants is for platform EXECUTIVE, JUDICIAL and AUDITOR principals;
- reading a tenant and changing its name or admin email are for its admin (its EXECUTIVE) and
  the platform's EXECUTIVE;
- a principal of another tenant gets 404 for the tenant, whatever its role (it must not learn
  that the tenant exists); a principal without the role gets 403;
- a token of a suspended tenant is refused at the edge (401) for every operation.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any
from uuid import UUID

import httpx
import psycopg
import pytest

from domain.maci import MaciRole
from tests.peers.http import HASH, Api

pytestmark = [pytest.mark.e2e, pytest.mark.postgres, pytest.mark.security]

ROLES = ["EXECUTIVE", "JUDICIAL", "LEGISLATIVE", "CONTROLLER", "IMPLEMENTER", "AUDITOR", "MONITOR"]

# operation   scope     EXECUTIVE JUDICIAL LEGISLATIVE CONTROLLER IMPLEMENTER AUDITOR MONITOR
MATRIX = """
read          own       200 403 403 403 403 403 403
read          other     404 404 404 404 404 404 404
read          platform  200 403 403 403 403 403 403
profile       own       200 403 403 403 403 403 403
profile       other     404 404 404 404 404 404 404
profile       platform  200 403 403 403 403 403 403
plan          own       403 403 403 403 403 403 403
plan          other     404 404 404 404 404 404 404
plan          platform  200 403 403 403 403 403 403
list          own       403 403 403 403 403 403 403
list          other     403 403 403 403 403 403 403
list          platform  200 200 403 403 403 200 403
create        own       403 403 403 403 403 403 403
create        other     403 403 403 403 403 403 403
create        platform  201 403 403 403 403 403 403
deactivate    own       403 403 403 403 403 403 403
deactivate    other     404 404 404 404 404 404 404
deactivate    platform  202 403 403 403 403 403 403
reactivate    own       403 403 403 403 403 403 403
reactivate    other     404 404 404 404 404 404 404
reactivate    platform  200 403 403 403 403 403 403
"""
# the order the operations run in (deactivation before reactivation, so both can succeed)
OPERATIONS = ["read", "profile", "plan", "list", "create", "deactivate", "reactivate"]
CODES = {403: "FORBIDDEN", 404: "NOT_FOUND"}


def _expected() -> dict[tuple[str, str, str], int]:
    table: dict[tuple[str, str, str], int] = {}
    for line in MATRIX.strip().splitlines():
        operation, scope, *statuses = line.split()
        assert len(statuses) == len(ROLES), line
        for role, status in zip(ROLES, statuses, strict=True):
            table[(operation, scope, role)] = int(status)
    return table


EXPECTED = _expected()


def _requests(target: UUID, unique: str) -> dict[str, Callable[[httpx.Client], httpx.Response]]:
    one = f"/v1/tenants/{target}"
    hdr = {"X-Constitutional-Hash": HASH}
    return {
        "read": lambda c: c.get(one),
        "profile": lambda c: c.patch(one, json={"tenant_name": f"Renamed {unique}"}, headers=hdr),
        "plan": lambda c: c.patch(one, json={"max_storage_gb": 11}, headers=hdr),
        "list": lambda c: c.get("/v1/tenants"),
        "create": lambda c: c.post(
            "/v1/tenants",
            json={
                "tenant_name": f"Matrix New {unique}",
                "tenant_slug": f"mx-new-{unique}",
                "admin_email": "n@mx.example.com",
                "constitutional_hash": HASH,
            },
        ),
        "deactivate": lambda c: c.delete(one, headers=hdr),
        "reactivate": lambda c: c.post(f"{one}/reactivate", headers=hdr),
    }


def _row(api: Api, tenant_id: UUID) -> tuple[Any, ...]:
    api.wait_projected()
    with psycopg.connect(api.system.admin_url) as conn:
        row = conn.execute(
            "SELECT tenant_name, max_storage_gb, status FROM tenants WHERE tenant_id = %s",
            [tenant_id],
        ).fetchone()
    assert row is not None
    return tuple(row)


def test_the_matrix_names_every_role_scope_and_operation() -> None:
    assert [r.value for r in MaciRole] == ROLES
    assert {(o, s) for o, s, _ in EXPECTED} == {
        (o, s) for o in OPERATIONS for s in ("own", "other", "platform")
    }


@pytest.mark.parametrize("scope", ["own", "other", "platform"])
@pytest.mark.parametrize("role", ROLES)
def test_each_role_and_scope_gets_exactly_its_permissions(
    api: Api, platform: httpx.Client, unique: str, role: str, scope: str
) -> None:
    target = UUID(api.create_tenant(platform, f"mx-{unique}")["tenant_id"])
    home = {
        "own": target,
        "other": UUID(api.create_tenant(platform, f"mx-other-{unique}")["tenant_id"]),
        "platform": None,
    }[scope]
    token = (
        api.token(MaciRole(role), sub=f"mx-{unique}")
        if home is None
        else api.token(MaciRole(role), tenant_id=home, sub=f"mx-{unique}")
    )
    before = _row(api, target)
    answers: dict[str, int] = {}
    with api.client(token) as client:
        for operation, send in _requests(target, unique).items():
            response = send(client)
            answers[operation] = response.status_code
            expected = EXPECTED[(operation, scope, role)]
            if expected in CODES:
                assert response.json()["error"]["code"] == CODES[expected], response.text
    assert answers == {op: EXPECTED[(op, scope, role)] for op in OPERATIONS}
    after = _row(api, target)
    changed = {
        "tenant_name": answers["profile"] == 200,
        "max_storage_gb": answers["plan"] == 200,
    }
    # refused writes wrote nothing; allowed ones took effect (the tenant ends active again)
    assert (after[0] != before[0], after[1] != before[1]) == (
        changed["tenant_name"],
        changed["max_storage_gb"],
    )
    assert after[2] == "active"


def test_a_suspended_tenants_tokens_are_refused_at_the_edge_until_reactivated(
    api: Api, platform: httpx.Client, unique: str
) -> None:
    tenant_id = UUID(api.create_tenant(platform, f"mx-susp-{unique}")["tenant_id"])
    tokens = {role: api.token(MaciRole(role), tenant_id=tenant_id) for role in ROLES}
    with api.client(tokens["EXECUTIVE"]) as admin:
        assert admin.get(f"/v1/tenants/{tenant_id}").status_code == 200
    suspended = platform.patch(
        f"/v1/tenants/{tenant_id}",
        json={"status": "suspended"},
        headers={"X-Constitutional-Hash": HASH},
    )
    assert suspended.status_code == 200, suspended.text
    head = api.head()
    for role, token in tokens.items():
        with api.client(token) as client:
            for operation, send in _requests(tenant_id, unique).items():
                response = send(client)
                assert response.status_code == 401, (role, operation, response.text)
                assert response.json()["error"]["code"] == "INVALID_TOKEN"
                assert response.headers["www-authenticate"].startswith("Bearer")
    assert api.head() == head  # refused at the edge: no command ran, nothing was recorded
    api.wait_projected()
    assert platform.get(f"/v1/tenants/{tenant_id}").json()["status"] == "suspended"
    reactivated = platform.post(
        f"/v1/tenants/{tenant_id}/reactivate", headers={"X-Constitutional-Hash": HASH}
    )
    assert reactivated.status_code == 200, reactivated.text
    with api.client(tokens["EXECUTIVE"]) as admin:
        assert admin.get(f"/v1/tenants/{tenant_id}").status_code == 200
