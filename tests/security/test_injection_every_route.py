"""SQL injection (and script) payloads in every path parameter, query parameter and JSON body
field of every operation the served OpenAPI document lists: never a 5xx, never a database error
or a payload repeated in an error, a script served only as JSON, and the row-level security of
the catalogue unchanged afterwards."""

from __future__ import annotations

from typing import Any

import httpx
import psycopg
import pytest

from domain.maci import MaciRole
from tests.peers.http import HASH, Api, ManualClock
from tests.security.operations import body_fields, fill, operations, parameters

pytestmark = [pytest.mark.security, pytest.mark.e2e, pytest.mark.postgres, pytest.mark.slow]

PAYLOADS = [
    "' OR '1'='1",
    "x'; DROP TABLE tenants; --",
    "1; ALTER TABLE tenants DISABLE ROW LEVEL SECURITY; --",
    "') UNION SELECT usename, passwd FROM pg_shadow --",
    "<script>alert(document.cookie)</script>",
]
# Pieces of the payloads an error must not repeat, and what a database error would show.
ECHOES = ("'1'='1", "DROP TABLE", "DISABLE ROW", "UNION SELECT", "pg_shadow", "<script")
DATABASE_ERRORS = ("SQLSTATE", "psycopg", "syntax error", "Traceback", "current transaction")

_RLS_STATE = """
SELECT c.relname, c.relrowsecurity, c.relforcerowsecurity,
       (SELECT count(*) FROM pg_policies p
         WHERE p.schemaname = n.nspname AND p.tablename = c.relname) AS policies
FROM pg_class c JOIN pg_namespace n ON n.oid = c.relnamespace
WHERE n.nspname = 'public' AND c.relkind IN ('r', 'p')
ORDER BY c.relname
"""


def _check(response: httpx.Response, what: str) -> None:
    assert response.status_code < 500, (what, response.status_code, response.text[:500])
    text = response.text
    if "<script" in text:  # stored input shown back: as JSON data, never as a page
        assert response.headers["content-type"].startswith("application/json"), what
        assert response.headers["x-content-type-options"] == "nosniff", what
    for marker in DATABASE_ERRORS:
        assert marker not in text, (what, marker, text[:500])
    if response.status_code >= 400 and text:
        error = response.json()["error"]
        assert set(error) == {"code", "message", "details", "constitutional_hash"}, what
        # a 404 may name the id it did not find; nothing else repeats what was sent
        shown = error["message"] if error["code"] == "NOT_FOUND" else text
        for echo in ECHOES:
            assert echo not in shown, (what, echo, text[:500])


def _rls_state(api: Api) -> list[tuple[Any, ...]]:
    with psycopg.connect(api.system.admin_url) as conn:
        return conn.execute(_RLS_STATE).fetchall()


def test_sql_payloads_in_every_parameter_and_field_of_every_route(
    api: Api, platform: httpx.Client, unique: str, limiter_clock: ManualClock
) -> None:
    # its own rate budget (limiter_clock: a fresh limiter for this test): the hundreds of requests
    # below must not use up the shared test server's budget of the platform tenant
    target = api.create_tenant(platform, f"inj-a-{unique}")
    bystander = api.create_tenant(platform, f"inj-b-{unique}")
    rls_before = _rls_state(api)
    assert any(row[1] and row[2] and row[3] for row in rls_before)  # RLS is there to keep
    ids = {"tenant_id": target["tenant_id"], "version": "1"}
    every = operations(api)
    assert len(every) >= 40  # the whole document, not a handful
    sent = 0
    for method, path, operation, components in every:
        # a fresh platform token for each operation: an earlier one may have logged it out
        headers = {
            "Authorization": f"Bearer {api.token(MaciRole.EXECUTIVE)}",
            "X-Constitutional-Hash": HASH,
        }
        with httpx.Client(base_url=api.url, headers=headers, timeout=30) as client:
            for payload in PAYLOADS:
                for name in parameters(operation, "path"):
                    url = fill(path, ids, (name, payload))
                    _check(client.request(method, url), f"{method} {path} path {name}")
                    sent += 1
                for name in parameters(operation, "query"):
                    url = fill(path, ids)
                    response = client.request(method, url, params={name: payload})
                    _check(response, f"{method} {path} query {name}")
                    sent += 1
                for name in body_fields(operation, components):
                    body = {"constitutional_hash": HASH, name: payload}
                    response = client.request(method, fill(path, ids), json=body)
                    _check(response, f"{method} {path} body {name}")
                    sent += 1
    assert sent >= 200

    # nothing changed the catalogue's row-level security, and the other tenant is untouched
    assert _rls_state(api) == rls_before
    api.wait_projected()
    after = platform.get(f"/v1/tenants/{bystander['tenant_id']}")
    assert after.status_code == 200
    assert (after.json()["tenant_name"], after.json()["status"]) == (
        bystander["tenant_name"],
        bystander["status"],
    )
    with psycopg.connect(api.system.admin_url) as conn:
        (tables,) = conn.execute(
            "SELECT count(*) FROM pg_tables WHERE schemaname = 'public' AND tablename = 'tenants'"
        ).fetchone() or (0,)
    assert tables == 1
